"""ImageNet-style image folders streamed from disk, for datasets that do not fit on the device.

Taught in the README's "Full runs at scale" section; the e²KD few-shot runs (notebook 05's
full-run parameters: 50 or 200 images per class, as Parchami-Araghi et al., ECCV 2024)
select their images with `shots=`. The course's small datasets are held on the device instead (kdlab.data.DeviceLoader).

Layout (torchvision's ImageFolder): <root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG.
ImageNet's validation images come in one flat folder; sort them into class folders first
(the widely used `valprep.sh` does it). Default root: data/imagenet (or $KDLAB_DATA/imagenet).

`ImageFolderData` is what `kdlab.train.fit` accepts in place of an ImageSet. Its loader
decodes JPEGs in DataLoader worker processes, hands uint8 tensors over in pinned memory
(a quarter of the bytes of float32) and converts them to [0, 1] floats on the device. Under
torchrun a DistributedSampler gives each process its share. Each image's random crop and
flip is drawn from a generator seeded by (seed, epoch, image), so a run is reproducible
whatever the number of workers or processes, and a resumed run sees the same batches.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from ..data import Batch, few_shot_indices
from ..runtime.device import pick_device
from ..runtime.files import DATA_DIR, PROJECT_ROOT
from ..inference import device_of, evaluation
from ..runtime.progress import bar as progress_bar

IMAGENET_HINT = (
    "Download ILSVRC2012 (image-net.org, free account) on a machine with internet, extract "
    "train/ and val/ with one folder per class (sort val/ with valprep.sh), and pass "
    "root=<that folder> (CLI: --data-root) or put it at data/imagenet.")


def train_transform(size: int = 224):
    """The standard ImageNet training augmentation: random resized crop and horizontal flip."""
    from torchvision import transforms as T

    return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.PILToTensor()])


def eval_transform(size: int = 224):
    """The standard evaluation view: resize the short side to size·256/224, centre crop."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(round(size * 256 / 224)), T.CenterCrop(size), T.PILToTensor()])


class _Images(torch.utils.data.Dataset):
    """(uint8 image, label, position) for each selected file; seeded per-image augmentation."""

    def __init__(self, samples: list[tuple[str, int]], transform, seed: int, random: bool):
        self.samples, self.transform, self.seed, self.random = samples, transform, seed, random
        self.epoch = 0  # set before each epoch's workers start (they are not persistent)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except OSError as err:
            raise OSError(f"cannot read image {path}: {err}") from err
        if not self.random:
            return self.transform(image), label, i
        # torchvision's transforms draw from torch's global CPU generator: seed it per image.
        # A worker process owns its generator; in the main process (workers=0) the caller's
        # random state is put back afterwards (cheaper than fork_rng, which costs ~15 %).
        generator = torch.default_generator
        saved = None if torch.utils.data.get_worker_info() is not None else generator.get_state()
        generator.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        try:
            x = self.transform(image)
        finally:
            if saved is not None:
                generator.set_state(saved)
        return x, label, i


class FolderLoader:
    """Batches of an ImageFolderData on the device, for one process's share of each epoch."""

    def __init__(self, dataset: _Images, batch_size: int, device, train: bool, seed: int,
                 rank: int, world_size: int, workers: int, extras: dict | None = None):
        from torch.utils.data import DataLoader, DistributedSampler

        self.dataset, self.device = dataset, torch.device(device)
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                          shuffle=train, seed=seed, drop_last=train)
        self.extras = {k: v.to(self.device) for k, v in (extras or {}).items()}
        self.batches = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler,
                                  num_workers=workers, pin_memory=self.device.type == "cuda",
                                  drop_last=train, prefetch_factor=4 if workers else None,
                                  persistent_workers=False,
                                  # its own generator: DataLoader draws the workers' base seed
                                  # from it, and would otherwise consume the global stream
                                  generator=torch.Generator().manual_seed(seed))

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.dataset.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for x, y, index in self.batches:
            x = x.to(self.device, non_blocking=True).float().div_(255)
            index = index.to(self.device, non_blocking=True)
            extras = {k: v[index] for k, v in self.extras.items()}
            yield Batch(x=x, y=y.to(self.device, non_blocking=True), index=index, extras=extras)


