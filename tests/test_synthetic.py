import pytest
import torch

from kdlab import synthetic
from kdlab.data import load_dataset


def test_same_seed_same_bytes_and_other_seed_differs():
    a = synthetic.make_concept_dataset(n=300, seed=7)
    b = synthetic.make_concept_dataset(n=300, seed=7)
    c = synthetic.make_concept_dataset(n=300, seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert torch.equal(a.image_labels["scene"], b.image_labels["scene"])
    assert not torch.equal(a.images, c.images)


def test_train_and_test_splits_differ():
    tr, te = load_dataset("synthetic", "train", n=50), load_dataset("synthetic", "test", n=50)
    assert not torch.equal(tr.images, te.images)


@pytest.fixture(scope="module")
def clean():
    return synthetic.make_concept_dataset(n=400, seed=3, noise=0.0)


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
    assert designated_share(synthetic.make_concept_dataset(500, background_correlation=1.0)) == 1.0
    assert designated_share(synthetic.make_concept_dataset(500, flip_background=True)) == 0.0
    assert 0.15 < designated_share(synthetic.make_concept_dataset(2000)) < 0.35
    with pytest.raises(ValueError, match="background_correlation"):
        synthetic.make_concept_dataset(10, background_correlation=1.5)


def test_classes_come_in_families():
    assert len(synthetic.CLASSES) == len(synthetic.SHAPES) * len(synthetic.PARTS)
    for i, name in enumerate(synthetic.CLASSES):
        assert name.startswith(synthetic.SHAPES[synthetic.class_family(i)])
