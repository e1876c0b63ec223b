"""The package's shape, read from its source: a core that reads in an afternoon, floors that
only look down, no import cycle.

kdlab has a core (kdlab/*.py: what the notebooks teach, one short module per concept) on top of
kdlab.runtime (files, devices, checkpoints, progress, parallel jobs, notebook parameters and
results), which imports nothing else of kdlab. Around the core: experiments (each paper's
experiments) and figures (plots and widgets) import only the core and runtime; scale (full
runs) also imports experiments; tools (the course's tooling) may import all.
Run this file to see the core's size: `pytest tests/test_layout.py -q -rP`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kdlab.runtime.files import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "kdlab"
CORE = sorted(PACKAGE.glob("*.py"))
# 3,800 lines: the core gained the claims file's reader, the soft-target students and the
# teacher-logit table (issue 22) with their docstrings; the code itself stays under 2,500 lines.
CORE_LINES, CORE_CODE_LINES, MODULE_LINES = 3800, 2500, 450
# what each floor may import, besides the core and itself
MAY_IMPORT = {"runtime": set(), "core": {"runtime"}, "experiments": {"core", "runtime"},
              "figures": {"core", "runtime"}, "scale": {"core", "runtime", "experiments"},
              "tools": {"core", "runtime", "experiments", "figures", "scale"}}


def floor(module: str) -> str:
    """'core' for kdlab and kdlab.<module>, else the subpackage: kdlab.scale.cli -> 'scale'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The kdlab modules a file imports, at module level or inside functions (names only:
    `from . import data` is kdlab.data). The deprecated aliases of kdlab.runtime.moved name their
    targets as strings and are not imports."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kdlab")}
        elif isinstance(node, ast.ImportFrom):
            base = (package[:len(package) - node.level + 1] if node.level else [])
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("kdlab"):
                continue
            for alias in node.names:  # `from . import data` imports a module, not a name
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
    return found - {module_name(path)}


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def code_lines(source: str) -> int:
    """Lines that hold code: not blank, not only a comment, not part of a docstring."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and i not in docstrings)


def test_the_core_reads_in_an_afternoon():
    sizes = {p.name: (len(p.read_text().splitlines()), code_lines(p.read_text())) for p in CORE}
    print("\n".join(f"{name:22s} {lines:4d} lines, {code:4d} of code" for name, (lines, code) in sizes.items()))
    total, code = (sum(s[i] for s in sizes.values()) for i in (0, 1))
    print(f"{'core':22s} {total:4d} lines, {code:4d} of code")
    assert total <= CORE_LINES and code <= CORE_CODE_LINES, (total, code)
    too_long = {name: lines for name, (lines, _) in sizes.items() if lines > MODULE_LINES}
    assert not too_long, f"core modules over {MODULE_LINES} lines: {too_long}"


def test_floors_only_import_downwards():
    upward = [(module, target) for module, targets in GRAPH.items() for target in targets
              if floor(target) not in {floor(module)} | MAY_IMPORT[floor(module)]]
    assert not upward, f"imports against the floors (module -> imported): {upward}"


def test_every_import_names_a_module_that_exists():
    # a relative import inside a function is only run when called: a moved module's stale
    # `from .synthetic import ...` would fail in a notebook, not at import time
    missing = [(module, target) for module, targets in GRAPH.items() for target in targets
               if target not in GRAPH]
    assert not missing, f"imports of modules that do not exist (module -> imported): {missing}"


def test_no_import_cycle():
    done, stack = set(), []

    def visit(module):
        if module in stack:
            pytest.fail("import cycle: " + " -> ".join(stack[stack.index(module):] + [module]))
        if module in done:
            return
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_the_checks_see_what_they_should():
    assert code_lines('"""doc\nstring"""\n\n# comment\nx = 1  # code\n') == 1
    assert floor("kdlab.scale.cli") == "scale" and floor("kdlab.train") == "core"
    assert "kdlab.runtime.checkpoints" in GRAPH["kdlab.train"] and "kdlab.data" in GRAPH["kdlab"]
    assert "kdlab.experiments.han2023" in GRAPH["kdlab.scale.pretrained"]
