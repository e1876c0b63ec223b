import pytest
import torch

from kdlab import concepts, metrics, synthetic
from kdlab.datasets import load_dataset


def test_same_seed_same_bytes_and_other_seed_differs():
    a = synthetic.make_concept_dataset(n=300, seed=7, design="v1")
    b = synthetic.make_concept_dataset(n=300, seed=7, design="v1")
    c = synthetic.make_concept_dataset(n=300, seed=8, design="v1")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert torch.equal(a.image_labels["scene"], b.image_labels["scene"])
    assert not torch.equal(a.images, c.images)


def test_train_and_test_splits_differ():
    tr, te = load_dataset("synthetic", "train", n=50), load_dataset("synthetic", "test", n=50)
    assert not torch.equal(tr.images, te.images)


@pytest.fixture(scope="module")
def clean():
    return synthetic.make_concept_dataset(n=400, seed=3, noise=0.0, design="v1")


def test_masks_agree_with_pixels(clean):
    img = clean.images.float() / 255
    number = synthetic.CONCEPT_NUMBER
    # part pixels are painted exactly in a tint of the body colour named by the colour mask
    for name, rgb in synthetic.BODY_COLORS.items():
        sel = (clean.masks["part"] > 0) & (clean.masks["color"] == number[name])
        assert sel.any()
        pixels = img.permute(0, 2, 3, 1)[sel]
        tint = (1 - synthetic.PART_TINT) * torch.tensor(rgb) + synthetic.PART_TINT
        assert torch.allclose(pixels, tint.expand_as(pixels), atol=1 / 255)
    # solid bodies have exactly their body colour
    for name, rgb in synthetic.BODY_COLORS.items():
        sel = (clean.masks["material"] == number["solid"]) & (clean.masks["color"] == number[name])
        pixels = img.permute(0, 2, 3, 1)[sel]
        assert torch.allclose(pixels, torch.tensor(rgb).expand_as(pixels), atol=1 / 255)


def test_mask_structure_matches_labels(clean):
    n = len(clean)
    for i in range(n):
        cls = clean.classes[int(clean.labels[i])]
        shape, part = cls.split("-")
        obj, prt = clean.masks["object"][i], clean.masks["part"][i]
        assert set(obj.unique().tolist()) <= {0, synthetic.CONCEPT_NUMBER[shape]}
        assert set(prt.unique().tolist()) <= {0, synthetic.CONCEPT_NUMBER[part]}
        assert (obj > 0).sum() > 20, "every image shows its object"
        assert (prt > 0).sum() > 0, "every object shows its part"
        assert ((prt > 0) & (obj == 0)).sum() == 0, "parts lie inside their object"
        # colour covers the object, material covers the body (object minus part)
        assert torch.equal(clean.masks["color"][i] > 0, obj > 0)
        assert torch.equal(clean.masks["material"][i] > 0, (obj > 0) & (prt == 0))


def test_background_correlation_and_flip():
    def designated_share(d):
        designated = d.labels % len(synthetic.SCENES)
        scene = d.image_labels["scene"] - synthetic.CONCEPT_NUMBER[synthetic.SCENES[0]]
        return (scene == designated).float().mean().item()
    assert designated_share(synthetic.make_concept_dataset(500, background_correlation=1.0, design="v1")) == 1.0
    assert designated_share(synthetic.make_concept_dataset(500, flip_background=True, design="v1")) == 0.0
    assert 0.15 < designated_share(synthetic.make_concept_dataset(2000, design="v1")) < 0.35
    with pytest.raises(ValueError, match="background_correlation"):
        synthetic.make_concept_dataset(10, background_correlation=1.5, design="v1")


def test_classes_come_in_families():
    assert len(synthetic.CLASSES) == len(synthetic.SHAPES) * len(synthetic.PARTS)
    for i, name in enumerate(synthetic.CLASSES):
        assert name.startswith(synthetic.SHAPES[synthetic.class_family(i)])


# ---------------------------------------------------------------------------------------------
# Design v2 and the functions that measure a design's properties

def _digest(d):
    import hashlib

    h = hashlib.sha256()
    for t in [d.images, d.labels, *d.masks.values(), d.image_labels["scene"]]:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def test_v1_output_unchanged():
    # v1 stays byte for byte: its tests and the v1 columns of notebooks 00 and 03 rely on it
    d = synthetic.make_concept_dataset(n=64, seed=0, design="v1")
    assert _digest(d) == "66e475306e968f0706ef9e9784045f95b11e047197c20640c0ae48d8836d6594"
    assert _digest(synthetic.make_concept_dataset(n=64, seed=0, design="v1")) == _digest(d)


@pytest.fixture(scope="module")
def v2():
    return synthetic.make_concept_dataset(n=2000, seed=3, design="v2")


def test_v2_same_seed_same_bytes_and_other_seed_differs(v2):
    again = synthetic.make_concept_dataset(n=2000, seed=3, design="v2")
    assert _digest(again) == _digest(v2)
    assert not torch.equal(synthetic.make_concept_dataset(n=200, seed=4, design="v2").images, v2.images[:200])
    with pytest.raises(ValueError, match="design"):
        synthetic.make_concept_dataset(10, design="v3")


