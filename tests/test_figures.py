"""kdlab.figures: the one chart of results over seeds, the pickers, and the names that moved out
of kdlab.plots (they still resolve, with a DeprecationWarning)."""

import subprocess
import sys

import matplotlib
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from kdlab import metrics  # noqa: E402
from kdlab.figures import plots, widgets  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def bar_heights(ax) -> list[float]:
    return [patch.get_height() for patch in ax.patches]


def colours(ax) -> list[tuple]:
    return [p.get_facecolor()[:3] for p in ax.patches]


def colours_of(*names) -> list[tuple]:
    return [to_rgb(name) for name in names]


def dots_per_bar(ax) -> list[int]:
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    return [len(c.get_offsets()) for c in dots]


# two models on two test sets: three seeds each, but model "b" lacks one seed on "ood"
# and "a" has a missing value (left out)
SEEDS = pd.DataFrame([
    {"model": "a", "test": "in", "seed": 0, "accuracy": 0.5},
    {"model": "a", "test": "in", "seed": 1, "accuracy": 0.7},
    {"model": "a", "test": "in", "seed": 2, "accuracy": float("nan")},
    {"model": "a", "test": "ood", "seed": 0, "accuracy": 0.2},
    {"model": "a", "test": "ood", "seed": 1, "accuracy": 0.4},
    {"model": "b", "test": "in", "seed": 0, "accuracy": 0.9},
    {"model": "b", "test": "in", "seed": 1, "accuracy": 0.8},
    {"model": "b", "test": "in", "seed": 2, "accuracy": 1.0},
    {"model": "b", "test": "ood", "seed": 0, "accuracy": 0.6},
])


def test_grouped_bars_show_the_mean_with_a_dot_per_seed():
    ax = plots.plot_bars_with_seeds(SEEDS, "accuracy", ["a", "b"], "model", "test", ["in", "ood"],
                                    reference=0.25, reference_label="chance")
    # drawn hue by hue: (a, in), (b, in), (a, ood), (b, ood)
    assert bar_heights(ax) == pytest.approx([0.6, 0.9, 0.3, 0.6])
    assert dots_per_bar(ax) == [2, 3, 2, 1]
    assert colours(ax) == colours_of("C0", "C0", "C1", "C1"), "coloured by hue"
    centres = [p.get_x() + p.get_width() / 2 for p in ax.patches]
    assert centres == pytest.approx([-0.2, 0.8, 0.2, 1.2])
    assert ax.get_ylim()[0] == 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    _, labels = ax.get_legend_handles_labels()
    assert sorted(labels) == ["chance", "in", "one seed", "ood"], "one legend entry each"
    assert [line.get_ydata()[0] for line in ax.get_lines()] == [0.25]


def test_without_a_hue_each_group_has_its_colour_and_error_bar():
    table = SEEDS.rename(columns={"model": "method"})[SEEDS.test == "in"]
    ax = plots.plot_seed_spread(table, "accuracy", chance=0.25, top=1)
    assert bar_heights(ax) == pytest.approx([0.6, 0.9])
    assert dots_per_bar(ax) == [2, 3]
    assert colours(ax) == colours_of("C0", "C1"), "coloured by group"
    assert ax.get_ylim() == (0, 1)
    assert len(ax.containers) == 4, "a bar and an error bar per method"
    assert ax.get_legend() is not None


def test_an_empty_bar_is_not_drawn():
    only_b = SEEDS[SEEDS.model == "b"]
    ax = plots.plot_seed_bars(only_b, "accuracy", ["a", "b"], "test", ["in", "ood"])
    assert bar_heights(ax) == pytest.approx([0.9, 0.6])


def test_detector_counts_per_kind_and_category():
    table = pd.DataFrame({"kind": ["kd", "kd", "scratch"], "object": [2, 4, 1], "part": [0, 2, 3]})
    table["detectors"] = table.object + table.part
    fig = plots.plot_detectors_by_kind(table, ["scratch", "kd", "ls"], ["object", "part"], units=8)
    left, right = fig.axes
    assert bar_heights(left) == pytest.approx([4, 4])            # scratch, kd; no ls models
    assert dots_per_bar(left) == [1, 2]
    assert bar_heights(right) == pytest.approx([1, 3, 3, 1])     # scratch's, then kd's categories
    assert left.get_ylim() == right.get_ylim() == pytest.approx((0, 8.4))

    counts = plots.plot_counts({"a": pd.Series({"object": 3, "part": 1})})
    assert bar_heights(counts) == [3, 1] and not dots_per_bar(counts), "no dots without points"


