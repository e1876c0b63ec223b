"""Figures for the notebooks (matplotlib is imported inside each function).

Taught where each is first used: the gallery and masks in notebook 00, softened
distributions in notebook 01, similarity heatmaps, seed spreads and Müller projections in
notebook 02.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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
