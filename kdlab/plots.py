"""Every figure and widget of the notebooks (matplotlib and ipywidgets are imported inside
each function, so `import kdlab` stays light).

Taught where each is first used: the gallery and masks in notebook 00; softened
distributions and the temperature slider in notebook 01; similarity heatmaps, seed spreads
and Müller projections in notebook 02; the unit browser and detector counts in notebooks 03
and 04; explanation maps in notebooks 05 and 06.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import dissect
from .data import ImageSet


def _to_hwc(image: torch.Tensor) -> np.ndarray:
    img = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    img = img.permute(1, 2, 0).numpy()
    return img[..., 0] if img.shape[-1] == 1 else img


def show_gallery(data: ImageSet, n: int = 24, columns: int = 8, title: str | None = None):
    """A grid of the first `n` images with their class names."""
    import matplotlib.pyplot as plt

    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.6 * rows))
    for i, ax in enumerate(np.atleast_1d(axes).flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_to_hwc(data.images[i]), cmap="gray")
            ax.set_title(data.classes[int(data.labels[i])], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_concept_masks(data: ImageSet, indices=(0, 1, 2)):
    """Each image beside its object, part, color and material masks, with its scene label."""
    import matplotlib.pyplot as plt

    categories = list(data.masks)
    fig, axes = plt.subplots(len(indices), 1 + len(categories),
                             figsize=(1.9 * (1 + len(categories)), 2.0 * len(indices)), squeeze=False)
    for row, i in enumerate(indices):
        scene = data.concepts[int(data.image_labels["scene"][i])]
        axes[row, 0].imshow(_to_hwc(data.images[i]))
        axes[row, 0].set_title(f"{data.classes[int(data.labels[i])]}\nscene: {scene}", fontsize=8)
        for col, cat in enumerate(categories, start=1):
            mask = data.masks[cat][i].numpy()
            axes[row, col].imshow(mask > 0, cmap="gray", vmin=0, vmax=1)
            names = sorted({data.concepts[v] for v in np.unique(mask) if v})
            axes[row, col].set_title(f"{cat}: {', '.join(names) or '-'}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_softened(logits: torch.Tensor, classes: list[str], temperatures=(1, 4, 10), ax=None,
                  title: str = ""):
    """Bar charts of softmax(z / T) for one example at several temperatures."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    width = 0.8 / len(temperatures)
    x = np.arange(len(classes))
    for k, t in enumerate(temperatures):
        p = F.softmax(logits.float() / t, dim=-1).numpy()
        ax.bar(x + k * width, p, width, label=f"T = {t:g}")
    ax.set_xticks(x + width * (len(temperatures) - 1) / 2, classes, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(title)
    return ax


def temperature_explorer(logits: torch.Tensor, classes: list[str], true_class: str = ""):
    """An ipywidgets slider over T that redraws the teacher's softened distribution."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def draw(temperature=4.0):
        fig, ax = plt.subplots(figsize=(8, 3))
        plot_softened(logits, classes, (temperature,), ax=ax,
                      title=f"teacher's soft labels for a '{true_class}' image at T = {temperature:g}")
        plt.show()

    slider = widgets.FloatSlider(value=4.0, min=0.5, max=20.0, step=0.5, description="T",
                                 continuous_update=False)
    return widgets.interactive(draw, temperature=slider)


def class_similarity(probabilities: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean predicted distribution per true class: row c is the average of p(·|x) over class c."""
    matrix = torch.zeros(num_classes, num_classes)
    for c in range(num_classes):
        matrix[c] = probabilities[labels == c].mean(0)
    return matrix


def plot_heatmaps(matrices: dict[str, torch.Tensor], classes: list[str], vmax: float | None = None):
    """Side-by-side heatmaps (e.g. soft-label similarity matrices), off-diagonal emphasised."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4.4), squeeze=False)
    for ax, (title, m) in zip(axes[0], matrices.items()):
        shown = m.clone()
        shown.fill_diagonal_(float("nan"))  # the diagonal dwarfs the structure
        im = ax.imshow(shown.numpy(), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_seed_spread(table, metric: str, order: list[str] | None = None, ax=None, reference=None):
    """Each seed as a dot and the mean as a bar, per method (a pandas table with columns
    'method', 'seed' and `metric`)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    order = order or list(dict.fromkeys(table["method"]))
    for i, method in enumerate(order):
        values = table.loc[table["method"] == method, metric].to_numpy()
        ax.bar(i, values.mean(), color="C%d" % i, alpha=0.5)
        ax.errorbar(i, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, color="k",
                    capsize=4)
        ax.scatter(np.full(len(values), i), values, color="k", s=12, zorder=3)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", label="teacher")
        ax.legend(loc="lower right")
    ax.set_xticks(range(len(order)), order)
    ax.set_ylabel(metric)
    lo = min(table[metric].min(), reference if reference is not None else 1.0)
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, table[metric].max() + 0.03) if metric != "ece" else None)
    return ax


