"""Run the course: execute every notebook in order with papermill for one parameter file.

    python -m kdlab.tools.run [--params cpu|fashion_mnist|<file.yaml>] [--only 01 02] [--force]
                        [--out runs/<name>] [--inplace]

`make run` calls this. Each parameter file (params/*.yaml) holds
    description: what it runs          hardware: what it expects
    all:       {parameter: value}      -- given to every notebook that declares the parameter
    notebooks: {NN_name: {parameter: value}}
A file with notebook sections runs those notebooks (params/voc.yaml: notebook 06 only); one
without (params/cpu.yaml) runs every notebook. --only picks notebooks instead.
Executed copies and one results JSON per notebook land in the run folder (default
runs/<params name>/), with summary.json and summary.md. A notebook whose executed copy there is
complete is skipped unless --force, so an interrupted course resumes where it stopped; the first
failing notebook stops the run with its name and failing cell. --inplace executes the committed
notebooks in notebooks/ on their defaults (how the committed outputs are produced).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..runtime.files import PROJECT_ROOT, write_json_atomic
from ..runtime.notebook import did_you_mean, notebook_defaults

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The course's notebooks in order, optionally only those whose name starts with one of `only`."""
    found = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [nb for nb in found if any(nb.stem.startswith(o) for o in only)]
        if not found:
            raise SystemExit(f"no notebook matches {only}; notebooks: {[p.stem for p in notebooks()]}")
    return found


class ParamsFileError(SystemExit):
    """A parameter file that cannot be used: the message names the file and what to fix."""


FILE_KEYS = ("description", "hardware", "all", "notebooks")
CLAIMS_FILE = "claims.yaml"  # params/claims.yaml: the claims the runs decide (kdlab.claims), not a run


def parameter_files() -> list[Path]:
    """The run parameter files in params/ (every .yaml there but the claims file)."""
    return sorted(p for p in PARAMS_DIR.glob("*.yaml") if p.name != CLAIMS_FILE)


