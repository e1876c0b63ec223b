"""Names that moved: an older notebook (or a learner's student copy) that still calls a function
by its old place gets it, with a DeprecationWarning that names the new place.

A module lists what left it and puts the returned function at module level, as Python's
module `__getattr__` (PEP 562), which is asked only for names the module does not define:

    __getattr__ = moved_names(__name__, {"figure_picker": "kdlab.figures.widgets"})
"""

from __future__ import annotations

import importlib
import warnings


def moved_names(module: str, moved: dict[str, str]):
    """A module `__getattr__` that forwards each name in `moved` to the module it moved to
    (a module name; `"pkg.mod:new_name"` where it was renamed; `"pkg.mod:*"`: the module itself)."""

    def __getattr__(name: str):
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, _, new_name = moved[name].partition(":")
        new_name = new_name or name
        new_place = target if new_name == "*" else f"{target}.{new_name}"
        warnings.warn(f"{module}.{name} moved to {new_place}; this alias will be removed",
                      DeprecationWarning, stacklevel=2)
        place = importlib.import_module(target)
        return place if new_name == "*" else getattr(place, new_name)

    return __getattr__
