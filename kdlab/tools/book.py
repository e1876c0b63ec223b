"""Publish the course as a Jupyter Book: `python -m kdlab.tools.book [--run RUN_FOLDER] [--out DIR]`.

What `make book` runs (the book's intro page says how to use it). The hand-written sources
live in book/ (intro, references, _config.yml, _toc.yml, and in _assets/ the vendored widget
embed bundle and MathJax, so pages render offline); this module stages them with the
executed notebooks and a generated results page into <out>/_build/source and builds HTML
from there with Jupyter Book 1, warnings as errors, never executing a notebook (Jupyter
Book 2 downloads its HTML theme at build time and cannot build offline; Book 1 can).
The HTML lands in <out>/_build/html (out defaults to book/: `make book` gives
book/_build/html).

- Without --run: the committed notebooks (notebooks/NN_*.ipynb); the results page shows the
  results records those notebooks carry in their outputs' metadata ({"kdlab": {"results":
  ...}}, shown by kdlab.runtime.notebook.save_results), so a fresh clone's book has its numbers, and
  beside them the committed runs on other parameter files (results/<params-name>/).
- With --run: the executed notebooks of a papermill run folder (runs/<params-name>/, written
  by kdlab.tools.run) and the <notebook>.json results beside them.

Every number on the results page names the parameter file, device and date it came from;
the papers' numbers (kdlab/papers.json) follow each notebook's table.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..runtime.files import PROJECT_ROOT
from ..runtime.notebook import NotebookFileError, read_notebook

BOOK_DIR = PROJECT_ROOT / "book"
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
# save_results shows its record as the `kdlab.runtime.notebook` entry of its output's metadata
# (output metadata, not a mime type: the book and JupyterLab render only the text).
METADATA_KEY = "kdlab"
GENERATED = ("notebooks", "results.md")  # written into the staged copy, never into book/

# What the papers found, shown after our results for the notebook of that number: prose here,
# every number from kdlab/papers.json (kdlab.papers).
PAPER_PROSE = {
    "01": "Stanton et al. {cite}`stanton2021does`: a student can match its teacher's accuracy "
          "while agreeing with it (same top-1) on far fewer inputs.",
    "02": "Müller et al. {cite}`muller2019label`: label smoothing (ε = 0.1) pulls each class into "
          "a tight cluster equidistant from the others, erasing how similar classes are, and a "
          "teacher trained with LS is a worse teacher for KD.",
    "03": "Network dissection {cite}`bau2017network`: per-unit threshold at the top 0.5 % "
          "quantile, IoU summed over the whole dataset; a unit is a detector when its best IoU "
          "exceeds 0.04 (Bau et al.) or 0.05 (Han et al.).",
    "04": "LS lowers the object detectors and raises the scene detectors.",
}
PAPER_TABLES = {"01": ["repdistiller_cifar100"], "02": ["han2023"], "03": ["han2023"],
                "04": ["han2023", "han2023_feature_kd"], "05": ["e2kd_imagenet"], "06": ["e2kd_voc"]}


def paper_passage(number: str) -> str | None:
    """Markdown of the papers' findings for notebook `number`, or None."""
    from .. import papers

    parts = [papers.markdown(name) for name in PAPER_TABLES.get(number, [])]
    parts += [PAPER_PROSE[number]] if number in PAPER_PROSE else []
    return "\n\n".join(parts) or None


class BookError(RuntimeError):
    """The book cannot be built from what was given (no notebooks, a bad run folder...)."""


# ----------------------------------------------------------------------------- sources

