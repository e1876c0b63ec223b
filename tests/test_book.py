"""The Jupyter Book: builds offline from the committed notebooks with warnings as errors
(kdlab.tools.book, `make book`), serves its widget and MathJax bundles itself, and its results page
names where every number came from. Exercise solutions (code cells tagged `solution` and
`hide-input`) are collapsed on every notebook page; their checks stay open.
tests/test_browser.py opens the same build in Chromium.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from kdlab import papers
from kdlab.tools import book
from kdlab.runtime.files import PROJECT_ROOT

ASSETS = PROJECT_ROOT / "book" / "_assets"
EXTERNAL = re.compile(r"""(?:src|href)=["'](?:https?:)?//(?!(?:127\.0\.0\.1|localhost))[^"']+\.(?:js|css|woff2?)""")
_BUILT: dict[str, Path] = {}


def built_book(tmp_path_factory) -> Path:
    """The book built once per test session from the committed notebooks (HTML folder)."""
    if "html" not in _BUILT:
        if not list((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB)):
            pytest.skip("no committed notebooks in notebooks/ yet")
        _BUILT["html"] = book.build(tmp_path_factory.mktemp("book"), quiet=True)
    return _BUILT["html"]


@pytest.fixture(scope="session")
def html(tmp_path_factory) -> Path:
    return built_book(tmp_path_factory)


def _notebook(cells: list[dict], widgets: dict | None = None) -> dict:
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}
    if widgets:
        meta["widgets"] = widgets
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _record(notebook: str, **metrics) -> dict:
    return {"notebook": notebook, "metrics": metrics, "params": {"seed": 0, "epochs": 2},
            "params_file": "cifar100_gpu", "finished": "2025-11-20T10:11:12+0000", "wall_time_s": 81.5,
            "environment": {"device": "cuda:0", "device_name": "NVIDIA H100", "cpu_count": 16}}


# ----------------------------------------------------------------------------- vendored assets

@pytest.mark.parametrize("provenance, asset", [("widgets/PROVENANCE.md", "widgets/embed.js"),
                                               ("mathjax/PROVENANCE.md", "mathjax/tex-chtml-full.js")])
def test_vendored_bundles_match_their_provenance(provenance, asset):
    recorded = re.search(r"sha256\s+`([0-9a-f]{64})`", (ASSETS / provenance).read_text())
    assert recorded, f"{provenance} names no sha256"
    actual = hashlib.sha256((ASSETS / asset).read_bytes()).hexdigest()
    assert actual == recorded.group(1), f"{asset} changed without updating {provenance}"


# ----------------------------------------------------------------------------- results page

def test_results_page_names_source_of_every_number(tmp_path):
    run = tmp_path / "runs" / "cifar100_gpu"
    run.mkdir(parents=True)
    (run / "02_kd_vs_label_smoothing.json").write_text(json.dumps(
        _record("02_kd_vs_label_smoothing", accuracy={"scratch": 0.6931, "kd": 0.70125}, agreement=[0.8, 0.81])))
    (run / "summary.json").write_text(json.dumps({"params_file": "cifar100_gpu", "notebooks": []}))
    records = [(r, f"run folder `{run.name}`") for r in book.run_folder_records(run)]
    assert [r["notebook"] for r, _ in records] == ["02_kd_vs_label_smoothing"]  # summary.json skipped
    page = book.results_markdown(records, ["01_knowledge_distillation", "02_kd_vs_label_smoothing"],
                                 "the run folder `cifar100_gpu`")
    section = page.split("## [02_kd_vs_label_smoothing]")[1]
    for expected in ("parameter file `cifar100_gpu`", "device cuda:0 (NVIDIA H100), 16 CPU cores",
                     "finished 2025-11-20T10:11:12+0000", "| accuracy / scratch | 0.6931 |",
                     "| accuracy / kd | 0.7013 |", "| agreement | [0.8, 0.81] |", "`seed=0`",
                     "| scratch | 69.94 | 275 |", "| kd | 70.80 | 312 |", "| ls | 70.13 | 219 |"):
        # ours, then Han et al.'s numbers as kdlab/papers.json holds them
        assert expected in section, f"{expected!r} missing from the results section:\n{section}"
    assert [r[1:] for r in papers.entry("han2023")["rows"]] == [[69.94, 275], [70.8, 312], [70.13, 219]]
    first = page.split("## [01_knowledge_distillation]")[1].split("## [02")[0]
    assert "No results record" in first


