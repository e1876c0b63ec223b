"""Hygiene of the committed notebooks (notebooks/NN_name.ipynb), read as files, never executed.

Each committed notebook must be executed top to bottom (sequential execution counts), have
exactly one `parameters` cell of `name = literal` lines, hold no error outputs, no absolute
paths, user names or memory addresses in its outputs, and its outputs must come from its own
default parameters: kdlab.check_params shows the parameters in use under its cell, with the
values as JSON in the output's metadata ({"kdlab": {"params": ...}}), and that record must
equal the parameters cell's literals. Editing a default without re-executing
(`python -m kdlab.tools.run --inplace --only NN`) fails here.

Every notebook is also worked, not only read; each has, with exactly these markers:
- a `**Learning objectives.**` markdown cell under the title (before the first code cell),
  with a list of three to five items;
- at least one `> **Predict before you run.**` prompt before a code cell that answers it;
- two to six exercises: a `### Exercise N: <title>` markdown cell (N = 1..n in order), the
  next code cell its solution, tagged `solution`, `hide-input` and `hide-output` (code and
  output collapsed in the book), first line `# Solution to exercise N`, executed; right after
  it one code cell tagged `check` that ran and printed its verdict without a number, so that
  it does not restate the answer ("Exercise 2: correct"; kdlab.tools.student turns solutions
  into stubs);
- a closing `## Summary` markdown cell;
- code lines of at most 88 characters, so they show whole in the book;
- markdown headings that never skip a level going down (`#` then `###` fails the book build);
- a teaching length: at most 2,000 words of markdown, of them at most 300 in the summary (from
  the `## Summary` heading to the end); history and robustness passages belong on the book's
  page "How robust are these results" (book/robustness.md).
"""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

import pytest

from kdlab.runtime.notebook import literal_assignments
from kdlab.tools.student import EXERCISE
from kdlab.runtime.files import PROJECT_ROOT

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
    """Parameter records the notebook showed: check_params' and save_results' (kdlab.runtime.notebook)."""
    records = []
    for _, cell in _code_cells(nb):
        for output in cell.get("outputs", []):
            meta = (output.get("metadata") or {}).get("kdlab") or {}
            if isinstance(meta.get("params"), dict):
                records.append(("kdlab.check_params", meta["params"]))
            results = meta.get("results")
            if isinstance(results, dict) and isinstance(results.get("params"), dict):
                records.append(("kdlab.runtime.notebook.save_results", results["params"]))
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


# ----------------------------------------------------------------------------- teaching structure

OBJECTIVES, PREDICT, SUMMARY = "**Learning objectives.**", "> **Predict before you run.**", "## Summary"
MIN_EXERCISES, MAX_EXERCISES, MAX_LINE = 2, 6, 88
LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)


def _first_line(cell: dict) -> str:
    lines = _source(cell).strip().splitlines()
    return lines[0][:70] if lines else ""


def _output_text(output: dict) -> str:
    """What a stream or a displayed result shows as text."""
    text = output.get("text", output.get("data", {}).get("text/plain", ""))
    return "".join(text) if isinstance(text, list) else str(text)


def _starts(cell: dict, marker: str) -> bool:
    return cell["cell_type"] == "markdown" and _source(cell).lstrip().startswith(marker)


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_learning_objectives_under_the_title(path):
    cells = _load(path)["cells"]
    found = [i for i, c in enumerate(cells) if _starts(c, OBJECTIVES)]
    assert found, (f"{path.name}: no markdown cell starting with {OBJECTIVES!r} (learning "
                   "objectives, under the title)")
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    assert found[0] < first_code, (
        f"{path.name}: the learning objectives (cell {found[0]}) come after the first code cell "
        f"(cell {first_code}); put them under the title")
    items = len(LIST_ITEM.findall(_source(cells[found[0]])))
    assert 3 <= items <= 5, (f"{path.name}: the learning objectives (cell {found[0]}) list {items} "
                             "items; give three to five")


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_predict_before_you_run(path):
    cells = _load(path)["cells"]
    prompts = [i for i, c in enumerate(cells) if _starts(c, PREDICT)]
    assert prompts, (f"{path.name}: no markdown cell starting with {PREDICT!r} (a question the "
                     "learner answers before the cell that shows the result)")
    answered = [i for i in prompts if any(c["cell_type"] == "code" for c in cells[i + 1:])]
    assert answered, (f"{path.name}: the prompt in cell {prompts[0]} has no code cell after it "
                      "to answer it")


