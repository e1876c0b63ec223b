"""Network dissection (kdlab.dissect) against a plain loop reference and hand-computed cases.

`reference_dissect` below is Bau et al.'s definition written for clarity: T_k with
P(a_k > T_k) = quantile over all positions of all images (np.quantile per unit, every
activation held), maps upsampled bilinearly to the masks, and IoU_{k,c} = Σ|M_k ∩ L_c| /
Σ|M_k ∪ L_c| summed over the whole dataset by loops over images and units; image-level labels
are whole-image masks, and each label is scored in its primary category. The vectorised,
streaming `kdlab.dissect.dissect` must give the same thresholds and IoUs.

The unit's area enters the union by one of two rules: on every image where the category is
annotated ("annotated"), or, as NetDissect-Lite's `tally_job` does, only where the unit's mask
touches a label of the category ("lite"). The reference writes the second as Lite does, image
by image: tally_cat = (labels under the mask) · labelcat, plus labelcat's row of each
image-level label; tally_units_cat += |mask| · (tally_cat > 0); at the end the denominator is
tally_units_cat · labelcatᵀ.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlab.concepts import concept_source
from kdlab.data import ImageSet
from kdlab.dissect import Dissection, TopQuantile, dissect, dissect_quantiles, layer_activations, quantile_threshold
from kdlab.runtime.files import PROJECT_ROOT
from kdlab.inference import find_layer
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset
from kdlab.scale.broden import concept_data
from kdlab.scale.pretrained import imagenet_models, load_model
from kdlab.runtime.checkpoints import CheckpointError, save_atomic


# ---------------------------------------------------------------------------------------------
# The plain reference implementation

def reference_dissect(model, layer, data, quantile=0.005, batch_size=64, union="annotated"):
    """Thresholds and (units × concepts) IoU by loops over images and units."""
    source = concept_source(data)
    captured = []
    handle = find_layer(model, layer).register_forward_hook(lambda m, i, o: captured.append(o.float()))
    model.eval()
    with torch.no_grad():
        for start in range(0, len(source), batch_size):
            model(source.take(range(start, min(start + batch_size, len(source))), masks=False).images)
    handle.remove()
    acts = torch.cat(captured)                                   # every activation, all images
    n, units = acts.shape[:2]
    a = acts.numpy()
    thresholds = np.array([np.quantile(a[:, k].astype(np.float64).ravel(), 1 - quantile)
                           for k in range(units)]).astype(np.float32)

    concepts, categories, primary = source.concepts, source.categories, source.primary
    mh, mw = source.mask_size
    inter = np.zeros((units, len(concepts)), dtype=np.int64)
    act_area = np.zeros((units, len(categories)), dtype=np.int64)
    label_area = np.zeros(len(concepts), dtype=np.int64)
    labelcat = np.zeros((len(concepts), len(categories)), dtype=np.int64)  # one-hot primary category
    for c, p in enumerate(primary):
        if p >= 0:
            labelcat[c, p] = 1
    tally_units_cat = np.zeros((units, len(categories)), dtype=np.int64)  # Lite's name
    for i in range(n):
        item = source.take([i])
        pixel_maps = [(cat, layer_map.numpy()) for cat, maps in item.pixel.items() for layer_map in maps[0]]
        image_labels = [(cat, int(c)) for cat, labels in item.scalar.items() for c in labels[0] if c != 0]
        annotated = {cat for cat, m in pixel_maps if m.any()} | {cat for cat, _ in image_labels}
        for _, m in pixel_maps:
            for c in np.unique(m):
                if c != 0:
                    label_area[c] += (m == c).sum()
        for _, c in image_labels:
            label_area[c] += mh * mw
        for k in range(units):
            up = F.interpolate(acts[i:i + 1, k:k + 1], size=(mh, mw), mode="bilinear",
                               align_corners=False)[0, 0].numpy()
            mask = up > thresholds[k]
            for ci, cat in enumerate(categories):
                if cat in annotated:
                    act_area[k, ci] += mask.sum()
            tally_bt = np.zeros(len(concepts), dtype=np.int64)   # mask pixels on each label
            for _, m in pixel_maps:
                tally_bt += np.bincount(m[mask].astype(np.int64), minlength=len(concepts))
            tally_bt[0] = 0
            tally_cat = tally_bt @ labelcat
            for _, c in image_labels:
                tally_cat += labelcat[c]
            tally_units_cat[k] += mask.sum() * (tally_cat > 0)
            for _, m in pixel_maps:
                for c in np.unique(m[mask]):
                    if c != 0:
                        inter[k, c] += (mask & (m == c)).sum()
            for _, c in image_labels:
                inter[k, c] += mask.sum()
    # per label: its primary category's activation area (Lite: tally_units_cat · labelcatᵀ)
    act = act_area @ labelcat.T if union == "annotated" else tally_units_cat @ labelcat.T
    iou = np.zeros((units, len(concepts)))
    for k in range(units):
        for c in range(1, len(concepts)):
            if primary[c] < 0:
                continue
            denominator = act[k, c] + label_area[c] - inter[k, c]
            iou[k, c] = inter[k, c] / denominator if denominator > 0 else 0.0
    return thresholds, iou


def _model(arch="resnet8_w8", seed=0, in_channels=3):
    torch.manual_seed(seed)
    return get_model(arch, 12, in_channels).eval()


@pytest.fixture(scope="module")
def small():
    return make_concept_dataset(n=96, seed=3, design="v1")


# ---------------------------------------------------------------------------------------------
# Thresholds

@pytest.mark.parametrize("n,q", [(1000, 0.005), (257, 0.05), (5, 0.3), (64, 0.5), (3, 0.9)])
def test_streaming_quantile_equals_numpy(n, q):
    g = torch.Generator().manual_seed(n)
    values = torch.randn(7, n, generator=g).relu()  # many ties at zero, as after a ReLU
    tq = TopQuantile([q], n)
    for chunk in torch.split(values, 13, dim=1):
        tq.update(chunk)
    expected = np.quantile(values.double().numpy(), 1 - q, axis=1).astype(np.float32)
    np.testing.assert_array_equal(tq.thresholds()[0].numpy(), expected)
    assert tq.top.shape[1] <= n - int(np.floor((1 - q) * (n - 1)))  # memory: units × k only


def test_streaming_quantile_refuses_wrong_counts():
    tq = TopQuantile([0.1], 10)
    tq.update(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="expected 10"):
        tq.thresholds()
    with pytest.raises(ValueError, match="expect 10"):
        tq.update(torch.zeros(2, 6))


def test_quantile_threshold_fraction_above():
    acts = torch.rand(50, 4, 6, 6)
    t = quantile_threshold(acts, 0.01)
    above = (acts > t.view(1, -1, 1, 1)).float().mean(dim=(0, 2, 3))
    assert torch.all((above - 0.01).abs() < 1.0 / (50 * 36) + 1e-9)


# ---------------------------------------------------------------------------------------------
# The dissection equals the reference

@pytest.mark.parametrize("layer,quantile,union,seed", [
    ("layer3", 0.005, "annotated", 0), ("layer2", 0.02, "annotated", 0),
    ("layer3", 0.005, "lite", 0), ("layer2", 0.02, "lite", 1), ("layer3", 0.05, "lite", 2)])
def test_dissect_equals_reference(small, layer, quantile, union, seed):
    model = _model(seed=seed)
    thresholds, iou = reference_dissect(model, layer, small, quantile, union=union)
    result = dissect(model, layer, small, quantile=quantile, batch_size=40, progress=False,
                     chunk_elements=5000, union=union)  # forces many chunks per batch
    np.testing.assert_array_equal(result.thresholds.numpy(), thresholds)
    np.testing.assert_allclose(result.iou.numpy(), iou, rtol=0, atol=1e-12)
    best = iou[:, 1:].argmax(1) + 1
    table = result.table
    assert [small.concepts[c] if iou[k, c] > 0 else "-" for k, c in enumerate(best)] == list(table.concept)
    assert list(table.detector) == [bool(iou[k, c] > 0.05) for k, c in enumerate(best)]


def test_labels_outside_their_primary_category(small):
    # Broden has labels in several categories' masks; here the parts are also drawn into the
    # object masks. Both rules must still score every label in its primary category.
    masks = dict(small.masks, object=torch.where(small.masks["part"] > 0, small.masks["part"],
                                                 small.masks["object"]))
    data = ImageSet(small.images[:48], small.labels[:48], small.classes,
                    masks={k: v[:48] for k, v in masks.items()},
                    image_labels={k: v[:48] for k, v in small.image_labels.items()},
                    concepts=small.concepts, concept_categories=small.concept_categories)
    model = _model(seed=4)
    result = dissect(model, "layer3", data, quantile=0.02, progress=False)
    for union in ("annotated", "lite"):
        _, iou = reference_dissect(model, "layer3", data, 0.02, union=union)
        np.testing.assert_allclose(result.with_union(union).iou.numpy(), iou, rtol=0, atol=1e-12)


def test_both_union_rules_from_one_pass(small):
    model = _model(seed=3)
    annotated = dissect(model, "layer3", small, quantile=0.02, progress=False)
    lite = dissect(model, "layer3", small, quantile=0.02, progress=False, union="lite")
    assert annotated.union == "annotated" and lite.union == "lite"
    assert torch.equal(annotated.with_union("lite").iou, lite.iou)
    assert torch.equal(lite.with_union("annotated").iou, annotated.iou)
    # every synthetic label lies in its primary category's masks: Lite's unions are never larger
    assert torch.all(lite.activation_area_lite <= lite.activation_area)
    assert torch.all(lite.iou >= annotated.iou) and lite.detectors >= annotated.detectors
    assert not torch.equal(lite.iou, annotated.iou)   # and on this data they do differ
    assert "Lite union" in repr(lite) and "Lite" not in repr(annotated)
    with pytest.raises(ValueError, match="unknown union rule"):
        annotated.with_union("bau")
    with pytest.raises(ValueError, match="unknown union rule"):
        dissect(model, "layer3", small, union="any", progress=False)


def test_batch_size_and_chunking_do_not_change_the_result(small):
    model = _model(seed=1)
    a = dissect(model, "layer3", small, quantile=0.01, batch_size=96, progress=False)
    b = dissect(model, "layer3", small, quantile=0.01, batch_size=17, progress=False, chunk_elements=3000)
    assert torch.equal(a.intersection, b.intersection)
    assert torch.equal(a.activation_area, b.activation_area)
    assert torch.equal(a.label_area, b.label_area)
    assert a.table.equals(b.table)
    assert torch.equal(a.top_images, b.top_images)


def test_same_seed_same_table():
    tables = []
    for _ in range(2):
        data = make_concept_dataset(n=48, seed=11, design="v1")
        tables.append(dissect(_model(seed=5), "layer3", data, quantile=0.02, progress=False).table)
    assert tables[0].equals(tables[1])


def test_top_images_are_the_most_activating(small):
    model = _model(seed=2)
    result = dissect(model, "layer3", small, progress=False, top_images=5)
    peak = layer_activations(model, "layer3", small.images).amax(dim=(2, 3))   # (N, units)
    expected = peak.topk(5, dim=0).values.T
    torch.testing.assert_close(result.top_values, expected)
    assert torch.equal(peak.gather(0, result.top_images.T).T, result.top_values)


# ---------------------------------------------------------------------------------------------
# The definition on a case computed by hand

class _Channel0(nn.Module):
    """A 'network' whose single unit is the image's first channel: activations chosen by hand."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Identity()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.layer(x[:, :1])


