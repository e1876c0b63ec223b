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

A solution is found by its tag alone, so the tags are checked before anything is written: a
tag that looks like `solution` or `check` but is not (`solutions`, `Check`), a tag this course
does not use on a cell of an exercise, and an exercise heading without a solution cell are
errors naming the notebook and the cell; so is a file that is not a notebook. A learner's work
is never overwritten: a student notebook whose cells were edited since it was written (the
edition records a fingerprint of the cells it wrote) is kept as NN_name.yours-<time>.ipynb
beside the fresh copy, and the tool says so. An unchanged copy is simply rewritten (its
outputs are not kept: they come back when its cells run).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..runtime.files import PROJECT_ROOT, WriteError, write_atomic
from ..runtime.notebook import NotebookFileError, did_you_mean, read_notebook

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
DEFAULT_OUT = PROJECT_ROOT / "student"
EXERCISE = re.compile(r"^### Exercise (\d+):[ \t]*(.*)$", re.MULTILINE)
SOLUTION, CHECK, HIDE = "solution", "check", "hide-input"
# Tags a cell of an exercise may carry: the course's own, and Jupyter Book's, nbval's and
# papermill's. Any other tag there is taken for a mistyped one (a solution shipped by mistake).
KNOWN_TAGS = (SOLUTION, CHECK, HIDE, "hide-output", "hide-cell", "remove-input", "remove-output",
              "remove-cell", "parameters", "injected-parameters", "nbval-check-output",
              "nbval-ignore-output", "nbval-skip", "raises-exception", "skip-execution")
HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
FINGERPRINT_KEY = "kdlab_student_edition"  # notebook metadata: the cells as this tool wrote them


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
    has no `### Exercise N:` heading before it, or shares its heading with another solution;
    when an exercise has no solution cell; when a tag near an exercise is unknown or looks
    like `solution` or `check` without being it; and when `nb` is not shaped like a notebook.
    """
    check_shape(nb, name)
    check_tags(nb, name)
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
    unsolved = sorted(set(headings) - set(used))
    if unsolved:
        i = unsolved[0]
        raise StudentError(f"{name}: exercise {headings[i]} (heading in cell {i}) has no code cell "
                           f"tagged {SOLUTION!r}: a solution cell there without that tag would "
                           f"ship in the student edition. Tag it exactly {SOLUTION!r}")
    return nb


def check_shape(nb, name: str) -> None:
    """StudentError naming `name` (and the cell) unless `nb` is shaped like an nbformat 4
    notebook as far as this tool reads it: cells with a type, a source and a list of tags."""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise StudentError(f"{name} is not a notebook: expected an object with a list of cells, "
                           f"got {type(nb).__name__ if not isinstance(nb, dict) else 'no cells'}")
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise StudentError(f"{name}: cell {i} is not a notebook cell (no cell_type)")
        source, meta = cell.get("source", ""), cell.get("metadata", {})
        if not (isinstance(source, str) or isinstance(source, list)
                and all(isinstance(line, str) for line in source)):
            raise StudentError(f"{name}: cell {i} has a source that is not text")
        tags = meta.get("tags", []) if isinstance(meta, dict) else None
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise StudentError(f"{name}: cell {i} has metadata or tags that are not a mapping "
                               "and a list of strings")


def exercise_cells(nb: dict) -> set[int]:
    """Indices of the cells inside an exercise: after its `### Exercise N:` heading, up to
    the next markdown cell with a heading of its own."""
    cells, inside, found = nb["cells"], False, set()
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and HEADING.search(_source(cell)):
            inside = bool(EXERCISE.search(_source(cell)))
        elif inside:
            found.add(i)
    return found


def check_tags(nb: dict, name: str) -> None:
    """StudentError for a tag that looks like `solution` or `check` but is not (anywhere),
    or a tag this course does not use (inside an exercise): either may hide a solution."""
    inside = exercise_cells(nb)
    for i, cell in enumerate(nb["cells"]):
        for tag in _tags(cell):
            if tag in KNOWN_TAGS:
                continue
            near_miss = did_you_mean(tag, (SOLUTION, CHECK))
            if near_miss or i in inside:
                raise StudentError(
                    f"{name}: cell {i} is tagged {tag!r}{near_miss or did_you_mean(tag, KNOWN_TAGS)}, "
                    f"a tag the student edition does not know. A solution is recognised only by the "
                    f"exact tag {SOLUTION!r} (its check by {CHECK!r}); fix the tag, or remove it")


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


@dataclass
class Written:
    """One student notebook written: where, how many exercises, and where the learner's own
    edited copy was kept (None when there was none to keep)."""

    path: Path
    exercises: int
    kept: Path | None = None


def write_student_edition(out: Path = DEFAULT_OUT, notebooks_dir: Path = NOTEBOOK_DIR,
                          only: list[str] | None = None) -> list[Written]:
    """Write the student edition of the notebooks in `notebooks_dir` into `out`. Every
    notebook is converted before any is written, so a notebook with a bad exercise (a
    StudentError) or a file that is not a notebook (kdlab.runtime.notebook.NotebookFileError) leaves
    `out` as it was; a student notebook a learner edited is kept beside the fresh copy."""
    sources = course_notebooks(notebooks_dir, only)
    editions = [(path.name, student_notebook(read_notebook(path), str(path))) for path in sources]
    out = Path(out)
    if out.resolve() == Path(notebooks_dir).resolve():
        raise StudentError(f"the student edition would overwrite the notebooks in {out}; "
                           "choose another --out")
    written = []
    for name, nb in editions:
        target = out / name
        kept = keep_learners_copy(target, nb)
        _write(target, with_fingerprint(nb))
        written.append(Written(target, sum(SOLUTION in _tags(c) for c in nb["cells"]), kept))
    return written


def _write(target: Path, nb: dict) -> None:
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    try:
        write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except WriteError as err:
        raise StudentError(str(err)) from None


def fingerprint(nb: dict) -> str:
    """A hash of the cells' types and sources: what a learner changes when they work in it
    (running cells changes only outputs)."""
    cells = [[c.get("cell_type"), _source(c)] for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def with_fingerprint(nb: dict) -> dict:
    """`nb` with the fingerprint of its cells in its metadata, so that a later run can tell
    an untouched student copy from one a learner worked in."""
    nb = dict(nb, metadata=dict(nb.get("metadata", {})))
    nb["metadata"][FINGERPRINT_KEY] = {"cells_sha256": fingerprint(nb)}
    return nb


def edited_by_learner(path: Path, fresh: dict) -> bool:
    """True unless `path` holds the cells this tool wrote there, as its fingerprint records,
    or the cells of the `fresh` edition. An unreadable file counts as edited: it may hold work."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        recorded = nb.get("metadata", {}).get(FINGERPRINT_KEY, {}).get("cells_sha256")
        return fingerprint(nb) not in (recorded, fingerprint(fresh))
    except (OSError, ValueError, AttributeError, TypeError):
        return True


def keep_learners_copy(target: Path, fresh: dict) -> Path | None:
    """If `target` is a student notebook a learner edited, copy it to a new file beside it
    (never over an existing one) and return that file's path; else None."""
    if not target.is_file() or not edited_by_learner(target, fresh):
        return None
    stamp, content = time.strftime("%Y%m%d-%H%M%S"), target.read_bytes()
    for n in itertools.count(1):
        kept = target.with_name(f"{target.stem}.yours-{stamp}{f'-{n}' if n > 1 else ''}.ipynb")
        try:
            with open(kept, "xb") as f:  # "x": fails if the file exists, so never overwrites
                f.write(content)
            return kept
        except FileExistsError:
            continue
        except OSError as err:
            raise StudentError(f"{target} holds your edits and could not be copied to {kept} "
                               f"({err}); it was left as it is. Move it away, then rerun") from None


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
    except (StudentError, NotebookFileError) as err:
        print(f"kdlab.tools.student: {err}", file=sys.stderr)
        return 1
    for w in written:
        print(f"  {w.path.name}: {w.exercises} exercise{'s' if w.exercises != 1 else ''}")
        if w.kept:
            print(f"    it held your edits: they are kept in {w.kept}")
    print(f"Student edition: {len(written)} notebooks in {args.out}")
    kept = [w.kept.name for w in written if w.kept]
    if kept:
        print(f"Your edited notebooks were kept, not overwritten: {', '.join(kept)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
