"""One machine-readable results file per notebook run (JSON), written atomically.

Taught in notebook 00. `make run` points $KDLAB_RUN_DIR at its run folder; interactive
sessions write to runs/interactive. The book's results page is generated from these files.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .params import STARTED, show_in_notebook
from .paths import run_dir


def environment(device=None) -> dict:
    """Device and library versions, recorded with every result."""
    import torchvision

    from . import __version__

    device = torch.device(device) if device is not None else None
    name = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" \
        else platform.processor() or platform.machine()
    return {"device": str(device) if device is not None else "cpu", "device_name": name,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "kdlab": __version__}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json_atomic(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


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
    # own results (kdlab.book's results page) and its parameters (tests/test_hygiene.py).
    show_in_notebook(f"Results written to {path.name} in the run folder.",
                     {"results": json.loads(path.read_text())})
