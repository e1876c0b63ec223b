"""Where kdlab keeps data, cached checkpoints and run results.

Defaults sit inside the project checkout (all git-ignored); environment variables move them:
KDLAB_DATA (datasets), KDLAB_CACHE (trained models), KDLAB_RUN_DIR (results of this run).
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("KDLAB_DATA", PROJECT_ROOT / "data"))
CACHE_DIR = Path(os.environ.get("KDLAB_CACHE", PROJECT_ROOT / "cache"))


def run_dir() -> Path:
    """The folder this run's results go to: $KDLAB_RUN_DIR (set by `make run`) or runs/interactive."""
    return Path(os.environ.get("KDLAB_RUN_DIR", PROJECT_ROOT / "runs" / "interactive"))