MAIN_KINDS = ("scratch", "ls", "kd", "kd_from_ls", "soft_family", "soft_permuted",
              "e2kd", "control", "teacher")


def test_a_kind_has_one_colour_whatever_its_label():
    kd = plots.KIND_COLOURS["kd"]
    for label in ("kd", "KD", "KD (seed 3)", "KD student", "KD online", "kd-seed-0"):
        assert plots.kind_colour(label) == kd, label
    assert plots.kind_colour("kd_from_ls") == plots.KIND_COLOURS["kd_from_ls"] != kd
    assert plots.kind_colour("LS") == plots.kind_colour("ls (seed 1)") != kd
    assert plots.kind_colour("scratch (seed 0)") == plots.KIND_COLOURS["scratch"]
    assert plots.kind_colour("LS teacher (ε=0.1)") == plots.KIND_COLOURS["teacher_ls"]
    assert plots.kind_colour("guided teacher") == plots.KIND_COLOURS["teacher_guided"]


@pytest.mark.parametrize("label, kind", [
    ("e2kd", "e2kd"), ("e²KD", "e2kd"), ("e²KD (layer2)", "e2kd_layer2"),
    ("e2kd-frozen", "e2kd_frozen"), ("e²KD student (layer3)", "e2kd_layer3"),
    ("e²KD online", "e2kd_online"), ("e2kd_layer4", "e2kd")])
def test_e2kd_variants_have_their_colours(label, kind):
    assert plots.kind_colour(label) == plots.KIND_COLOURS[kind]


def test_an_unknown_label_gets_the_fallback():
    assert plots.kind_colour("in distribution", fallback="C3") == "C3"
    assert plots.kind_colour("kdx", fallback="C4") == "C4", "a prefix ends at a word"
    assert plots.kind_colour("object") == plots.UNKNOWN_KIND_COLOUR
    assert plots.UNKNOWN_KIND_COLOUR not in {plots.KIND_COLOURS[k] for k in MAIN_KINDS}


def test_no_two_main_kinds_share_a_colour():
    shown = [to_rgb(plots.KIND_COLOURS[kind]) for kind in MAIN_KINDS]
    assert len(set(shown)) == len(MAIN_KINDS)


@pytest.mark.parametrize("kinds", [["scratch", "kd", "ls"], ["kd", "e2kd"],
                                   ["ls", "x", "kd"]])
def test_a_kind_is_drawn_in_its_colour_wherever_it_stands(kinds):
    kd, position = to_rgb(plots.KIND_COLOURS["kd"]), kinds.index("kd")
    table = pd.DataFrame([{"method": kind, "seed": seed, "accuracy": 0.5 + 0.1 * seed}
                          for seed in (0, 1) for kind in kinds])
    ax = plots.plot_seed_spread(table, "accuracy", order=kinds)
    assert colours(ax)[position] == kd
    if "x" in kinds:
        assert colours(ax)[1] == to_rgb("C1"), "an unknown group: C1, by its position"
    hued = table.assign(test="in")
    ax = plots.plot_seed_bars(hued, "accuracy", ["in"], "method", kinds,
                              group_column="test")
    assert colours(ax)[position] == kd, "coloured by hue"
    history = [[{"epoch": 1, "loss": 1.0, "train_acc": 0.5}, {"epoch": 2, "loss": 0.5, "train_acc": 0.8}]]
    fig = plots.plot_learning_curves({kind: history for kind in kinds})
    means = [line for line in fig.axes[0].get_lines() if line.get_linewidth() == 2]
    assert to_rgb(means[position].get_color()) == kd