def test_hand_computed_iou():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images[0, 0, :2, :2] = 255        # image 0: the unit fires on the top-left 2×2
    images[1, 0, 3, 2:] = 255         # image 1: it fires on two pixels, where nothing is annotated
    obj = torch.zeros(2, 4, 4, dtype=torch.uint8)
    obj[0, :2, :2] = 1
    obj[0, 3, 3] = 1                  # "thing" covers 5 pixels of image 0; image 1 has no object
    data = ImageSet(images, torch.zeros(2, dtype=torch.long), ["c"], masks={"object": obj},
                    image_labels={"scene": torch.tensor([3, 4])},
                    concepts=["-", "thing", "other", "sky", "sea"],
                    concept_categories=["", "object", "object", "scene", "scene"])
    # 6 of 32 values are 1: np.quantile at 0.82 interpolates between 0 and 1 (T = 0.42).
    result = dissect(_Channel0(), "layer", data, quantile=0.18, iou_threshold=0.5, progress=False)
    iou = result.iou[0]
    assert iou[1].item() == pytest.approx(4 / (4 + 5 - 4))     # object area only where annotated
    assert iou[2].item() == 0.0
    assert iou[3].item() == pytest.approx(4 / (6 + 16 - 4))    # scene: a whole-image mask
    assert iou[4].item() == pytest.approx(2 / (6 + 16 - 2))
    row = result.table.iloc[0]
    assert (row.concept, row.category, bool(row.detector)) == ("thing", "object", True)
    assert result.counts.to_dict() == {"object": 1, "scene": 0}
    assert result.with_threshold(0.9).counts.to_dict() == {"object": 0, "scene": 0}
    # Lite's rule agrees here: where the unit fires, image 0 has both categories under its
    # mask and image 1 only its scene
    assert torch.equal(result.with_union("lite").iou, result.iou)