def _exercise_problems(path: Path) -> list[str]:
    """What is wrong with a notebook's exercises (empty when every rule holds)."""
    cells = _load(path)["cells"]
    name, problems = path.name, []
    headings = [(i, int(m.group(1))) for i, c in enumerate(cells)
                if c["cell_type"] == "markdown" and (m := EXERCISE.match(_source(c).lstrip()))]
    numbers = [n for _, n in headings]
    if not MIN_EXERCISES <= len(headings) <= MAX_EXERCISES:
        problems.append(f"{name}: {len(headings)} `### Exercise N:` headings "
                        f"(cells {[i for i, _ in headings]}); give {MIN_EXERCISES} to {MAX_EXERCISES}")
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"{name}: the exercises in cells {[i for i, _ in headings]} are numbered "
                        f"{numbers}, not 1..{len(numbers)} in order")
    claimed = set()
    for i, n in headings:
        j = i + 1
        while j < len(cells) and cells[j]["cell_type"] == "markdown" and not EXERCISE.match(
                _source(cells[j]).lstrip()):
            j += 1  # the task may go on in more markdown cells
        if j >= len(cells) or cells[j]["cell_type"] != "code":
            problems.append(f"{name}: exercise {n} (cell {i}) is not followed by a solution code cell")
            continue
        solution, tags = cells[j], _tags(cells[j])
        if not {"solution", "hide-input", "hide-output"} <= set(tags):
            problems.append(f"{name}: cell {j}, the solution of exercise {n} (cell {i}), is tagged "
                            f"{tags}; it needs 'solution', 'hide-input' and 'hide-output'")
        if not _source(solution).lstrip().startswith(f"# Solution to exercise {n}"):
            problems.append(f"{name}: cell {j}, the solution of exercise {n}, must start with "
                            f"`# Solution to exercise {n}` (it starts {_first_line(solution)!r})")
        if solution.get("execution_count") is None:
            problems.append(f"{name}: cell {j}, the solution of exercise {n}, was never executed; "
                            + RERUN.format(prefix=path.stem[:2]))
        claimed.add(j)
        k = j + 1
        check = cells[k] if k < len(cells) else None
        if check is None or check["cell_type"] != "code" or "check" not in _tags(check):
            problems.append(f"{name}: the cell after the solution of exercise {n} (cell {j}) must "
                            "be one code cell tagged 'check' that asserts the solution is right")
            continue
        claimed.add(k)
        if "solution" in _tags(check) or "hide-input" in _tags(check):
            problems.append(f"{name}: cell {k}, the check of exercise {n}, is tagged "
                            f"{_tags(check)}: a check stays visible and in the student edition")
        shown = "".join(_output_text(o) for o in check.get("outputs", []))
        if check.get("execution_count") is None or not shown.strip():
            problems.append(f"{name}: cell {k}, the check of exercise {n}, did not run and print "
                            "its verdict (e.g. 'Exercise 1: correct'); "
                            + RERUN.format(prefix=path.stem[:2]))
        elif re.search(r"\d", re.sub(r"[Ee]xercise \d+", "", shown)):
            problems.append(f"{name}: cell {k}, the check of exercise {n}, prints a number "
                            f"({shown.strip()[:80]!r}); it must not restate the answer")
    strays = [i for i, c in enumerate(cells)
              if ({"solution", "check"} & set(_tags(c))) and i not in claimed]
    if strays:
        problems.append(f"{name}: cells {strays} are tagged 'solution' or 'check' outside an "
                        "exercise (heading, solution, check)")
    return problems


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_exercises_with_hidden_solutions_and_checks(path):
    problems = _exercise_problems(path)
    assert not problems, "\n  ".join(["exercises:"] + problems)


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_ends_with_a_summary(path):
    cells = [(i, c) for i, c in enumerate(_load(path)["cells"]) if _source(c).strip()]
    assert cells, f"{path.name} is empty"
    i, last = cells[-1]
    assert _starts(last, SUMMARY), (
        f"{path.name}: the last cell ({i}, {last['cell_type']}: {_first_line(last)!r}) is not a "
        f"markdown cell starting with {SUMMARY!r} (what the learner now knows, what stays open)")


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_code_lines_fit_the_book(path):
    long = [f"cell {i} line {n}: {len(line)} characters: {line[:60]!r}..."
            for i, c in _code_cells(_load(path))
            for n, line in enumerate(_source(c).splitlines(), start=1) if len(line) > MAX_LINE]
    assert not long, (f"{path.name}: {len(long)} code lines longer than {MAX_LINE} characters "
                      "(they scroll sideways in the book):\n  " + "\n  ".join(long[:10]))


HEADING = re.compile(r"^(#{1,6})\s+\S")
FENCE = re.compile(r"^\s*(```|~~~)")


