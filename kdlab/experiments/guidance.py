"""A teacher whose explanations localise the object: model guidance with the energy loss
(notebook 05).

e²KD can only pass on what the teacher's explanations hold: a student that copies the map of a
teacher whose GradCAM spreads over the scene learns nothing about the object. Rao et al.
(ICCV 2023, "Studying how to efficiently and effectively guide models with explanations"; the
group of the e²KD authors) guide a model's explanations with object masks while it trains:

    L = CE(y, z) + μ · L_loc,   L_loc = 1 − Σ_mask E⁺ / Σ E⁺

E⁺ the positive part of the explanation of the true class (here GradCAM at the layer e²KD
matches, upsampled to the image), the mask the image's object mask: the *energy loss*, one
minus the energy pointing game (kdlab.explain_metrics). It is zero when all of the map's
positive energy lies on the object, and it never rewards an empty map (which scores 1).

`guided_teacher` fine-tunes an already trained teacher with this objective on its own training
images, their masks travelling with the images through the random crops and flips (per-image
extras of kdlab.train.fit), and caches it with kdlab.train.load_or_train: the cache key holds
the starting teacher's key, μ, the layer and the training settings, so notebook 06 or a rerun
loads it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..data import ImageSet
from ..explain import explanation_pass
from ..train import TrainConfig, TrainedModel, load_or_train

MASK = "object_mask"  # the batch extra holding each image's object mask (N, 1, H, W)


def energy_loss(maps: torch.Tensor, masks: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """1 − (positive attribution inside the mask ÷ all positive attribution), averaged over
    the batch (Rao et al.'s energy loss). maps: (N, 1, h, w) or (N, h, w); masks: (N, 1, H, W)
    or (N, H, W), 1 on the object; maps of another size are resized bilinearly to the masks'.
    A map without positive attribution scores 1 (the worst), as EPG scores it 0."""
    if maps.dim() == 3:
        maps = maps[:, None]
    if masks.dim() == 3:
        masks = masks[:, None]
    if maps.shape[-2:] != masks.shape[-2:]:
        maps = F.interpolate(maps, size=masks.shape[-2:], mode="bilinear", align_corners=False)
    positive = maps.float().clamp(min=0).flatten(1)
    inside = (positive * masks.float().flatten(1)).sum(1)
    return (1.0 - inside / (positive.sum(1) + eps)).mean()


class GuidedCrossEntropy:
    """Cross-entropy plus μ times the energy loss of the model's GradCAM maps of the true class
    (`energy_loss`): an objective for kdlab.train.fit, `(model, teacher, batch) -> (loss, logits)`.

    The batch carries each image's object mask in `batch.extras["object_mask"]` (`mask_extras`).
    The maps are computed in the same forward pass as the logits and stay differentiable, so
    the loss moves the model's explanation; `layer` is GradCAM's (default the last stage, the
    layer e²KD compares)."""

    def __init__(self, mu: float = 1.0, layer: str | None = None):
        if mu < 0:
            raise ValueError(f"mu must be non-negative, got {mu}")
        self.mu, self.layer = mu, layer

    def __call__(self, model, teacher, batch):
        if MASK not in batch.extras:
            raise ValueError(f"the batch carries no {MASK!r}; pass extras=mask_extras(data) to fit")
        logits, maps = explanation_pass(model, batch.x, batch.y, "gradcam", self.layer,
                                        create_graph=self.mu > 0, size=batch.x.shape[-2:])
        loss = F.cross_entropy(logits.float(), batch.y)
        if self.mu > 0:
            loss = loss + self.mu * energy_loss(maps, batch.extras[MASK])
        return loss, logits

    def config(self) -> dict:
        return {"objective": "guided_cross_entropy", "mu": self.mu, "method": "gradcam",
                "layer": self.layer, "explained": "label"}


def mask_extras(data: ImageSet) -> dict[str, torch.Tensor]:
    """{"object_mask": (N, 1, H, W) float} from the data's object masks, at the images' size,
    so that fit's loader crops and flips them with their images."""
    if not data.masks or "object" not in data.masks:
        raise ValueError("model guidance needs object masks (data.masks['object'])")
    masks = (data.masks["object"] > 0).float()[:, None]
    if masks.shape[-2:] != data.images.shape[-2:]:
        masks = F.interpolate(masks, size=data.images.shape[-2:], mode="nearest")
    return {MASK: masks}


def guided_teacher(teacher: TrainedModel, train: ImageSet, mu: float, cfg: TrainConfig,
                   layer: str | None = None, name: str = "teacher-guided", device="auto",
                   progress: bool = True) -> TrainedModel:
    """`teacher` fine-tuned on `train` with `GuidedCrossEntropy(mu, layer)` and `cfg`, or
    loaded from the cache (kdlab.train.load_or_train; its key includes `teacher`'s key).

    The starting weights are a contiguous copy of `teacher.model`: `teacher` itself is never
    changed, and the result does not depend on the memory format it was left in."""
    start = copy.deepcopy(teacher.model).cpu().to(memory_format=torch.contiguous_format)

    def build() -> nn.Module:
        return copy.deepcopy(start)

    return load_or_train(name, build, train, GuidedCrossEntropy(mu, layer), cfg, device=device,
                         progress=progress, extras=mask_extras(train), extras_key=f"init:{teacher.key}")