def test_results_from_committed_notebooks_come_from_their_outputs(tmp_path):
    record = _record("05_e2kd", **{"teacher": {"accuracy": 0.99, "agreement": 1.0},
                                   "student: e2kd": {"accuracy": 0.5, "agreement": 0.61}, "shots": 50})
    nb = _notebook([{"cell_type": "code", "source": "save_results(...)", "metadata": {}, "execution_count": 1,
                     "outputs": [{"output_type": "display_data", "data": {"text/plain": "Results written"},
                                  "metadata": {"kdlab": {"results": record}}}]}])
    path = tmp_path / "05_e2kd.ipynb"
    path.write_text(json.dumps(nb))
    assert book.embedded_records(path) == [record]
    page = book.results_markdown([(record, "the committed notebook")], {"05_e2kd": "05 · e²KD"}, "x")
    assert "## [05 · e²KD](notebooks/05_e2kd.ipynb)" in page
    assert "| | accuracy | agreement |" in page and "| student: e2kd | 0.5 | 0.61 |" in page  # a row per model
    assert "| shots | 50 |" in page and "| 49.8 / 55.5 | 54.9 / 61.7 |" in page  # papers.json's table


def test_results_page_shows_each_claim_with_its_verdict():
    claims = {"run": "pilot", "claims_written": "2026-12-06", "verdicts": {
        "02-kd-accuracy": {"claim": "KD more accurate", "role": "primary", "verdict": "inconclusive",
                           "mean": 0.005, "low": -0.03, "high": 0.041, "level": 0.975, "n": 3,
                           "reason": ""},
        "04-ls-scene": {"claim": "LS more scene detectors", "role": "exploratory",
                        "verdict": "not testable", "mean": 0.0, "low": float("nan"),
                        "high": float("nan"), "level": 0.95, "n": 3, "reason": "both sides are 0"}}}
    record = _record("02_kd_vs_label_smoothing", accuracy=0.9, claims=claims)
    page = book.results_markdown([(record, "the committed notebook")], ["02_kd_vs_label_smoothing"], "x")
    assert "decided in the **pilot** run" in page
    assert "| 02-kd-accuracy: KD more accurate | primary | inconclusive | 0.005 | -0.03 to 0.041 | 0.975 | 3 |" in page
    assert "| not testable (both sides are 0) |" in page and "claims / " not in page  # not flattened


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(book.BookError, match="no executed notebooks"):
        book.build(tmp_path / "out", run=tmp_path)
    with pytest.raises(book.BookError, match="not a folder"):
        book.build(tmp_path / "out", run=tmp_path / "missing")
    (tmp_path / "01_knowledge_distillation.json").write_text("{not json")
    with pytest.raises(book.BookError, match="01_knowledge_distillation.json is not valid JSON"):
        book.run_folder_records(tmp_path)
    (tmp_path / "01_knowledge_distillation.json").unlink()
    (tmp_path / "03_dissection_layer3.json").write_text("{}")  # notebook 03's table: no record
    assert book.run_folder_records(tmp_path) == []


# ----------------------------------------------------------------------------- the build

@pytest.mark.book
def test_a_warning_fails_the_build(tmp_path):
    """-W is on: a notebook with a broken cross-reference does not build."""
    notebooks = tmp_path / "run"
    notebooks.mkdir()
    (notebooks / "00_broken.ipynb").write_text(json.dumps(_notebook([
        {"cell_type": "markdown", "metadata": {}, "source": "# Broken\n\nSee {ref}`no-such-label`."}])))
    with pytest.raises(book.BookError, match=r"(?s)warnings are errors.*no-such-label"):
        book.build(tmp_path / "out", run=notebooks, quiet=True)


