"""Two students' strongest units side by side (notebook 04: a scratch and a KD student of the
same seed, the question being whether distillation changed what their units detect).

    panels = {kind: top_units(model, layer, concepts, results[kind, seed]) for kind ...}
    plot_unit_pair(panels)

`top_units` takes a student's units of highest IoU from a saved dissection (kdlab.dissect)
and their top-activating images and masks (dissect.unit_masks, as notebook 03's
plots.show_unit); `plot_unit_pair` draws them, one column block per student. matplotlib is
imported inside the function that draws, so importing this module stays light.
"""

from __future__ import annotations

import torch.nn.functional as F

from .. import dissect


def top_units(model, layer: str, data, result, n_units: int = 3, k: int = 3) -> list[dict]:
    """The `n_units` units of `result` (a Dissection of `layer` of `model` on concept `data`)
    with the highest best IoU, each a dict: unit, concept, category, iou, detector, and for
    its top `k` images: images, unit_masks (A > T) and concept_masks (its concept's pixels)."""
    table = result.table.sort_values("iou", ascending=False, kind="stable").head(n_units)
    found = []
    for row in table.itertuples():
        images, unit_mask, concept_mask = dissect.unit_masks(model, layer, data, result,
                                                             int(row.unit), k)
        found.append({"unit": int(row.unit), "concept": row.concept,
                      "category": row.category, "iou": float(row.iou),
                      "detector": bool(row.detector), "images": images,
                      "unit_masks": unit_mask, "concept_masks": concept_mask})
    return found


def plot_unit_pair(panels: dict, title: str = "", dpi: int = 60, panel_size: float = 0.9):
    """Each student's units (`top_units`' lists, {label: units}) side by side: a block of
    columns per student, a row per unit. A panel is one top-activating image, bright where
    the unit's mask is on (outlined red) and its concept's mask outlined in cyan; each row's
    title gives the unit, its concept and its IoU. dpi: small, the notebook stays small."""
    import matplotlib.pyplot as plt

    from .plots import _highlight, _to_hwc

    labels = list(panels)
    rows = max(len(units) for units in panels.values())
    k = max(len(u["images"]) for units in panels.values() for u in units)
    fig = plt.figure(figsize=(panel_size * k * len(labels) + 0.3 * len(labels),
                              (panel_size + 0.3) * rows + 0.5), dpi=dpi,
                     layout="constrained")
    blocks = fig.subfigures(1, len(labels), squeeze=False, wspace=0.04)[0]
    for block, label in zip(blocks, labels):
        axes = block.subplots(rows, k, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        for r, unit in enumerate(panels[label]):
            for j, image in enumerate(unit["images"]):
                img = _to_hwc(image)
                _highlight(axes[r, j], img, unit["unit_masks"][j])
                for shown in axes[r, j].images:  # one block per pixel: a smaller PNG
                    shown.set_interpolation("nearest")
                concept = unit["concept_masks"][j].float()
                if concept.any():
                    if tuple(concept.shape) != img.shape[:2]:  # masks can be coarser
                        concept = F.interpolate(concept[None, None], size=img.shape[:2])[0, 0]
                    axes[r, j].contour(concept.numpy(), levels=[0.5], colors="cyan",
                                       linewidths=0.7)
            marker = "" if unit["detector"] else ", no detector"
            axes[r, 0].set_title(f"unit {unit['unit']}: {unit['concept']} "
                                 f"(IoU {unit['iou']:.2f}{marker})", fontsize=9, loc="left")
        block.suptitle(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