def plot_learning_curves(histories: dict[str, list[list[dict]]], keys=("loss", "train_acc")):
    """Per-epoch training curves of several kinds of model (notebook 02): one thin line per
    seed, a thick line for the mean. `histories` maps a kind to its models' fit histories
    (kdlab.train.TrainedModel.history). Flat ends mean the students reached their plateau."""
    import matplotlib.pyplot as plt

    titles = {"loss": "training loss (the kind's own objective)",
              "train_acc": "accuracy on the training batches"}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (kind, runs) in enumerate(histories.items()):
            curves = np.array([[record[key] for record in run] for run in runs])
            epochs = np.arange(1, curves.shape[1] + 1)
            for curve in curves:
                ax.plot(epochs, curve, color=f"C{i}", lw=0.6, alpha=0.4)
            ax.plot(epochs, curves.mean(0), color=f"C{i}", lw=2, label=kind)
        ax.set(xlabel="epoch", title=titles.get(key, key))
        if key == "train_acc":
            ax.set_ylim(0, 1)
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def template_projection(features: torch.Tensor, weight: torch.Tensor, classes: tuple[int, int, int]):
    """Müller et al.'s view: project penultimate features onto the plane through the three
    classes' templates (rows of the final layer's weight). Returns (N, 2) coordinates."""
    templates = weight[list(classes)].float()                       # 3 × d
    basis = torch.linalg.qr((templates[1:] - templates[0]).T).Q     # d × 2, orthonormal
    return (features.float() - templates[0]) @ basis


def plot_projections(panels: dict[str, tuple[torch.Tensor, torch.Tensor]], class_names: list[str]):
    """Scatter plots of projected features, one panel per model: {title: (coords, labels)}."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (title, (coords, labels)) in zip(axes[0], panels.items()):
        for k, name in enumerate(class_names):
            pts = coords[labels == k].numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.6, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------- network dissection (03, 04)


def plot_counts(results: dict, ax=None, errors: dict | None = None, points: dict | None = None):
    """Grouped bar chart of detectors per category: {name: Dissection or counts Series}.

    errors: {name: {category: error bar}}; points: {name: DataFrame with one row per model
    (seed) and a column per category}, drawn as dots over the bars.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    counts = {k: (v.counts if hasattr(v, "counts") else v) for k, v in results.items()}
    cats = list(next(iter(counts.values())).index)
    ax = ax or plt.subplots(figsize=(7, 3.2))[1]
    width = 0.8 / len(counts)
    x = np.arange(len(cats))
    for i, (name, c) in enumerate(counts.items()):
        pos = x + i * width - 0.4 + width / 2
        err = None if errors is None else [errors[name].get(cat, 0) for cat in cats]
        ax.bar(pos, [c.get(cat, 0) for cat in cats], width, yerr=err, capsize=3, label=name,
               color=f"C{i}", alpha=0.75 if points else 1.0, error_kw={"lw": 1})
        if points is not None and name in points:
            for j, cat in enumerate(cats):
                values = np.asarray(points[name][cat], dtype=float)
                ax.scatter(np.full(len(values), pos[j]), values, s=10, color="k", zorder=3)
    ax.set_xticks(x, cats)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("concept detectors")
    ax.legend(frameon=False)
    return ax


