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


def show_class_gallery(data: ImageSet, class_index: int, n: int = 8, columns: int = 8):
    """The first `n` images of one class, each titled with its scene; scenes designated for
    the class (kdlab.synthetic.designated_scenes) in bold red. Notebook 00's class picker."""
    import matplotlib.pyplot as plt

    from .synthetic import designated_scenes

    members = torch.nonzero(data.labels == class_index).flatten()[:n]
    scene_numbers = [i for i, c in enumerate(data.concept_categories) if c == "scene"]
    design = data.meta.get("design", "v1")
    hinted = {scene_numbers[s] for s in designated_scenes(class_index, design)}
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.4 * columns, 1.9 * rows))
    for ax in np.atleast_1d(axes).flat:
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).flat, members.tolist()):
        scene = int(data.image_labels["scene"][i])
        ax.imshow(_to_hwc(data.images[i]))
        ax.set_title(data.concepts[scene], fontsize=7, color="tab:red" if scene in hinted else "k",
                     fontweight="bold" if scene in hinted else "normal")
    fig.suptitle(f"class '{data.classes[class_index]}': its first {len(members)} images, titled "
                 "with their scene (red: one of the class's designated scenes)", fontsize=9)
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


def plot_heatmaps(matrices: dict[str, torch.Tensor], classes: list[str], vmax: float | None = None,
                  label: str = "mean probability (diagonal hidden)", panel_size: float = 5.0,
                  marks: dict[str, float] | None = None, suptitle: str | None = None):
    """Side-by-side heatmaps (e.g. soft-label similarity matrices, notebook 02), off-diagonal
    emphasised, on ONE shared colour scale from 0 with one labelled colourbar, so that a
    flatter matrix also looks flatter.

    vmax: the top of the shared scale (default: the largest off-diagonal value of all
    matrices; pass the same vmax to several figures to compare them, e.g. the frames of a
    picker). marks: {text: value} drawn as lines on the colourbar (e.g. the LS target ε/K).
    """
    import matplotlib.pyplot as plt

    shown = {}
    for title, m in matrices.items():
        off = m.detach().float().cpu().clone()
        off.fill_diagonal_(float("nan"))  # the diagonal dwarfs the structure
        shown[title] = off.numpy()
    if vmax is None:
        vmax = max(float(np.nanmax(m)) for m in shown.values())
    n = len(shown)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n + 1.4, panel_size + 0.6),
                             squeeze=False, sharey=True, layout="constrained")
    for j, (ax, (title, m)) in enumerate(zip(axes[0], shown.items())):
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=11)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=9)
        ax.set_yticks(range(len(classes)), classes, fontsize=9)
        ax.tick_params(labelleft=j == 0)
        ax.set_xlabel("target class", fontsize=9)
    axes[0, 0].set_ylabel("true class of the images", fontsize=9)
    bar = fig.colorbar(im, ax=list(axes[0]), shrink=0.85, pad=0.02)
    bar.set_label(label, fontsize=10)
    for text, value in (marks or {}).items():
        bar.ax.axhline(value, color="w", lw=2)
        bar.ax.text(1.05, value, f" {text}", transform=bar.ax.get_yaxis_transform(),
                    va="center", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return fig


def plot_seed_spread(table, metric: str, order: list[str] | None = None, ax=None, reference=None,
                     chance: float | None = None, top: float | None = None,
                     reference_label: str = "teacher"):
    """Each seed as a dot and the mean as a bar (error bar: one standard deviation), per
    method (a pandas table with columns 'method', 'seed' and `metric`; notebook 02). The
    value axis starts at zero (up to `top` when given); `reference` (e.g. the teacher's
    value) and `chance` are drawn as dashed lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    order = order or list(dict.fromkeys(table["method"]))
    for i, method in enumerate(order):
        values = table.loc[table["method"] == method, metric].to_numpy()
        ax.bar(i, values.mean(), color="C%d" % i, alpha=0.5)
        ax.errorbar(i, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, color="k",
                    capsize=4)
        ax.scatter(np.full(len(values), i), values, color="k", s=12, zorder=3,
                   label="one seed" if i == 0 else None)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", label=reference_label)
    if chance is not None:
        ax.axhline(chance, color="C3", ls=":", label="chance")
    if reference is not None or chance is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.95)
    ax.set_xticks(range(len(order)), order)
    ax.set_ylabel(metric)
    ax.set_ylim(0, top)
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
    """Scatter plots of projected features, one panel per model: {title: (coords, labels)}
    (notebook 02)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4.4), squeeze=False)
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


