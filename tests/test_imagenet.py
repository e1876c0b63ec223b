"""kdlab.scale.imagenet on a tiny ImageNet-style folder tree of JPEG and PNG files written here."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kdlab.data import few_shot_indices
from kdlab.scale.imagenet import ImageFolderData, evaluate_folder, folder_accuracy, load_imagenet
from kdlab.losses import CrossEntropy
from kdlab.train import TrainConfig, fit

CLASSES = ["n01440764", "n01443537", "n01484850"]  # ImageNet's folder names are WordNet ids
PER_CLASS = 6
SIZE = 16


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """root/train/<class>/*.JPEG (sizes vary, like ImageNet's) and root/val/<class>/*.png."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    g = torch.Generator().manual_seed(0)
    for split, ext, count in (("train", "JPEG", PER_CLASS), ("val", "png", 2)):
        for c, wnid in enumerate(CLASSES):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = 20 + 3 * i, 28 - 2 * i
                pixels = torch.randint(0, 80, (h, w, 3), generator=g, dtype=torch.uint8)
                pixels[..., c] += 150  # the class brightens one channel
                Image.fromarray(pixels.numpy()).save(folder / f"{wnid}_{i}.{ext}")
    return root


def test_folder_tree_is_read_with_classes_labels_and_a_stable_fingerprint(root):
    train = load_imagenet("train", root, size=SIZE)
    assert len(train) == len(CLASSES) * PER_CLASS and train.classes == CLASSES
    assert train.labels.tolist() == [c for c in range(3) for _ in range(PER_CLASS)]
    assert train.num_classes == 3 and train.in_channels == 3
    assert train.fingerprint() == load_imagenet("train", root, size=SIZE).fingerprint()
    assert train.fingerprint() != load_imagenet("train", root, size=SIZE + 8).fingerprint()
    assert len(load_imagenet("val", root, size=SIZE)) == 6


def test_few_shot_selection_is_n_per_class_and_fixed_by_the_seed(root):
    full = load_imagenet("train", root, size=SIZE)
    two = load_imagenet("train", root, size=SIZE, shots=2, seed=0)
    assert torch.bincount(two.labels).tolist() == [2, 2, 2]
    expected = few_shot_indices(full.labels, 2, seed=0)  # the same rule as for tensor datasets
    assert two.samples == [full.samples[i] for i in expected.tolist()]
    assert two.samples == load_imagenet("train", root, size=SIZE, shots=2, seed=0).samples
    others = [load_imagenet("train", root, size=SIZE, shots=2, seed=s).samples for s in (1, 2, 3)]
    assert any(o != two.samples for o in others)
    assert two.fingerprint() != full.fingerprint()
    with pytest.raises(ValueError, match="fewer than 7 shots"):
        load_imagenet("train", root, shots=PER_CLASS + 1)


def batches(loader, epoch=0):
    loader.set_epoch(epoch)
    return list(loader)


def test_batches_are_float_images_and_do_not_depend_on_the_worker_count(root):
    data = load_imagenet("train", root, size=SIZE)
    state = torch.get_rng_state()
    no_workers = batches(data.loader(6, train=True, seed=3, workers=0), epoch=1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is untouched
    two_workers = batches(data.loader(6, train=True, seed=3, workers=2), epoch=1)
    assert len(no_workers) == 3
    b = no_workers[0]
    assert b.x.shape == (6, 3, SIZE, SIZE) and b.x.dtype == torch.float32
    assert 0.0 <= b.x.min() and b.x.max() <= 1.0
    for a, c in zip(no_workers, two_workers):  # each image's crop is seeded by (seed, epoch, image)
        assert torch.equal(a.index, c.index) and torch.equal(a.x, c.x) and torch.equal(a.y, c.y)
    other_epoch = batches(data.loader(6, train=True, seed=3, workers=0), epoch=2)
    assert not torch.equal(torch.cat([b.index for b in no_workers]),
                           torch.cat([b.index for b in other_epoch]))
    # the evaluation view: no shuffling, a centre crop, identical every time
    view = batches(data.loader(6, train=False, workers=0))
    assert torch.cat([b.index for b in view]).tolist() == list(range(18))
    assert torch.equal(view[0].x, batches(data.loader(6, train=False, workers=0), epoch=5)[0].x)


def test_process_shares_make_up_the_single_process_batches(root):
    """Under DDP each of 2 processes takes half of every global batch (DistributedSampler)."""
    data = load_imagenet("train", root, size=SIZE)
    one = batches(data.loader(6, train=True, seed=1, workers=0), epoch=4)
    shares = [batches(data.loader(3, train=True, seed=1, rank=r, world_size=2, workers=0), epoch=4)
              for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == len(one)
    for i, whole in enumerate(one):
        parts = [shares[r][i] for r in (0, 1)]
        assert sorted(torch.cat([p.index for p in parts]).tolist()) == sorted(whole.index.tolist())
        for p in parts:  # the same image gets the same crop in either setting
            for j, idx in enumerate(p.index.tolist()):
                k = whole.index.tolist().index(idx)
                assert torch.equal(p.x[j], whole.x[k])


def test_fit_trains_from_the_folder_and_evaluates(root, tmp_path):
    data = load_imagenet("train", root, size=SIZE, workers=0)
    val = load_imagenet("val", root, size=SIZE, workers=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 3))
    cfg = TrainConfig(epochs=2, batch_size=6, lr=0.05)
    history = fit(model, data, CrossEntropy(), cfg, checkpoint=tmp_path / "c.pt", device="cpu",
                  progress=False)
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["images_per_s"] > 0
    assert torch.load(tmp_path / "c.pt", weights_only=False)["complete"]
    result = evaluate_folder(model, val, workers=0)
    assert result["images"] == 6 and 0.0 <= result["accuracy"] <= 1.0
    agree = evaluate_folder(model, val, teacher=model, workers=0)
    assert agree["agreement"] == 1.0
    # notebook 04's accuracy column: the same evaluation at the standard 224 view, from a path
    full_view = evaluate_folder(model, ImageFolderData(root / "val"), workers=0)["accuracy"]
    assert folder_accuracy(model, root / "val", workers=0, device="cpu") == full_view
    assert folder_accuracy(model, root / "val", workers=0, max_images=2, device="cpu") in (0.0, 0.5, 1.0)


def test_missing_or_broken_data_fails_with_a_clear_message(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="image-net.org"):
        load_imagenet("train", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="'train' or 'val'"):
        load_imagenet("test", root)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="class folders"):
        ImageFolderData(tmp_path / "empty")
    broken = tmp_path / "broken" / "cls"
    broken.mkdir(parents=True)
    (broken / "bad.JPEG").write_bytes(b"not a jpeg")
    loader = ImageFolderData(tmp_path / "broken", size=SIZE).loader(1, train=False, workers=0)
    with pytest.raises(OSError, match="bad.JPEG"):
        list(loader)
    data = load_imagenet("train", root, size=SIZE)
    with pytest.raises(ValueError, match="per-pixel map"):
        data.loader(6, extras={"teacher_maps": torch.zeros(len(data), 1, SIZE, SIZE)})