def show_unit(model, layer: str, data, result, unit: int, k: int = 6):
    """The unit browser's figure: top images, the unit's mask, the concept's mask (notebook 03)."""
    import matplotlib.pyplot as plt

    images, unit_mask, concept_mask = dissect.unit_masks(model, layer, data, result, unit, k)
    row = result.table.iloc[unit]
    fig, axes = plt.subplots(3, len(images), figsize=(1.4 * len(images), 4.6), squeeze=False)
    for j in range(len(images)):
        img = images[j].permute(1, 2, 0).numpy()
        img = img[..., 0] if img.shape[-1] == 1 else img
        for r, (overlay, title) in enumerate([(None, "image"), (unit_mask[j], "unit mask (A > T)"),
                                              (concept_mask[j], f"{row.concept} mask")]):
            ax = axes[r, j]
            if overlay is None:
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            else:  # the mask at full brightness, the rest dimmed, outlined in red
                m = overlay.float().numpy()
                if m.shape != img.shape[:2]:
                    m_img = F.interpolate(overlay[None, None].float(), size=img.shape[:2])[0, 0].numpy()
                else:
                    m_img = m
                shade = 0.25 + 0.75 * m_img
                ax.imshow(img * (shade if img.ndim == 2 else shade[..., None]),
                          cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
                if m_img.any():
                    ax.contour(m_img, levels=[0.5], colors="red", linewidths=0.8)
            ax.set_axis_off()
            if j == 0:
                ax.set_title(title, fontsize=8, loc="left")
    kind = "detector" if row.detector else "not a detector"
    fig.suptitle(f"unit {unit}: {row.concept} ({row.category or '-'}), IoU {row.iou:.3f}, {kind}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def unit_browser(model, layer: str, data, result, unit: int | None = None, k: int = 6):
    """An ipywidgets menu of units (best IoU first) that redraws `show_unit` (notebook 03).

    Figures are placed in the Output widget with `append_display_data` rather than captured
    with `with out:`: capturing swaps the kernel's parent message, which under headless
    execution (papermill, nbval) occasionally left the cell waiting forever.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    table = result.table.sort_values("iou", ascending=False)
    options = [(f"unit {r.unit}: {r.concept} ({r.category or '-'}) IoU {r.iou:.3f}"
                + (" *" if r.detector else ""), int(r.unit)) for r in table.itertuples()]
    menu = widgets.Dropdown(options=options, value=int(table.unit.iloc[0]) if unit is None else unit,
                            description="unit", layout=widgets.Layout(width="420px"))
    out = widgets.Output()

    def draw(chosen):
        fig = show_unit(model, layer, data, result, chosen, k)
        out.outputs = ()
        out.append_display_data(fig)
        plt.close(fig)

    menu.observe(lambda change: draw(change["new"]), names="value")
    draw(menu.value)
    return widgets.VBox([menu, out])


# ---------------------------------------------------------------- explanations (05, 06)

def plot_explanations(images: torch.Tensor, maps: dict, titles: list[str] | None = None,
                      signed: bool = False):
    """Images in the first row, then one row of explanation maps per model (notebooks 05, 06).

    signed=True draws maps with a diverging colour map centred at 0 (B-cos contributions and
    input×gradient can be negative); otherwise each map is scaled to its own maximum.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(images)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(1.5 * n, 1.55 * (1 + len(maps))), squeeze=False)
    for j in range(n):
        img = images[j].float() / 255 if images.dtype == torch.uint8 else images[j].float()
        axes[0, j].imshow(img.permute(1, 2, 0).numpy().squeeze(), cmap="gray")
        if titles:
            axes[0, j].set_title(titles[j], fontsize=7)
        for i, (name, m) in enumerate(maps.items(), start=1):
            m = m[j].float().numpy()
            if signed:
                v = float(np.abs(m).max()) or 1.0
                axes[i, j].imshow(m, cmap="bwr", vmin=-v, vmax=v)
            else:
                axes[i, j].imshow(m, cmap="inferno", vmin=0, vmax=float(m.max()) or 1.0)
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
