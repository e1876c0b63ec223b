"""The Han et al. (ICML 2023) experiment: which students have more concept detectors?

Taught in notebook 04. Scratch, KD, LS and KD-from-LS-teacher students come from kdlab.recipes
(the same configurations, hence the same cached models, as notebook 02); the full run dissects
ImageNet ResNet-18s from checkpoints the user supplies (params/imagenet_dissect.yaml;
kdlab.scale.pretrained.imagenet_models loads them), layer4 on Broden, where Han et al. count
a unit as a detector when its best IoU exceeds 0.05. Their published numbers are
kdlab.papers.table("han2023"); they come from NetDissect-Lite, whose union rule is
kdlab.dissect's union="lite", so the tables here give both rules. The concept data comes from
kdlab.scale.broden.concept_data.

A detector count at one IoU threshold sits on a knife edge with 32 units (0.04 instead of 0.05
adds about six detectors per student), so notebook 04's claims (params/claims.yaml) also use
two outcomes that move smoothly: `detectors_band` (the count averaged over IoU thresholds
0.02-0.10) and `alignment` (each unit's best IoU as a share of the highest IoU that concept
allows, kdlab.concepts.iou_ceilings). `per_model_table` gives them per model and layer.
"""

from __future__ import annotations

import math

from ..data import ImageSet
from ..dissect import Dissection, dissect_quantiles
from ..explain import explain
from ..explain_metrics import ground_truth_scores
from ..runtime.moved import moved_names
from ..runtime.progress import report, summary

KINDS = ("scratch", "kd", "ls", "kd_from_ls")  # kd_from_ls: KD from a teacher trained with LS
# Fixed soft targets without a teacher (kdlab.recipes): the same wrong-class mass on the true
# shape family, on randomly permuted groups, uniformly (label smoothing) or on the part family.
# They test Han et al.'s mechanism, class similarity in the targets, with nothing else changed.
MECHANISM_KINDS = ("soft_family", "soft_permuted", "soft_uniform", "soft_part")
BAND = tuple(round(0.02 + 0.01 * i, 2) for i in range(9))  # IoU thresholds 0.02, 0.03, ..., 0.10

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


def dead_units(found: Dissection) -> int:
    """Units that never activate on the concept images: their largest activation on any image
    is not above 0 (a ReLU output that stays 0). Their masks are empty, so they count as
    non-detectors in every count and as alignment 0 (notebook 04 reports them per model)."""
    return int((found.top_values[:, 0] <= 0).sum()) if found.top_values.numel() else 0


def detectors_band(found: Dissection, thresholds=BAND) -> float:
    """The number of detectors averaged over IoU `thresholds` (notebook 04's band count).

    One threshold is a knife edge: a unit at IoU 0.049 or 0.051 flips the count. Averaging over
    0.02-0.10 weighs each unit by how much of the band its best IoU clears. The best IoU does
    not depend on the threshold, so this equals the mean of `found.with_threshold(t).detectors`.
    """
    _, best = found.best()
    return float(sum(int((best > t).sum()) for t in thresholds) / len(thresholds))


def alignment(found: Dissection, ceilings: dict[str, float]) -> float:
    """Mean over units of best IoU ÷ the IoU ceiling of that unit's best concept, in [0, 1].

    `ceilings`: kdlab.concepts.iou_ceilings(data, found.quantile), the highest IoU a mask of
    that quantile can reach with each concept. Dividing by it puts small concepts (a part, an
    IoU of at most ~0.5) and large ones (an object, at most ~0.1) on one scale (notebook 04).
    Capped at 1: upsampled masks cover only about the quantile's share of pixels. A unit that
    overlaps no concept (a dead unit, say) scores 0.
    """
    if found.units == 0:
        return math.nan
    concept, best = found.best()
    shares = [min(1.0, iou / ceilings[found.concepts[c]]) if iou > 0 else 0.0
              for c, iou in zip(concept.tolist(), best.tolist())]
    return sum(shares) / len(shares)


def ceilings_of(found: Dissection, mask_size) -> dict[str, float]:
    """kdlab.concepts.iou_ceilings computed from a dissection's own label areas: q·N·h·w / A per
    concept, capped at 1, for concept data that is no ImageSet (Broden; notebook 04's
    alignment). `mask_size`: (h, w) of the concept masks (concept_source(data).mask_size)."""
    positions = found.quantile * found.images * mask_size[0] * mask_size[1]
    return {name: min(1.0, positions / int(a))
            for name, a in zip(found.concepts, found.label_area.tolist()) if a > 0}


def layer_statistics(found: Dissection, ceilings: dict[str, float], suffix: str = "") -> dict:
    """One model's outcomes at one layer (notebook 04): detectors per category and in all at
    the dissection's own threshold (Han et al.'s 0.05), under Lite's union rule too, the band
    count, alignment, dead units and units; every key ends in `suffix`."""
    row = {**found.counts.to_dict(), "detectors": found.detectors,
           "detectors (Lite)": found.with_union("lite").detectors,
           "detectors_band": detectors_band(found), "alignment": alignment(found, ceilings),
           "dead_units": dead_units(found), "units": found.units}
    return {f"{k}{suffix}": v for k, v in row.items()}


def per_model_table(results: dict[str, dict[tuple, Dissection]], ceilings: dict[str, float],
                    main: str):
    """One row per model (kind, model) with `layer_statistics` at every layer of `results`
    ({layer: {(kind, label): Dissection}}): the `main` layer's columns unsuffixed, the others'
    suffixed `_<layer>` (detectors_band_layer2), as params/claims.yaml names them."""
    import pandas as pd

    keys = list(results[main])
    rows = []
    for kind, label in keys:
        row = {"kind": kind, "model": label}
        for layer, found in results.items():
            row.update(layer_statistics(found[(kind, label)], ceilings,
                                        "" if layer == main else f"_{layer}"))
        rows.append(row)
    return pd.DataFrame(rows)


def family_share(model, data: ImageSet) -> float:
    """Share of the wrong-class probability on the test set that goes to the true class's
    shape family (kdlab.metrics.similarity_shares; synthetic data only): notebook 04's
    manipulation check that the targets passed class similarity on to the student."""
    from ..metrics import predict, similarity_shares
    from ..synthetic import class_family

    probabilities = predict(model, data).float().softmax(1)
    groups = [class_family(c) for c in range(data.num_classes)]
    return similarity_shares(probabilities, data.labels, groups)[0]


def undetected(table, categories, teacher: dict | None = None) -> list[str]:
    """The categories in which no model of `table`, nor the teacher (a `layer_statistics`
    dict), has a single detector: a claim about them compares 0 with 0 (not testable)."""
    teacher = teacher or {}
    return [c for c in categories
            if c in table and not table[c].fillna(0).any() and not teacher.get(c, 0)]


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
