"""Where kdlab keeps data, cached checkpoints and run results, and how it writes them.

Defaults sit inside the project checkout (all git-ignored); environment variables move them:
KDLAB_DATA (datasets), KDLAB_CACHE (trained models), KDLAB_RUN_DIR (results of this run).

Every file kdlab writes (checkpoints, frozen teacher outputs, results) goes through
`write_atomic`: it is written to a temporary file beside its destination and renamed over it,
so a crash or a full disk never leaves a half-written file under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("KDLAB_DATA", PROJECT_ROOT / "data"))
CACHE_DIR = Path(os.environ.get("KDLAB_CACHE", PROJECT_ROOT / "cache"))


def run_dir() -> Path:
    """The folder this run's results go to: $KDLAB_RUN_DIR (set by `make run`) or runs/interactive."""
    return Path(os.environ.get("KDLAB_RUN_DIR", PROJECT_ROOT / "runs" / "interactive"))


class WriteError(OSError):
    """A file could not be written (read-only folder, full disk...); nothing was left behind."""


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`.

    If anything fails (a full disk, a read-only folder, an interrupt), the temporary file is
    removed and the previous content of `path`, if any, is untouched. A failure of the file
    system is raised as WriteError naming `path` (torch.save's own message names neither).
    """
    path = Path(path)
    # unique per process and thread, so that concurrent writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError)) and not isinstance(err, WriteError):
            raise WriteError(f"could not write {path}: {err}. Check that its folder is writable and "
                             "the disk has room; no partial file was left behind.") from err
        raise
    return path


def write_json_atomic(obj, path: str | Path) -> Path:
    """`obj` as indented JSON (tensors, NumPy scalars and non-finite floats made plain)."""
    text = json.dumps(jsonable(obj), indent=2, sort_keys=True)
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def jsonable(value):
    """`value` with tensors and NumPy scalars turned into lists and numbers, NaN/inf into None."""
    import math

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # torch.Tensor, np.ndarray and NumPy scalars
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
