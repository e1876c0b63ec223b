"""Explanations of a classifier's decision: GradCAM, B-cos contributions, input×gradient.

Taught in notebook 05 (e²KD) and notebook 06 (right features and interpretability); used
by notebook 04's ground-truth saliency scores. e²KD (Parchami-Araghi et al., ECCV 2024)
trains the student with L = L_KD + λ(1 − cos(E(T,x,ŷ_T), E(S,x,ŷ_T))): the explanations E of
teacher T and student S, both for the teacher's top-1 class ŷ_T.

`explain(model, images, classes, method=...)` returns one (H, W) map per image, for figures
and metrics. `explanation_pass(model, x, classes, method=..., create_graph=...)` is what the
e²KD loss uses: one forward pass that returns the logits *and* the explanation of the chosen
classes, differentiable with respect to the model's parameters when `create_graph=True`
(the student's side of the loss). Methods:

- "gradcam" (Selvaraju et al.): A = output of a convolutional stage (`layer`, default the
  last stage: layer4 or layer3), weights w_k = spatial mean of ∂logit/∂A_k,
  map = ReLU(Σ_k w_k A_k), at the stage's resolution (upsampled to the image for display).
  Written by hand because GradCAM libraries detach the map; here it stays in the graph.
- "bcos" (Böhle et al.): B-cos networks are dynamic-linear, logit = W(x)ᵀx. W(x) is the
  gradient of the logit w.r.t. the 6-channel input [r, g, b, 1-r, 1-g, 1-b] with the
  dynamic scalings detached (the bcos package's `explanation_mode`). The loss compares
  W(x) itself (as the paper's released code does); the displayed map is the contribution
  map Σ_channels x·W(x). Needs a B-cos network (kdlab.bcos, which owns this method's code).
- "input_x_gradient": x·∂logit/∂x for any model (summed over channels for display).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from . import bcos
from .data import ImageSet
from .inference import as_input, batches, capture, device_of, evaluation, find_layer, unwrap
from .runtime.moved import moved_names

METHODS = ("gradcam", "bcos", "input_x_gradient")
_LAYER_CANDIDATES = ("layer4", "layer3", "net.layer4", "net.layer3")

__getattr__ = moved_names(__name__, {"is_bcos_model": "kdlab.bcos"})


def default_layer(model: nn.Module) -> str:
    """The last convolutional stage: layer4 (ImageNet ResNets) or layer3 (CIFAR ResNets)."""
    base = unwrap(model)
    names = dict(base.named_modules())
    for name in _LAYER_CANDIDATES:
        if name in names:
            return name
    raise ValueError(f"{type(base).__name__} has none of the layers {_LAYER_CANDIDATES}; "
                     "pass layer='<name of the last convolutional stage>' for GradCAM")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose one of {METHODS}")


def _classes_tensor(classes, logits: torch.Tensor) -> torch.Tensor:
    if classes is None:
        return logits.argmax(1)
    classes = torch.as_tensor(classes, device=logits.device).long()
    if classes.dim() == 0:
        classes = classes.expand(len(logits))
    if classes.shape != (len(logits),):
        raise ValueError(f"classes must hold one class per image ({len(logits)}), got shape "
                         f"{tuple(classes.shape)}")
    if (classes < 0).any() or (classes >= logits.shape[1]).any():
        raise ValueError(f"classes must lie in [0, {logits.shape[1]}), got {classes.tolist()[:8]}...")
    return classes


def _wide(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 (autocast) to float32; float32 and float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _selected(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    # The sum of one logit per image: its gradient holds every image's own gradient,
    # because images in a batch do not interact in eval mode (and BatchNorm's coupling in
    # train mode is part of what the student is trained with anyway).
    return _wide(logits.gather(1, classes[:, None])).sum()


def explanation_pass(model: nn.Module, x: torch.Tensor, classes=None, method: str = "gradcam",
                     layer: str | None = None, create_graph: bool = False,
                     size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: (logits, explanation maps of `classes`) for a batch of [0, 1] images.

    classes: one class per image, or None for each image's own top-1 class.
    create_graph: keep the explanation differentiable w.r.t. the model's parameters (the
        student in e²KD); otherwise logits and maps come back detached.
    size: resize GradCAM maps bilinearly to this (H, W) (the loss compares maps at the
        image's size, as the paper's code does; stored frozen maps have that size too).
    Returns maps of shape (N, C, h, w): GradCAM (N, 1, h, w); B-cos W(x) (N, 6, H, W);
    input×gradient (N, C, H, W). Works with a teacher whose parameters do not require
    gradients: the graph then starts at the explained layer (or the input).
    """
    _check_method(method)
    if torch.is_inference_mode_enabled():
        raise RuntimeError("explanations need gradients; call outside torch.inference_mode()")
    base = unwrap(model)  # hooks go on its layers; the forward pass runs through `model`
    with torch.enable_grad():
        if method == "gradcam":
            layer = layer or default_layer(base)
            with capture(find_layer(base, layer), leaf=True) as seen:
                logits = model(x)
            if seen.value is None:
                raise RuntimeError(f"layer {layer!r} was not used in the forward pass")
            acts = seen.value
            classes = _classes_tensor(classes, logits)
            (grads,) = torch.autograd.grad(_selected(logits, classes), acts, create_graph=create_graph)
            weights = _wide(grads).mean((2, 3), keepdim=True)
            maps = F.relu((weights * _wide(acts)).sum(1, keepdim=True))
            if size is not None and tuple(maps.shape[-2:]) != tuple(size):
                maps = F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)
        elif method == "bcos":  # W(x): the gradient w.r.t. the 6-channel encoding (kdlab.bcos)
            logits, x6 = bcos.encoded_forward(model, x)
            classes = _classes_tensor(classes, logits)
            (maps,) = torch.autograd.grad(_selected(logits, classes), x6, create_graph=create_graph)
            maps = _wide(maps)
        else:  # input_x_gradient
            xg = x.detach().requires_grad_(True)
            logits = model(xg)
            classes = _classes_tensor(classes, logits)
            (grads,) = torch.autograd.grad(_selected(logits, classes), xg, create_graph=create_graph)
            maps = _wide(xg) * _wide(grads)
    if not create_graph:
        logits, maps = logits.detach(), maps.detach()
    return logits, maps


