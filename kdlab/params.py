"""Checking a notebook's papermill parameters, so that a typo fails in the first cell.

Taught in notebook 00. Every notebook has one cell tagged `parameters` holding only
`name = literal` assignments (the defaults); the next cell calls

    P = kdlab.check_params(globals(), rules={"epochs": (1, None), "dataset": ["synthetic", ...]})

papermill injects its `-p NAME VALUE` overrides in a cell of its own right after the
parameters cell. `check_params` reads both cells from the kernel's input history, so it knows
the declared names and types: an unknown name fails with the list of valid ones (and the
closest match), a value of the wrong type or outside its rule fails with a message naming it.
Rules: a (low, high) tuple bounds a number (None = unbounded); a list gives the allowed values.
"""

from __future__ import annotations

import ast
import difflib
import time

PAPERMILL_MARKER = "# Parameters\n"  # papermill's injected cell starts with exactly this
STARTED = {"time": time.time()}


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type or out of range."""


def literal_assignments(source: str) -> dict | None:
    """{name: value} if `source` holds only `name = literal` assignments, else None."""
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
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            return None
    return values if values else None


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


def _type_ok(default, value) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def validate(values: dict, defaults: dict, injected: dict, rules: dict | None = None) -> dict:
    """Check `values` against the declared `defaults` and the `rules`; return the parameters."""
    unknown = sorted(set(injected) - set(defaults))
    if unknown:
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(name, defaults, n=1)
            lines.append(f"unknown parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        raise ParameterError("; ".join(lines) + f". Valid parameters of this notebook: {valid}")
    params = {name: values.get(name, default) for name, default in defaults.items()}
    for name, value in params.items():
        if not _type_ok(defaults[name], value):
            raise ParameterError(f"parameter {name!r} must be of type {type(defaults[name]).__name__} "
                                 f"(default {defaults[name]!r}), got {value!r} ({type(value).__name__})")
    for name, rule in (rules or {}).items():
        if name not in params:
            raise ParameterError(f"a rule names {name!r}, which is not a parameter of this notebook")
        value = params[name]
        if isinstance(rule, list):
            if value not in rule:
                raise ParameterError(f"parameter {name!r} must be one of {rule}, got {value!r}")
        else:
            low, high = rule
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
                raise ParameterError(f"parameter {name!r} = {value!r} is out of range {bounds}")
    return params


LITERAL_TYPES = (bool, int, float, str, list, tuple, dict, type(None))


def literal_globals(namespace: dict) -> dict:
    """The user's globals holding plain literal values (IPython's own `In`/`Out`/_ names excluded)."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in ("In", "Out") and isinstance(v, LITERAL_TYPES)}


def check_params(namespace: dict, rules: dict | None = None, defaults: dict | None = None) -> dict:
    """Validate the notebook's parameters (see the module docstring) and return them as a dict.

    Outside a notebook, pass `defaults` explicitly. Also starts the clock that
    kdlab.results reports as the notebook's wall time.
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
    params = validate(namespace, defaults, injected, rules)
    changed = [name for name in params if params[name] != defaults[name]]
    origin = "changed: " + ", ".join(changed) if changed else "the notebook's defaults"
    show_in_notebook(f"Parameters ({origin}): " + ", ".join(f"{k}={v!r}" for k, v in params.items()),
                     {"params": params}, print_outside=False)
    return params


def show_in_notebook(text: str, record: dict, print_outside: bool = True) -> None:
    """Show `text` under the cell, with `record` as JSON in the output's metadata ("kdlab" key).

    The record is invisible in JupyterLab and the book; tests/test_hygiene.py reads it to check
    that a committed notebook's outputs come from its own default parameters, and kdlab.book
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
    import json
    record = json.loads(json.dumps(record, default=str))  # plain JSON: tuples become lists
    display({"text/plain": text}, metadata={"kdlab": record}, raw=True)
