"""Notebook 06's control data and per-seed claims table (kdlab.experiments.shortcut)."""

import pandas as pd
import pytest
import torch

from kdlab.experiments import e2kd, shortcut
from kdlab.synthetic import scene_class_association


def test_control_images_are_the_shortcut_images_with_independent_scenes():
    shortcut_train = e2kd.synthetic_shortcut_data(0.95, n_student=240, n_test=50)["student_train"]
    control = shortcut.synthetic_control_train(240)
    assert len(control) == len(shortcut_train) == 240
    assert torch.equal(control.labels, shortcut_train.labels)
    assert torch.equal(control.masks["object"], shortcut_train.masks["object"])
    assert scene_class_association(shortcut_train)["designated"] > 0.9
    assert scene_class_association(control)["designated"] < 0.2  # chance: 1 in 12


def test_control_train_by_dataset():
    assert len(shortcut.control_train("synthetic", {}, 60)) == 60
    assert shortcut.control_train("voc", {"test_ood": None, "teacher_train": "train"}, 60) is None
    assert shortcut.control_train("waterbirds", {"test_ood": "ood", "teacher_train": "val"}, 60) == "val"


@pytest.mark.parametrize("model,kind", [
    ("KD student", "kd"), ("control student", "control"), ("e²KD student (layer2)", "e2kd_layer2"),
    ("e²KD student (layer3)", "e2kd_layer3"), ("teacher", None)])
def test_kind_of(model, kind):
    assert shortcut.kind_of(model) == kind
    if kind and kind.startswith("e2kd_"):
        assert shortcut.e2kd_name(kind[5:]) == model


def test_per_seed_table():
    rows = [{"model": "teacher", "test": t, "accuracy": 0.9, "epg": 0.7}
            for t in ("in distribution", "flipped backgrounds")]
    for seed in (0, 1):
        for model, acc in (("KD student", 0.1), ("e²KD student (layer2)", 0.2), ("control student", 0.8)):
            rows += [{"model": model, "seed": float(seed), "test": "in distribution",
                      "accuracy": 0.95 + seed / 100, "epg": 0.3},
                     {"model": model, "seed": float(seed), "test": "flipped backgrounds",
                      "accuracy": acc + seed / 100, "epg": 0.5}]
    table = shortcut.per_seed_table(pd.DataFrame(rows))
    assert list(table.columns) == ["kind", "seed", "id_accuracy", "id_epg", "ood_accuracy", "ood_epg"]
    assert len(table) == 6 and list(table.kind.unique()) == ["kd", "e2kd_layer2", "control"]
    assert list(table.seed) == [0, 1] * 3
    row = table[(table.kind == "control") & (table.seed == 1)].iloc[0]
    assert row.ood_accuracy == pytest.approx(0.81) and row.id_accuracy == pytest.approx(0.96)
    assert row.ood_epg == pytest.approx(0.5) and table.seed.dtype.kind == "i"
    no_masks = shortcut.per_seed_table(pd.DataFrame(rows).drop(columns="epg"))
    assert list(no_masks.columns) == ["kind", "seed", "id_accuracy", "ood_accuracy"]