def find_notebooks(folder: Path) -> list[Path]:
    """The course notebooks (NN_name.ipynb) in `folder`, in course order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BookError(f"{folder} is not a folder")
    notebooks = sorted(folder.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise BookError(f"no executed notebooks (NN_name.ipynb) in {folder}: run the course first "
                        "(`make run`) or point --run at a run folder")
    return notebooks


def embedded_records(notebook: Path) -> list[dict]:
    """Results records a notebook displayed in its outputs (kdlab.runtime.notebook.save_results)."""
    nb = read_notebook(notebook)
    records = []
    for i, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = (output.get("metadata") or {}).get(METADATA_KEY, {}).get("results")
            if record is not None:
                check_record(f"{notebook} (cell {i})", record)
                records.append(record)
    return records


def run_folder_records(run: Path, notebooks: set[str] | None = None) -> list[dict]:
    """The <notebook>.json results of a run folder, one per notebook named in `notebooks`
    (default: the run folder's executed notebooks and the course's). Files named after no
    notebook (summary.json, cli-<name>.json, notebook 03's dissection tables) are not records;
    a <notebook>.json that is not a results record is a BookError naming it: the page would
    otherwise leave it out unseen."""
    names = notebooks or {p.stem for p in [*Path(run).glob(NOTEBOOK_GLOB), *NOTEBOOK_DIR.glob(NOTEBOOK_GLOB)]}
    records = []
    for path in sorted(Path(run).glob("*.json")):
        if path.stem not in names:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
            raise BookError(f"{path} is not valid JSON ({err}); rerun that notebook") from err
        check_record(str(path), record)
        records.append(record)
    return records


def check_record(where: str, record) -> None:
    """BookError naming `where` (a file, or a notebook's cell) unless `record` is shaped as
    kdlab.runtime.notebook.save_results writes it: an object with the notebook's name and metrics."""
    problem = ("it is not a JSON object" if not isinstance(record, dict)
               else "it has no 'notebook' name" if not isinstance(record.get("notebook"), str)
               else "it has no 'metrics'" if "metrics" not in record
               else "its 'metrics' are not a mapping" if not isinstance(record["metrics"], dict)
               else None)
    if problem:
        raise BookError(f"{where} is not a results record ({problem}; save_results writes "
                        "'notebook', 'metrics', 'params' and 'environment'). Rerun that notebook "
                        "(python -m kdlab.tools.run --only NN --force) to write it again, or "
                        "remove the record")


def committed_run_records(results_dir: Path = PROJECT_ROOT / "results") -> list[tuple[dict, str]]:
    """The results of runs on other parameter files, kept in the repository as
    results/<params-name>/<notebook>.json (copied from runs/<params-name>/), shown on the
    results page beside the committed notebooks' own: e.g. Fashion-MNIST, which needs a
    dataset download and half an hour, so the notebooks are not committed with its outputs."""
    return [(record, f"committed run `results/{folder.name}`")
            for folder in sorted(Path(results_dir).glob("*")) if folder.is_dir()
            for record in run_folder_records(folder)]


# ----------------------------------------------------------------------------- results page

def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value.is_integer() and abs(value) >= 1000:  # counts that went through pandas as floats
            return f"{int(value):,}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) <= 8 and all(not isinstance(v, (list, dict)) for v in value):
            return "[" + ", ".join(_number(v) for v in value) + "]"
        return f"{len(value)} values"
    return _cell(value)


def flatten(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested metrics as (name, formatted value) rows; nested keys joined with ' / '."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(flatten(value, name + " / "))
        else:
            rows.append((name, _number(value)))
    return rows


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metrics_tables(metrics: dict) -> list[str]:
    """Markdown tables of a metrics dict.

    Entries that are flat dicts of numbers (e.g. {"student: kd": {"accuracy": .8, ...}})
    become one table, a row each, their keys as columns; everything else one
    metric | value table, nested keys joined with ' / '.
    """
    grid = {k: v for k, v in metrics.items()
            if isinstance(v, dict) and v and not any(isinstance(x, (dict, list)) for x in v.values())}
    if len(grid) < 2:
        grid = {}
    lines = []
    if grid:
        columns = list(dict.fromkeys(c for row in grid.values() for c in row))
        lines += ["| | " + " | ".join(_cell(c) for c in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        lines += [f"| {_cell(name)} | " + " | ".join(_number(row[c]) if c in row else "–" for c in columns)
                  + " |" for name, row in grid.items()]
        lines += [""]
    rows = flatten({k: v for k, v in metrics.items() if k not in grid})
    if rows:
        lines += ["| metric | ours |", "|---|---|"]
        lines += [f"| {_cell(metric)} | {value} |" for metric, value in rows]
        lines += [""]
    return lines


def claims_table(claims: dict) -> list[str]:
    """A notebook's claims record (kdlab.claims.record) as one table: each claim's role, its
    verdict, the mean paired difference with its interval, and the number of seeds."""
    run = claims.get("run", "?")
    lines = [f"Claims of `params/claims.yaml` (written {claims.get('claims_written', '?')}), "
             f"decided in the **{run}** run by a paired t-interval (kdlab.verdicts):", "",
             "| claim | role | verdict | mean difference | interval | level | seeds |",
             "|---|---|---|---|---|---|---|"]
    for claim_id, v in claims.get("verdicts", {}).items():
        verdict = v.get("verdict", "?") + (f" ({_cell(v['reason'])})" if v.get("reason") else "")
        interval = f"{_number(v.get('low'))} to {_number(v.get('high'))}"
        lines.append(f"| {_cell(claim_id)}: {_cell(v.get('claim', ''))} | {v.get('role', '')} | "
                     f"{verdict} | {_number(v.get('mean'))} | {interval} | "
                     f"{_number(v.get('level'))} | {_number(v.get('n'))} |")
    return lines + [""]


def notebook_title(path: Path) -> str:
    """The notebook's first markdown heading, else its file name."""
    nb = read_notebook(path)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            for line in source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return Path(path).stem


def _provenance(record: dict, source: str) -> str:
    env = record.get("environment", {})
    device = env.get("device", "?")
    name = env.get("device_name")
    if name and name != device:
        device += f" ({name})"
    if env.get("cpu_count"):
        device += f", {env['cpu_count']} CPU cores"
    if env.get("training_threads"):
        device += f", training on {env['training_threads']} threads"
    parts = [f"parameter file `{record.get('params_file', '?')}`", f"device {device}",
             f"finished {record.get('finished', '?')}"]
    if record.get("wall_time_s") is not None:
        parts.append(f"wall time {record['wall_time_s']} s")
    parts.append(f"source: {source}")
    return " · ".join(parts)


def results_markdown(records: list[tuple[dict, str]], notebooks: list[str] | dict[str, str],
                     origin: str) -> str:
    """The results page: per notebook, our numbers with their provenance, then the papers'.

    `records` pairs each results record with where it came from; `notebooks` are the stems
    of the published notebooks, or {stem: title} (their sections link to their pages); a
    published notebook without a record is listed as such.
    """
    titles = notebooks if isinstance(notebooks, dict) else {stem: stem for stem in notebooks}
    lines = ["# Results", "",
             f"Generated by `python -m kdlab.tools.book` from {origin}. Each table gives one "
             "notebook run's numbers with the parameter file, device and date they came from; "
             "the papers' numbers follow. The default parameters run small models on the "
             "synthetic data on a CPU in minutes: they show the mechanics, not the papers' "
             "ImageNet-scale effects, and the notebooks say where our numbers disagree.", ""]
    by_notebook: dict[str, list[tuple[dict, str]]] = {}
    for record, source in records:
        by_notebook.setdefault(str(record.get("notebook")), []).append((record, source))
    names = list(titles) + sorted(set(by_notebook) - set(titles))
    for name in names:
        heading = f"[{titles[name]}](notebooks/{name}.ipynb)" if name in titles else name
        lines += [f"## {heading}", ""]
        found = by_notebook.get(name, [])
        if not found:
            lines += ["No results record for this notebook in this build. Run the course "
                      "(`make run`) and build from the run folder (`make book RUN=runs/<name>`).", ""]
        for record, source in found:
            lines += [_provenance(record, source), ""]
            params = record.get("params") or {}
            if params:
                shown = ", ".join(f"`{k}={v!r}`" for k, v in params.items())
                lines += [f"Parameters: {shown}", ""]
            metrics = dict(record.get("metrics") or {})
            if isinstance(metrics.get("claims"), dict):
                lines += claims_table(metrics.pop("claims"))
            lines += metrics_tables(metrics) or ["(no metrics recorded)", ""]
        paper = paper_passage(name[:2])
        if paper:
            lines += ["**The papers' numbers**", "", paper, ""]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- staging and build

def stage(out: Path, notebooks: list[Path], results_md: str, book_dir: Path = BOOK_DIR) -> Path:
    """Copy book/ sources, the notebooks and the results page into <out>/_build/source."""
    source = Path(out) / "_build" / "source"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(book_dir, source, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints",
                                                                    *GENERATED))
    (source / "notebooks").mkdir()
    for notebook in notebooks:
        shutil.copy2(notebook, source / "notebooks" / notebook.name)
    (source / "results.md").write_text(results_md)
    return source


def jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    found = str(exe) if exe.exists() else shutil.which("jupyter-book")
    if not found:
        raise BookError("jupyter-book is not installed: run `make setup` (it is a dev dependency)")
    return [found]


def build(out: Path | None = None, run: Path | None = None, notebooks_dir: Path | None = None,
          quiet: bool = False) -> Path:
    """Stage and build the book; return the folder holding index.html. Warnings are errors."""
    out = Path(out) if out is not None else BOOK_DIR
    if run is not None:
        run = Path(run)
        notebooks = find_notebooks(run)
        records = [(r, f"run folder `{run.name}`") for r in run_folder_records(run)]
        origin = f"the run folder `{run.name}`"
    else:
        notebooks = find_notebooks(notebooks_dir or PROJECT_ROOT / "notebooks")
        records = [(r, "the committed notebook") for nb in notebooks for r in embedded_records(nb)]
        records += committed_run_records()
        origin = "the committed notebooks and the committed runs in results/"
    page = results_markdown(records, {nb.stem: notebook_title(nb) for nb in notebooks}, origin)
    source = stage(out, notebooks, page)
    cmd = jupyter_book_command() + ["build", str(source), "--path-output", str(out), "-W",
                                    "--keep-going", "--builder", "html"]
    if quiet:
        cmd.append("--quiet")
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        detail = f"\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}" if quiet else ""
        raise BookError(f"jupyter-book build failed (exit {done.returncode}; warnings are "
                        f"errors){detail}")
    html = out / "_build" / "html"
    if not (html / "index.html").exists():
        raise BookError(f"the build finished but {html / 'index.html'} is missing")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.tools.book", description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a papermill run folder (runs/<params-name>); "
                        "default: the committed notebooks")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default book/); HTML goes to <out>/_build/html")
    args = parser.parse_args(argv)
    try:
        html = build(args.out, args.run)
    except (BookError, NotebookFileError) as err:
        print(f"kdlab.tools.book: {err}", file=sys.stderr)
        return 1
    print(f"Book built: {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
