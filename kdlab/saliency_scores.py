"""Saliency maps scored against ground-truth masks (Han et al.'s synthetic-heatmap test).

Taught in notebook 04. The synthetic concept dataset knows, for every pixel, whether it is
background, object or the object's distinctive part (DESIGN §2.2-§3). A saliency map for
the true class is thresholded (pixels at least `level` × the image's maximum are "salient")
and compared with the object mask, summed over all pixels of all images:
accuracy, precision, recall and false-positive rate; `part_recall` says how much of the
distinctive part -- the region that separates a class from its siblings -- is salient.

Two saliency methods that need nothing but the model: GradCAM at a layer (upsampled to the
image) and the plain input gradient (max |∂logit/∂x| over channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import ImageSet
from .dissect import _module, find_layer


def gradcam(model, layer: str, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """GradCAM maps (N, H, W) for class `target`: ReLU(Σ_k mean(∂y/∂A_k) A_k), upsampled bilinearly."""
    model = _module(model)
    store = {}
    handle = find_layer(model, layer).register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        x = images.float().div(255) if images.dtype == torch.uint8 else images
        logits = model(x)
        chosen = logits.gather(1, target.view(-1, 1)).sum()
        grad = torch.autograd.grad(chosen, store["a"])[0]
    finally:
        handle.remove()
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * store["a"]).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


def input_gradient(model, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain input-gradient saliency (N, H, W): max over channels of |∂y_target/∂x|."""
    model = _module(model)
    x = (images.float().div(255) if images.dtype == torch.uint8 else images.float()).requires_grad_(True)
    chosen = model(x).gather(1, target.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(chosen, x)
    return grad.abs().amax(1)


def saliency_maps(model, data: ImageSet, method: str = "gradcam", layer: str = "layer3",
                  n: int | None = None, batch_size: int = 500) -> torch.Tensor:
    """Saliency maps (N, H, W) of the true class for the first `n` images of `data`."""
    model = _module(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n = len(data) if n is None else min(n, len(data))
    maps = []
    try:
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n))
            x, y = data.images[idx].to(device), data.labels[idx].to(device)
            if method == "gradcam":
                maps.append(gradcam(model, layer, x, y).cpu())
            elif method == "input_gradient":
                maps.append(input_gradient(model, x, y).cpu())
            else:
                raise ValueError(f"unknown saliency method {method!r}; use 'gradcam' or 'input_gradient'")
    finally:
        model.train(was_training)
    return torch.cat(maps)


def ground_truth_scores(saliency: torch.Tensor, object_mask: torch.Tensor,
                        part_mask: torch.Tensor | None = None, level: float = 0.5) -> dict:
    """Pixel scores of thresholded saliency maps against the object mask, summed over images.

    saliency: (N, H, W); object_mask, part_mask: (N, H, W), nonzero = inside. A pixel is
    salient when its value is at least `level` × its image's maximum (images whose map is
    all zero have no salient pixel).
    """
    if saliency.shape != object_mask.shape:
        raise ValueError(f"saliency {tuple(saliency.shape)} and masks {tuple(object_mask.shape)} differ")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    peak = saliency.flatten(1).amax(1).view(-1, 1, 1)
    salient = (saliency >= level * peak) & (peak > 0)
    obj = object_mask != 0
    tp = (salient & obj).sum().item()
    fp = (salient & ~obj).sum().item()
    fn = (~salient & obj).sum().item()
    tn = (~salient & ~obj).sum().item()
    scores = {"accuracy": (tp + tn) / max(tp + tn + fp + fn, 1),
              "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
              "fpr": fp / max(fp + tn, 1), "salient_fraction": (tp + fp) / max(salient.numel(), 1)}
    if part_mask is not None:
        part = part_mask != 0
        scores["part_recall"] = (salient & part).sum().item() / max(part.sum().item(), 1)
    return scores


def score_model(model, data: ImageSet, method: str = "gradcam", layer: str = "layer3",
                n: int | None = None, level: float = 0.5) -> dict:
    """`ground_truth_scores` of a model's true-class saliency maps on the synthetic dataset."""
    if not data.masks or "object" not in data.masks:
        raise ValueError("ground-truth scores need object masks: use the synthetic concept dataset")
    maps = saliency_maps(model, data, method, layer, n)
    k = len(maps)
    object_mask = data.masks["object"][:k]
    if object_mask.shape[-2:] != maps.shape[-2:]:
        raise ValueError(f"masks {tuple(object_mask.shape[-2:])} differ from images {tuple(maps.shape[-2:])}")
    part = data.masks.get("part")
    return ground_truth_scores(maps, object_mask, None if part is None else part[:k], level)
