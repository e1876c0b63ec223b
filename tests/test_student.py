"""The student edition (kdlab.tools.student, `make student`): every exercise solution replaced
by a stub that raises NotImplementedError, its check kept, solution and check outputs cleared.

1. On a tiny notebook built here: the stub replaces the solution, the check stays, the tags
   lose only `hide-input`, and a solution cell without an exercise heading is a clear error.
2. For every course notebook: its student edition runs, in a fresh kernel from the notebooks
   folder (as `make run` does, with the project's model cache, so cached models are loaded,
   never trained), up to its first exercise, whose stub then raises NotImplementedError and
   whose check cell then fails (a check that passes on a stub checks nothing). Only the cells
   up to that exercise run; nbval runs the full notebooks with their solutions.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from kdlab.tools import student
from kdlab.tools.run import NOTEBOOK_DIR

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob(student.NOTEBOOK_GLOB))
SOLUTION_CODE = "def double(x):\n    return 2 * x\n"
_ids = itertools.count()


def _md(source: str) -> dict:
    return {"cell_type": "markdown", "id": f"md{next(_ids)}", "metadata": {}, "source": source}


def _code(source: str, tags=(), outputs=None, count=None) -> dict:
    meta = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "id": f"code{next(_ids)}", "metadata": meta, "source": source,
            "execution_count": count, "outputs": outputs or []}


def _stdout(text: str) -> list[dict]:
    return [{"output_type": "stream", "name": "stdout", "text": text}]


def tiny_notebook() -> dict:
    """A title, a setup cell with an output, and one exercise: heading, solution, check."""
    cells = [
        _md("# Tiny\n\nA notebook with one exercise."),
        _code("x = 21\nprint(x)", outputs=_stdout("21\n"), count=1),
        _md("### Exercise 1: double it\n\nDefine `double(x)` returning twice `x`."),
        _code("# Solution to exercise 1\n" + SOLUTION_CODE, tags=["solution", "hide-input"],
              count=2),
        _code("assert double(x) == 42\nprint('Exercise 1: correct')", tags=["check"],
              outputs=_stdout("Exercise 1: correct\n"), count=3),
        _md("## Summary\n\nDone."),
    ]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}}}


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# ----------------------------------------------------------------------------- the conversion

def test_stub_replaces_the_solution_and_the_check_stays():
    original = tiny_notebook()
    kept = json.dumps(original)
    out = student.student_notebook(original, "tiny.ipynb")
    assert json.dumps(original) == kept, "the instructor notebook was modified"
    cells = out["cells"]
    assert len(cells) == len(original["cells"])
    solution, check = cells[3], cells[4]
    assert solution["source"] == student.stub(1)
    assert solution["source"].splitlines()[0] == "# Exercise 1: write your solution here"
    assert 'raise NotImplementedError("Exercise 1:' in solution["source"]
    assert "return 2 * x" not in json.dumps(out), "the solution's code is still in the notebook"
    assert _tags(solution) == ["solution"], "tags are kept, less hide-input"
    assert solution["outputs"] == [] and solution["execution_count"] is None
    assert check["source"] == original["cells"][4]["source"] and _tags(check) == ["check"]
    assert check["outputs"] == [] and check["execution_count"] is None, "the check's output stays"
    assert cells[1] == original["cells"][1], "cells outside the exercises change"
    assert [c["source"] for c in cells if c["cell_type"] == "markdown"] == [
        c["source"] for c in original["cells"] if c["cell_type"] == "markdown"]
    # the stub is valid Python that fails with the exercise's number
    with pytest.raises(NotImplementedError, match="Exercise 1"):
        exec(compile(solution["source"], "stub", "exec"), {})


def test_exercise_numbers_come_from_the_preceding_heading():
    nb = tiny_notebook()
    nb["cells"] += [_md("Some prose.\n\n### Exercise 2: triple it\n\nDefine `triple`."),
                    _md("A hint in its own cell."),
                    _code("# Solution to exercise 2\ndef triple(x):\n    return 3 * x\n",
                          tags=["hide-input", "solution"]),
                    _code("assert triple(1) == 3", tags=["check"])]
    cells = student.student_notebook(nb)["cells"]
    stubs = [c["source"] for c in cells if "solution" in _tags(c)]
    assert stubs == [student.stub(1), student.stub(2)]


def test_solution_without_exercise_heading_is_a_clear_error():
    nb = tiny_notebook()
    nb["cells"].insert(1, _code("secret = 1", tags=["solution", "hide-input"]))
    with pytest.raises(student.StudentError, match=r"tiny\.ipynb: the solution cell 1 .*"
                                                   r"no `### Exercise N: <title>` markdown heading"):
        student.student_notebook(nb, "tiny.ipynb")


def test_two_solutions_for_one_exercise_is_an_error():
    nb = tiny_notebook()
    nb["cells"].insert(4, _code("# more solution", tags=["solution"]))
    with pytest.raises(student.StudentError, match="cells 3 and 4 are both solutions of exercise 1"):
        student.student_notebook(nb, "tiny.ipynb")


def test_writes_the_edition_and_reports_bad_folders(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    (src / "01_tiny.ipynb").write_text(json.dumps(tiny_notebook()))
    (src / "notes.ipynb").write_text("{}")  # not a course notebook: ignored
    out = tmp_path / "student"
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_tiny.ipynb"]
    written = nbformat.read(out / "01_tiny.ipynb", as_version=4)  # a valid notebook
    nbformat.validate(written)
    assert written.cells[3].source == student.stub(1)
    assert "01_tiny.ipynb: 1 exercise" in capsys.readouterr().out

    assert student.main(["--notebooks", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "missing does not exist" in capsys.readouterr().err
    with pytest.raises(student.StudentError, match="no course notebooks"):
        student.write_student_edition(out, tmp_path)  # folders only, no NN_name.ipynb
    with pytest.raises(student.StudentError, match="would overwrite"):
        student.write_student_edition(src, src)
    with pytest.raises(student.StudentError, match="matches"):
        student.write_student_edition(out, src, only=["07"])
    bad = tiny_notebook()
    bad["cells"][2] = _md("## Not an exercise heading")
    (src / "02_bad.ipynb").write_text(json.dumps(bad))
    (out / "01_tiny.ipynb").unlink()
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 1
    assert "02_bad.ipynb: the solution cell 3" in capsys.readouterr().err
    assert not (out / "01_tiny.ipynb").exists(), "a failed conversion wrote some notebooks"


# ----------------------------------------------------------------------------- execution

def first_exercise(nb) -> int:
    """Index of the first cell tagged `solution` (the first stub in a student edition)."""
    return next((i for i, c in enumerate(nb.cells) if "solution" in _tags(c)), -1)


def run_to_first_exercise(path: Path, cwd: Path, name: str) -> tuple[str, str]:
    """Execute a student notebook in a fresh python3 kernel up to its first stub; run the stub
    and the check after it. Fails naming the cell if a cell before the stub raises. Returns
    (the stub's error name, the check's error name or '' if the check passed)."""
    nb = nbformat.read(path, as_version=4)
    stub_index = first_exercise(nb)
    assert stub_index >= 0, (f"{name} has no exercise (no code cell tagged 'solution'): every "
                             "notebook needs two to four exercises")
    client = NotebookClient(nb, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(cwd)}})
    with client.setup_kernel():
        for i in range(stub_index):
            try:
                client.execute_cell(nb.cells[i], i)
            except CellExecutionError as err:
                first = nb.cells[i].source.strip().splitlines()[0][:60]
                pytest.fail(f"{name}: student edition failed before its first exercise, at cell "
                            f"{i} ({first!r}): {err.ename}: {err.evalue}")
        with pytest.raises(CellExecutionError) as stub:
            client.execute_cell(nb.cells[stub_index], stub_index)
        check_error = ""
        check = stub_index + 1
        if check < len(nb.cells) and "check" in _tags(nb.cells[check]):
            try:
                client.execute_cell(nb.cells[check], check)
            except CellExecutionError as err:
                check_error = err.ename
        else:
            pytest.fail(f"{name}: the cell after the first solution (cell {stub_index}) is not "
                        "tagged 'check'")
    return stub.value.ename, check_error


def test_execution_helper_on_tiny_notebooks(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()

    def edition(nb: dict, name: str) -> Path:
        (src / name).write_text(json.dumps(nb))
        [path] = student.write_student_edition(tmp_path / "student", src, only=[name[:-6]])
        return path

    good = edition(tiny_notebook(), "01_good.ipynb")
    assert run_to_first_exercise(good, src, good.name) == ("NotImplementedError", "NameError")
    # a check that cannot fail: `double` already exists before the exercise
    weak = tiny_notebook()
    weak["cells"][1]["source"] += "\ndouble = lambda v: 2 * v"
    weak = edition(weak, "02_weak.ipynb")
    assert run_to_first_exercise(weak, src, weak.name) == ("NotImplementedError", "")
    broken = tiny_notebook()
    broken["cells"][1]["source"] = "1 / 0"
    broken = edition(broken, "03_broken.ipynb")
    with pytest.raises(pytest.fail.Exception, match=r"03_broken.ipynb: .*at cell 1 .*ZeroDivision"):
        run_to_first_exercise(broken, src, broken.name)
    none = tiny_notebook()
    del none["cells"][2:5]
    none = edition(none, "04_none.ipynb")
    with pytest.raises(AssertionError, match="04_none.ipynb has no exercise"):
        run_to_first_exercise(none, src, none.name)


@pytest.mark.skipif(not NOTEBOOKS, reason="no committed notebooks in notebooks/ yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_notebook_runs_to_its_first_exercise(path, tmp_path, monkeypatch):
    # results go to a scratch run folder, never runs/interactive; the model cache is the
    # project's default (kdlab.files.CACHE_DIR), so the notebook loads its models from it
    monkeypatch.setenv("KDLAB_RUN_DIR", str(tmp_path / "run"))
    t0 = time.perf_counter()
    [edition] = student.write_student_edition(tmp_path / "student", NOTEBOOK_DIR, only=[path.stem])
    ename, check_error = run_to_first_exercise(edition, NOTEBOOK_DIR, path.name)
    assert ename == "NotImplementedError", (
        f"{path.name}: the first exercise's stub raised {ename}, not NotImplementedError")
    assert check_error, (f"{path.name}: the check of exercise 1 passed with the stub in place "
                         "of the solution: it cannot tell a wrong answer from a right one")
    print(f"{path.name}: ran to its first exercise in {time.perf_counter() - t0:.0f} s")
