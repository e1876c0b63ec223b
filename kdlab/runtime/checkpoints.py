"""Checkpoint files: their keys, atomic writing, and reading them back with clear errors.

Taught in notebook 01 with kdlab.train.load_or_train, the cache built on these: a checkpoint
carries the key of the configuration it was trained with, and loading one of another
configuration, a damaged file or a missing one is a CheckpointError naming the file, never a
model left with random weights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from .files import write_atomic


def config_key(*parts) -> str:
    """A short, stable hash of JSON-able configuration parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_signature(model: nn.Module) -> list:
    """Parameter and buffer names with shapes: what a checkpoint must match to load."""
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def weights_key(model: nn.Module) -> str:
    """A hash of a model's weights (identifies a teacher that did not come from the cache)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def save_atomic(obj, path: str | Path) -> None:
    """torch.save through kdlab.runtime.files.write_atomic: a crash never leaves a half-written file."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, incomplete or belongs to another configuration."""


def read_checkpoint(path: str | Path):
    """torch.load of `path` on the CPU; a damaged or foreign file is a CheckpointError naming it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; refusing to continue with "
                              "randomly initialised weights. Train the model first or fix the path.")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated zip, an empty file, text, a pickle of something else
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}): it is "
            f"damaged, truncated or not a torch checkpoint. Remove it (rm '{path}') and train "
            "again; a cached model is retrained automatically once it is removed.") from err


def load_checkpoint(path: str | Path, model: nn.Module, expected_key: str | None = None,
                    require_complete: bool = True) -> dict:
    """Load weights into `model`; an error, never random weights, if anything does not match."""
    state = read_checkpoint(path)
    if not (isinstance(state, dict) and isinstance(state.get("model"), dict) and "key" in state):
        plain = isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
        raise CheckpointError(
            f"{path} is not a kdlab checkpoint (a dict with 'model', 'key', 'epoch' and 'complete', "
            "written by kdlab.train.fit)" + (": it holds a plain state_dict. Load it with "
            "model.load_state_dict(torch.load(path)), or with kdlab.scale.pretrained.load_model" if plain else ""))
    if expected_key is not None and state.get("key") != expected_key:
        raise CheckpointError(f"checkpoint {path} was written for configuration {state.get('key')}, "
                              f"not {expected_key}; delete it or choose another path")
    if require_complete and not state.get("complete", False):
        raise CheckpointError(f"checkpoint {path} is from an unfinished run "
                              f"({state.get('epoch', 0)} epochs done); resume training first")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit this architecture: {err}") from err
    return state
