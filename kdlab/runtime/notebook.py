"""A notebook's parameters in, its results out: the two ends of every course notebook.

Taught in notebook 00.

Parameters. Every notebook has one cell tagged `parameters` holding only `name = literal`
assignments (the defaults); the next cell calls

    P = kdlab.check_params(globals(), rules={"epochs": (1, None), "dataset": ["synthetic", ...]})

papermill injects its `-p NAME VALUE` overrides in a cell of its own right after the
parameters cell. `check_params` reads both cells from the kernel's input history, so it knows
the declared names and types: an unknown name fails with the list of valid ones (and the
closest match), a value of the wrong type or outside its rule fails with a message naming it.
Rules: a (low, high) tuple bounds a number (None = unbounded); a list gives the allowed values.

Results. `save_results` writes one machine-readable JSON file per notebook run into the run
folder (`make run` points $KDLAB_RUN_DIR at it; interactive sessions write to
runs/interactive) and puts the same record into the cell's output metadata, so a committed
notebook carries its own results. The book's results page is generated from these records.
"""


from __future__ import annotations

import ast
import difflib
import json
import math
import os
import platform
import time
from pathlib import Path

from .files import run_dir, write_json_atomic

PAPERMILL_MARKER = "# Parameters\n"  # papermill's injected cell starts with exactly this
STARTED = {"time": time.time()}


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type or out of range."""


class NotebookFileError(ValueError):
    """A notebook file cannot be read as a notebook; the message names the file."""


def did_you_mean(name, valid, spell=repr) -> str:
    """" (did you mean 'x'?)" for the valid name closest to a mistyped `name`, or "".

    `spell` writes the match as the user would type it (the command line's `--batch-size`).
    """
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f" (did you mean {spell(close[0])}?)" if close else ""


def read_notebook(path) -> dict:
    """A notebook file (nbformat 4 JSON) as a dict with a list of cells; NotebookFileError
    naming the file if it cannot be read, is not JSON or is not shaped like a notebook."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
        raise NotebookFileError(f"{path} cannot be read as a notebook ({err}); restore it "
                                "(git checkout, or your own copy) or remove it") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        shape = (f"a JSON {type(nb).__name__}" if not isinstance(nb, dict)
                 else "an object without a list of cells")
        raise NotebookFileError(f"{path} is not a notebook: it holds {shape}, not an nbformat 4 "
                                "notebook (an object with a list of cells); restore it or remove it")
    return nb


def literal_assignments(source: str) -> dict | None:
    """{name: value} if `source` holds only `name = literal` assignments, else None.

    papermill writes a non-finite float as `float('nan')` / `float('inf')`; that spelling
    counts as a literal too, so one such value never hides the cell (and with it the
    unknown-name check) from check_params.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    values = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            return None
        try:
            values[node.targets[0].id] = _literal(node.value)
        except ValueError:
            return None
    return values if values else None


def _literal(node: ast.AST):
    """ast.literal_eval, plus papermill's float('nan'), float('inf'), float('-inf')."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).strip().lower().lstrip("+-") in ("nan", "inf", "infinity")):
        return float(node.args[0].value)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return ast.literal_eval(node)


def declared_parameters(history: list[str]) -> tuple[dict, dict]:
    """(defaults, injected) found in a kernel's input history (IPython's `In`).

    The defaults come from the latest cell made only of literal assignments that is not
    papermill's; `injected` from papermill's cell when it ran after that one.
    """
    injected: dict = {}
    for source in reversed(history):
        values = literal_assignments(source)
        if values is None:
            continue
        if source.startswith(PAPERMILL_MARKER):
            if not injected:
                injected = values
            continue
        return values, injected
    return {}, injected


def notebook_defaults(path) -> dict:
    """{name: default} of the `parameters` cell of a notebook file, parsed as check_params
    parses it (papermill's own inspection misreads comments that contain '=')."""
    for cell in read_notebook(path)["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return literal_assignments("".join(cell["source"])) or {}
    return {}


def _type_ok(default, value) -> bool:
    if default is None:
        return True
    if value is None or isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _wrong_items(default, value) -> list:
    """The items of a list parameter that match the type of no item of its default
    (`seeds = [0, 1]` takes integers, not 'a' or 1.5); [] for other parameters."""
    if not (isinstance(default, (list, tuple)) and default and isinstance(value, (list, tuple))):
        return []
    return [v for v in value if not any(_type_ok(d, v) for d in default)]


def _numbers(value) -> list:
    """The numbers a rule or the finiteness check applies to: the value, or a list's items."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate(values: dict, defaults: dict, injected: dict, rules: dict | None = None,
             may_be_empty=()) -> dict:
    """Check `values` against the declared `defaults` and the `rules`; return the parameters.
    A list parameter with a non-empty default must not be empty unless `may_be_empty` names it
    (notebooks 02 and 04: `soft_kinds = []` trains no soft-target students)."""
    unknown = sorted(set(injected) - set(defaults))
    if {"all", "notebooks"} & set(unknown):  # no notebook declares these names
        raise ParameterError(
            "this looks like a course parameter file (params/<name>.yaml, with `all:` and "
            "`notebooks:` sections) given to papermill with -f. Run it with "
            "`python -m kdlab.tools.run --params <name>` (or `make run PARAMS=<name>`), which gives "
            "each notebook its own values; or pass this notebook's values with papermill's -p NAME VALUE.")
    if unknown:
        lines = [f"unknown parameter {name!r}{did_you_mean(name, defaults)}" for name in unknown]
        valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        raise ParameterError("; ".join(lines) + f". Valid parameters of this notebook: {valid}")
    params = {name: values.get(name, default) for name, default in defaults.items()}
    for name, value in params.items():
        default = defaults[name]
        if not _type_ok(default, value):
            raise ParameterError(f"parameter {name!r} must be of type {type(default).__name__} "
                                 f"(default {default!r}), got {value!r} ({type(value).__name__})")
        wrong = _wrong_items(default, value)
        if wrong:
            kinds = " or ".join(sorted({type(d).__name__ for d in default}))
            raise ParameterError(f"parameter {name!r} must hold items of type {kinds} (default "
                                 f"{default!r}), got {value!r}: {wrong[0]!r} is a "
                                 f"{type(wrong[0]).__name__}. Give it like {default!r}")
        if any(isinstance(v, float) and not math.isfinite(v) for v in _numbers(value)):
            raise ParameterError(f"parameter {name!r} must be a finite number, got {value!r}")
        if isinstance(default, (list, tuple)) and default and not value and name not in may_be_empty:
            raise ParameterError(f"parameter {name!r} must not be empty (default {default!r})")
    for name, rule in (rules or {}).items():
        if name not in params:
            raise ParameterError(f"a rule names {name!r}, which is not a parameter of this notebook")
        value = params[name]
        if isinstance(rule, list):  # allowed values; for a list parameter, of each item
            bad = [v for v in _numbers(value) if v not in rule]
            if bad:
                raise ParameterError(f"parameter {name!r} must be one of {rule}"
                                     f"{' (each item)' if isinstance(value, (list, tuple)) else ''}, "
                                     f"got {bad[0]!r}{did_you_mean(bad[0], rule)}")
            continue
        low, high = rule
        for v in _numbers(value):  # a list parameter (seeds, shots): the rule holds for each item
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ParameterError(f"parameter {name!r} must hold numbers, got {value!r}")
            if (low is not None and v < low) or (high is not None and v > high):
                bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ParameterError(f"parameter {name!r} = {value!r} is out of range {bounds}")
    return params


LITERAL_TYPES = (bool, int, float, str, list, tuple, dict, type(None))


def literal_globals(namespace: dict) -> dict:
    """The user's globals holding plain literal values (IPython's own `In`/`Out`/_ names excluded)."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in ("In", "Out") and isinstance(v, LITERAL_TYPES)}


def check_params(namespace: dict, rules: dict | None = None, defaults: dict | None = None,
                 may_be_empty=()) -> dict:
    """Validate the notebook's parameters (see the module docstring) and return them as a dict.

    Outside a notebook, pass `defaults` explicitly. Also starts the clock that
    kdlab.runtime.notebook reports as the notebook's wall time.
    """
    injected: dict = {}
    if defaults is None:
        history = namespace.get("In") or []
        defaults, injected = declared_parameters(list(history)[:-1])  # [-1] is this very cell
        if not defaults and not injected:
            # Executed without input history (nbval does this): nothing was injected, so the
            # notebook's literal-valued globals are its parameters.
            defaults = literal_globals(namespace)
        if not defaults:
            raise ParameterError("no parameters cell found: it must run before this cell and "
                                 "hold only `name = literal` assignments")
    STARTED["time"] = time.time()
    params = validate(namespace, defaults, injected, rules, may_be_empty)
    changed = [name for name in params if params[name] != defaults[name]]
    origin = "changed: " + ", ".join(changed) if changed else "the notebook's defaults"
    show_in_notebook(f"Parameters ({origin}): " + ", ".join(f"{k}={v!r}" for k, v in params.items()),
                     {"params": params}, print_outside=False)
    return params


def choice_digest(exercise: str, answer: str) -> str:
    """The fingerprint a multiple-choice check compares with: the first 8 hex digits of
    sha256("<exercise>:<answer>"), so the check cell does not print the right letter."""
    import hashlib

    return hashlib.sha256(f"{exercise}:{answer.strip().lower()}".encode()).hexdigest()[:8]


def check_choice(exercise: str, answer, options: str, digest: str) -> None:
    """Check a multiple-choice answer (the conceptual questions of notebooks 02-06): `answer`
    must be one of the letters in `options`; it is right when its `choice_digest` is `digest`.
    Prints "<exercise>: correct"; otherwise fails with a hint to reread, not the answer."""
    if not isinstance(answer, str) or len(answer.strip()) != 1 or answer.strip().lower() not in options:
        raise AssertionError(f"{exercise}: answer with one letter of {', '.join(options)}; "
                             f"got {answer!r}")
    if choice_digest(exercise, answer) != digest:
        raise AssertionError(f"{exercise}: {answer.strip().lower()!r} is not it; reread the "
                             "question's section and try another letter")
    print(f"{exercise}: correct")


def show_in_notebook(text: str, record: dict, print_outside: bool = True) -> None:
    """Show `text` under the cell, with `record` as JSON in the output's metadata ("kdlab" key).

    The record is invisible in JupyterLab and the book; tests/test_hygiene.py reads it to check
    that a committed notebook's outputs come from its own default parameters, and kdlab.tools.book
    reads save_results' record for the results page. Outside IPython the text is printed
    (if `print_outside`).
    """
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        if print_outside:
            print(text)
        return
    record = json.loads(json.dumps(record, default=str))  # plain JSON: tuples become lists
    display({"text/plain": text}, metadata={"kdlab": record}, raw=True)


def environment(device=None) -> dict:
    """Device and library versions, recorded with every result."""
    from importlib.metadata import version

    import numpy as np
    import torch
    import torchvision

    from .device import training_threads

    device = torch.device(device) if device is not None else None
    name = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" \
        else platform.processor() or platform.machine()
    return {"device": str(device) if device is not None else "cpu", "device_name": name,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            # what fit trains on (kdlab.runtime.device.CPU_TRAINING_THREADS); None: torch's own
            "training_threads": training_threads(device or torch.device("cpu")),
            "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "kdlab": version("kdlab")}


def save_results(notebook: str, metrics: dict, params: dict, device=None) -> None:
    """Write <run folder>/<notebook>.json: metrics, parameters, device, versions, wall time."""
    record = {
        "notebook": notebook,
        "metrics": metrics,
        "params": params,
        "params_file": os.environ.get("KDLAB_PARAMS", "defaults"),
        "environment": environment(device),
        "wall_time_s": round(time.time() - STARTED["time"], 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = write_json_atomic(record, run_dir() / f"{notebook}.json")
    # The record also goes into the output's metadata: the committed notebook then carries its
    # own results (kdlab.tools.book's results page) and its parameters (tests/test_hygiene.py).
    show_in_notebook(f"Results written to {path.name} in the run folder.",
                     {"results": json.loads(path.read_text())})