def _headings(nb: dict) -> list[tuple[int, int, str]]:
    """(cell, level, text) of every markdown heading, code fences skipped."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        fenced = False
        for line in _source(cell).splitlines():
            if FENCE.match(line):
                fenced = not fenced
            elif not fenced and (m := HEADING.match(line)):
                found.append((i, len(m.group(1)), line.strip()[:60]))
    return found


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_headings_do_not_skip_levels(path):
    """The book builds with warnings as errors, and myst warns when a heading goes more than
    one level deeper than the one before it (`# Title` straight to `### Exercise 1`)."""
    skips, level = [], 0
    for i, depth, text in _headings(_load(path)):
        if depth > level + 1:
            skips.append(f"cell {i}: {text!r} is level {depth} after level {level}")
        level = depth
    assert not skips, (f"{path.name}: headings skip a level (the book build fails): "
                       + "; ".join(skips) + ". Put exercises under a `## ...` section")


MAX_WORDS, MAX_SUMMARY_WORDS = 2000, 300
WORD = re.compile(r"\S+")


def _words(cell: dict) -> int:
    return len(WORD.findall(_source(cell)))


@needs_notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_ids)
def test_teaching_length(path):
    """A lesson a learner can follow: at most MAX_WORDS words of markdown, and a summary (from
    the `## Summary` heading to the end) of at most MAX_SUMMARY_WORDS. A lesson is not a
    changelog: project history, thread counts and robustness discussions go to book/robustness.md."""
    cells = _load(path)["cells"]
    markdown = [(i, _words(c)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    total = sum(n for _, n in markdown)
    start = next((i for i, c in enumerate(cells) if _starts(c, SUMMARY)), len(cells))
    summary = sum(n for i, n in markdown if i >= start)
    problems = []
    if total > MAX_WORDS:
        longest = sorted(markdown, key=lambda item: -item[1])[:3]
        problems.append(f"its markdown has {total} words, {total - MAX_WORDS} over {MAX_WORDS} "
                        "(longest: " + ", ".join(f"cell {i}, {n} words" for i, n in longest) + ")")
    if summary > MAX_SUMMARY_WORDS:
        problems.append(f"its summary (cell {start} to the end) has {summary} words, "
                        f"{summary - MAX_SUMMARY_WORDS} over {MAX_SUMMARY_WORDS}")
    assert not problems, (f"{path.name}: " + "; ".join(problems) + ". Keep what teaches; move "
                          "history and robustness passages to book/robustness.md")


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
                  test_outputs_come_from_the_default_parameters,
                  test_learning_objectives_under_the_title, test_predict_before_you_run,
                  test_exercises_with_hidden_solutions_and_checks, test_ends_with_a_summary):
        with pytest.raises(AssertionError):
            check(path)  # marks do not wrap: the plain function runs
    bad["cells"].append(dict(bad["cells"][0]))  # a second parameters cell
    path.write_text(json.dumps(bad))
    with pytest.raises(AssertionError):
        test_one_parameters_cell_of_literals(path)


def _teaching_notebook() -> dict:
    """A small notebook that follows every teaching rule (the checks' positive control)."""
    def md(text):
        return {"cell_type": "markdown", "metadata": {}, "source": text}

    def code(text, count, tags=(), printed=""):
        outputs = [{"output_type": "stream", "name": "stdout", "text": printed}] if printed else []
        return {"cell_type": "code", "metadata": {"tags": list(tags)} if tags else {},
                "source": text, "execution_count": count, "outputs": outputs}

    cells = [md("# 99 · Tiny"),
             md("**Learning objectives.** After this notebook you can\n\n- add\n- double\n- check"),
             code("x = 21", 1),
             md("> **Predict before you run.** What is `2 * x`?"),
             code("2 * x", 2),
             md("## Exercises")]
    for n in (1, 2):
        cells += [md(f"### Exercise {n}: double\n\nDefine `y{n} = 2 * x`."),
                  code(f"# Solution to exercise {n}\ny{n} = 2 * x", 2 * n + 1,
                       ["solution", "hide-input", "hide-output"]),
                  code(f"assert y{n} == 42\nprint('Exercise {n}: correct')", 2 * n + 2, ["check"],
                       f"Exercise {n}: correct\n")]
    cells += [md("## Summary\n\n- 2 * 21 = 42.")]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _break(nb: dict, how: str) -> dict:
    """A copy of the teaching notebook that breaks one rule."""
    nb = json.loads(json.dumps(nb))
    cells = nb["cells"]
    if how == "no objectives":
        del cells[1]
    elif how == "objectives after code":
        cells.insert(3, cells.pop(1))
    elif how == "two objectives":
        cells[1]["source"] = "**Learning objectives.**\n\n- add\n- double"
    elif how == "no prompt":
        cells[3]["source"] = "What is `2 * x`?"
    elif how == "one exercise":
        del cells[9:12]
    elif how == "seven exercises":
        for n in (3, 4, 5, 6, 7):
            cells[-1:-1] = [dict(c, source=c["source"].replace("1", str(n))) for c in cells[6:9]]
    elif how == "numbered 1, 3":
        cells[9]["source"] = cells[9]["source"].replace("Exercise 2", "Exercise 3")
        cells[10]["source"] = cells[10]["source"].replace("exercise 2", "exercise 3")
    elif how == "solution not hidden":
        cells[7]["metadata"]["tags"] = ["solution"]
    elif how == "solution output shown":
        cells[7]["metadata"]["tags"] = ["solution", "hide-input"]
    elif how == "check restates the answer":
        cells[8]["outputs"][0]["text"] = "Exercise 1: correct (y1 = 42)\n"
    elif how == "solution not tagged":
        cells[7]["metadata"]["tags"] = ["hide-input"]
    elif how == "solution comment":
        cells[7]["source"] = "y1 = 2 * x"
    elif how == "solution not executed":
        cells[7]["execution_count"] = None
    elif how == "no check":
        del cells[8]
    elif how == "check printed nothing":
        cells[8]["outputs"] = []
    elif how == "stray solution":
        cells[4]["metadata"]["tags"] = ["solution"]
    elif how == "no summary":
        del cells[-1]
    elif how == "summary not last":
        cells.insert(5, cells.pop())
    elif how == "long line":
        cells[2]["source"] = "x = 21  # " + "x" * 80
    elif how == "skipped heading":
        del cells[5]  # "## Exercises": the title (h1) is followed by "### Exercise 1" (h3)
    elif how == "long lesson":
        cells[5]["source"] += "\n\n" + "word " * MAX_WORDS
    elif how == "long summary":
        cells[-1]["source"] += "\n\n" + "word " * MAX_SUMMARY_WORDS
    else:
        raise ValueError(how)
    return nb


BROKEN = {  # rule broken -> the check that must fail on it
    "no objectives": "test_learning_objectives_under_the_title",
    "objectives after code": "test_learning_objectives_under_the_title",
    "two objectives": "test_learning_objectives_under_the_title",
    "no prompt": "test_predict_before_you_run",
    "one exercise": "test_exercises_with_hidden_solutions_and_checks",
    "seven exercises": "test_exercises_with_hidden_solutions_and_checks",
    "solution output shown": "test_exercises_with_hidden_solutions_and_checks",
    "check restates the answer": "test_exercises_with_hidden_solutions_and_checks",
    "numbered 1, 3": "test_exercises_with_hidden_solutions_and_checks",
    "solution not hidden": "test_exercises_with_hidden_solutions_and_checks",
    "solution not tagged": "test_exercises_with_hidden_solutions_and_checks",
    "solution comment": "test_exercises_with_hidden_solutions_and_checks",
    "solution not executed": "test_exercises_with_hidden_solutions_and_checks",
    "no check": "test_exercises_with_hidden_solutions_and_checks",
    "check printed nothing": "test_exercises_with_hidden_solutions_and_checks",
    "stray solution": "test_exercises_with_hidden_solutions_and_checks",
    "no summary": "test_ends_with_a_summary",
    "summary not last": "test_ends_with_a_summary",
    "long line": "test_code_lines_fit_the_book",
    "skipped heading": "test_headings_do_not_skip_levels",
    "long lesson": "test_teaching_length",
    "long summary": "test_teaching_length",
}
TEACHING_CHECKS = sorted(set(BROKEN.values()))


def test_teaching_checks_catch_what_they_should(tmp_path):
    """Each teaching check passes on a notebook that follows the rules and fails, naming the
    notebook, on a copy that breaks one of them; the other teaching checks still pass there."""
    good = _teaching_notebook()
    path = tmp_path / "99_tiny.ipynb"
    path.write_text(json.dumps(good))
    for name in TEACHING_CHECKS:
        globals()[name](path)  # the positive control: no rule broken, nothing fails
    for how, failing in BROKEN.items():
        path.write_text(json.dumps(_break(good, how)))
        with pytest.raises(AssertionError, match="99_tiny.ipynb") as info:
            globals()[failing](path)
        assert "cell" in str(info.value) or how in ("no objectives", "no prompt"), (
            f"{how}: the message names no cell: {info.value}")
        for other in TEACHING_CHECKS:
            if other != failing and how not in ("summary not last", "no check", "one exercise",
                                                "five exercises", "stray solution"):
                globals()[other](path)