def load_params_file(name: str | None) -> tuple[str, dict]:
    """(name, contents) of a parameter file given by name (params/<name>.yaml) or path.

    The whole file is checked before any notebook runs: YAML syntax (with the line), the
    structure (mappings where mappings belong, notebook sections named by strings), and every
    parameter name against the notebooks that would receive it, so a typo never runs a
    notebook on its defaults.
    """
    import yaml

    if name in (None, "", "cpu", "defaults"):
        path = PARAMS_DIR / "cpu.yaml"
    else:
        path = Path(name) if Path(name).suffix in (".yaml", ".yml") else PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        available = [p.stem for p in parameter_files()]
        raise ParamsFileError(f"parameter file {path} not found; available: {available}")
    if path.name == CLAIMS_FILE:
        raise ParamsFileError(f"{path} holds the claims the runs decide (read by kdlab.claims), "
                              f"not a run's parameters; available: {[p.stem for p in parameter_files()]}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or err
        raise ParamsFileError(f"{path}{where}: not valid YAML ({problem})") from None
    spec = {} if spec is None else spec
    check_params_file(path, spec)
    return path.stem, spec


def check_params_file(path: Path, spec) -> None:
    """Raise ParamsFileError naming `path` for any structural problem or unknown parameter."""
    def fail(message):
        raise ParamsFileError(f"{path}: {message}")

    if not isinstance(spec, dict):
        fail(f"must be a mapping with the keys {', '.join(FILE_KEYS)}, not a {type(spec).__name__}")
    unknown = sorted(set(map(str, spec)) - set(FILE_KEYS))
    if unknown:
        fail(f"unknown top-level keys {unknown}; expected {', '.join(FILE_KEYS)}")
    shared = spec.get("all") or {}
    sections = spec.get("notebooks") or {}
    for key, value in (("all", shared), ("notebooks", sections)):
        if not isinstance(value, dict):
            fail(f"`{key}:` must be a mapping (name: value), not a {type(value).__name__}")
    course = notebooks()
    declared = {nb.stem: notebook_defaults(nb) for nb in course}
    every_name = set().union(*declared.values())
    for name in shared:
        if name not in every_name:
            fail(f"`all:` gives {name!r}, which no notebook declares{did_you_mean(name, every_name)}")
    for section, values in sections.items():
        if not isinstance(section, str):
            example = f"'{section:02d}'" if type(section) is int else "'01'"
            fail(f"notebook section {section!r} is read by YAML as a {type(section).__name__}: "
                 f"quote it ({example}) or write the notebook's name")
        matches = [stem for stem in declared if stem.startswith(section)]
        if len(matches) != 1:
            fail(f"notebook section {section!r} matches {len(matches)} notebooks {matches}; "
                 f"name exactly one of {sorted(declared)}")
        if not isinstance(values or {}, dict):
            fail(f"the section of {section!r} must be a mapping (parameter: value), "
                 f"not a {type(values).__name__}")
        for name in values or {}:
            if name not in declared[matches[0]]:
                fail(f"{matches[0]} has no parameter {name!r}{did_you_mean(name, declared[matches[0]])}; "
                     f"its parameters: {', '.join(declared[matches[0]])}")


def notebook_parameters(nb: Path, spec: dict) -> dict:
    """The parameters a (checked) parameter file gives one notebook: the shared `all` values
    it declares, then its own section."""
    declared = notebook_defaults(nb)
    params = {k: v for k, v in (spec.get("all") or {}).items() if k in declared}
    for section, values in (spec.get("notebooks") or {}).items():
        if nb.stem.startswith(section):
            params.update(values or {})
    return params


def selected_notebooks(spec: dict, only=None) -> list[Path]:
    """The notebooks a run executes: those of `only` if given, else those the (checked)
    parameter file has sections for, else all of them."""
    return notebooks(only or list(spec.get("notebooks") or {}) or None)


def ran_with(executed: Path) -> dict | None:
    """The parameters papermill recorded in an executed notebook (None if unreadable)."""
    try:
        return json.loads(executed.read_text())["metadata"]["papermill"].get("parameters", {})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_complete(executed: Path) -> bool:
    """True if papermill finished this executed notebook without an error (every code cell
    ran: a kernel that died leaves the cells after it without a start time)."""
    if not executed.exists():
        return False
    try:
        nb = json.loads(executed.read_text())
    except json.JSONDecodeError:
        return False
    meta = nb.get("metadata", {}).get("papermill", {})
    if meta.get("exception") or not meta.get("end_time"):
        return False
    return all(_ran(c) and c["metadata"]["papermill"].get("status", "completed") == "completed"
               for c in nb.get("cells", []) if c.get("cell_type") == "code")


def _ran(cell: dict) -> bool:
    """Whether papermill started this cell (it records a start time for every cell it runs)."""
    return bool(cell.get("metadata", {}).get("papermill", {}).get("start_time"))


def failing_cell(executed: Path, error: BaseException | None = None) -> str:
    """A one-line description of the cell that raised in an executed notebook, or, when no
    cell holds an error (the kernel died: killed, perhaps by the out-of-memory killer), of
    the last cell papermill started, with `error`."""
    try:
        cells = json.loads(executed.read_text()).get("cells", [])
    except (OSError, ValueError) as err:
        return f"an unreadable executed copy {executed} ({err})" + (f"; {error!r}" if error else "")
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{_cell_line(i, cell)}: {out.get('ename')}: {out.get('evalue')}"
    started = [i for i, cell in enumerate(cells) if cell.get("cell_type") == "code" and _ran(cell)]
    what = f"{type(error).__name__}: {error}" if error else "no error recorded"
    if not started:
        return f"its start, before any cell ran ({what})"
    i = started[-1]
    return (f"{_cell_line(i, cells[i])}: the kernel died ({what}). It was killed, perhaps by "
            "the out-of-memory killer (`dmesg` would say so), or crashed; free memory or lower "
            "the notebook's sizes, then rerun (complete notebooks are skipped)")


def _cell_line(i: int, cell: dict) -> str:
    source = "".join(cell.get("source", "")).strip().splitlines()
    return f"cell {i} ({(source[0] if source else '')[:60]!r})"


def execute(nb: Path, output: Path, params: dict, env: dict) -> None:
    import papermill

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        papermill.execute_notebook(str(nb), str(output), parameters=params, cwd=str(NOTEBOOK_DIR),
                                   kernel_name="python3", progress_bar=False, request_save_on_cell_execute=True)
    finally:
        if output.exists():
            strip_local_paths(nb, output)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def strip_local_paths(nb: Path, output: Path) -> None:
    """papermill records absolute input/output paths; keep only names relative to the project,
    so committed notebooks and published run folders do not reveal the machine's layout."""
    import nbformat

    executed = nbformat.read(output, as_version=4)
    meta = executed.metadata.get("papermill", {})
    for field, path in (("input_path", nb), ("output_path", output)):
        if field in meta:
            path = path.resolve()
            meta[field] = str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else path.name
    nbformat.write(executed, output)


def run_course(params_name: str | None = None, only=None, force=False, out: str | None = None,
               inplace: bool = False) -> int:
    name, spec = load_params_file(params_name)
    if inplace and name != "cpu":
        raise SystemExit("--inplace executes the committed notebooks on their defaults only")
    run_folder = Path(out) if out else PROJECT_ROOT / "runs" / ("committed" if inplace else name)
    for folder in (run_folder, NOTEBOOK_DIR) if inplace else (run_folder,):
        check_writable(folder)
    print(f"Course run '{name}': {spec.get('description', '')}")
    print(f"Hardware expected: {spec.get('hardware', 'any')}")
    print(f"Run folder: {run_folder}")
    summary, status = [], 0
    for nb in selected_notebooks(spec, only):
        output = nb if inplace else run_folder / nb.name
        params = {} if inplace else notebook_parameters(nb, spec)
        if not inplace and not force and is_complete(output) and (run_folder / f"{nb.stem}.json").exists():
            before = ran_with(output)
            if before == json.loads(json.dumps(params)):  # as papermill stored them (tuples -> lists)
                print(f"  {nb.stem}: already complete in the run folder, skipped (use --force to rerun)")
                summary.append({"notebook": nb.stem, "status": "skipped", "seconds": 0.0, "params": params})
                continue
            print(f"  {nb.stem}: complete, but with other parameters ({json.dumps(before)}); rerunning")
        print(f"  {nb.stem}: running{' with ' + json.dumps(params) if params else ' on its defaults'} ...",
              flush=True)
        t0 = time.perf_counter()
        try:
            execute(nb, output, params, {"KDLAB_RUN_DIR": str(run_folder.resolve()), "KDLAB_PARAMS": name})
        except Exception as err:  # papermill's PapermillExecutionError and kernel failures
            seconds = time.perf_counter() - t0
            where = (failing_cell(output, err) if output.exists()
                     else f"its start ({type(err).__name__}: {err})")
            print(f"  {nb.stem}: FAILED after {seconds:.0f} s at {where}", file=sys.stderr)
            print(f"  The executed copy with the error is {output}" if output.exists() else
                  f"  No executed copy was written ({output} does not exist)", file=sys.stderr)
            summary.append({"notebook": nb.stem, "status": "failed", "seconds": seconds,
                            "params": params, "error": where})
            status = 1
            break
        seconds = time.perf_counter() - t0
        print(f"  {nb.stem}: done in {seconds:.0f} s")
        summary.append({"notebook": nb.stem, "status": "ran", "seconds": round(seconds, 1), "params": params})
    write_summary(run_folder, name, summary)
    return status


class RunFolderError(SystemExit):
    """The run folder cannot be written: the message names it and what to do."""


def check_writable(folder: Path) -> None:
    """RunFolderError naming `folder` unless it exists (or can be made) and takes a new file:
    checked before any notebook runs, so a read-only folder never costs a notebook's run."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise RunFolderError(f"the run folder {folder} cannot be written ({err.strerror or err}); "
                             "nothing was run. Make it writable, or choose another folder with "
                             "--out (make run RUN=<folder>)") from None


def write_summary(run_folder: Path, name: str, summary: list[dict]) -> None:
    write_json_atomic({"params_file": name, "notebooks": summary}, run_folder / "summary.json")
    lines = ["| notebook | status | seconds | parameters |", "|---|---|---|---|"]
    lines += [f"| {s['notebook']} | {s['status']} | {s['seconds']:.0f} | "
              f"{json.dumps(s['params']) if s['params'] else 'defaults'} |" for s in summary]
    (run_folder / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    total = sum(s["seconds"] for s in summary)
    print(f"Total {total:.0f} s. Executed notebooks and results are in {run_folder}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="cpu", help="parameter file: a name in params/ or a path")
    parser.add_argument("--only", nargs="*", help="run only notebooks whose names start with these")
    parser.add_argument("--force", action="store_true", help="rerun notebooks already complete")
    parser.add_argument("--out", help="run folder (default runs/<params name>)")
    parser.add_argument("--inplace", action="store_true",
                        help="execute the committed notebooks in notebooks/ on their defaults")
    args = parser.parse_args(argv)
    return run_course(args.params, args.only, args.force, args.out, args.inplace)


if __name__ == "__main__":
    sys.exit(main())
