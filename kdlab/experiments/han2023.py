"""The Han et al. (ICML 2023) experiment: which students have more concept detectors?

Taught in notebook 04. Scratch, KD, LS and KD-from-LS-teacher students come from kdlab.recipes
(the same configurations, hence the same cached models, as notebook 02); the full run dissects
ImageNet ResNet-18s from checkpoints the user supplies (params/imagenet_dissect.yaml;
kdlab.scale.pretrained.imagenet_models loads them), layer4 on Broden, where Han et al. count
a unit as a detector when its best IoU exceeds 0.05. Their published numbers are
kdlab.papers.table("han2023"); they come from NetDissect-Lite, whose union rule is
kdlab.dissect's union="lite", so the tables here give both rules. The concept data comes from
kdlab.scale.broden.concept_data.
"""

from __future__ import annotations

from ..data import ImageSet
from ..dissect import Dissection, dissect_quantiles
from ..explain import explain
from ..explain_metrics import ground_truth_scores
from ..runtime.moved import moved_names
from ..runtime.progress import report, summary

KINDS = ("scratch", "kd", "ls", "kd_from_ls")  # kd_from_ls: KD from a teacher trained with LS

__getattr__ = moved_names(__name__, {"imagenet_models": "kdlab.scale.pretrained"})


def dissect_models(models: dict[str, list], layer: str, data, quantile: float = 0.005,
                   iou_threshold: float = 0.05, batch_size: int = 256, progress: bool = True,
                   sweep: list[float] = ()):
    """Dissect every model at `quantile`, and at each quantile of `sweep` in the same passes.

    Returns ({(kind, label): Dissection}, one row per model, one row per model and sweep
    quantile) -- the last two as DataFrames of detector counts per category under the default
    "annotated" union rule, plus "detectors (Lite)": the total under NetDissect-Lite's rule,
    the one behind Han et al.'s counts (per category: results[key].with_union("lite").counts).
    `dissect_sweep` returns the same and keeps every quantile's Dissection as well.
    """
    return dissect_sweep(models, layer, data, quantile, iou_threshold, batch_size, progress,
                         sweep)[:3]


def dissect_sweep(models: dict[str, list], layer: str, data, quantile: float = 0.005,
                  iou_threshold: float = 0.05, batch_size: int = 256, progress: bool = True,
                  sweep: list[float] = ()):
    """`dissect_models`' three results and a fourth, {(kind, label): {q: Dissection}} for
    `quantile` and every quantile of `sweep`, so that notebook 04 can judge the sweep at
    other IoU thresholds (`counts_at_thresholds`) without another pass over the data."""
    import pandas as pd

    quantiles = [quantile] + [q for q in sweep if q != quantile]
    results: dict[tuple, Dissection] = {}
    every: dict[tuple, dict[float, Dissection]] = {}
    rows, sweep_rows = [], []
    n_models = sum(len(entries) for entries in models.values())
    with summary(f"dissection of {layer}", total=n_models, enabled=progress,
                 advance_on=("models dissected",)):
        for kind, entries in models.items():
            for label, model in entries:
                found = dissect_quantiles(model, layer, data, quantiles, iou_threshold=iou_threshold,
                                          batch_size=batch_size, progress=progress)
                report("models dissected", f"dissected {layer} of {kind} {label}")
                r = found[0]
                results[(kind, label)] = r
                every[(kind, label)] = dict(zip(quantiles, found))
                rows.append({"kind": kind, "model": label, **r.counts.to_dict(),
                             "detectors": r.detectors, "detectors (Lite)": r.with_union("lite").detectors,
                             "units": r.units,
                             "unique concepts": r.summary()["unique_concepts"]})
                for q, other in zip(quantiles, found):
                    if q in sweep:
                        sweep_rows.append({"kind": kind, "model": label, "quantile": q,
                                           **other.counts.to_dict(), "detectors": other.detectors,
                                           "detectors (Lite)": other.with_union("lite").detectors})
    return results, pd.DataFrame(rows), pd.DataFrame(sweep_rows), every


def counts_at_thresholds(every: dict[tuple, dict[float, Dissection]], thresholds: list[float]):
    """Detector counts of every model, quantile and IoU threshold, from the dissections that
    `dissect_sweep` kept: one row per (kind, model, quantile, iou_threshold) with the counts
    per category and their total "detectors" (notebook 04's quantile × threshold picker).

    Re-judging reuses each unit's best IoU (Dissection.with_threshold): no pass over the data.
    """
    import pandas as pd

    rows = []
    for (kind, label), by_quantile in every.items():
        for q, found in by_quantile.items():
            for t in thresholds:
                judged = found.with_threshold(t)
                rows.append({"kind": kind, "model": label, "quantile": q, "iou_threshold": t,
                             **judged.counts.to_dict(), "detectors": judged.detectors})
    return pd.DataFrame(rows)


def mean_and_spread(table, columns):
    """Mean ± standard deviation over seeds per kind (std is 0 with a single seed)."""
    grouped = table.groupby("kind", sort=False)[columns]
    return grouped.mean(), grouped.std(ddof=1).fillna(0.0), grouped.size()


def saliency_scores(models: dict[str, list], data: ImageSet, layer: str = "layer3",
                    n: int = 500, level: float = 0.5, method: str = "gradcam"):
    """Ground-truth pixel scores (kdlab.explain_metrics.ground_truth_scores) of every model's
    maps for the true class of the first `n` images of the synthetic dataset, one row per model."""
    import pandas as pd

    if not data.masks or "object" not in data.masks:
        raise ValueError("ground-truth scores need object masks: use the synthetic concept dataset")
    n = min(n, len(data))
    part = data.masks.get("part")
    rows = []
    for kind, entries in models.items():
        for label, model in entries:
            maps = explain(model, data.images[:n], data.labels[:n], method, layer, batch_size=500)
            scores = ground_truth_scores(maps, data.masks["object"][:n],
                                         None if part is None else part[:n], level)
            rows.append({"kind": kind, "model": label, **scores})
    return pd.DataFrame(rows)