@pytest.mark.book
def test_book_builds_from_committed_notebooks(html):
    notebooks = sorted((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB))
    for nb in notebooks:
        assert (html / "notebooks" / f"{nb.stem}.html").exists(), f"no page for {nb.name}"
    for page in ("index.html", "intro.html", "results.html", "references.html"):
        assert (html / page).exists(), page
    assert "distilling the knowledge in a neural network" in (html / "references.html").read_text().lower()
    assert (html / "_static" / "widgets" / "embed.js").exists()
    assert (html / "_static" / "mathjax" / "tex-chtml-full.js").exists()
    external = {p.name: EXTERNAL.findall(p.read_text()) for p in html.rglob("*.html")}
    assert not {k: v for k, v in external.items() if v}, f"pages load assets from the internet: {external}"


@pytest.mark.book
def test_widget_pages_carry_their_state_and_local_bundle(html):
    # notebooks that display a widget (progress bars closed with leave=False leave state but no view)
    view = "application/vnd.jupyter.widget-view+json"
    with_widgets = [nb for nb in sorted((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB))
                    if any(view in out.get("data", {}) for cell in json.loads(nb.read_text())["cells"]
                           for out in cell.get("outputs", []))]
    if not with_widgets:
        pytest.skip("no committed notebook has saved widget state")
    for nb in with_widgets:
        page = (html / "notebooks" / f"{nb.stem}.html").read_text()
        assert 'type="application/vnd.jupyter.widget-state+json"' in page, nb.name
        assert 'type="application/vnd.jupyter.widget-view+json"' in page, nb.name
        assert page.count("_static/widgets/embed.js") == 1, f"{nb.name}: embed.js not loaded exactly once"


def test_committed_runs_in_results_are_shown_beside_the_notebooks(tmp_path):
    # results/<params>/ holds runs on other data (Fashion-MNIST): the page must show them
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    (folder / "02_kd_vs_label_smoothing.json").write_text(json.dumps(
        _record("02_kd_vs_label_smoothing", accuracy={"scratch": 0.9012})))
    (folder / "notes.txt").write_text("not a record")
    found = book.committed_run_records(tmp_path)
    assert [(r["notebook"], source) for r, source in found] == [
        ("02_kd_vs_label_smoothing", "committed run `results/fashion_mnist`")]
    page = book.results_markdown(found, ["02_kd_vs_label_smoothing"], "x")
    assert "committed run `results/fashion_mnist`" in page and "| accuracy / scratch | 0.9012 |" in page
    assert book.committed_run_records(tmp_path / "absent") == []


# ----------------------------------------------------------------------------- hidden solutions

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB))
# myst-nb renders a code cell as <div class="cell tag_<tag> ... docutils container">; with the
# tag hide-input it wraps the cell's source in <details class="admonition hide above-input">
# (closed: no `open` attribute) under a "Show code cell source" summary; with hide-output, the
# outputs in a second <details class="admonition hide below-input"> ("Show code cell output").
CELL_START = re.compile(r'<div class="cell(?: [^"]*)?">')
DETAILS = re.compile(r"<details\b([^>]*)>")


def rendered_cells(page: str) -> list[tuple[list[str], str]]:
    """(classes, html) of every notebook cell on a page, in order: the html runs to the next
    cell (cells are siblings in the page, never nested)."""
    starts = list(CELL_START.finditer(page))
    return [(m.group(0)[len('<div class="'):-2].split(), page[m.start():nxt])
            for m, nxt in zip(starts, [m.start() for m in starts[1:]] + [len(page)])]


