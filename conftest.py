"""pytest hooks: the test pyramid's markers, and the course notebooks that nbval runs.

Markers (pyproject.toml lists them). A test file or test that is slow says so itself
(`pytestmark = pytest.mark.book`, `@pytest.mark.distributed`, ...); nbval's notebook cells are
marked `notebooks` here, and every test with none of these marks is a `unit` test: `make
test-fast` runs those (`pytest -m unit`), `make test` runs all.

The student edition (kdlab.tools.student) must run up to its first exercise, whose stub then
raises NotImplementedError and whose check then fails. Its cells before the first exercise are
the instructor notebook's own, so nbval running the instructor notebook runs them; just before
the first solution cell, this hook runs the stub and the check in nbval's kernel
(kdlab.tools.student.check_first_exercise). No notebook is executed twice, which keeps the CI
run of every notebook within its time budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdlab.tools.student import SOLUTION, check_first_exercise

STEP_TIMEOUT = 600  # seconds for the stub or the check (both fail within seconds)
SLOW_MARKERS = ("notebooks", "book", "browser", "distributed")


def pytest_collection_modifyitems(items):
    for item in items:
        if getattr(item, "cell", None) is not None:  # a notebook cell that nbval runs
            item.add_marker(pytest.mark.notebooks)
        elif not any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.unit)


def _run_in(kernel, source: str) -> str:
    """Run `source` in nbval's kernel; the name of the exception it raised, or ""."""
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    while True:  # nbval skips the iopub messages of this request (another parent id)
        msg = kernel.get_message(stream="shell", timeout=STEP_TIMEOUT)
        if msg["parent_header"].get("msg_id") == msg_id:
            content = msg["content"]
            return content.get("ename", "Error") if content["status"] == "error" else ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    cell = getattr(item, "cell", None)  # an nbval notebook cell
    if cell is None or SOLUTION not in cell.get("metadata", {}).get("tags", []):
        return
    notebook = item.parent
    if getattr(notebook, "kdlab_first_exercise_checked", False):
        return
    notebook.kdlab_first_exercise_checked = True
    path = Path(str(notebook.fspath))
    check_first_exercise(json.loads(path.read_text()), lambda src: _run_in(notebook.kernel, src),
                         path.name)
