import gzip
import struct

import numpy as np
import pytest
import torch

from kdlab.data import DeviceLoader, few_shot_indices, random_crop_flip
from kdlab.datasets import load_cifar, load_dataset, load_fashion_mnist, read_idx
from kdlab.synthetic import make_concept_dataset


def write_idx(path, array):
    """Write an unsigned-byte idx file the way MNIST/Fashion-MNIST are distributed (gzipped)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_files_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 10, 20)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", images)
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", labels)
    data = load_fashion_mnist("test", root=tmp_path)
    assert data.images.shape == (20, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(images.astype(np.uint8)))
    assert torch.equal(data.labels, torch.from_numpy(labels))
    assert data.classes[9] == "Ankle boot"


def test_missing_datasets_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr("kdlab.datasets.DEBIAN_FASHION_MNIST", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="get_datasets.py cifar100"):
        load_cifar("cifar100", "train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_corrupt_idx_file_is_named(tmp_path):
    bad = tmp_path / "x.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    with pytest.raises(ValueError, match="x.gz: header says"):
        read_idx(bad)


def test_crop_flip_moves_extra_channels_with_the_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 12, 12)
    stacked = torch.cat([x, x[:, :1]], dim=1)   # an extra channel identical to channel 0
    out = random_crop_flip(stacked, pad=3, generator=g)
    assert out.shape == stacked.shape
    assert torch.equal(out[:, 3], out[:, 0])
    assert not torch.equal(out[:, :3], x), "something was cropped or flipped"


def test_device_loader_batches_extras_and_is_deterministic_per_epoch():
    data = make_concept_dataset(100, seed=1, design="v1")
    maps = data.images[:, :1].float()          # a "map" equal to the red channel
    logits = torch.arange(100).float()[:, None]
    loader = DeviceLoader(data, 32, train=True, pad=4, seed=3,
                          extras={"teacher_maps": maps, "teacher_logits": logits})
    batches = list(loader)
    assert len(batches) == 3   # drop_last while training
    for b in batches:
        assert torch.allclose(b.extras["teacher_maps"][:, 0] / 255, b.x[:, 0])
        assert torch.equal(b.extras["teacher_logits"][:, 0].long(), b.index)
        assert torch.equal(b.y, data.labels[b.index])
    again = list(loader)
    assert all(torch.equal(a.x, b.x) for a, b in zip(batches, again))
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader)).index, batches[0].index)
    evaluation = list(DeviceLoader(data, 32))
    assert sum(len(b.y) for b in evaluation) == 100
    assert torch.equal(torch.cat([b.index for b in evaluation]), torch.arange(100))


def test_device_loader_without_augmentation_only_shuffles():
    data = make_concept_dataset(64, seed=1, design="v1")
    for b in DeviceLoader(data, 16, train=True, pad=0, flip=False, seed=2):
        assert torch.equal(b.x, data.float_images(b.index))


def test_few_shot_indices():
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 7)
    idx = few_shot_indices(labels, 3, seed=0)
    assert torch.equal(torch.bincount(labels[idx]), torch.tensor([3, 3, 3]))
    assert torch.equal(idx, few_shot_indices(labels, 3, seed=0))
    with pytest.raises(ValueError, match="fewer than 6 shots"):
        few_shot_indices(labels, 6)


def test_reporting_views_leaves_the_batches_bit_identical():
    # the committed scratch and LS students must not move: reporting draws nothing more
    data = make_concept_dataset(100, seed=1, design="v1")
    maps = {"teacher_maps": data.images[:, :1].float()}
    for pad, flip in ((4, True), (2, False), (0, True), (0, False)):
        plain = DeviceLoader(data, 32, train=True, pad=pad, flip=flip, seed=3, extras=maps)
        viewed = DeviceLoader(data, 32, train=True, pad=pad, flip=flip, seed=3, extras=maps, views=True)
        for epoch in (0, 1):
            plain.set_epoch(epoch), viewed.set_epoch(epoch)
            for a, b in zip(plain, viewed):
                assert torch.equal(a.x, b.x) and torch.equal(a.index, b.index)
                assert torch.equal(a.extras["teacher_maps"], b.extras["teacher_maps"])
                assert set(b.extras) - set(a.extras) == {"view"}


def test_the_view_index_names_the_crop_and_flip_drawn():
    x = torch.rand(64, 3, 10, 10)
    for pad, flip in ((3, True), (2, False), (0, True)):
        out, view = random_crop_flip(x, pad, torch.Generator().manual_seed(1), flip, return_views=True)
        assert torch.equal(out, random_crop_flip(x, pad, torch.Generator().manual_seed(1), flip))
        side = 2 * pad + 1
        padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect") if pad else x
        for i, v in enumerate(view.tolist()):
            dy, dx = divmod(v % side ** 2, side)
            crop = padded[i, :, dy:dy + 10, dx:dx + 10]
            assert torch.equal(out[i], crop.flip(-1) if v >= side ** 2 else crop)
        assert view.max() < side ** 2 * (2 if flip else 1) and len(view.unique()) > 1