def test_v2_every_concept_can_be_detected(v2):
    ceilings = concepts.iou_ceilings(v2, quantile=0.005)
    categories = dict(zip(v2.concepts, v2.concept_categories))
    assert set(ceilings) == set(v2.concepts[1:]), "every concept occurs"
    assert {categories[c] for c in ceilings} == {"object", "part", "color", "material", "scene"}
    assert min(ceilings.values()) > 0.08  # well above the 0.05 detector threshold
    # v1's whole-image scenes cannot pass that threshold
    v1 = synthetic.make_concept_dataset(n=2000, seed=3, design="v1")
    assert max(v for c, v in concepts.iou_ceilings(v1).items() if c in synthetic.SCENES) < 0.05


def test_iou_ceilings_formula():
    d = synthetic.make_concept_dataset(n=200, seed=1, design="v2")
    area = concepts.concept_areas(d)
    positions = 200 * 32 * 32
    number = synthetic.CONCEPT_NUMBER_V2
    assert area[number["disk"]] == (d.masks["object"] == number["disk"]).sum()
    scene = synthetic.SCENES_V2[0]
    assert area[number[scene]] == 32 * 32 * (d.image_labels["scene"] == number[scene]).sum()
    ceilings = concepts.iou_ceilings(d, quantile=0.01)
    assert ceilings["disk"] == pytest.approx(min(1.0, 0.01 * positions / area[number["disk"]].item()))
    assert max(ceilings.values()) <= 1.0


def test_v2_scene_is_weak_context(v2):
    a = synthetic.scene_class_association(v2)
    assert a["chance"] == pytest.approx(1 / 12)
    assert a["chance"] + 0.1 < a["designated"] < 0.4, "above chance, but weak"
    counts = torch.bincount(v2.image_labels["scene"] - synthetic.CONCEPT_NUMBER_V2[synthetic.SCENES_V2[0]])
    assert len(counts) == 24 and counts.min() > 0.5 * counts.float().mean(), "scenes about equally common"

    def designated(**kw):
        d = synthetic.make_concept_dataset(n=600, seed=5, design="v2", **kw)
        return synthetic.scene_class_association(d)
    strong, flipped = designated(background_correlation=1.0), designated(flip_background=True)
    assert strong["designated"] == 1.0 and strong["scene_only_accuracy"] == 1.0
    assert flipped["designated"] == 0.0
    assert abs(designated(background_correlation=0.0)["designated"] - 1 / 12) < 0.04


def test_designated_scenes():
    for c in range(len(synthetic.CLASSES)):
        assert synthetic.designated_scenes(c, "v1") == [c % len(synthetic.SCENES)]
        assert synthetic.designated_scenes(c, "v2") == [c, c + 12]
    assert len(synthetic.scene_names("v2")) == 24


def test_v2_masks_match_labels(v2):
    number = synthetic.CONCEPT_NUMBER_V2
    # objects, parts, colours and materials keep v1's numbers; only the scenes differ
    assert all(number[name] == synthetic.CONCEPT_NUMBER[name] for name, cat in synthetic.CONCEPTS
               if cat != "scene")
    obj, prt = v2.masks["object"], v2.masks["part"]
    shape = torch.tensor([number[synthetic.SHAPES[synthetic.class_family(int(c))]] for c in v2.labels])
    part = torch.tensor([number[synthetic.PARTS[int(c) % len(synthetic.PARTS)]] for c in v2.labels])
    assert ((obj == 0) | (obj == shape.view(-1, 1, 1))).all()
    assert ((prt == 0) | (prt == part.view(-1, 1, 1))).all()
    assert ((prt > 0) & (obj == 0)).sum() == 0, "parts lie inside their object"
    assert ((obj > 0).flatten(1).sum(1) > 20).all(), "every image shows its object"
    assert torch.equal(v2.masks["color"] > 0, obj > 0) and torch.equal(v2.masks["material"] > 0, obj > 0)
    scenes = v2.image_labels["scene"]
    assert scenes.min() >= number[synthetic.SCENES_V2[0]] and scenes.max() < len(v2.concepts)
    assert v2.concept_categories.count("scene") == 24


def test_similarity_shares():
    labels = torch.tensor([0, 4])
    groups = [c // 3 for c in range(12)]                    # the shape families
    even = torch.full((2, 12), 0.05)
    even[0, 0] = even[1, 4] = 0.45
    share, uniform = metrics.similarity_shares(even, labels, groups)
    assert share == pytest.approx(2 / 11) and uniform == pytest.approx(2 / 11)
    family = torch.zeros(2, 12)
    family[0, :3] = torch.tensor([0.8, 0.1, 0.1])         # class 0: the rest on classes 1 and 2
    family[1, 3:6] = torch.tensor([0.1, 0.8, 0.1])         # class 4: the rest on classes 3 and 5
    assert metrics.similarity_shares(family, labels, groups)[0] == pytest.approx(1.0)
    parts = [c % len(synthetic.PARTS) for c in range(12)]  # the class's part
    assert metrics.similarity_shares(family, labels, parts)[0] == pytest.approx(0.0)


def test_the_course_uses_design_v2_everywhere():
    # notebooks, command line and concept images must all see the data the teacher was trained on
    from kdlab import recipes
    from kdlab.scale import broden

    train, test = recipes.course_data("synthetic", 64, 32)
    assert train.meta["design"] == test.meta["design"] == recipes.COURSE_DESIGN == "v2"
    assert _digest(test) != _digest(train)  # separate streams: no test image is a training image
    grey = train.subset(torch.arange(4))
    grey.masks, grey.images = None, grey.images[:, :1]
    assert broden.concept_data("synthetic", like=grey, n=16).meta["design"] == "v2"