def plot_detectors_by_kind(table, kinds, categories, units: int | None = None,
                           title: str = ""):
    """Concept detectors of each kind of student at one setting: notebook 04's quantile ×
    IoU threshold picker draws one such figure per setting.

    table: one row per model with a "kind" column, a "detectors" column (all detectors) and
    one column per category. Left: all detectors per kind; right: per category. Bars are
    the mean over the kind's models (seeds), dots each model. Both value axes run from 0 to
    `units` (the layer's number of units), so that every setting is drawn on one scale.
    """
    import matplotlib.pyplot as plt

    kinds = [k for k in kinds if (table.kind == k).any()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.3),
                                   gridspec_kw={"width_ratios": [1, 2]})
    for i, kind in enumerate(kinds):
        values = table[table.kind == kind]["detectors"].to_numpy(dtype=float)
        ax1.bar(i, values.mean(), 0.7, color=f"C{i}", alpha=0.75)
        spread = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
        ax1.scatter(i + spread, values, s=12, color="k", zorder=3)
    ax1.set_xticks(range(len(kinds)), kinds, fontsize=9)
    ax1.set(ylabel="concept detectors", title="all detectors")
    means = {k: table[table.kind == k][list(categories)].mean() for k in kinds}
    plot_counts(means, ax=ax2, points={k: table[table.kind == k] for k in kinds})
    ax2.set_title("per category")
    ax2.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    for ax in (ax1, ax2):
        if units:
            ax.axhline(units, color="0.5", lw=0.8, ls="--")
            ax.set_ylim(0, units * 1.05)
        else:
            ax.set_ylim(bottom=0)
    if units:
        ax1.text(len(kinds) - 0.5, units, f"all {units} units", ha="right", va="bottom",
                 fontsize=8, color="0.4")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_unit(model, layer: str, data, result, unit: int, k: int = 6):
    """The unit browser's figure: top images, the unit's mask, the concept's mask (notebook 03)."""
    import matplotlib.pyplot as plt

    images, unit_mask, concept_mask = dissect.unit_masks(model, layer, data, result, unit, k)
    row = result.table.iloc[unit]
    fig, axes = plt.subplots(3, len(images), figsize=(1.6 * len(images), 5.2), squeeze=False)
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


# ---------------------------------------------------------------- precomputed figures (all)

def figure_image(fig, dpi: int = 80) -> bytes:
    """A matplotlib figure as WebP bytes, quality 90 (the figure is closed: a picker shows it).

    Every frame of a picker is stored in the saved notebook; WebP keeps these figures' text,
    colour bars and heat maps legible at a third to a half of a PNG's size (a PNG quantised to
    256 colours is smaller still but bands the colour bars).
    """
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    png, webp = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    Image.open(png).convert("RGB").save(webp, format="webp", quality=90, method=6)
    return webp.getvalue()


def _choice(labels: list, description: str, slider: bool):
    import ipywidgets as widgets

    options = [str(label) for label in labels]
    style = {"description_width": "initial"}
    if slider:
        return widgets.SelectionSlider(options=options, description=description, style=style,
                                       continuous_update=True)
    return widgets.Dropdown(options=options, description=description, style=style)


def figure_picker(frames: dict, names=("show",), slider: bool = False, dpi: int = 80):
    """Controls that choose among precomputed figures: the reader moves the key variable and
    sees its figure, in JupyterLab and in the published book alike (all notebooks).

    frames: {label: matplotlib Figure, or PNG or WebP bytes}, one control named names[0]; or
    {(a, b): figure} for two controls (names[0] picks a, names[1] picks b), e.g. notebook 04's
    quantile × IoU threshold. Every figure is drawn once, up front, into an ipywidgets Stack,
    and each control is tied to its Stack with `jslink`, which runs in the browser: the book's
    saved widget state keeps working without a kernel, where a callback that redraws could not.
    """
    import ipywidgets as widgets

    if not frames:
        raise ValueError("figure_picker needs at least one figure")
    names = (names,) if isinstance(names, str) else tuple(names)

    def image(frame):
        data = frame if isinstance(frame, bytes) else figure_image(frame, dpi)
        kind = "png" if data.startswith(b"\x89PNG") else "webp"
        return widgets.Image(value=data, format=kind, layout=widgets.Layout(max_width="100%"))

    keys = list(frames)
    if not isinstance(keys[0], tuple):
        control = _choice(keys, names[0], slider)
        stack = widgets.Stack([image(frames[k]) for k in keys], selected_index=0)
        widgets.jslink((control, "index"), (stack, "selected_index"))
        return widgets.VBox([control, stack])
    if len(names) != 2 or any(not isinstance(k, tuple) or len(k) != 2 for k in keys):
        raise ValueError("two controls need two names and (a, b) keys for every figure")
    firsts, seconds = list(dict.fromkeys(k[0] for k in keys)), list(dict.fromkeys(k[1] for k in keys))
    missing = [(a, b) for a in firsts for b in seconds if (a, b) not in frames]
    if missing:
        raise ValueError(f"figure_picker needs a figure for every pair; missing {missing[:3]}")
    first, second = _choice(firsts, names[0], slider), _choice(seconds, names[1], slider)
    rows = []
    for a in firsts:
        row = widgets.Stack([image(frames[(a, b)]) for b in seconds], selected_index=0)
        widgets.jslink((second, "index"), (row, "selected_index"))
        rows.append(row)
    outer = widgets.Stack(rows, selected_index=0)
    widgets.jslink((first, "index"), (outer, "selected_index"))
    return widgets.VBox([widgets.HBox([first, second]), outer])


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