class ImageFolderData:
    """Images in class folders, optionally N per class (few-shot), streamed from disk.

    Has what `kdlab.train.fit` needs from a dataset (len, classes, num_classes, in_channels,
    labels, fingerprint, subset) plus `loader(...)`, which fit calls in place of DeviceLoader.
    shots: keep `shots` images per class, drawn with `seed` (kdlab.data.few_shot_indices).
    """

    def __init__(self, folder: str | Path, size: int = 224, shots: int | None = None, seed: int = 0,
                 workers: int | None = None, name: str | None = None):
        import torchvision

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} does not exist. {IMAGENET_HINT}")
        try:
            folders = torchvision.datasets.ImageFolder(str(folder))
        except (FileNotFoundError, RuntimeError) as err:
            raise FileNotFoundError(f"{folder} is not a folder of class folders with images "
                                    f"({err}). {IMAGENET_HINT}") from err
        self.folder, self.size, self.workers = folder, size, workers
        self.name = name or folder.name
        self.classes = list(folders.classes)
        self.samples = list(folders.samples)
        if shots is not None:
            labels = torch.tensor([label for _, label in self.samples])
            picked = few_shot_indices(labels, shots, seed=seed)
            self.samples = [self.samples[i] for i in picked.tolist()]
        self.shots, self.seed = shots, seed

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def subset(self, index) -> "ImageFolderData":
        """The images at `index` (a tensor of positions or a boolean mask)."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = torch.nonzero(index).flatten()
        other = object.__new__(ImageFolderData)
        other.__dict__.update(self.__dict__)
        other.samples = [self.samples[i] for i in index.tolist()]
        return other

    def fingerprint(self) -> str:
        """A hash of the selected files (relative paths), their labels and the image size."""
        h = hashlib.sha256(f"{self.size}|{len(self.classes)}".encode())
        for path, label in self.samples:
            h.update(f"{os.path.relpath(path, self.folder)}\0{label}\n".encode())
        return h.hexdigest()[:16]

    def default_workers(self, world_size: int = 1) -> int:
        if self.workers is not None:
            return self.workers
        return min(8, max(1, (os.cpu_count() or 1) // world_size))

    def loader(self, batch_size: int, device="cpu", train: bool = True, augment: bool = True,
               seed: int = 0, rank: int = 0, world_size: int = 1, extras: dict | None = None,
               workers: int | None = None) -> FolderLoader:
        """Batches for one process: shuffled with random crops and flips when training.

        extras: per-image tensors (e.g. stored teacher logits) looked up by position. Maps
        that must be cropped with the image (frozen explanations) cannot follow a random
        resized crop: use online explanations with folder data.
        """
        for k, v in (extras or {}).items():
            if v.dim() == 4:
                raise ValueError(f"extra {k!r} is a per-pixel map; it cannot follow the random "
                                 "resized crops of folder data. Compute it online instead.")
            if len(v) != len(self):
                raise ValueError(f"extra {k!r} has {len(v)} rows for {len(self)} images")
        random = train and augment
        transform = train_transform(self.size) if random else eval_transform(self.size)
        dataset = _Images(self.samples, transform, seed, random)
        workers = self.default_workers(world_size) if workers is None else workers
        return FolderLoader(dataset, batch_size, device, train, seed, rank, world_size, workers, extras)


def load_imagenet(split: str = "train", root: str | Path | None = None, size: int = 224,
                  shots: int | None = None, seed: int = 0, workers: int | None = None) -> ImageFolderData:
    """ImageNet (ILSVRC2012) from <root>/<split>, optionally `shots` images per class."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root) if root else DATA_DIR / "imagenet"
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"ImageNet {split} split not found at {folder}. {IMAGENET_HINT}")
    data = ImageFolderData(folder, size=size, shots=shots, seed=seed, workers=workers,
                           name=f"imagenet-{split}")
    other = root / ("val" if split == "train" else "train")
    if other.is_dir():  # labels are folder positions: one missing class shifts every later label
        classes = sorted(p.name for p in other.iterdir() if p.is_dir())
        if classes != data.classes:
            missing = sorted(set(classes) - set(data.classes))[:5]
            extra = sorted(set(data.classes) - set(classes))[:5]
            raise ValueError(f"{folder} and {other} hold different class folders ({len(data.classes)} "
                             f"vs {len(classes)}; only in {other.name}: {missing}, only in {split}: "
                             f"{extra}); both splits need the same classes, or every label after the "
                             "first difference would be wrong")
    return data


@torch.inference_mode()
def evaluate_folder(model: torch.nn.Module, data: ImageFolderData, batch_size: int = 256,
                    teacher: torch.nn.Module | None = None, workers: int | None = None,
                    progress: bool = False) -> dict:
    """Top-1 accuracy (and agreement with `teacher`) on the evaluation view of every image.

    Under torchrun each process evaluates every N-th image and the counts are summed, so
    every image counts exactly once.
    """
    from . import distributed

    rank, world = distributed.rank(), distributed.world_size()
    device = device_of(model)
    share = torch.utils.data.Subset(_Images(data.samples, eval_transform(data.size), 0, False),
                                    range(rank, len(data), world))
    loader = torch.utils.data.DataLoader(
        share, batch_size=batch_size, num_workers=data.default_workers(world) if workers is None else workers,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # correct, agree, seen

    with evaluation(model) as net:
        for x, y, _ in progress_bar(len(loader), "evaluate", progress and rank == 0, iterable=loader):
            x = x.to(device, non_blocking=True).float().div_(255)  # pinned uint8: a quarter of the bytes
            predicted = net(x).argmax(1)
            counts[0] += (predicted == y.to(device)).sum()
            if teacher is not None:
                counts[1] += (predicted == teacher(x).argmax(1)).sum()
            counts[2] += len(y)
    counts = distributed.all_reduce_sum(counts)
    result = {"accuracy": (counts[0] / counts[2]).item(), "images": int(counts[2].item())}
    if teacher is not None:
        result["agreement"] = (counts[1] / counts[2]).item()
    return result


def folder_accuracy(model: torch.nn.Module, root: str | Path, batch_size: int = 128, workers: int = 4,
                    max_images: int | None = None, device="auto") -> float:
    """Top-1 accuracy on an ImageNet validation folder (one sub-folder per class; relative to
    the project folder unless absolute) at the standard evaluation view (resize to 256, centre
    crop 224): notebook 04's accuracy column for the full run's checkpoints."""
    data = ImageFolderData(PROJECT_ROOT / root)
    if max_images:
        data = data.subset(torch.arange(min(max_images, len(data))))
    model.to(pick_device(device))
    return evaluate_folder(model, data, batch_size, workers=workers)["accuracy"]
