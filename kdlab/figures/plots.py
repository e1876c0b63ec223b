"""The course's static figures (matplotlib, imported inside each function, so that importing
this module stays light). Each returns the Figure it drew; the charts of one Axes return it
(give them `ax` to place them in a figure of your own).

Taught where each is first used:
    show_gallery, show_class_gallery, show_concept_masks   the dataset (notebook 00)
    plot_softened                  soft labels at a temperature (notebook 01)
    plot_heatmaps                  class-similarity matrices (notebook 02)
    plot_learning_curves           training curves of several kinds of model (notebooks 02, 05)
    plot_projections               Müller et al.'s template projections (notebook 02)
    plot_bars_with_seeds           results over seeds: bars for the mean, a dot per seed, drawn
                                   by plot_seed_spread (02, 04), plot_counts (03, 04),
                                   plot_detectors_by_kind (04) and plot_seed_bars (06)
    show_unit                      a unit's top images and masks (notebook 03)
    plot_overlays, explanation_frame   explanation maps over their images (notebooks 04-06)
    plot_verdicts                  paired differences with their intervals, the verdicts' basis
                                   (notebooks 02, 04, 05, 06)

One colour per kind of model in the whole course: every figure here that colours by
kind (learning curves, bars over seeds, detector counts) takes it from `kind_colour`
(the table KIND_COLOURS); a group of no known kind keeps matplotlib's C0, C1, ... by its
position. Notebooks that draw kinds by hand should colour them with `kind_colour` too.

The pickers that choose among these figures are in kdlab.figures.widgets; the calculations
behind some of them (class_similarity, template_projection) in kdlab.metrics.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from .. import dissect
from ..data import ImageSet
from ..runtime.moved import moved_names

# names that left this module (it was kdlab.plots), still reachable here with a warning
__getattr__ = moved_names(__name__, {
    "figure_image": "kdlab.figures.widgets", "figure_picker": "kdlab.figures.widgets",
    "explanation_picker": "kdlab.figures.widgets",
    "class_similarity": "kdlab.metrics", "template_projection": "kdlab.metrics"})


# ---------------------------------------------------------------- one colour per kind

# tab10, with a light tab20 partner for a kind's variant: kinds shown together differ in
# hue or lightness, for colour-blind readers too. KD keeps the green of notebooks 02 and
# 04; the teacher has the grey of its reference lines.
KIND_COLOURS = {
    "scratch": "#1f77b4", "ls": "#ff7f0e", "kd": "#2ca02c",  # blue, orange, green
    "kd_from_ls": "#17becf", "control": "#98df8a",  # cyan; light green: 06's KD control
    "soft_family": "#8c564b", "soft_permuted": "#e377c2",     # brown, pink
    "soft_part": "#bcbd22", "soft_uniform": "#ffbb78",        # olive, light orange: LS
    "e2kd": "#9467bd", "e2kd_frozen": "#9467bd",              # purple: the main e²KD
    "e2kd_layer2": "#9467bd",                                 # (06's main layer)
    "e2kd_online": "#c5b0d5", "e2kd_layer3": "#c5b0d5",       # light purple: variants
    "teacher": "#7f7f7f", "teacher_ls": "#c7c7c7", "teacher_guided": "#404040",  # greys
}
# display names that do not start with their kind
KIND_ALIASES = {"ls_teacher": "teacher_ls", "guided_teacher": "teacher_guided",
                "course_teacher": "teacher"}
UNKNOWN_KIND_COLOUR = "#595959"  # dark grey: no known kind and no fallback


def kind_colour(kind, fallback: str | None = None) -> str:
    """The colour of a model kind, given a kind ("kd_from_ls") or a display label ("KD",
    "e²KD (layer2)", "e2kd-frozen", "LS teacher (ε=0.1)", "scratch (seed 0)").

    The label is normalised (lower case, e² as e2, the word "student" dropped, each run
    of other characters one "_") and read as its longest known prefix that ends a word:
    "kd_seed_3" is kd, "kd_from_ls" kd_from_ls, "e2kd_layer4" e2kd. A label of no known
    kind gets `fallback`, or UNKNOWN_KIND_COLOUR without one.
    """
    words = re.split(r"[\W_]+", str(kind).lower().replace("²", "2"))
    key = "_".join(w for w in words if w and w not in ("student", "students"))
    known = {**{k: k for k in KIND_COLOURS}, **KIND_ALIASES}
    matches = [k for k in known if key == k or key.startswith(k + "_")]
    if not matches:
        return fallback or UNKNOWN_KIND_COLOUR
    return KIND_COLOURS[known[max(matches, key=len)]]


# ---------------------------------------------------------------- the dataset (00)

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

    from ..synthetic import designated_scenes

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


# ---------------------------------------------------------------- what students learn (01, 02, 05)

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


def plot_learning_curves(histories: dict[str, list[list[dict]]],
                         keys=("loss", "train_acc", "heldout_acc")):
    """Per-epoch training curves of several kinds of model (notebooks 02, 05): one thin line per
    seed, a thick line for the mean, in the kind's colour (`kind_colour`). `histories`
    maps a kind to its models' fit histories (kdlab.train.TrainedModel.history). Flat
    ends mean the students reached their plateau. heldout_acc (images the models never
    trained on: kdlab.train.fit's held_out, maybe every few epochs) is drawn at the epochs and
    for the models that recorded it; a key no model recorded gets no panel."""
    import matplotlib.pyplot as plt

    titles = {"loss": "training loss (the kind's own objective)",
              "train_acc": "accuracy on the training batches",
              "heldout_acc": "accuracy on held-out test images"}

    def recorded(run, key):
        return bool(run) and key in run[-1]

    keys = [k for k in keys if any(recorded(r, k) for runs in histories.values() for r in runs)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (kind, runs) in enumerate(histories.items()):
            runs = [run for run in runs if recorded(run, key)]
            if not runs:
                continue
            curves = np.array([[record[key] for record in run if key in record] for run in runs])
            epochs = [record["epoch"] for record in runs[0] if key in record]
            colour = kind_colour(kind, fallback=f"C{i}")
            for curve in curves:
                ax.plot(epochs, curve, color=colour, lw=0.6, alpha=0.4)
            ax.plot(epochs, curves.mean(0), color=colour, lw=2, label=kind)
        ax.set(xlabel="epoch", title=titles.get(key, key))
        if key.endswith("_acc"):
            ax.set_ylim(0, 1)
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


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


# ---------------------------------------------------------------- results over seeds (02-06)

def plot_bars_with_seeds(table, value: str, groups: list, group_column: str,
                         hue_column: str | None = None, hues: list | None = None, ax=None, *,
                         alpha: float = 0.6, width: float = 0.8, jitter: float = 0.0,
                         dots: bool = True, dot_label: str | None = "one seed",
                         error_bars: bool = False, reference: float | None = None,
                         reference_label: str = "teacher", chance: float | None = None,
                         top: float | None = None):
    """Bars for the mean over seeds with a dot for each seed: the course's chart of a result
    over several seeds (notebooks 02-06), on an axis from zero (to `top` when given).

    table: one row per seed (model) with the columns `value`, `group_column` and, for grouped
    bars, `hue_column`. A bar per group along the x axis, coloured by group; with a hue,
    `hues` bars side by side per group, coloured and labelled (for a legend) by hue. A
    model kind's colour is `kind_colour`'s; any other group or hue is C0, C1, ... by its
    position. Missing values are left out; a bar without values is not drawn.
    alpha, width: the bars' opacity and the width all of a group's bars share. jitter: spreads
    a bar's dots over ±jitter, so that equal values (counts) stay apart. error_bars: one
    standard deviation over seeds. reference: a dashed grey line (e.g. the teacher's value);
    chance: a dotted red one. Draws no legend: the caller knows where it fits.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    hues = [None] if hue_column is None else list(hues)
    bar = width / len(hues)
    for k, hue in enumerate(hues):
        for i, group in enumerate(groups):
            values = _seed_values(table, value, {group_column: group, hue_column: hue})
            if not len(values):
                continue
            x, mean = i - width / 2 + bar * (k + 0.5), values.mean()
            first_bar = _first_label(ax, hue) if hue_column else None
            name, position = (hue, k) if hue_column else (group, i)
            colour = kind_colour(name, fallback=f"C{position}")
            ax.bar(x, mean, bar, color=colour, alpha=alpha, label=first_bar)
            if error_bars:
                ax.errorbar(x, mean, yerr=values.std(ddof=1) if len(values) > 1 else 0,
                            color="k", capsize=4)
            if dots:
                ax.scatter(x + _spread(len(values), jitter), values, s=10, color="k", zorder=3,
                           label=_first_label(ax, dot_label))
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", label=reference_label)
    if chance is not None:
        ax.axhline(chance, color="C3", ls=":", label="chance")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(value)
    ax.set_ylim(0, top)
    return ax


def _seed_values(table, value: str, where: dict) -> np.ndarray:
    """The non-missing `value`s of the rows matching every {column: wanted} (None: any)."""
    rows = np.ones(len(table), dtype=bool)
    for column, wanted in where.items():
        if column is not None:
            rows &= (table[column] == wanted).to_numpy()
    return table.loc[rows, value].dropna().to_numpy(dtype=float)


def _first_label(ax, label) -> str | None:
    """`label` the first time it is drawn on `ax`, None after: one legend entry per label."""
    if label is None or str(label) in ax.get_legend_handles_labels()[1]:
        return None
    return str(label)


def _spread(n: int, jitter: float) -> np.ndarray:
    return np.linspace(-jitter, jitter, n) if n > 1 else np.zeros(1)


def plot_seed_spread(table, metric: str, order: list[str] | None = None, ax=None, reference=None,
                     chance: float | None = None, top: float | None = None,
                     reference_label: str = "teacher"):
    """A bar (the mean) and error bar (one standard deviation) per method with each seed as a
    dot (a pandas table with columns 'method', 'seed' and `metric`; notebooks 02, 04); the
    reference and chance lines, when given, with a legend."""
    order = order or list(dict.fromkeys(table["method"]))
    ax = plot_bars_with_seeds(table, metric, order, "method", ax=ax, alpha=0.5, error_bars=True,
                              reference=reference, reference_label=reference_label,
                              chance=chance, top=top)
    if reference is not None or chance is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.95)
    return ax


def plot_seed_bars(table, metric: str, groups: list[str], hue: str, hue_order: list[str],
                   ax=None, chance: float | None = None, chance_label: str = "chance",
                   group_column: str = "model"):
    """Bars per group (`group_column`) and hue, e.g. each model's accuracy on each test set,
    with every seed as a dot and `chance` as a dashed line labelled `chance_label` (notebook
    06, which places the legend)."""
    return plot_bars_with_seeds(table, metric, groups, group_column, hue, hue_order, ax,
                                reference=chance, reference_label=chance_label)


VERDICT_COLOURS = {"shown": "tab:green", "opposite": "tab:red", "equivalent": "tab:blue",
                   "inconclusive": "0.45", "not testable": "0.75"}


def plot_verdicts(runs: dict, roles=("check", "primary", "matched"), width: float = 7.5):
    """What every verdict rests on: each claim's mean paired difference with its interval, a
    panel per claim (claims differ in units, so each has its own scale) and a line per run in
    `runs` ({label: a kdlab.claims.decide table}, e.g. kdlab.claims.gather's; notebooks 02, 04,
    05, 06). Grey band: ±margin; dotted: zero; colour and right-hand text: the verdict. Only the
    claims of `roles` (None: all)."""
    import matplotlib.pyplot as plt

    ids = list(dict.fromkeys(i for t in runs.values() for i in t.index
                             if roles is None or t.at[i, "role"] in roles))
    if not ids:
        raise ValueError(f"plot_verdicts: no claim of the roles {roles} in these runs")
    n = len(runs)
    fig, axes = plt.subplots(len(ids), 1, figsize=(width, len(ids) * (0.2 * n + 0.4)), squeeze=False)
    for ax, claim_id in zip(axes[:, 0], ids):
        rows = {label: t.loc[claim_id] for label, t in runs.items() if claim_id in t.index}
        first = next(iter(rows.values()))
        margin = float(first["margin"])
        ax.axvspan(-margin, margin, color="0.92", lw=0)
        ax.axvline(0, color="0.4", ls=":", lw=1)
        span = [margin, -margin]
        for k, (label, r) in enumerate(rows.items()):
            if not np.isfinite([r["mean"], r["low"], r["high"]]).all():
                continue
            colour = VERDICT_COLOURS.get(r["verdict"], "black")
            ax.errorbar(r["mean"], -k, xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                        fmt="o", ms=4, capsize=3, color=colour)
            ax.text(1.01, -k, r["verdict"], transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color=colour)
            span += [r["low"], r["high"]]
        pad = 0.08 * (max(span) - min(span))
        ax.set(xlim=(min(span) - pad, max(span) + pad), ylim=(-n + 0.5, 0.5))
        ax.set_yticks([-k for k in range(len(rows))], list(rows), fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{claim_id}: {first['a']} − {first['b']} ({first['statistic']})", loc="left",
                     fontsize=8, pad=2)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- network dissection (03, 04)

def plot_counts(results: dict, ax=None, points: dict | None = None):
    """Detectors per category, a bar per name side by side: {name: Dissection or counts
    Series} (notebooks 03, 04).

    points: {name: DataFrame with one row per model (seed) and a column per category}, drawn
    as dots over the bars, which then show their mean.
    """
    import pandas as pd

    counts = {k: (v.counts if hasattr(v, "counts") else v) for k, v in results.items()}
    categories = list(next(iter(counts.values())).index)
    seeds = []  # one row per (name, category, seed); without points the count is one "seed"
    for name, c in counts.items():
        for cat in categories:
            values = points[name][cat] if points and name in points else [c.get(cat, 0)]
            seeds += [{"category": cat, "name": name, "concept detectors": float(v)} for v in values]
    ax = plot_bars_with_seeds(pd.DataFrame(seeds), "concept detectors", categories, "category",
                              "name", list(counts), ax, alpha=0.75 if points else 1.0,
                              dots=points is not None, dot_label=None)
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
    plot_bars_with_seeds(table, "detectors", kinds, "kind", ax=ax1, alpha=0.75, width=0.7,
                         jitter=0.18, dot_label=None)
    ax1.tick_params(axis="x", labelsize=9)
    ax1.set(ylabel="concept detectors", title="all detectors")
    per_category = table.melt(id_vars="kind", value_vars=list(categories),
                              var_name="category", value_name="concept detectors")
    plot_bars_with_seeds(per_category, "concept detectors", list(categories), "category",
                         "kind", kinds, ax2, alpha=0.75, dot_label=None)
    ax2.set_title("per category")
    ax2.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    if units:  # one scale for every setting: the layer's number of units
        for ax in (ax1, ax2):
            ax.axhline(units, color="0.5", lw=0.8, ls="--")
            ax.set_ylim(0, units * 1.05)
        ax1.text(len(kinds) - 0.5, units, f"all {units} units", ha="right", va="bottom",
                 fontsize=8, color="0.4")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_unit(model, layer: str, data, result, unit: int, k: int = 6):
    """A unit at a glance: its top images, its mask on them and its concept's mask (notebook
    03's unit picker draws one per unit)."""
    import matplotlib.pyplot as plt

    images, unit_mask, concept_mask = dissect.unit_masks(model, layer, data, result, unit, k)
    row = result.table.iloc[unit]
    rows = {"image": None, "unit mask (A > T)": unit_mask, f"{row.concept} mask": concept_mask}
    fig, axes = plt.subplots(3, len(images), figsize=(1.6 * len(images), 5.2), squeeze=False)
    for r, (title, masks) in enumerate(rows.items()):
        for j, image in enumerate(images):
            img = _to_hwc(image)
            if masks is None:
                axes[r, j].imshow(img, cmap="gray" if img.ndim == 2 else None)
            else:
                _highlight(axes[r, j], img, masks[j])
            axes[r, j].set_axis_off()
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    kind = "detector" if row.detector else "not a detector"
    fig.suptitle(f"unit {unit}: {row.concept} ({row.category or '-'}), IoU {row.iou:.3f}, {kind}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _highlight(ax, img: np.ndarray, mask: torch.Tensor) -> None:
    """The mask's pixels at full brightness, the rest dimmed, the mask outlined in red."""
    m = mask.float()
    if tuple(m.shape) != img.shape[:2]:  # masks can be coarser than the image
        m = F.interpolate(m[None, None], size=img.shape[:2])[0, 0]
    m = m.numpy()
    shade = 0.25 + 0.75 * m
    ax.imshow(img * (shade if img.ndim == 2 else shade[..., None]),
              cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    if m.any():
        ax.contour(m, levels=[0.5], colors="red", linewidths=0.8)


# ---------------------------------------------------------------- explanations (04-06)

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
    title (an empty panel shows its caption inside). All maps share one colour scale (each
    divided by its own maximum, as in `plot_overlays`) and one colourbar.
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
