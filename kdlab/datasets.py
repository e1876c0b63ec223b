"""Where the images come from: the datasets kdlab loads by name, as `ImageSet`s.

Taught in notebook 00. `load_dataset(name, split)` returns the synthetic concept dataset
(generated, nothing to download), Fashion-MNIST (idx `.gz` files) or CIFAR-10/100 (through
torchvision). A dataset that is not on disk is an error that says how to get it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .data import ImageSet
from .runtime.files import DATA_DIR
from .synthetic import make_concept_dataset

DATASETS = ("synthetic", "fashion_mnist", "cifar10", "cifar100")


class DatasetError(ValueError):
    """A dataset on disk is damaged or inconsistent; the message names the file."""


def load_dataset(name: str, split: str = "train", n: int | None = None, seed: int = 0,
                 root: str | Path | None = None, **synthetic_options) -> ImageSet:
    """Load a dataset by name: 'synthetic', 'fashion_mnist', 'cifar10' or 'cifar100'.

    n: keep the first n images (synthetic: generate n). seed: the synthetic generator's seed;
    the test split uses a different stream so it never repeats training images.
    synthetic_options go to kdlab.synthetic.make_concept_dataset.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if name == "synthetic":
        stream = seed * 2 + (1 if split == "test" else 0)
        return make_concept_dataset(n=n or 10_000, seed=stream, **synthetic_options)
    if synthetic_options:
        raise ValueError(f"options {sorted(synthetic_options)} apply only to the synthetic dataset")
    if name == "fashion_mnist":
        data = load_fashion_mnist(split, root)
    elif name in ("cifar10", "cifar100"):
        data = load_cifar(name, split, root)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    return data if n is None else data.subset(torch.arange(min(n, len(data))))


FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_DIRS = ("fashion-mnist", "FashionMNIST/raw", "fashion_mnist")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> ImageSet:
    """Fashion-MNIST from its raw idx `.gz` files.

    Looked for in `root` (or data/) as fashion-mnist/, FashionMNIST/raw/ (torchvision's
    layout) or fashion_mnist/, then where Debian's `dataset-fashion-mnist` package puts it.
    """
    prefix = "train" if split == "train" else "t10k"
    base = Path(root) if root else DATA_DIR
    candidates = [base / d for d in FASHION_MNIST_DIRS] + [base, DEBIAN_FASHION_MNIST]
    for folder in candidates:
        images_file = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels_file = folder / f"{prefix}-labels-idx1-ubyte.gz"
        if images_file.exists() and labels_file.exists():
            images, labels = read_idx(images_file), read_idx(labels_file)
            if images.ndim != 3 or labels.ndim != 1:
                raise DatasetError(f"{images_file} and {labels_file} must hold images (N, H, W) and "
                                   f"labels (N,), not shapes {images.shape} and {labels.shape}")
            return checked(ImageSet(images=torch.from_numpy(images).unsqueeze(1),
                                    labels=torch.from_numpy(labels.astype(np.int64)),
                                    classes=list(FASHION_MNIST_CLASSES), name="fashion_mnist"),
                           f"Fashion-MNIST in {folder}")
    raise FileNotFoundError(
        f"Fashion-MNIST ({prefix}-*-idx*-ubyte.gz) not found in any of: "
        + ", ".join(str(c) for c in candidates)
        + ". Get it without internet with `sudo apt-get install dataset-fashion-mnist` "
        "(Debian/Ubuntu), or run `python data/get_datasets.py fashion_mnist` where there is internet.")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut-off file an EOFError
        raise DatasetError(f"{path}: cannot be read ({err}); the file is damaged or incomplete, "
                           "delete it and download it again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path}: not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=min(4 + 4 * ndim, len(raw)))
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {shape} but holds {body.size} bytes; the file is "
                           "incomplete, delete it and download it again")
    return body.reshape(shape).copy()


def checked(data: ImageSet, source: str) -> ImageSet:
    """`data` after checking that its parts agree (one label per image, labels in range)."""
    if len(data.images) != len(data.labels):
        raise DatasetError(f"{source}: {len(data.images)} images but {len(data.labels)} labels")
    if len(data.labels) and (data.labels.min() < 0 or data.labels.max() >= data.num_classes):
        raise DatasetError(f"{source}: labels must lie in 0..{data.num_classes - 1} ({data.num_classes} "
                           f"classes), found {int(data.labels.min())}..{int(data.labels.max())}")
    return data


def load_cifar(name: str, split: str = "train", root: str | Path | None = None,
               download: bool = False) -> ImageSet:
    """CIFAR-10/100 through torchvision, from `root` (default data/cifar)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root = Path(root) if root else DATA_DIR / "cifar"
    try:
        ds = cls(root=str(root), train=(split == "train"), download=download)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"{name} not found under {root} ({err}). On a machine with internet run "
            f"`python data/get_datasets.py {name}` (or pass download=True), then copy "
            f"{root} here.") from err
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return checked(ImageSet(images=images, labels=torch.tensor(ds.targets, dtype=torch.int64),
                            classes=list(ds.classes), name=name), f"{name} in {root}")


