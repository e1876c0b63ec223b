"""Concept data for network dissection: images with per-pixel concept labels, one view.

Taught in notebook 03 (what dissection needs: images with per-pixel concept labels) and used
by notebook 04. kdlab.dissect reads concept data only through `concept_source`: batches of
images with their annotations (`ConceptBatch`), label numbers global across categories (0 =
none), pixel masks for pixel-level categories (object, part, color, material) and one label
per image for image-level ones (scene). The synthetic concept dataset (kdlab.synthetic) is
such data in memory (`synthetic_concepts`); the Broden folders of Bau et al. 2017 are the same
view read from disk (kdlab.scale.broden.BrodenDataset, for full runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from .data import ImageSet


@dataclass
class ConceptBatch:
    """A batch of images with their concept annotations (label numbers, 0 = none)."""

    images: torch.Tensor                 # float (B, C, H, W) in [0, 1]
    index: torch.Tensor                  # positions in the dataset (B,)
    pixel: dict[str, torch.Tensor] = field(default_factory=dict)   # category -> (B, L, h, w)
    scalar: dict[str, torch.Tensor] = field(default_factory=dict)  # category -> (B, L)


class ImageSetConcepts:
    """An ImageSet with concept masks (the synthetic dataset) seen as concept data."""

    def __init__(self, data: ImageSet):
        if not data.masks and not data.image_labels:
            raise ValueError(
                f"dataset {data.name or '(unnamed)'!r} has no concept annotations; dissection "
                "needs concept masks: use the synthetic concept dataset (kdlab.synthetic) or "
                "Broden (kdlab.scale.broden.BrodenDataset)")
        if data.concepts is None or data.concept_categories is None:
            raise ValueError("the dataset's concepts and concept_categories must be set")
        self.data = data
        present = list(data.masks or {}) + list(data.image_labels or {})
        order = [c for c in dict.fromkeys(data.concept_categories) if c in present]
        self.categories = order + [c for c in present if c not in order]
        self.concepts = list(data.concepts)
        self.primary = [self.categories.index(c) if c in self.categories else -1
                        for c in data.concept_categories]
        self.primary[0] = -1  # label 0 means "no label"
        first = next(iter((data.masks or {}).values()), None)
        self.mask_size = tuple(first.shape[-2:]) if first is not None else tuple(data.images.shape[-2:])

    def __len__(self) -> int:
        return len(self.data)

    def take(self, index, masks: bool = True) -> ConceptBatch:
        """Images and annotations at `index` (a slice gives views, without copies)."""
        d = self.data
        pick = index if isinstance(index, slice) else torch.as_tensor(index, dtype=torch.long)
        positions = torch.arange(len(d))[pick] if isinstance(index, slice) else pick
        pixel = {k: v[pick].unsqueeze(1) for k, v in (d.masks or {}).items()} if masks else {}
        scalar = {k: v[pick].view(-1, 1) for k, v in (d.image_labels or {}).items()} if masks else {}
        return ConceptBatch(d.images[pick].float().div_(255), positions, pixel, scalar)

    def batches(self, batch_size: int, masks: bool = True) -> Iterator[ConceptBatch]:
        for start in range(0, len(self), batch_size):
            yield self.take(slice(start, min(start + batch_size, len(self))), masks)


def concept_source(data):
    """The concept-data view of `data`: an ImageSet with masks, or a BrodenDataset."""
    if isinstance(data, ImageSet):
        return ImageSetConcepts(data)
    needed = ("concepts", "categories", "primary", "mask_size", "batches", "take")
    if all(hasattr(data, a) for a in needed):
        return data
    raise TypeError(f"cannot dissect on {type(data).__name__}: pass an ImageSet with concept "
                    "masks or a kdlab.scale.broden.BrodenDataset")


def head(data, n: int):
    """The first n images of concept data (an ImageSet or a BrodenDataset)."""
    if isinstance(data, ImageSet):
        return data.subset(torch.arange(min(n, len(data))))
    return data.head(n)


def synthetic_concepts(like: ImageSet | None = None, n: int = 2000, seed: int = 0) -> ImageSet:
    """Synthetic concept images to dissect on: the first n images of `like` (the test set) when
    it is the synthetic dataset; otherwise n fresh images in the course's design drawn at
    `like`'s size and channel count (grey for Fashion-MNIST), so that a network trained on
    other data can still be probed for the synthetic concepts."""
    if like is not None and like.masks:
        return like.subset(torch.arange(min(n or len(like), len(like))))
    from .synthetic import make_concept_dataset

    size = like.images.shape[-1] if like is not None else 32
    data = make_concept_dataset(n=n or 2000, size=size, seed=1000 + seed)
    if like is not None and like.in_channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (data.images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255)
        data.images = grey.to(torch.uint8)
    return data


def concept_areas(data: ImageSet) -> torch.Tensor:
    """Pixels labelled with each concept over the whole dataset, (concepts,) int64.

    Pixel masks count their pixels; an image-level label counts as a whole-image mask, as in
    network dissection (kdlab.dissect). Entry 0 ("no label") is 0.
    """
    k = len(data.concepts)
    area = torch.zeros(k, dtype=torch.int64)
    for m in (data.masks or {}).values():
        area += torch.bincount(m.flatten().long(), minlength=k)[:k]
    h, w = next(iter((data.masks or {}).values())).shape[-2:] if data.masks else data.images.shape[-2:]
    for labels in (data.image_labels or {}).values():
        area += h * w * torch.bincount(labels.flatten().long(), minlength=k)[:k]
    area[0] = 0
    return area


def iou_ceilings(data: ImageSet, quantile: float = 0.005) -> dict[str, float]:
    """The highest IoU any unit can reach with each concept in network dissection.

    A unit's mask covers about `quantile` of all N·H·W pixel positions; its IoU with a concept
    of total area A is largest when the whole mask lies inside the concept: q·N·H·W / A
    (capped at 1). A concept that covers more than q / t of all pixels can therefore never pass
    the detector threshold t (0.05 at q = 0.005: 10 %). Concepts absent from `data` are left
    out. Taught in notebook 03.
    """
    area = concept_areas(data)
    h, w = next(iter((data.masks or {}).values())).shape[-2:] if data.masks else data.images.shape[-2:]
    positions = quantile * len(data) * h * w
    return {name: min(1.0, positions / int(a)) for name, a in zip(data.concepts, area) if a > 0}