def display_map(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, method: str) -> torch.Tensor:
    """(N, H, W) maps from `explanation_pass` maps: GradCAM upsampled to the image, B-cos
    contribution map Σ x·W(x) over the 6 encoded channels, input×gradient summed over channels."""
    if method == "gradcam":
        if tuple(maps.shape[-2:]) != tuple(x.shape[-2:]):
            maps = F.interpolate(maps, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return maps[:, 0]
    if method == "bcos":
        return bcos.contribution_map(model, x, maps)
    return maps.sum(1)


def explain(model: nn.Module, images, classes=None, method: str = "gradcam", layer: str | None = None,
            batch_size: int = 256, create_graph: bool = False) -> torch.Tensor:
    """One (H, W) explanation map per image (notebooks 05 and 06).

    images: an ImageSet, uint8 images or float images in [0, 1] (N, C, H, W).
    classes: the class to explain per image (a tensor, a list or one int); None explains
        each image's top-1 class.
    method: "gradcam" (at `layer`, default the last stage), "bcos" (contribution map of a
        kdlab.bcos network) or "input_x_gradient".
    create_graph=False (analysis): the model runs in eval mode in batches and the maps come
        back detached on the CPU. create_graph=True (inside a loss): one pass over `images`
        as they are, in the model's current mode, maps differentiable w.r.t. its parameters.
    """
    _check_method(method)
    if isinstance(images, ImageSet):
        images = images.images
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if create_graph:
        x = as_input(images, device_of(model))
        _, maps = explanation_pass(model, x, classes, method, layer, create_graph=True)
        return display_map(model, x, maps, method)
    if classes is not None:
        classes = torch.as_tensor(classes).long()
        if classes.dim() == 0:
            classes = classes.expand(len(images))
        if len(classes) != len(images):
            raise ValueError(f"classes must hold one class per image ({len(images)}), got {len(classes)}")
    out = []
    with evaluation(model) as net:
        per_batch = classes.split(batch_size) if classes is not None else itertools.repeat(None)
        for x, cls in zip(batches(net, images, batch_size), per_batch):
            x = x.float()  # float16 or float64 images as well
            _, maps = explanation_pass(net, x, cls, method, layer)
            with torch.no_grad():
                out.append(display_map(net, x, maps, method).float().cpu())
    return torch.cat(out)