def test_hand_computed_union_rules_differ():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images[0, 0, :2, :2] = 255        # image 0: the unit fires on the top-left 2×2
    images[1, 0, 3, 2:] = 255         # image 1: on two bottom pixels
    obj = torch.zeros(2, 4, 4, dtype=torch.uint8)
    obj[0, :2, :2] = 1
    obj[0, 3, 3] = 1                  # "thing": 5 pixels of image 0, 4 of them under the mask
    obj[1, 0, 0] = 2                  # image 1 is annotated ("other", 1 pixel), away from the mask
    data = ImageSet(images, torch.zeros(2, dtype=torch.long), ["c"], masks={"object": obj},
                    image_labels={"scene": torch.tensor([3, 0])},   # image 1 has no scene label
                    concepts=["-", "thing", "other", "sky", "sea"],
                    concept_categories=["", "object", "object", "scene", "scene"])
    result = dissect(_Channel0(), "layer", data, quantile=0.18, iou_threshold=0.6, progress=False)
    # annotated: object is annotated on both images (4 + 2 unit pixels), scene on image 0 (4)
    assert result.activation_area.tolist() == [[6, 4]]
    # lite: the mask touches "thing" and carries "sky" on image 0; on image 1 it touches nothing
    assert result.activation_area_lite.tolist() == [[4, 4]]
    annotated, lite = result.iou[0], result.with_union("lite").iou[0]
    assert annotated.tolist() == pytest.approx([0, 4 / (6 + 5 - 4), 0, 4 / (4 + 16 - 4), 0])
    assert lite.tolist() == pytest.approx([0, 4 / (4 + 5 - 4), 0, 4 / (4 + 16 - 4), 0])
    assert result.counts.to_dict() == {"object": 0, "scene": 0}                      # 4/7 < 0.6
    assert result.with_union("lite").counts.to_dict() == {"object": 1, "scene": 0}   # 0.8 > 0.6
    _, reference = reference_dissect(_Channel0(), "layer", data, 0.18, union="lite")
    np.testing.assert_allclose(lite.numpy(), reference[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Results, errors, checkpoints

def test_save_csv_json_roundtrip(tmp_path, small):
    result = dissect(_model(), "layer3", small, quantile=0.02, progress=False)
    csv_path, json_path = result.save(tmp_path / "dissection")
    import pandas as pd

    table = pd.read_csv(csv_path, keep_default_na=False)
    assert list(table.columns) == ["unit", "concept", "category", "iou", "detector"]
    assert len(table) == result.units == 32
    record = json.loads(json_path.read_text())
    assert record["counts"] == result.counts.to_dict()
    back = Dissection.from_json(json_path)
    assert torch.equal(back.intersection, result.intersection)
    assert torch.equal(back.activation_area, result.activation_area)
    assert torch.equal(back.activation_area_lite, result.activation_area_lite)
    assert back.union == "annotated" and back.table.equals(result.table)
    lite = result.with_union("lite")
    back = Dissection.from_json(lite.to_json(tmp_path / "lite.json"))
    assert back.union == "lite" and torch.equal(back.iou, lite.iou) and back.table.equals(lite.table)
    # a file written before the Lite rule existed reads as before, and cannot give Lite's IoUs
    del record["activation_area_lite"], record["union"]
    (tmp_path / "old.json").write_text(json.dumps(record))
    old = Dissection.from_json(tmp_path / "old.json")
    assert old.activation_area_lite is None and old.table.equals(result.table)
    with pytest.raises(ValueError, match="no Lite activation areas"):
        old.with_union("lite")
    assert "detectors" in result._repr_html_()


def test_lower_threshold_never_fewer_detectors(small):
    result = dissect(_model(), "layer3", small, quantile=0.02, progress=False)
    assert result.with_threshold(0.04).detectors >= result.detectors >= result.with_threshold(0.2).detectors


def test_unknown_layer_lists_layers(small):
    with pytest.raises(KeyError, match=r"no layer 'layer9'.*layer1.*layer3\.0\.conv1"):
        dissect(_model(), "layer9", small, progress=False)


def test_dataset_without_masks_is_refused():
    plain = ImageSet(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="no concept annotations"):
        dissect(_model(), "layer3", plain, progress=False)


def test_missing_checkpoint_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model("resnet8_w8", tmp_path / "missing.pt", num_classes=12)


def test_load_model_formats(tmp_path):
    model = _model(seed=4)
    expected = model.state_dict()
    save_atomic({"model": {f"module.{k}": v for k, v in expected.items()}, "epoch": 90}, tmp_path / "ddp.pt")
    torch.save(expected, tmp_path / "plain.pt")
    save_atomic({"key": "k", "complete": True, "model": expected}, tmp_path / "kdlab.pt")
    for name in ("ddp.pt", "plain.pt", "kdlab.pt"):
        loaded = load_model("resnet8_w8", tmp_path / name, num_classes=12)
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    save_atomic({"key": "k", "complete": False, "epoch": 1, "model": expected}, tmp_path / "half.pt")
    with pytest.raises(CheckpointError, match="unfinished"):
        load_model("resnet8_w8", tmp_path / "half.pt", num_classes=12)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model("resnet8", tmp_path / "plain.pt", num_classes=12)


def test_relative_checkpoint_is_relative_to_the_project(tmp_path):
    model = _model(seed=4)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    relative = Path(os.path.relpath(tmp_path / "plain.pt", PROJECT_ROOT))
    assert not relative.is_absolute()
    loaded = load_model("resnet8_w8", relative, num_classes=12)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_several_quantiles_in_one_call_equal_separate_calls(small):
    model = _model(seed=6)
    several = dissect_quantiles(model, "layer3", small, [0.005, 0.05], progress=False)
    for q, r in zip((0.005, 0.05), several):
        alone = dissect(model, "layer3", small, quantile=q, progress=False)
        assert r.quantile == q and torch.equal(r.thresholds, alone.thresholds)
        assert torch.equal(r.intersection, alone.intersection) and r.table.equals(alone.table)
    tq = TopQuantile([0.1, 0.3], 50)
    values = torch.rand(3, 50)
    tq.update(values)
    expected = np.quantile(values.double().numpy(), [0.9, 0.7], axis=1).astype(np.float32)
    np.testing.assert_array_equal(tq.thresholds().numpy(), expected)


def test_dissect_restores_the_mode_and_removes_its_hook(small):
    model = _model(seed=7).train()
    dissect(model, "layer3", small, quantile=0.02, progress=False)
    assert model.training and not model.layer3._forward_hooks


# ---------------------------------------------------------------------------------------------
# Concept data and the notebook 04 helpers (kdlab.scale.broden.concept_data, kdlab.experiments.han2023)

def test_concept_data(small, tmp_path):
    grey_like = ImageSet(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), ["a"])
    grey = concept_data("synthetic", like=grey_like, n=20)
    assert grey.images.shape == (20, 1, 28, 28) and grey.masks["object"].shape == (20, 28, 28)
    assert len(concept_data("synthetic", like=small, n=30)) == 30
    with pytest.raises(FileNotFoundError, match="get_broden"):
        concept_data("broden", root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="'synthetic' or 'broden'"):
        concept_data("imagenet")


def test_han_helpers(small):
    from kdlab.experiments import han2023 as han

    with pytest.raises(ValueError, match="unknown kinds"):
        imagenet_models("resnet18", {"distilled": ["x.pt"]})
    models = {"scratch": [(0, _model(seed=0)), (1, _model(seed=1))], "kd": [(0, _model(seed=2))]}
    results, table, sweep = han.dissect_models(models, "layer3", small, quantile=0.02, progress=False,
                                               sweep=[0.02, 0.1])
    assert len(results) == 3 and list(table.kind) == ["scratch", "scratch", "kd"]
    assert list(sweep["quantile"]) == [0.02, 0.1] * 3
    assert list(sweep[sweep["quantile"] == 0.02].detectors) == list(table.detectors)
    lite = [results[key].with_union("lite").detectors for key in results]
    assert list(table["detectors (Lite)"]) == lite
    assert list(sweep[sweep["quantile"] == 0.02]["detectors (Lite)"]) == lite
    mean, spread, n = han.mean_and_spread(table, ["detectors"])
    assert n.to_dict() == {"scratch": 2, "kd": 1} and spread.loc["kd", "detectors"] == 0.0

    *same, every = han.dissect_sweep(models, "layer3", small, quantile=0.02, progress=False,
                                     sweep=[0.02, 0.1])
    assert list(same[1].detectors) == list(table.detectors)
    judged = han.counts_at_thresholds(every, [0.0, 0.05, 1.0])
    assert len(judged) == 3 * 2 * 3  # models x quantiles x thresholds
    at = judged.set_index(["kind", "model", "quantile", "iou_threshold"]).detectors
    for key in results:
        assert at[(*key, 0.02, 0.05)] == results[key].detectors  # the dissection's own threshold
        assert at[(*key, 0.02, 1.0)] == 0                         # no IoU exceeds 1
        assert at[(*key, 0.02, 0.0)] >= at[(*key, 0.02, 0.05)]    # lower threshold, no fewer


def test_han_saliency_scores(small):
    from kdlab.experiments import han2023 as han

    models = {"scratch": [(0, _model(seed=0))], "ls": [(0, _model(seed=1))]}
    scores = han.saliency_scores(models, small, "layer3", n=10)
    assert list(scores.kind) == ["scratch", "ls"]
    for column in ("accuracy", "precision", "recall", "fpr", "salient_fraction", "part_recall"):
        assert scores[column].between(0, 1).all()
    with pytest.raises(ValueError, match="unknown explanation method"):
        han.saliency_scores(models, small, method="lime", n=2)
    plain = ImageSet(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), ["a"])
    with pytest.raises(ValueError, match="object masks"):
        han.saliency_scores(models, plain)
