"""The student edition (kdlab.tools.student, `make student`): every exercise solution replaced
by a stub that raises NotImplementedError, its check kept, solution and check outputs cleared.

1. On a tiny notebook built here: the stub replaces the solution, the check stays, the tags
   lose only `hide-input`, and a solution cell without an exercise heading is a clear error.
2. For every course notebook: its student edition runs up to its first exercise, whose stub
   then raises NotImplementedError and whose check cell then fails (a check that passes on a
   stub checks nothing). The student cells before that exercise are the instructor's (checked
   here), so nbval's run of the instructor notebook runs them, and the project's conftest.py
   runs the stub and the check in nbval's kernel just before the first solution: every
   notebook is executed once (tested end to end here on tiny notebooks).
"""

from __future__ import annotations

import itertools
import json

import nbformat
import pytest

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


# ----------------------------------------------------------------------------- the first exercise

def python_kernel(nb: dict):
    """A stand-in kernel that has run every cell of `nb` before its first solution: run(source)
    returns the name of the exception the code raised, or ""."""
    namespace: dict = {}

    def run(source: str) -> str:
        try:
            exec(source, namespace)
        except Exception as err:  # noqa: BLE001 - the name is the result
            return type(err).__name__
        return ""

    for cell in nb["cells"][:student.first_solution(nb)]:
        if cell["cell_type"] == "code":
            assert run(cell["source"]) == ""
    return run


def test_first_exercise_check_on_tiny_notebooks():
    good = tiny_notebook()
    student.check_first_exercise(good, python_kernel(good), "good.ipynb")
    # a check that cannot fail: `double` already exists before the exercise
    weak = tiny_notebook()
    weak["cells"][1]["source"] += "\ndouble = lambda v: 2 * v"
    with pytest.raises(student.StudentError, match="weak.ipynb: the check .* passed with the stub"):
        student.check_first_exercise(weak, python_kernel(weak), "weak.ipynb")
    unchecked = tiny_notebook()
    unchecked["cells"][4]["metadata"] = {}
    with pytest.raises(student.StudentError, match="is not tagged 'check'"):
        student.check_first_exercise(unchecked, python_kernel(unchecked), "unchecked.ipynb")
    none = tiny_notebook()
    del none["cells"][2:5]
    with pytest.raises(student.StudentError, match="none.ipynb has no exercise"):
        student.check_first_exercise(none, lambda source: "", "none.ipynb")


@pytest.mark.notebooks
def test_nbval_runs_the_first_exercise_as_a_student_would(tmp_path):
    """The project's conftest.py hook, end to end: nbval on a notebook whose check works
    passes; on one whose check passes with the stub in place, the first solution cell fails."""
    import shutil
    import subprocess
    import sys

    from kdlab.runtime.files import PROJECT_ROOT

    shutil.copy(PROJECT_ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    weak = tiny_notebook()
    weak["cells"][1]["source"] += "\ndouble = lambda v: 2 * v"
    for name, nb in (("good.ipynb", tiny_notebook()), ("weak.ipynb", weak)):
        (tmp_path / name).write_text(json.dumps(nb))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--nbval-lax", "--nbval-current-env", "good.ipynb", "weak.ipynb"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert "1 failed" in report, report
    assert "FAILED weak.ipynb::Cell 1" in report and "passed with the stub" in report, report


@pytest.mark.skipif(not NOTEBOOKS, reason="no committed notebooks in notebooks/ yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_notebook_is_the_instructors_up_to_its_first_exercise(path):
    """So nbval's run of the instructor notebook is the student's run up to the first
    exercise; conftest.py then runs that exercise's stub and check in the same kernel."""
    nb = json.loads(path.read_text())
    edition = student.student_notebook(nb, path.name)
    first = student.first_solution(edition)
    assert first > 0, f"{path.name} has no exercise: every notebook needs two to four"
    assert edition["cells"][:first] == nb["cells"][:first], (
        f"{path.name}: the student edition differs from the notebook before its first exercise")
    assert edition["cells"][first]["source"] == student.stub(1)
