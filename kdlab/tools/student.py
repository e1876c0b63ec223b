"""The student edition: `python -m kdlab.tools.student [--out student] [--only 01 02]`.

Neuromatch Academy publishes every tutorial twice: the instructor notebook, with the exercise
solutions in place, and a student notebook in which each solution is replaced by a stub the
learner fills in. This module writes the student edition of the course (`make student`): a
copy of every course notebook (notebooks/NN_name.ipynb) in which

- every code cell tagged `solution` holds a stub instead of its code:
      # Exercise N: write your solution here
      raise NotImplementedError("Exercise N: ...")
  where N comes from the `### Exercise N: <title>` heading of the markdown cell before it;
- the outputs of the solution cells and of the `check` cells (which assert that a solution is
  right) are cleared, so the answer does not show in a check's output either;
- every cell keeps its tags, less `hide-input` (the stub is there to be edited, not hidden).

Everything else stays as committed: the prose, the other code cells and their outputs. The
check cell after each stub stays too, so a learner runs it to test their answer. The student
notebooks run up to their first exercise and stop there with NotImplementedError until it is
solved, and the check after it fails on the stub (`check_first_exercise`). The test suite
checks both for every notebook without running any notebook twice: a student edition's cells
before its first exercise are the instructor's cells, so while nbval runs the instructor
notebook, the project's conftest.py runs the stub and the check in nbval's kernel just before
the first solution.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from ..files import PROJECT_ROOT

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
DEFAULT_OUT = PROJECT_ROOT / "student"
EXERCISE = re.compile(r"^### Exercise (\d+):[ \t]*(.*)$", re.MULTILINE)
SOLUTION, CHECK, HIDE = "solution", "check", "hide-input"


class StudentError(RuntimeError):
    """The student edition cannot be written: the message names the folder, notebook or cell."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def stub(number: int) -> str:
    """The code a learner finds in place of exercise `number`'s solution."""
    return (f"# Exercise {number}: write your solution here\n"
            f"raise NotImplementedError(\"Exercise {number}: write your solution, "
            "then run the check cell\")")


def exercise_headings(nb: dict) -> dict[int, int]:
    """{cell index: exercise number} of the markdown cells holding a `### Exercise N:` heading
    (the last one, if a cell holds several)."""
    found = {}
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "markdown":
            numbers = [int(m.group(1)) for m in EXERCISE.finditer(_source(cell))]
            if numbers:
                found[i] = numbers[-1]
    return found


def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """A copy of notebook `nb` (nbformat 4 as a dict) with its solutions replaced by stubs.

    Raises StudentError naming `name` and the cell when a solution cell is not a code cell,
    has no `### Exercise N:` heading before it, or shares its heading with another solution.
    """
    nb = copy.deepcopy(nb)
    headings = exercise_headings(nb)
    used: dict[int, int] = {}
    for i, cell in enumerate(nb.get("cells", [])):
        tags = _tags(cell)
        if SOLUTION in tags:
            if cell.get("cell_type") != "code":
                raise StudentError(f"{name}: cell {i} is tagged {SOLUTION!r} but is a "
                                   f"{cell.get('cell_type')} cell, not a code cell")
            before = [j for j in headings if j < i]
            if not before:
                raise StudentError(
                    f"{name}: the solution cell {i} ({_source(cell).strip()[:50]!r}) has no "
                    "`### Exercise N: <title>` markdown heading before it, so its stub cannot "
                    "say which exercise it is")
            heading = before[-1]
            if heading in used:
                raise StudentError(f"{name}: cells {used[heading]} and {i} are both solutions "
                                   f"of exercise {headings[heading]} (cell {heading}); an "
                                   "exercise has exactly one solution cell")
            used[heading] = i
            cell["source"] = stub(headings[heading])
        if cell.get("cell_type") == "code" and (SOLUTION in tags or CHECK in tags):
            cell["outputs"] = []
            cell["execution_count"] = None
        if HIDE in tags:
            cell["metadata"]["tags"] = [t for t in tags if t != HIDE]
    return nb


