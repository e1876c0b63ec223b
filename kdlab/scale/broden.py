"""Broden folders on disk as concept data for dissection, for full runs (notebooks 03, 04 with
params/imagenet_dissect.yaml). `concept_data(name)` gives the synthetic concept images or a
Broden folder; both are the view of kdlab.concepts (`concept_source`), which is all that
kdlab.dissect reads.

The Broden format (Bau et al. 2017; broden1_224 has 63,305 images of 224×224, masks 112×112):

- index.csv: columns image,split,ih,iw,sh,sw,color,object,material,part,scene,texture. A
  category's cell holds values separated by `;`: an integer is an image-level label (a mask
  covering the whole image), a file name is a PNG segmentation whose pixel label is R + 256·G.
  Paths are relative to <root>/images/.
- label.csv: number,name,category,frequency,coverage,syns, where category reads like
  `object(1203);part(4)` (images per category).
- category.csv: name,first,last,count,frequency (one row per category, in column order).
- c_<category>.csv: code,number,name,frequency,coverage; a label's *primary* category, the
  one it is scored in, is the one where its coverage is largest (as NetDissect-Lite).

`BrodenDataset` reads and checks the CSV files up front (a malformed file is an error naming
the file and the line) and decodes images and PNGs batch by batch, in worker processes if
asked, so a dissection never holds the dataset in memory. tests/test_broden.py writes the
synthetic dataset in this format and checks that dissecting it from disk equals dissecting
it in memory.
"""

from __future__ import annotations

import csv
import os
import re
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..concepts import ConceptBatch, ImageSetConcepts, concept_source, head, synthetic_concepts  # noqa: F401
from ..data import ImageSet
from ..runtime.files import DATA_DIR, PROJECT_ROOT


def concept_data(name: str = "synthetic", like: ImageSet | None = None, n: int = 2000,
                 seed: int = 0, root: str | Path | None = None, num_workers: int | None = None):
    """The images to dissect on (notebooks 03, 04): 'synthetic' concept images
    (kdlab.concepts.synthetic_concepts) or the 'broden' directory.

    broden: data/broden1_224, or `root` (absolute, or relative to the project folder as in the
    parameter files); the first n images (n = 0: all of them), decoded by `num_workers`
    processes (default: up to 8).
    """
    if name == "synthetic":
        return synthetic_concepts(like, n, seed)
    if name != "broden":
        raise ValueError(f"concept data must be 'synthetic' or 'broden', got {name!r}")
    workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
    return BrodenDataset(PROJECT_ROOT / root if root else DATA_DIR / "broden1_224",
                         max_images=n or None, num_workers=workers)


# ---------------------------------------------------------------------------------------------
# The Broden format on disk

META_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
_CATEGORY_FIELD = re.compile(r"^([^()]+)\((\d+)\)$")