def solution_problems(page: str, notebook: dict, name: str) -> list[str]:
    """Why the solutions of `notebook` are not collapsed on its rendered `page` (empty if they are)."""
    def tagged(tag):
        return [i for i, c in enumerate(notebook["cells"])
                if c["cell_type"] == "code" and tag in c.get("metadata", {}).get("tags", [])]

    cells = rendered_cells(page)
    problems = []
    for tag in ("solution", "check"):
        shown = [html for classes, html in cells if f"tag_{tag}" in classes]
        if len(shown) != len(tagged(tag)):
            problems.append(f"{name}: {len(tagged(tag))} cells tagged {tag} (cells {tagged(tag)}), "
                            f"{len(shown)} on the page")
        for number, html in enumerate(shown, start=1):
            details = DETAILS.search(html)
            code = html.find('<div class="cell_input')
            if tag == "check":
                if details and details.start() < code:
                    problems.append(f"{name}: check {number} (cell {tagged(tag)[number - 1]}) is "
                                    "collapsed; only solutions are")
                continue
            cell = tagged(tag)[number - 1] if number <= len(tagged(tag)) else "?"
            if not details or "hide" not in details.group(1) or "above-input" not in details.group(1):
                problems.append(f"{name}: solution {number} (cell {cell}) is not in a collapsible "
                                "<details class=\"... hide above-input\">: is it tagged hide-input?")
                continue
            if re.search(r"\bopen\b", details.group(1)):
                problems.append(f"{name}: solution {number} (cell {cell}) is rendered open")
            end = html.find("</details>", details.end())
            if not details.end() < code < end:
                problems.append(f"{name}: the code of solution {number} (cell {cell}) is outside "
                                "its collapsed <details>")
            if "Show code cell source" not in html[details.end():code]:
                problems.append(f"{name}: solution {number} (cell {cell}) has no "
                                "'Show code cell source' toggle")
            output = html.find('<div class="cell_output')
            below = [m for m in DETAILS.finditer(html) if "below-input" in m.group(1)]
            if output != -1 and not (below and below[0].end() < output
                                     and "Show code cell output" in html[below[0].end():output]):
                problems.append(f"{name}: the output of solution {number} (cell {cell}) is "
                                "not collapsed under 'Show code cell output': is it tagged "
                                "hide-output?")
    return problems


def test_solution_check_reads_myst_nb_markup():
    """solution_problems on hand-made markup of myst-nb's two renderings: collapsed and open."""
    notebook = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["solution", "hide-input"]}, "source": "y = 1"},
        {"cell_type": "code", "metadata": {"tags": ["check"]}, "source": "assert y == 1"}]}
    collapsed = (
        '<div class="cell tag_solution tag_hide-input docutils container">\n'
        '<details class="admonition hide above-input">\n<summary aria-label="Toggle hidden content">\n'
        '<p class="collapsed admonition-title">Show code cell source</p>\n'
        '<p class="expanded admonition-title">Hide code cell source</p>\n</summary>\n'
        '<div class="cell_input docutils container">y = 1</div>\n</details>\n</div>\n'
        '<div class="cell tag_check docutils container">\n'
        '<div class="cell_input docutils container">assert y == 1</div>\n</div>\n')
    assert solution_problems(collapsed, notebook, "x.ipynb") == []
    shown = collapsed.replace('<details class="admonition hide above-input">', "<div>", 1).replace(
        "</details>", "</div>", 1)
    assert "not in a collapsible" in " ".join(solution_problems(shown, notebook, "x.ipynb"))
    opened = collapsed.replace("above-input\">", "above-input\" open>", 1)
    assert "rendered open" in " ".join(solution_problems(opened, notebook, "x.ipynb"))
    printed = '<div class="cell_output docutils container">y is 1</div>\n'
    out_shown = collapsed.replace("</details>\n</div>\n", "</details>\n" + printed + "</div>\n", 1)
    assert "is not collapsed under 'Show code cell output'" in " ".join(
        solution_problems(out_shown, notebook, "x.ipynb"))
    out_hidden = collapsed.replace(
        "</details>\n</div>\n", '</details>\n<details class="admonition hide below-input">\n'
        '<summary aria-label="Toggle hidden content">\n<p class="collapsed admonition-title">'
        "Show code cell output</p>\n</summary>\n" + printed + "</details>\n</div>\n", 1)
    assert solution_problems(out_hidden, notebook, "x.ipynb") == []
    lost = collapsed.replace("tag_solution", "tag_other", 1)
    assert "1 cells tagged solution (cells [0]), 0 on the page" in " ".join(
        solution_problems(lost, notebook, "x.ipynb"))


@pytest.mark.book
@pytest.mark.skipif(not NOTEBOOKS, reason="no committed notebooks in notebooks/ yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_solutions_are_collapsed_in_the_book(html, path):
    page = (html / "notebooks" / f"{path.stem}.html").read_text()
    problems = solution_problems(page, json.loads(path.read_text()), path.name)
    assert not problems, "\n".join(problems)