def first_solution(nb: dict) -> int:
    """Index of the first cell tagged `solution` (-1 when there is none)."""
    return next((i for i, c in enumerate(nb.get("cells", [])) if SOLUTION in _tags(c)), -1)


def check_first_exercise(nb: dict, execute, name: str = "notebook") -> None:
    """What a learner meets at the first exercise of `nb`'s student edition, run by `execute`
    in a kernel that has run every cell before it: the stub must raise NotImplementedError and
    the check cell after it must then fail (a check that passes on a stub checks nothing).

    execute(source) runs code in that kernel and returns the name of the exception it raised,
    or "" if none. Raises StudentError naming the notebook otherwise.
    """
    edition = student_notebook(nb, name)
    i = first_solution(edition)
    if i < 0:
        raise StudentError(f"{name} has no exercise (no code cell tagged {SOLUTION!r}): every "
                           "notebook needs two to four exercises")
    cells = edition["cells"]
    raised = execute(_source(cells[i]))
    if raised != "NotImplementedError":
        raise StudentError(f"{name}: the first exercise's stub raised {raised or 'nothing'}, "
                           "not NotImplementedError")
    if i + 1 >= len(cells) or CHECK not in _tags(cells[i + 1]):
        raise StudentError(f"{name}: the cell after the first solution (cell {i}) is not "
                           f"tagged {CHECK!r}")
    if not execute(_source(cells[i + 1])):
        raise StudentError(f"{name}: the check of the first exercise passed with the stub in "
                           "place of the solution: it cannot tell a wrong answer from a right one")


def course_notebooks(folder: Path = NOTEBOOK_DIR, only: list[str] | None = None) -> list[Path]:
    """The course notebooks (NN_name.ipynb) in `folder`, in order, optionally only those whose
    name starts with one of `only`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudentError(f"notebook folder {folder} does not exist")
    found = sorted(folder.glob(NOTEBOOK_GLOB))
    if not found:
        raise StudentError(f"no course notebooks (NN_name.ipynb) in {folder}")
    if only:
        chosen = [p for p in found if any(p.stem.startswith(o) for o in only)]
        if not chosen:
            raise StudentError(f"no notebook in {folder} matches {only}; "
                               f"notebooks: {[p.stem for p in found]}")
        found = chosen
    return found


def write_student_edition(out: Path = DEFAULT_OUT, notebooks_dir: Path = NOTEBOOK_DIR,
                          only: list[str] | None = None) -> list[Path]:
    """Write the student edition of the notebooks in `notebooks_dir` into `out`; return the
    paths written. Every notebook is converted before any is written, so a notebook with a
    bad exercise leaves `out` as it was."""
    sources = course_notebooks(notebooks_dir, only)
    editions = []
    for path in sources:
        try:
            nb = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise StudentError(f"{path} is not a valid notebook ({err})") from None
        editions.append((path.name, student_notebook(nb, path.name)))
    out = Path(out)
    if out.resolve() == Path(notebooks_dir).resolve():
        raise StudentError(f"the student edition would overwrite the notebooks in {out}; "
                           "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, nb in editions:
        target = out / name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.tools.student",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the student notebooks (default: student/)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR,
                        help="folder of the course notebooks (default: notebooks/)")
    parser.add_argument("--only", nargs="*", help="only notebooks whose names start with these")
    args = parser.parse_args(argv)
    try:
        written = write_student_edition(args.out, args.notebooks, args.only)
    except StudentError as err:
        print(f"kdlab.tools.student: {err}", file=sys.stderr)
        return 1
    for path in written:
        nb = json.loads(path.read_text())
        stubs = sum(SOLUTION in _tags(c) for c in nb["cells"])
        print(f"  {path.name}: {stubs} exercise{'s' if stubs != 1 else ''}")
    print(f"Student edition: {len(written)} notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
