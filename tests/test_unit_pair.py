"""kdlab.figures.unit_pair: two students' strongest units side by side (notebook 04)."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from kdlab.dissect import dissect  # noqa: E402
from kdlab.figures import unit_pair  # noqa: E402
from kdlab.models import get_model  # noqa: E402
from kdlab.synthetic import make_concept_dataset  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def fake_units(n_units: int, k: int, concept: str) -> list[dict]:
    """`top_units`' shape without a model: random images, a square as every mask."""
    mask = torch.zeros(k, 8, 8, dtype=torch.bool)
    mask[:, 2:6, 2:6] = True
    return [{"unit": u, "concept": concept, "category": "object", "iou": 0.2 - 0.01 * u,
             "detector": u == 0, "images": torch.rand(k, 3, 8, 8), "unit_masks": mask,
             "concept_masks": mask.roll(1, dims=1)} for u in range(n_units)]


def test_a_block_per_student_and_a_titled_row_per_unit():
    panels = {"scratch (seed 0)": fake_units(2, 3, "disk"),
              "kd (seed 0)": fake_units(2, 3, "hbar")}
    fig = unit_pair.plot_unit_pair(panels, title="top units", dpi=40)
    blocks = fig.subfigs
    assert [b._suptitle.get_text() for b in blocks] == list(panels)
    assert fig._suptitle.get_text() == "top units"
    for block, units in zip(blocks, panels.values()):
        assert len(block.axes) == 2 * 3, "a row per unit, a column per image"
        titles = [ax.get_title(loc="left") for ax in block.axes if ax.get_title(loc="left")]
        assert titles == [f"unit 0: {units[0]['concept']} (IoU 0.20)",
                          f"unit 1: {units[1]['concept']} (IoU 0.19, no detector)"]
        assert all(ax.images for ax in block.axes), "every panel shows its image"
    assert fig.dpi == 40


def test_top_units_are_the_highest_iou_units_of_a_dissection():
    data = make_concept_dataset(n=48, seed=3, design="v1")
    torch.manual_seed(0)
    model = get_model("resnet8_w8", 12, 3).eval()
    result = dissect(model, "layer3", data, quantile=0.02, batch_size=48, progress=False)
    units = unit_pair.top_units(model, "layer3", data, result, n_units=2, k=3)
    best = result.table.sort_values("iou", ascending=False, kind="stable").head(2)
    assert [u["unit"] for u in units] == best.unit.tolist()
    assert units[0]["iou"] >= units[1]["iou"]
    assert units[0]["images"].shape[0] == 3
    assert units[0]["unit_masks"].shape == units[0]["concept_masks"].shape == (3, 32, 32)
    fig = unit_pair.plot_unit_pair({"a": units, "b": units[:1]})
    assert [len(b.axes) for b in fig.subfigs] == [2 * 3, 2 * 3]
