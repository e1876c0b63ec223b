"""Datasets as tensors, and a device-resident batch iterator with on-device augmentation.

Taught in notebook 00 (datasets) and notebook 01 (the training loop's input pipeline).

Every dataset is an `ImageSet`: uint8 images (N, C, H, W), int64 labels, class names and,
for the synthetic concept dataset, concept masks. The whole set is moved to the device once;
`DeviceLoader` then shuffles, crops and flips whole batches with tensor operations, so the
training loop has no per-image Python (the airbench approach). Models receive float images
in [0, 1] and normalise them themselves (kdlab.models), so explanations and figures can use
the same tensors.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .paths import DATA_DIR

DATASETS = ("synthetic", "fashion_mnist", "cifar10", "cifar100")


@dataclass
class ImageSet:
    """Images and labels held as tensors; concept annotations where the dataset has them."""

    images: torch.Tensor                  # uint8 (N, C, H, W)
    labels: torch.Tensor                  # int64 (N,)
    classes: list[str]
    name: str = ""
    masks: dict[str, torch.Tensor] | None = None         # category -> uint8 (N, h, w) label numbers
    image_labels: dict[str, torch.Tensor] | None = None  # category -> int64 (N,) label numbers
    concepts: list[str] | None = None                    # label number -> concept name
    concept_categories: list[str] | None = None          # label number -> category
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    def subset(self, index) -> "ImageSet":
        """The images at `index` (a tensor of indices or a boolean mask), annotations included."""
        index = torch.as_tensor(index)
        pick = {k: v[index] for k, v in (self.masks or {}).items()}
        pick_img = {k: v[index] for k, v in (self.image_labels or {}).items()}
        return replace(self, images=self.images[index], labels=self.labels[index],
                       masks=pick or None, image_labels=pick_img or None)

    def float_images(self, index=None, device="cpu") -> torch.Tensor:
        """Images as float32 in [0, 1] (all of them, or those at `index`)."""
        x = self.images if index is None else self.images[index]
        return x.to(device).float().div_(255)

    def fingerprint(self) -> str:
        """A short hash of the images and labels, used in cache keys (kdlab.train)."""
        import hashlib

        h = hashlib.sha256()
        for t in (self.images, self.labels):
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


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
        from .synthetic import make_concept_dataset

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
            images = read_idx(images_file)
            labels = read_idx(labels_file)
            return ImageSet(images=torch.from_numpy(images).unsqueeze(1),
                            labels=torch.from_numpy(labels.astype(np.int64)),
                            classes=list(FASHION_MNIST_CLASSES), name="fashion_mnist")
    raise FileNotFoundError(
        f"Fashion-MNIST ({prefix}-*-idx*-ubyte.gz) not found in any of: "
        + ", ".join(str(c) for c in candidates)
        + ". Get it without internet with `sudo apt-get install dataset-fashion-mnist` "
        "(Debian/Ubuntu), or run `python data/get_datasets.py fashion_mnist` where there is internet.")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {body.size} bytes")
    return body.reshape(shape).copy()


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
    return ImageSet(images=images, labels=torch.tensor(ds.targets, dtype=torch.int64),
                    classes=list(ds.classes), name=name)


def few_shot_indices(labels: torch.Tensor, shots: int, seed: int = 0) -> torch.Tensor:
    """Indices of `shots` images per class, drawn with a fixed seed (sorted)."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < shots:
            raise ValueError(f"class {int(c)} has {len(members)} images, fewer than {shots} shots")
        picked.append(members[torch.randperm(len(members), generator=g)[:shots]])
    return torch.cat(picked).sort().values


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator,
                     flip: bool = True) -> torch.Tensor:
    """Padded random crop and horizontal flip of a whole batch, one draw per image.

    All channels of an image move together, so an explanation map stacked as extra
    channels is transformed exactly like its image (frozen explanations, notebook 05).
    """
    n, _, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(2 * pad + 1, (n, 1), generator=generator, device=x.device)
        dx = torch.randint(2 * pad + 1, (n, 1), generator=generator, device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    if flip:
        flips = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(flips[:, None, None, None], x.flip(-1), x)
    return x


@dataclass
class Batch:
    x: torch.Tensor          # float images in [0, 1], augmented when training
    y: torch.Tensor          # labels
    index: torch.Tensor      # positions in the dataset (to look up stored teacher outputs)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class DeviceLoader:
    """Batches from an ImageSet held on the device; shuffling and augmentation on the device.

    Each epoch's order and augmentation come from a generator seeded by (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would. `extras` are per-image
    tensors (e.g. frozen teacher logits and explanation maps) that travel with each batch;
    those with the images' height and width are cropped and flipped together with them.
    train=True shuffles, drops the last partial batch and augments: a padded random crop
    (pad=0: none) and a horizontal flip (flip=False: none).
    """

    def __init__(self, data: ImageSet, batch_size: int, device="cpu", train: bool = False,
                 pad: int = 4, seed: int = 0, extras: dict[str, torch.Tensor] | None = None,
                 flip: bool = True):
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.extras = {k: v.to(self.device) for k, v in (extras or {}).items()}
        self.batch_size, self.train, self.pad, self.seed, self.flip = batch_size, train, pad, seed, flip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.train:
            return len(self.labels) // self.batch_size
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        g = torch.Generator(device=self.device).manual_seed(self.seed * 100_003 + self.epoch)
        if self.train:
            order = torch.randperm(n, generator=g, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        h, w = self.images.shape[-2:]
        spatial = [k for k, v in self.extras.items() if v.dim() == 4 and v.shape[-2:] == (h, w)]
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx].float().div_(255)
            extras = {k: v[idx] for k, v in self.extras.items()}
            if self.train and (self.pad or self.flip):
                stacked = torch.cat([x] + [extras[k].float() for k in spatial], dim=1)
                stacked = random_crop_flip(stacked, self.pad, g, flip=self.flip)
                x, start = stacked[:, : x.shape[1]], x.shape[1]
                for k in spatial:
                    extras[k] = stacked[:, start:start + extras[k].shape[1]]
                    start += extras[k].shape[1]
            yield Batch(x=x, y=self.labels[idx], index=idx, extras=extras)

