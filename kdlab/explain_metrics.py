"""How good is an explanation? Localisation against object masks, and teacher-student similarity.

Taught in notebooks 05 (e²KD) and 06 (right features and interpretability); the pixel scores
in notebook 04. Maps come from kdlab.explain.explain.

One value per image:

- Energy pointing game (EPG, Wang et al. 2020, as used by e²KD on PASCAL VOC): the share of
  an explanation's positive attribution that falls inside the object's mask (or box).
  1.0 = all evidence on the object; the object's area fraction = a map that ignores it.
  As in the reference code (Model-Guidance's BoundingBoxEnergyMultiple, include_undefined=True)
  a map without positive attribution -- an all-zero GradCAM after its ReLU, say -- scores 0
  and counts in the plain mean; leaving it out would flatter models whose maps vanish.
  `epg_summary` gives that mean with the number of such maps.
- IoU of the thresholded explanation with the object mask: the pixels whose attribution
  reaches `threshold` × the image's maximum form the explanation's mask. NaN where undefined
  (no positive attribution, or an empty mask); `nanmean` averages the others.
- Explanation similarity: cosine between two models' maps, the quantity e²KD maximises.

Pixel counts over all images (Han et al.'s synthetic-heatmap test): the synthetic images
know, for every pixel, whether it is background, object or the object's distinctive part.
`ground_truth_scores` thresholds each map (pixels at least `level` × the image's maximum are
salient): accuracy, precision, recall, false-positive rate and the salient fraction, and with
a part mask `part_recall`, how much of the part -- the region that separates a class from its
siblings -- is salient.

Agreement of predictions is kdlab.metrics.agreement.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _prepare(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if maps.dim() == 4:
        if maps.shape[1] != 1:
            raise ValueError(f"maps must be (N, H, W) or (N, 1, H, W), got {tuple(maps.shape)}")
        maps = maps[:, 0]
    if maps.dim() != 3 or masks.dim() != 3 or len(maps) != len(masks):
        raise ValueError(f"need maps (N, H, W) and masks (N, H, W) for the same images, got "
                         f"{tuple(maps.shape)} and {tuple(masks.shape)}")
    maps = maps.float()
    if maps.shape[-2:] != masks.shape[-2:]:  # e.g. a 7x7 CAM against a 224x224 mask
        maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode="bilinear",
                             align_corners=False)[:, 0]
    return maps, masks.bool().to(maps.device)


def _epg(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the EPG, and the total positive attribution."""
    maps, masks = _prepare(maps, masks)
    positive = maps.clamp(min=0).flatten(1)
    total = positive.sum(1)
    inside = (positive * masks.flatten(1)).sum(1)
    # No positive attribution scores 0, as in the reference (whose cut-off is a total below
    # 1e-7; > 0 here does not depend on the maps' scale).
    return torch.where(total > 0, inside / total, 0.0), total


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per image: Σ positive attribution inside the mask / Σ positive attribution; 0 for a map
    with no positive attribution, so that the plain mean is the reference's (notebooks 05, 06)."""
    return _epg(maps, masks)[0]


def epg_summary(maps: torch.Tensor, masks: torch.Tensor) -> dict:
    """{"epg": mean EPG over all images, "all_zero_maps": maps without positive attribution
    (each scored 0), "images": N} -- the count says how much of a low EPG is vanished maps."""
    epg, total = _epg(maps, masks)
    return {"epg": epg.mean().item(), "all_zero_maps": int((total <= 0).sum()), "images": len(epg)}


def thresholded_iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per image: IoU of {attribution >= threshold · max attribution} with the mask."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    maps, masks = _prepare(maps, masks)
    peak = maps.flatten(1).amax(1).view(-1, 1, 1)
    predicted = (maps >= threshold * peak) & (peak > 0)
    inter = (predicted & masks).flatten(1).sum(1).float()
    union = (predicted | masks).flatten(1).sum(1).float()
    iou = inter / union.clamp(min=1)
    undefined = (peak.flatten() <= 0) | (masks.flatten(1).sum(1) == 0)
    return torch.where(undefined, torch.full_like(iou, float("nan")), iou)


def map_similarity(maps_a: torch.Tensor, maps_b: torch.Tensor) -> torch.Tensor:
    """Per image: cosine similarity of two flattened explanation maps (1 = same up to scale)."""
    if maps_a.shape != maps_b.shape:
        raise ValueError(f"maps must have the same shape, got {tuple(maps_a.shape)} and {tuple(maps_b.shape)}")
    return F.cosine_similarity(maps_a.flatten(1).float(), maps_b.flatten(1).float(), dim=1)


def nanmean(values: torch.Tensor) -> float:
    """Mean over the images where the metric is defined (NaN if it is defined for none)."""
    return torch.nanmean(values.float()).item()


def ground_truth_scores(maps: torch.Tensor, object_mask: torch.Tensor,
                        part_mask: torch.Tensor | None = None, level: float = 0.5) -> dict:
    """Pixel scores of thresholded maps against the object mask, summed over all images.

    maps: (N, H, W); object_mask, part_mask: (N, H, W), nonzero = inside. A pixel is salient
    when its value is at least `level` × its image's maximum (images whose map is all zero
    have no salient pixel).
    """
    if maps.shape != object_mask.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(object_mask.shape)} differ")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    peak = maps.flatten(1).amax(1).view(-1, 1, 1)
    salient = (maps >= level * peak) & (peak > 0)
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
