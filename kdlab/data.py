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

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

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
                     flip: bool = True, return_views: bool = False):
    """Padded random crop and horizontal flip of a whole batch, one draw per image.

    All channels of an image move together, so an explanation map stacked as extra
    channels is transformed exactly like its image (frozen explanations, notebook 05).
    return_views: also return each image's view, dy·(2·pad+1) + dx + flipped·(2·pad+1)², the
    index into a teacher's table of logits (kdlab.teacher_table; the same draws either way).
    """
    n, _, h, w = x.shape
    view = torch.zeros(n, dtype=torch.long, device=x.device)
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(2 * pad + 1, (n, 1), generator=generator, device=x.device)
        dx = torch.randint(2 * pad + 1, (n, 1), generator=generator, device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
        view = (dy * (2 * pad + 1) + dx)[:, 0]
    if flip:
        flips = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(flips[:, None, None, None], x.flip(-1), x)
        view = view + flips * (2 * pad + 1) ** 2
    return (x, view) if return_views else x


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
    (pad=0: none) and a horizontal flip (flip=False: none). views=True: each batch also carries
    `extras["view"]`, the view each image was drawn in (random_crop_flip; 0 without augmentation).
    """

    def __init__(self, data: ImageSet, batch_size: int, device="cpu", train: bool = False,
                 pad: int = 4, seed: int = 0, extras: dict[str, torch.Tensor] | None = None,
                 flip: bool = True, views: bool = False):
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.extras = {k: v.to(self.device) for k, v in (extras or {}).items()}
        self.batch_size, self.train, self.pad, self.seed, self.flip = batch_size, train, pad, seed, flip
        self.views = views
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
            if self.views:
                extras["view"] = torch.zeros(len(idx), dtype=torch.long, device=self.device)
            if self.train and (self.pad or self.flip):
                stacked = torch.cat([x] + [extras[k].float() for k in spatial], dim=1)
                stacked, view = random_crop_flip(stacked, self.pad, g, flip=self.flip, return_views=True)
                if self.views:
                    extras["view"] = view
                x, start = stacked[:, : x.shape[1]], x.shape[1]
                for k in spatial:
                    extras[k] = stacked[:, start:start + extras[k].shape[1]]
                    start += extras[k].shape[1]
            yield Batch(x=x, y=self.labels[idx], index=idx, extras=extras)

