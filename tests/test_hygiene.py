"""Hygiene of the committed notebooks (notebooks/NN_name.ipynb), read as files, never executed.

Each committed notebook must be executed top to bottom (sequential execution counts), have
exactly one `parameters` cell of `name = literal` lines, hold no error outputs, no absolute
paths, user names or memory addresses in its outputs, and its outputs must come from its own
default parameters: kdlab.check_params shows the parameters in use under its cell, with the
values as JSON in the output's metadata ({"kdlab": {"params": ...}}), and that record must
equal the parameters cell's literals. Editing a default without re-executing
(`python -m kdlab.tools.run --inplace --only NN`) fails here.
"""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

import pytest

from kdlab.notebook import literal_assignments
from kdlab.files import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RERUN = "re-execute it: `python -m kdlab.tools.run --inplace --only {prefix}`"

# Text that must not appear in outputs: absolute paths of this or any machine, home folders,
# and memory addresses (they change on every run and say nothing to a reader).
FORBIDDEN = [
    (re.compile(r"(?<![\w.])/(?:work|root|home|Users|tmp|var/folders|private)/"), "an absolute path"),
    (re.compile(r"[A-Za-z]:\\(?:Users|Documents and Settings)\\"), "a Windows user path"),
    (re.compile(r"\bat 0x[0-9a-fA-F]{6,}"), "a memory address"),
    (re.compile(r"\bPosixPath\('/"), "an absolute path"),
]


def _local_patterns() -> list[tuple[re.Pattern, str]]:
    """This machine's project folder, home folder and user name (as a path component)."""
    found = [(re.compile(re.escape(str(PROJECT_ROOT))), "the project's absolute path")]
    home = str(Path.home())
    if home not in ("/", ""):
        found.append((re.compile(re.escape(home) + r"\b"), "the home folder"))
    try:
        user = getpass.getuser()
    except Exception:  # no user name available (some containers): nothing more to look for
        user = ""
    if user:
        found.append((re.compile(rf"[/\\]{re.escape(user)}[/\\]"), f"the user name {user!r}"))
    return found