def _scaled_map(m: torch.Tensor, size, signed: bool) -> np.ndarray:
    """A map resized to `size` and divided by its largest value (|value| when signed), so
    every map lies in [0, 1] (or [-1, 1]); an all-zero map stays zero."""
    m = m.detach().float().cpu()
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m[None, None], size=tuple(size), mode="bilinear",
                          align_corners=False)[0, 0]
    m = m if signed else m.clamp(min=0)
    top = float(m.abs().max())
    return (m / top if top > 0 else m).numpy()


def _overlay(ax, image: torch.Tensor, m: torch.Tensor, signed: bool = False, alpha: float = 0.55):
    """The image in grey with the map over it on the shared scale of `_scaled_map`."""
    img = _to_hwc(image)
    grey = img if img.ndim == 2 else img.mean(-1)
    # nearest: one block per image pixel (the map is already upsampled to the image), which
    # shows the data as it is and stores several times smaller than a smoothed rendering
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    cmap, lo = ("bwr", -1.0) if signed else ("inferno", 0.0)
    shown = ax.imshow(_scaled_map(m, grey.shape, signed), cmap=cmap, vmin=lo, vmax=1.0,
                      alpha=alpha, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def _map_label(signed: bool, label: str | None) -> str:
    if label:
        return label
    return ("share of the map's largest |value|" if signed
            else "share of the map's maximum")


def _caption(ax, caption, fontsize: float = 8) -> None:
    """A panel title: a string, or (string, colour)."""
    text, colour = caption if isinstance(caption, tuple) else (caption, "black")
    ax.set_title(text, fontsize=fontsize, color=colour)


def plot_overlays(images: torch.Tensor, maps: dict, image_titles: list[str] | None = None,
                  signed: bool = False, label: str | None = None, masks: torch.Tensor | None = None,
                  level: float | None = None, title: str = "", dpi: int | None = None):
    """Explanation maps overlaid on their images, one row per model under a row of the
    images, on one shared colour scale with one colourbar (notebooks 05, 06).

    maps: {model name: (N, H, W) maps} for the N `images`. Each map is divided by its own
    maximum (GradCAM's scale differs between models and says nothing by itself), so the
    colour reads "share of the map's maximum"; signed=True (B-cos contributions) divides by
    the largest |value| and uses a diverging scale centred at 0 (notebook 04 uses it first).
    masks: (N, H, W) object masks, outlined in cyan on every panel; level: also outline in
    white where a map reaches that share of its maximum (the pixels a saliency score counts).
    dpi: the figure's resolution (80 keeps the saved notebook small).
    """
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(max(9.0, 1.3 * n + 1.2),
                                                        1.35 * (1 + len(maps)) + 0.3),
                             squeeze=False, layout="constrained", dpi=dpi)
    shown = None
    for j in range(n):
        img = _to_hwc(images[j])
        axes[0, j].imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        axes[0, j].set_xticks([])
        axes[0, j].set_yticks([])
        if image_titles:
            axes[0, j].set_title(image_titles[j], fontsize=7)
        for i, (name, m) in enumerate(maps.items(), start=1):
            shown = _overlay(axes[i, j], images[j], m[j], signed)
            if level is not None and float(m[j].max()) > 0:
                axes[i, j].contour(_scaled_map(m[j], _to_hwc(images[j]).shape[:2], signed),
                                   levels=[level], colors="white", linewidths=0.9)
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=8)
        if masks is not None:
            for ax in axes[:, j]:
                ax.contour(masks[j].float().numpy(), levels=[0.5], colors="cyan", linewidths=0.8)
    if len(maps) == 1:  # one row of maps: a vertical bar would be too short to label
        fig.colorbar(shown, ax=axes[1:, :].ravel().tolist(), orientation="horizontal",
                     shrink=0.35, aspect=30, pad=0.03, label=_map_label(signed, label))
    else:
        fig.colorbar(shown, ax=axes[1:, :].ravel().tolist(), fraction=0.02, pad=0.01,
                     aspect=10 * len(maps), label=_map_label(signed, label))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def explanation_frame(image: torch.Tensor, rows: dict, captions: dict | None = None,
                      image_title: str = "", title: str = "", signed: bool = False,
                      label: str | None = None):
    """One image beside every model's explanation map overlaid on it: one frame of
    `explanation_picker` (notebooks 05, 06).

    rows: {row label: {model name: (H, W) map, or None for an empty panel}}; several rows
    show several maps per model (e.g. for the teacher's class and for the model's own
    prediction). captions: {row label: {model name: text or (text, colour)}}, each panel's
    title (an empty panel shows its caption inside). All maps share one colour scale (each divided by its own maximum, as in
    `plot_overlays`) and one colourbar.
    """
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(name for row in rows.values() for name in row))
    n_rows = len(rows)
    fig, axes = plt.subplots(n_rows, 1 + len(columns),
                             figsize=(max(9.0, 2.0 * (1 + len(columns)) + 1.0),
                                      2.25 * n_rows + (0.4 if title else 0.1)),
                             squeeze=False, layout="constrained")
    img = _to_hwc(image)
    axes[0, 0].imshow(img, cmap="gray" if img.ndim == 2 else None)
    axes[0, 0].set_title(image_title, fontsize=8)
    for ax in axes[1:, 0]:
        ax.set_axis_off()
    axes[0, 0].set_xticks([])
    axes[0, 0].set_yticks([])
    shown, used = None, []
    for i, (row_label, row) in enumerate(rows.items()):
        for j, name in enumerate(columns, start=1):
            ax, m = axes[i, j], row.get(name)
            text = (captions or {}).get(row_label, {}).get(name)
            if m is None:  # an empty panel; its caption, if any, written inside it
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if text:
                    text, colour = text if isinstance(text, tuple) else (text, "dimgray")
                    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8,
                            color=colour, transform=ax.transAxes)
                continue
            shown = _overlay(ax, image, m, signed)
            used.append(ax)
            _caption(ax, text or name)
        axes[i, 1].set_ylabel(row_label, fontsize=8)
    if shown is not None:
        fig.colorbar(shown, ax=used, shrink=0.9, aspect=25, label=_map_label(signed, label))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def explanation_picker(images: torch.Tensor, rows: dict, captions: dict | None = None,
                       image_titles: list[str] | None = None, title: str = "",
                       signed: bool = False, label: str | None = None, dpi: int = 80):
    """A menu of images; each shows the image and every model's explanation overlaid on it
    (notebooks 05, 06). The frames are drawn once, up front (`explanation_frame`), and chosen
    in the browser (`figure_picker`), so the menu works in the published book too.

    rows: {row label: {model name: (N, H, W) maps}} for the N `images` (keep N <= 12: every
    frame is stored in the notebook); a None instead of maps leaves that panel empty.
    captions: {row label: {model name: N texts or (text, colour) pairs}}.
    image_titles: N texts, each image's title and (numbered) its entry in the menu.
    """
    n = len(images)
    if not 0 < n <= 12:
        raise ValueError(f"explanation_picker shows 1 to 12 images (frames), got {n}")
    image_titles = image_titles or [f"image {j + 1}" for j in range(n)]
    frames = {}
    for j in range(n):
        frame_rows = {r: {name: (None if m is None else m[j]) for name, m in row.items()}
                      for r, row in rows.items()}
        frame_captions = {r: {name: texts[j] for name, texts in row.items()}
                          for r, row in (captions or {}).items()}
        fig = explanation_frame(images[j], frame_rows, frame_captions, image_titles[j],
                                title, signed, label)
        frames[f"{j + 1}: {image_titles[j]}"] = figure_image(fig, dpi)
    return figure_picker(frames, names=("image",), dpi=dpi)


def plot_seed_bars(table, metric: str, groups: list[str], hue: str, hue_order: list[str],
                   ax=None, chance: float | None = None, chance_label: str = "chance",
                   group_column: str = "model"):
    """Grouped bars (the mean over seeds) with every seed as a dot, the value axis from
    zero and a dashed chance line (notebook 06).

    table: one row per (group, hue, seed) with the column `metric`, e.g. the accuracy of
    each model (`group_column`) on each test set (`hue`) for each seed.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    width = 0.8 / len(hue_order)
    for k, h in enumerate(hue_order):
        for i, g in enumerate(groups):
            values = table.loc[(table[group_column] == g) & (table[hue] == h), metric]
            values = values.dropna().to_numpy(dtype=float)
            if not len(values):
                continue
            x = i - 0.4 + width * (k + 0.5)
            ax.bar(x, values.mean(), width, color=f"C{k}", alpha=0.6,
                   label=h if i == 0 else None)
            ax.scatter(np.full(len(values), x), values, s=10, color="k", zorder=3,
                       label="one seed" if (i == 0 and k == 0) else None)
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1, label=chance_label)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(metric)
    return ax
