"""Notebook 04's outcomes (kdlab.experiments.han2023): band count, alignment, dead units,
per-model table and family share, on small dissections made up by hand (no training)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from kdlab.concepts import iou_ceilings
from kdlab.data import ImageSet
from kdlab.dissect import Dissection, dissect
from kdlab.experiments import han2023 as han
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset


def made_up(intersection, activation_area, top=(1.0, 1.0, 0.0), layer="layer3") -> Dissection:
    """Three units, two concepts ("thing", an object of area 100; "bar", a part of area 10)."""
    units = len(intersection)
    return Dissection(
        layer, ["-", "thing", "bar"], ["object", "part"], [-1, 0, 1], 0.005, 0.05,
        thresholds=torch.zeros(units), intersection=torch.tensor(intersection),
        activation_area=torch.tensor(activation_area), label_area=torch.tensor([0, 100, 10]),
        top_images=torch.zeros(units, 1, dtype=torch.int64),
        top_values=torch.tensor(top).view(units, 1), images=10,
        activation_area_lite=torch.tensor(activation_area))


# unit 0: IoU with thing 10 / (20 + 100 - 10) = 0.0909; unit 1: with bar 5 / (10 + 10 - 5) = 1/3;
# unit 2: never fires (dead): no overlap, IoU 0
HAND = dict(intersection=[[0, 10, 0], [0, 0, 5], [0, 0, 0]],
            activation_area=[[20, 20], [10, 10], [0, 0]])
CEILINGS = {"thing": 0.2, "bar": 0.5}


def test_band_count_is_the_mean_over_thresholds():
    found = made_up(**HAND)
    assert han.BAND == (0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1)
    # unit 0 clears 0.02 ... 0.09 (8 thresholds), unit 1 all 9, unit 2 none
    assert han.detectors_band(found) == pytest.approx(17 / 9)
    rejudged = [found.with_threshold(t).detectors for t in han.BAND]
    assert han.detectors_band(found) == pytest.approx(sum(rejudged) / len(rejudged))
    assert han.detectors_band(found, [0.0]) == 2 and han.detectors_band(found, [0.5]) == 0


def test_alignment_divides_by_each_concepts_ceiling():
    found = made_up(**HAND)
    expected = ((10 / 110) / 0.2 + (1 / 3) / 0.5 + 0.0) / 3  # the dead unit scores 0
    assert han.alignment(found, CEILINGS) == pytest.approx(expected)
    # an IoU above its ceiling (masks larger than the quantile's share) is capped at 1
    assert han.alignment(found, {"thing": 0.05, "bar": 0.1}) == pytest.approx(2 / 3)


def test_dead_units_never_activate():
    assert han.dead_units(made_up(**HAND)) == 1
    assert han.dead_units(made_up(**HAND, top=(1.0, 0.5, 0.2))) == 0
    assert han.dead_units(made_up(**HAND, top=(-1.0, 0.0, 0.0))) == 3


def test_layer_statistics_and_the_per_model_table():
    found = made_up(**HAND)
    row = han.layer_statistics(found, CEILINGS)
    assert row["object"] == 1 and row["part"] == 1 and row["detectors"] == 2
    assert row["detectors (Lite)"] == 2 and row["dead_units"] == 1 and row["units"] == 3
    assert row["detectors_band"] == pytest.approx(17 / 9)
    weaker = made_up([[0, 4, 0], [0, 0, 0], [0, 0, 0]], [[20, 20], [10, 10], [0, 0]],
                     layer="layer2")  # unit 0: IoU 4 / 116 = 0.034, below 0.05
    results = {"layer3": {("kd", 0): found, ("scratch", 0): found},
               "layer2": {("kd", 0): weaker, ("scratch", 0): found}}
    table = han.per_model_table(results, CEILINGS, "layer3")
    assert list(table.kind) == ["kd", "scratch"] and list(table.model) == [0, 0]
    for column in ("detectors_band", "alignment", "dead_units", "detectors", "object", "part",
                   "detectors_band_layer2", "alignment_layer2", "dead_units_layer2",
                   "object_layer2", "units_layer2"):
        assert column in table, column
    kd = table.set_index("kind").loc["kd"]
    assert kd.detectors == 2 and kd.detectors_layer2 == 0 and kd.dead_units_layer2 == 1
    assert kd.detectors_band_layer2 == pytest.approx(2 / 9)  # 0.034 clears 0.02 and 0.03


def test_undetected_categories_include_the_teacher():
    table = pd.DataFrame({"object": [1, 0], "part": [0, 0], "scene": [0, 0]})
    assert han.undetected(table, ["object", "part", "scene", "color"]) == ["part", "scene"]
    assert han.undetected(table, ["object", "part", "scene"], teacher={"part": 2}) == ["scene"]


class _Fixed(nn.Module):
    """Logits that ignore the image: p = 0.5 on class 0, 0.25 on class 1 and 0.025 on each of
    the ten others; classes 1 and 2 are class 0's shape family."""

    def forward(self, x):
        p = torch.full((12,), 0.025)
        p[0], p[1] = 0.5, 0.25
        return p.log().expand(len(x), -1)


def test_family_share_of_fixed_outputs():
    data = ImageSet(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
                    [str(c) for c in range(12)])
    assert han.family_share(_Fixed(), data) == pytest.approx((0.25 + 0.025) / 0.5)


def test_outcomes_of_a_real_dissection_are_in_range():
    data = make_concept_dataset(n=48, seed=3)
    torch.manual_seed(0)
    found = dissect(get_model("resnet8_w8", 12, 3), "layer2", data, quantile=0.02, progress=False)
    ceilings = iou_ceilings(data, 0.02)
    assert han.ceilings_of(found, (32, 32)) == pytest.approx(ceilings)  # Broden's way, the same
    assert 0.0 <= han.alignment(found, ceilings) <= 1.0
    assert 0 <= han.detectors_band(found) <= found.units == 16
    assert 0 <= han.dead_units(found) <= found.units