def test_learning_curves_show_held_out_accuracy_where_recorded():
    def history(*held):  # two epochs; held: their held-out accuracies, None where not recorded
        return [{"epoch": e + 1, "loss": 1.0 - e / 2, "train_acc": 0.5 + e / 4,
                 **({} if h is None else {"heldout_acc": h})} for e, h in enumerate(held)]
    every_epoch, never, last_only = history(0.4, 0.7), history(None, None), history(None, 0.6)
    fig = plots.plot_learning_curves({"scratch": [every_epoch], "kd": [never, every_epoch],
                                      "ls": [last_only]})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[-1] == "accuracy on held-out test images" and len(titles) == 3
    held = [line for line in fig.axes[2].get_lines() if line.get_linewidth() == 2]
    assert [list(line.get_ydata()) for line in held] == [[0.4, 0.7], [0.4, 0.7], [0.6]]
    assert list(held[2].get_xdata()) == [2], "drawn at the epoch that recorded it"
    assert len(plots.plot_learning_curves({"kd": [never]}).axes) == 2, "none recorded it"


def test_figure_picker_draws_every_frame_up_front():
    frames = {(q, t): plt.subplots(figsize=(1, 1))[0] for q in (1, 2) for t in ("x", "y")}
    picker = widgets.figure_picker(frames, ("q", "t"))
    _, outer = picker.children
    assert [len(row.children) for row in outer.children] == [2, 2]
    opened = widgets.figure_picker(frames, ("q", "t"), start=(2, "y"))  # e.g. the verdicts' setting
    (first, second), outer = opened.children[0].children, opened.children[1]
    assert (first.value, second.value) == ("2", "y")
    assert outer.selected_index == 1 and all(row.selected_index == 1 for row in outer.children)
    with pytest.raises(ValueError, match="none of the figures' keys"):
        widgets.figure_picker(frames, ("q", "t"), start=(3, "x"))
    del frames[(2, "y")]
    with pytest.raises(ValueError, match="every pair"):
        widgets.figure_picker(frames, ("q", "t"))


def test_plot_verdicts_draws_each_claims_interval_per_run():
    def table(mean, verdict):
        return pd.DataFrame({"role": ["primary", "matched", "exploratory"], "a": "kd", "b": "scratch",
                             "statistic": "accuracy", "margin": 0.01, "mean": [mean, 0.0, 0.1],
                             "low": [mean - 0.01, -0.005, 0.0], "high": [mean + 0.01, 0.005, 0.2],
                             "verdict": [verdict, "equivalent", "shown"]}, index=["p", "m", "x"])
    fig = plots.plot_verdicts({"pilot": table(0.02, "shown"), "confirmatory": table(-0.03, "opposite")})
    assert len(fig.axes) == 2, "one panel per claim of the roles asked for (exploratory left out)"
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_yticklabels()] == ["pilot", "confirmatory"]
    assert {t.get_text() for t in first.texts} == {"shown", "opposite"}
    low, high = first.get_xlim()
    assert low < -0.04 and high > 0.03, "both intervals are inside the panel"
    with pytest.raises(ValueError, match="no claim"):
        plots.plot_verdicts({"pilot": table(0.02, "shown")}, roles=("check",))


MOVED = {"figure_picker": widgets, "explanation_picker": widgets, "figure_image": widgets,
         "class_similarity": metrics, "template_projection": metrics}


@pytest.mark.parametrize("name", MOVED)
def test_moved_names_still_resolve_with_a_warning(name):
    with pytest.warns(DeprecationWarning, match=f"moved to {MOVED[name].__name__}.{name}"):
        assert getattr(plots, name) is getattr(MOVED[name], name)


def test_kdlab_plots_is_kdlab_figures_plots():
    import kdlab

    with pytest.warns(DeprecationWarning, match="kdlab.figures.plots"):
        assert kdlab.plots is plots


@pytest.mark.parametrize("name", ["temperature_explorer", "unit_browser", "plot_explanations"])
def test_removed_names_are_gone(name):
    with pytest.raises(AttributeError):
        getattr(plots, name)


def test_importing_the_plots_stays_light():
    # matplotlib and ipywidgets load when a figure is drawn; plots never imports widgets
    heavy = ("matplotlib", "ipywidgets", "pandas", "kdlab.figures.widgets")
    code = f"import sys, kdlab.figures.plots; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