class BrodenFormatError(ValueError):
    """A Broden file is missing, malformed or inconsistent; the message names file and line."""


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a CSV file that must have the `required` columns."""
    if not path.exists():
        raise BrodenFormatError(f"{path}: file not found (a Broden directory needs index.csv, "
                                "label.csv, category.csv and c_<category>.csv)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise BrodenFormatError(f"{path}: missing column(s) {', '.join(missing)} "
                                    f"(header has: {', '.join(columns) or 'nothing'})")
        rows = []
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise BrodenFormatError(f"{path} line {reader.line_num}: expected {len(columns)} "
                                        "fields")
            rows.append((reader.line_num, row))
    return rows


def _int(path, line, column, value) -> int:
    try:
        return int(value)
    except ValueError:
        raise BrodenFormatError(f"{path} line {line}, column {column!r}: expected an integer, "
                                f"got {value!r}") from None


def _float(path, line, column, value) -> float:
    try:
        return float(value) if value != "" else 0.0
    except ValueError:
        raise BrodenFormatError(f"{path} line {line}, column {column!r}: expected a number, "
                                f"got {value!r}") from None


class BrodenDataset:
    """A Broden-format directory as concept data for `kdlab.dissect.dissect`.

    root: the directory holding index.csv (e.g. data/broden1_224). categories: a subset of
    the categories to use (default all in category.csv). split: keep only rows of this split.
    max_images: the first n images only (quick runs). num_workers: processes decoding images
    and PNGs (0 = in this process).
    """

    def __init__(self, root, categories=None, split: str | None = None,
                 max_images: int | None = None, num_workers: int = 0):
        self.root = Path(root)
        if not (self.root / "index.csv").exists():
            raise FileNotFoundError(
                f"no Broden dataset at {self.root} (index.csv not found). Download broden1_224 "
                "on a machine with internet with `python data/get_broden.py` (about 1 GB) and "
                "copy data/broden1_224 here, or pass root= to where it is.")
        self.num_workers = num_workers
        self._read_labels()
        self._read_categories(categories)
        self._read_index(split, max_images)

    # -- CSV files ------------------------------------------------------------------------------

    def _read_labels(self):
        path = self.root / "label.csv"
        rows = _read_csv(path, ("number", "name", "category"))
        numbers = {}
        for line, row in rows:
            number = _int(path, line, "number", row["number"])
            if number < 0 or number in numbers:
                raise BrodenFormatError(f"{path} line {line}: label number {number} is negative or repeated")
            for part in filter(None, row["category"].split(";")):
                if not _CATEGORY_FIELD.match(part):
                    raise BrodenFormatError(f"{path} line {line}, column 'category': expected "
                                            f"entries like 'object(12)', got {part!r}")
            numbers[number] = row["name"]
        size = max(numbers, default=0) + 1
        self.concepts = ["-"] * size
        for number, name in numbers.items():
            self.concepts[number] = name
        self.known = np.zeros(size, dtype=bool)
        self.known[list(numbers)] = True
        self.known[0] = True  # 0 = unlabelled pixel

    def _read_categories(self, wanted):
        path = self.root / "category.csv"
        names = [row["name"] for _, row in _read_csv(path, ("name",))]
        if wanted is not None:
            unknown = [c for c in wanted if c not in names]
            if unknown:
                raise ValueError(f"unknown categories {unknown}; {path} lists {names}")
            names = [c for c in names if c in wanted]
        self.categories = names
        coverage = np.zeros((len(names), len(self.concepts)))
        for ci, cat in enumerate(names):
            cpath = self.root / f"c_{cat}.csv"
            for line, row in _read_csv(cpath, ("code", "number", "name", "coverage")):
                number = _int(cpath, line, "number", row["number"])
                if number == 0:
                    continue
                if number >= len(self.concepts) or not self.known[number]:
                    raise BrodenFormatError(f"{cpath} line {line}: label {number} is not in label.csv")
                coverage[ci, number] = _float(cpath, line, "coverage", row["coverage"])
        # The primary category has the largest coverage (ties: the later one, as NetDissect-Lite).
        flipped = coverage[::-1].argmax(0)
        self.primary = [int(len(names) - 1 - i) for i in flipped]
        for number in range(len(self.concepts)):
            if number == 0 or coverage[:, number].max() == 0:
                self.primary[number] = -1   # no category of ours holds it: never scored

    def _read_index(self, split, max_images):
        path = self.root / "index.csv"
        rows = _read_csv(path, META_COLUMNS + tuple(self.categories))
        self.items = []   # (line, image path, {category: [int or png name]})
        sizes = set()
        for line, row in rows:
            if split is not None and row["split"] != split:
                continue
            sh, sw = (_int(path, line, c, row[c]) for c in ("sh", "sw"))
            sizes.add((sh, sw))
            cells = {}
            for cat in self.categories:
                values = []
                for v in filter(None, row[cat].split(";")):
                    if v.isdigit():
                        v = int(v)
                        if v >= len(self.known) or not self.known[v]:
                            raise BrodenFormatError(f"{path} line {line}, column {cat!r}: label {v} "
                                                    "is not in label.csv")
                    values.append(v)
                cells[cat] = values
            self.items.append((line, row["image"], cells))
            if max_images is not None and len(self.items) >= max_images:
                break
        if not self.items:  # dissection would fail later with "the concept dataset is empty"
            which = f" of split {split!r} (splits: {sorted({r['split'] for _, r in rows})})" if rows else ""
            raise BrodenFormatError(f"{path}: no images{which}, so the concept dataset of {self.root} "
                                    "would be empty. Copy the whole Broden download there "
                                    "(python data/get_broden.py), or pass another root= or split=")
        if len(sizes) > 1:
            raise BrodenFormatError(f"{path}: masks of several sizes {sorted(sizes)}; "
                                    "one size is needed to batch them")
        self.mask_size = sizes.pop() if sizes else (0, 0)
        self.pixel_categories = [c for c in self.categories
                                 if any(isinstance(v, str) for _, _, cells in self.items for v in cells[c])]

    # -- images and masks -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items)

    def _png(self, name: str, line: int, cat: str) -> np.ndarray:
        from PIL import Image

        file = self.root / "images" / name
        where = f"{file} (index.csv line {line}, column {cat!r})"
        try:
            with Image.open(file) as im:
                rgb = np.asarray(im.convert("RGB"))
        except Exception as err:  # PIL raises several types for unreadable files
            raise BrodenFormatError(f"{where}: cannot read the PNG ({err})") from None
        if rgb.shape[:2] != tuple(self.mask_size):
            raise BrodenFormatError(f"{where}: mask is {rgb.shape[:2]}, index.csv says {self.mask_size}")
        label = rgb[..., 0].astype(np.int64) + 256 * rgb[..., 1].astype(np.int64)
        values = np.unique(label)
        wrong = [int(v) for v in values if v >= len(self.known) or not self.known[v]]
        if wrong:
            raise BrodenFormatError(f"{where}: label number(s) {wrong[:5]} not in label.csv")
        return label

    def item(self, i: int, masks: bool = True):
        """(uint8 image (C, H, W), {category: (L, h, w) int}, {category: (L,) int}) of image i."""
        from PIL import Image

        line, name, cells = self.items[i]
        file = self.root / "images" / name
        try:
            with Image.open(file) as im:
                image = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
        except Exception as err:
            raise BrodenFormatError(f"{file} (index.csv line {line}): cannot read the image ({err})") from None
        pixel, scalar = {}, {}
        if masks:
            for cat in self.categories:
                pngs = [v for v in cells[cat] if isinstance(v, str)]
                ints = [v for v in cells[cat] if isinstance(v, int)]
                if cat in self.pixel_categories:
                    layers = [self._png(v, line, cat) for v in pngs]
                    pixel[cat] = torch.from_numpy(np.stack(layers)) if layers else \
                        torch.zeros(0, *self.mask_size, dtype=torch.int64)
                    if ints:  # an image-level label in a pixel category: a constant layer
                        pixel[cat] = torch.cat([pixel[cat], torch.tensor(ints).view(-1, 1, 1)
                                                .expand(-1, *self.mask_size)])
                else:
                    scalar[cat] = torch.tensor(ints, dtype=torch.int64)
        return image, pixel, scalar

    def _collate(self, items, index):
        images = [im for im, _, _ in items]
        if len({tuple(im.shape) for im in images}) > 1:
            raise BrodenFormatError(f"{self.root}: images of different sizes in one batch; "
                                    "Broden images must share one size")
        pixel, scalar = {}, {}
        for key, out, dims in (("pixel", pixel, 3), ("scalar", scalar, 1)):
            cats = items[0][1 if key == "pixel" else 2].keys()
            for cat in cats:
                parts = [it[1 if key == "pixel" else 2][cat] for it in items]
                depth = max(1, max(p.shape[0] for p in parts))
                shape = (len(parts), depth) + tuple(parts[0].shape[1:])
                stacked = torch.zeros(shape, dtype=torch.int32 if key == "pixel" else torch.int64)
                for j, p in enumerate(parts):
                    stacked[j, : p.shape[0]] = p
                out[cat] = stacked
        x = torch.stack(images).float().div_(255)
        return ConceptBatch(x, torch.as_tensor(index, dtype=torch.long), pixel, scalar)

    def take(self, index, masks: bool = True) -> ConceptBatch:
        index = [int(i) for i in torch.as_tensor(index).flatten()]
        return self._collate([self.item(i, masks) for i in index], index)

    def batches(self, batch_size: int, masks: bool = True):
        if self.num_workers <= 0:
            for start in range(0, len(self), batch_size):
                yield self.take(range(start, min(start + batch_size, len(self))), masks)
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(_Items(self, masks), batch_size=batch_size, num_workers=self.num_workers,
                            collate_fn=partial(_collate_rows, self))
        yield from loader

    def head(self, n: int) -> "BrodenDataset":
        """The same dataset restricted to its first n images."""
        import copy

        out = copy.copy(self)
        out.items = self.items[:n]
        return out


def _collate_rows(ds: BrodenDataset, rows):
    return ds._collate([r[1] for r in rows], [r[0] for r in rows])


class _Items(torch.utils.data.Dataset):
    def __init__(self, ds: BrodenDataset, masks: bool):
        self.ds, self.masks = ds, masks

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return i, self.ds.item(i, self.masks)
