"""Models trained elsewhere, for full runs: torchvision's pretrained ImageNet weights and
checkpoints written by other code (torchdistill, DataParallel, plain state_dicts).

Used by notebook 03 and 04's ImageNet dissection (params/imagenet_dissect.yaml) and by
kdlab.experiments.han2023's full runs. Where Han et al.'s code silently dissects a randomly
initialised network when the checkpoint is missing, `load_model` raises an error.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..runtime.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from ..runtime.files import PROJECT_ROOT
from ..experiments.han2023 import KINDS
from ..models import get_model, torchvision_model


def load_model(arch: str, checkpoint: str | Path, num_classes: int = 1000,
               in_channels: int = 3) -> nn.Module:
    """A model to dissect: architecture `arch` with the weights in `checkpoint`.

    checkpoint: a kdlab cache file, a training checkpoint holding {'model': state_dict}
    (torchdistill, kdlab) or {'state_dict': ...}, a plain state_dict, or the word
    "torchvision" for torchvision's pretrained ImageNet weights. A relative path is relative
    to the project folder, as in the parameter files. A missing or mismatched file is an
    error, never a randomly initialised network.
    """
    if str(checkpoint) == "torchvision":
        return torchvision_model(arch, pretrained=True).eval()
    model = get_model(arch, num_classes, in_channels)
    path = PROJECT_ROOT / checkpoint  # an absolute checkpoint stays as it is
    state = read_checkpoint(path)  # a missing or unreadable file raises CheckpointError naming it
    if isinstance(state, dict) and "complete" in state and "model" in state:
        load_checkpoint(path, model)  # a kdlab checkpoint: must be a finished run
        return model.eval()
    if isinstance(state, dict):
        state = state.get("model", state.get("state_dict", state))
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not model weights")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel/DDP
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit {arch}: {err}") from err
    return model.eval()


def imagenet_models(arch: str, checkpoints: dict[str, list[str]]) -> dict[str, list]:
    """Notebook 04's full run: {kind: [(label, model), ...]} from checkpoint paths ("torchvision" = pretrained weights;
    relative paths are relative to the project folder)."""
    unknown = set(checkpoints) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)} in the checkpoints; use {KINDS}")
    return {kind: [(Path(p).stem, load_model(arch, p, num_classes=1000)) for p in paths]
            for kind, paths in checkpoints.items() if paths}
