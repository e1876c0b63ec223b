"""The Han et al. (ICML 2023) experiment: which students have more concept detectors?

Taught in notebook 04 (and notebook 03 uses `concept_data`). Scratch, KD and LS students
come from kdlab.course (the same configurations, hence the same cached models, as notebook
02); the full run dissects ImageNet ResNet-18s from checkpoints the user supplies on Broden
(params/imagenet_dissect.yaml). DESIGN §2.2.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data import ImageSet
from .dissect import Dissection, dissect, load_model
from .paths import DATA_DIR, PROJECT_ROOT

KINDS = ("scratch", "kd", "ls")

# Han et al. 2023, ImageNet ResNet-18 (teacher ResNet-34), layer4 on Broden, IoU > 0.05.
PAPER = {"scratch": {"accuracy": 69.94, "detectors": 275},
         "kd": {"accuracy": 70.80, "detectors": 312},
         "ls": {"accuracy": 70.13, "detectors": 219}}
# Feature distillation without -> with logit KD (detectors).
PAPER_FEATURE_KD = {"AT": (287, 303), "FT": (304, 313), "CRD": (282, 286), "SSKD": (304, 310)}


def concept_data(name: str = "synthetic", like: ImageSet | None = None, n: int = 2000,
                 seed: int = 0, root: str | Path | None = None, num_workers: int | None = None):
    """The images to dissect on: 'synthetic' concept images or the 'broden' directory.

    synthetic: when `like` (the test set) is the synthetic dataset, its first n images;
    otherwise n fresh synthetic images drawn at `like`'s size and channel count (grey for
    Fashion-MNIST), so a network trained on other data can still be probed for our concepts.
    broden: data/broden1_224 (or `root`), the first n images (n = 0: all of them), decoded
    by `num_workers` processes (default: up to 8).
    """
    if name == "broden":
        import os

        from .broden import BrodenDataset

        workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
        return BrodenDataset(resolve(str(root)) if root else DATA_DIR / "broden1_224",
                             max_images=n or None, num_workers=workers)
    if name != "synthetic":
        raise ValueError(f"concept data must be 'synthetic' or 'broden', got {name!r}")
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


def resolve(path: str) -> str:
    """A checkpoint path as written in a parameter file: absolute, or relative to the project."""
    if path == "torchvision" or Path(path).is_absolute():
        return path
    return str(PROJECT_ROOT / path)


def imagenet_models(arch: str, checkpoints: dict[str, list[str]]) -> dict[str, list]:
    """{kind: [(label, model), ...]} from checkpoint paths ("torchvision" = pretrained weights)."""
    unknown = set(checkpoints) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)} in the checkpoints; use {KINDS}")
    return {kind: [(Path(p).stem, load_model(arch, resolve(p), num_classes=1000)) for p in paths]
            for kind, paths in checkpoints.items() if paths}


def dissect_models(models: dict[str, list], layer: str, data, quantile: float = 0.005,
                   iou_threshold: float = 0.05, batch_size: int = 256, progress: bool = True,
                   sweep: list[float] = ()):
    """Dissect every model at `quantile`, and at each quantile of `sweep` in the same passes.

    Returns ({(kind, label): Dissection}, one row per model, one row per model and sweep
    quantile) -- the last two as DataFrames of detector counts per category.
    """
    import pandas as pd

    quantiles = [quantile] + [q for q in sweep if q != quantile]
    results: dict[tuple, Dissection] = {}
    rows, sweep_rows = [], []
    for kind, entries in models.items():
        for label, model in entries:
            found = dissect(model, layer, data, quantile=quantiles, iou_threshold=iou_threshold,
                            batch_size=batch_size, progress=progress)
            r = found[0]
            results[(kind, label)] = r
            rows.append({"kind": kind, "model": label, **r.counts.to_dict(),
                         "detectors": r.detectors, "units": r.units,
                         "unique concepts": r.summary()["unique_concepts"]})
            for q, other in zip(quantiles, found):
                if q in sweep:
                    sweep_rows.append({"kind": kind, "model": label, "quantile": q,
                                       **other.counts.to_dict(), "detectors": other.detectors})
    return results, pd.DataFrame(rows), pd.DataFrame(sweep_rows)


def mean_and_spread(table, columns):
    """Mean ± standard deviation over seeds per kind (std is 0 with a single seed)."""
    grouped = table.groupby("kind", sort=False)[columns]
    return grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.size()


@torch.inference_mode()
def imagenet_accuracy(model, root: str | Path, batch_size: int = 128, num_workers: int = 4,
                      max_images: int | None = None, device="auto") -> float:
    """Top-1 accuracy on an ImageNet validation folder (class sub-folders, torchvision layout)."""
    import torchvision
    from torchvision import transforms

    from .train import pick_device

    root = Path(resolve(str(root)))
    if not root.is_dir():
        raise FileNotFoundError(f"no ImageNet validation folder at {root} (one sub-folder per class)")
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    ds = torchvision.datasets.ImageFolder(str(root), tf)
    if max_images:
        ds = torch.utils.data.Subset(ds, range(min(max_images, len(ds))))
    device = pick_device(device)
    model = model.to(device).eval()
    correct = seen = 0
    for x, y in torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers):
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
        seen += len(y)
    return correct / max(seen, 1)


def saliency_scores(models: dict[str, list], data: ImageSet, layer: str = "layer3",
                    n: int = 500, level: float = 0.5, method: str = "gradcam"):
    """Ground-truth scores of every model's saliency maps (kdlab.saliency_scores), one row per model."""
    import pandas as pd

    from .saliency_scores import score_model

    rows = [{"kind": kind, "model": label, **score_model(model, data, method, layer, n, level)}
            for kind, entries in models.items() for label, model in entries]
    return pd.DataFrame(rows)
