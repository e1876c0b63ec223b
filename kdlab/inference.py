"""Running a trained model over many images: its layers, their outputs, batched passes.

Taught in notebook 03 (a layer's activation maps, the first step of network dissection) and
used wherever a finished model is run: predictions and metrics (notebooks 01, 02),
penultimate features (02), dissection (03, 04), explanations and frozen teachers (05, 06).

    with evaluation(model) as net, capture(find_layer(net, "layer3")) as seen:
        for x in batches(net, images, 256):
            net(x)
            maps.append(seen.value.cpu())

`evaluation` puts the model in eval mode and restores its training mode afterwards, and
`capture` removes its hook afterwards, both even when the block raises. `batches` hands out
consecutive slices of the images on the model's device, uint8 images as floats in [0, 1]
(what every kdlab model takes). Gradients are the caller's choice: predictions run under
torch.inference_mode(), explanations need them.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def _module(model) -> nn.Module:
    """The nn.Module of a kdlab.train.TrainedModel, or `model` itself."""
    if isinstance(model, (str, Path)):
        raise TypeError("pass a model, not a path: use kdlab.scale.pretrained.load_model(arch, checkpoint)")
    inner = getattr(model, "model", None)  # duck-typed: kdlab.train may use this module
    return inner if not isinstance(model, nn.Module) and isinstance(inner, nn.Module) else model


def unwrap(model) -> nn.Module:
    """The network itself, behind a TrainedModel and torch.compile's, DataParallel's and
    DistributedDataParallel's wrappers. Hooks and layer names belong to it; the forward pass
    may still run through the wrapper."""
    model = _module(model)
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile
        if inner is None and isinstance(model, _WRAPPERS):
            inner = model.module
        if inner is None:
            return model
        model = inner


def find_layer(model, name: str) -> nn.Module:
    """The submodule called `name` ("layer3", "layer3.0.conv1"); an error listing every layer
    name if there is none."""
    modules = dict(unwrap(model).named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        raise KeyError(f"model {type(unwrap(model)).__name__} has no layer {name!r}. Its layers: "
                       + ", ".join(names))
    return modules[name]


def device_of(model) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    first = next(unwrap(model).parameters(), None)
    return first.device if first is not None else torch.device("cpu")


class Captured:
    """What `capture` yields: `value`, the tensor seen in the latest forward pass."""

    value: torch.Tensor | None = None


@contextmanager
def capture(module: nn.Module, input: bool = False, leaf: bool = False) -> Iterator[Captured]:
    """Keep `module`'s output (input=True: its first input) while the block runs.

    leaf=True (explanations): an output that needs no gradient, such as a frozen teacher's,
    is replaced by a copy that is a leaf of the autograd graph and requires one; the forward
    pass continues from it, so gradients with respect to the output always exist, and the
    backward pass stops there.
    """
    seen = Captured()

    def keep_input(_module, inputs):
        seen.value = inputs[0]

    def keep_output(_module, _inputs, output):
        if leaf and not output.requires_grad:
            output = output.detach().requires_grad_(True)
        seen.value = output
        return output

    handle = (module.register_forward_pre_hook(keep_input) if input
              else module.register_forward_hook(keep_output))
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def evaluation(model) -> Iterator[nn.Module]:
    """The model (a TrainedModel's module) in eval mode while the block runs; its training
    mode is restored afterwards."""
    net = _module(model)
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def as_input(images: torch.Tensor, device) -> torch.Tensor:
    """`images` on `device`, uint8 images as floats in [0, 1]; float images as they are."""
    x = images.to(device)
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def batches(model, images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of `images` (N, C, H, W), each `as_input` on the model's device."""
    device = device_of(model)
    for start in range(0, len(images), batch_size):
        yield as_input(images[start:start + batch_size], device)