def _texts(value, key: str = ""):
    """Every string inside an output or widget state, skipping binary image payloads."""
    if key.startswith("image/") or key in ("buffers",):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            yield "".join(value)
        else:
            for v in value:
                yield from _texts(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(v, str(k))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[tuple[int, dict]]:
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _params_records(nb: dict) -> list[dict]:
    """Parameter records the notebook showed: check_params' and save_results' (kdlab.notebook)."""
    records = []
    for _, cell in _code_cells(nb):
        for output in cell.get("outputs", []):
            meta = (output.get("metadata") or {}).get("kdlab") or {}
            if isinstance(meta.get("params"), dict):
                records.append(("kdlab.check_params", meta["params"]))
            results = meta.get("results")
            if isinstance(results, dict) and isinstance(results.get("params"), dict):
                records.append(("kdlab.notebook.save_results", results["params"]))
    return records


notebook_ids = [p.stem for p in NOTEBOOKS]
needs_notebooks = pytest.mark.skipif(not NOTEBOOKS, reason="no committed notebooks in notebooks/ yet")


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_executed_top_to_bottom(path):
    nb = _load(path)
    counts = [(i, c.get("execution_count")) for i, c in _code_cells(nb) if _source(c).strip()]
    assert counts, f"{path.name} has no code cells"
    never = [i for i, n in counts if n is None]
    assert not never, (f"{path.name}: code cells {never} were never executed; "
                       + RERUN.format(prefix=path.stem[:2]))
    numbers = [n for _, n in counts]
    assert numbers == list(range(1, len(numbers) + 1)), (
        f"{path.name}: execution counts {numbers} are not 1..{len(numbers)} in order (cells run out "
        "of order, twice, or in an edited kernel); " + RERUN.format(prefix=path.stem[:2]))


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_one_parameters_cell_of_literals(path):
    nb = _load(path)
    tagged = [(i, c) for i, c in enumerate(nb["cells"]) if "parameters" in _tags(c)]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged `parameters`, expected exactly one"
    index, cell = tagged[0]
    assert cell["cell_type"] == "code", f"{path.name}: the `parameters` cell {index} is not a code cell"
    assert literal_assignments(_source(cell)) is not None, (
        f"{path.name}: the `parameters` cell must hold only `name = literal  # comment` lines")
    injected = [i for i, c in enumerate(nb["cells"]) if "injected-parameters" in _tags(c)]
    assert not injected, (f"{path.name}: cell {injected} holds papermill's injected parameters; "
                          "committed notebooks run on their defaults. " + RERUN.format(prefix=path.stem[:2]))


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_no_error_outputs(path):
    nb = _load(path)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in _code_cells(nb)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs in cells {errors}"


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_no_paths_user_names_or_addresses_in_outputs(path):
    nb = _load(path)
    patterns = FORBIDDEN + _local_patterns()
    problems = []
    for i, cell in _code_cells(nb):
        for output in cell.get("outputs", []):
            shown = {k: v for k, v in output.items() if k != "metadata"}  # what a reader sees
            for text in _texts(shown):
                for pattern, what in patterns:
                    if (m := pattern.search(text)):
                        start = max(0, m.start() - 40)
                        problems.append(f"cell {i}: {what}: ...{text[start:m.end() + 40]!r}...")
    state = nb.get("metadata", {}).get("widgets", {})  # widget outputs shown in the book
    for text in _texts(state):
        for pattern, what in patterns:
            if (m := pattern.search(text)):
                problems.append(f"widget state: {what}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}...")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems[:10])


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_no_absolute_paths_in_notebook_metadata(path):
    """papermill records the paths it was given; a committed notebook must not carry ours."""
    meta = _load(path).get("metadata", {}).get("papermill", {})
    bad = {k: meta[k] for k in ("input_path", "output_path")
           if isinstance(meta.get(k), str) and (meta[k].startswith("/") or re.match(r"[A-Za-z]:\\", meta[k]))}
    assert not bad, (f"{path.name}: notebook metadata papermill {bad} are absolute paths of the machine "
                     "that executed it; execute with relative paths (or drop them) before committing")


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_outputs_come_from_the_default_parameters(path):
    nb = _load(path)
    cell = next((c for c in nb["cells"] if "parameters" in _tags(c)), None)
    assert cell is not None, f"{path.name}: no `parameters` cell"
    defaults = json.loads(json.dumps(literal_assignments(_source(cell)) or {}))  # tuples -> lists
    records = _params_records(nb)
    assert records, (
        f"{path.name}: no parameter record in the outputs. kdlab.check_params must show the "
        "parameters in use with {'kdlab': {'params': ...}} in its output's metadata (and/or "
        "save_results its record as {'kdlab': {'results': ...}}); " + RERUN.format(prefix=path.stem[:2]))
    for where, params in records:
        changed = {k: (params.get(k), v) for k, v in defaults.items() if params.get(k) != v}
        extra = sorted(set(params) - set(defaults))
        assert not changed and not extra, (
            f"{path.name}: the committed outputs were made with other parameters than the "
            f"parameters cell's defaults (recorded by {where}): "
            + ", ".join(f"{k}: ran with {ran!r}, default now {now!r}" for k, (ran, now) in changed.items())
            + (f"; names no longer in the parameters cell: {extra}" if extra else "")
            + "; " + RERUN.format(prefix=path.stem[:2]))


def test_checks_catch_what_they_should(tmp_path):
    """The checks above fail on a notebook that breaks each rule (so they can fail at all)."""
    params_src = "seed = 1  # changed after the run\n"
    bad = {"cells": [
        {"cell_type": "code", "source": params_src, "metadata": {"tags": ["parameters"]},
         "execution_count": 1, "outputs": []},
        {"cell_type": "code", "source": "P = kdlab.check_params(globals())", "metadata": {},
         "execution_count": 3, "outputs": [
             {"output_type": "display_data", "data": {"text/plain": "Parameters: seed=0"},
              "metadata": {"kdlab": {"params": {"seed": 0}}}}]},
        {"cell_type": "code", "source": "print(path)", "metadata": {}, "execution_count": 2,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "/home/alice/x.json\n"},
                     {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []}]},
    ], "metadata": {"papermill": {"input_path": "/home/alice/nb.ipynb"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "99_bad.ipynb"
    path.write_text(json.dumps(bad))
    for check in (test_executed_top_to_bottom, test_no_error_outputs,
                  test_no_paths_user_names_or_addresses_in_outputs,
                  test_no_absolute_paths_in_notebook_metadata,
                  test_outputs_come_from_the_default_parameters):
        with pytest.raises(AssertionError):
            check(path)  # marks do not wrap: the plain function runs
    bad["cells"].append(dict(bad["cells"][0]))  # a second parameters cell
    path.write_text(json.dumps(bad))
    with pytest.raises(AssertionError):
        test_one_parameters_cell_of_literals(path)
