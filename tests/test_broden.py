"""The Broden reader (kdlab.scale.broden): format, round trip, dissection, bad files.

`write_broden` below writes the synthetic concept dataset in the Broden format, so that the
reader can be checked against the data in memory: dissecting the export must equal dissecting
the ImageSet.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdlab.concepts import ImageSetConcepts
from kdlab.data import ImageSet
from kdlab.dissect import dissect
from kdlab.models import get_model
from kdlab.scale.broden import META_COLUMNS, BrodenDataset, BrodenFormatError
from kdlab.synthetic import make_concept_dataset

_spec = importlib.util.spec_from_file_location("dissect_reference", Path(__file__).with_name("test_dissect.py"))
_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_reference)
reference_dissect = _reference.reference_dissect
BRODEN_CATEGORIES = ("color", "object", "material", "part", "scene", "texture")


def write_broden(data: ImageSet, root, split: str = "val", mask_scale: int = 1) -> Path:
    """Write `data` (images with concept masks) as a Broden directory at `root`.

    Images are lossless PNGs, so dissecting the export equals dissecting `data` in memory.
    mask_scale: masks are written at 1/mask_scale of the image size (broden1_224 uses 2;
    taken by nearest-neighbour subsampling, so use 1 for an export that must match exactly).
    """
    if not data.masks and not data.image_labels:
        raise ValueError(f"dataset {data.name!r} has no concept annotations to write")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    masks = {k: v[:, ::mask_scale, ::mask_scale] for k, v in (data.masks or {}).items()}
    scalars = dict(data.image_labels or {})
    present = list(masks) + list(scalars)
    categories = [c for c in dict.fromkeys(data.concept_categories) if c in present]
    categories += [c for c in present if c not in categories]
    columns = list(META_COLUMNS) + list(BRODEN_CATEGORIES) + [c for c in categories
                                                             if c not in BRODEN_CATEGORIES]
    n, _, ih, iw = data.images.shape
    sh, sw = next(iter(masks.values())).shape[-2:] if masks else (ih, iw)
    n_concepts = len(data.concepts)
    freq = np.zeros((len(categories), n_concepts), dtype=np.int64)   # images with the label
    cover = np.zeros((len(categories), n_concepts))                  # area in whole images
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i in range(n):
            name = f"synthetic/{i:06d}.png"
            (root / "images" / "synthetic").mkdir(exist_ok=True)
            rgb = data.images[i].permute(1, 2, 0).numpy()
            Image.fromarray(rgb[..., 0] if rgb.shape[-1] == 1 else rgb).save(root / "images" / name)
            cells = {}
            for ci, cat in enumerate(categories):
                if cat in masks:
                    m = masks[cat][i].numpy().astype(np.int64)
                    if not m.any():
                        cells[cat] = ""
                        continue
                    png = f"synthetic/{i:06d}_{cat}.png"
                    enc = np.stack([m % 256, m // 256, np.zeros_like(m)], -1).astype(np.uint8)
                    Image.fromarray(enc).save(root / "images" / png)
                    cells[cat] = png
                    labels, counts = np.unique(m[m > 0], return_counts=True)
                    freq[ci, labels] += 1
                    cover[ci, labels] += counts / m.size
                else:
                    label = int(scalars[cat][i])
                    cells[cat] = str(label) if label else ""
                    if label:
                        freq[ci, label] += 1
                        cover[ci, label] += 1.0
            writer.writerow([name, split, ih, iw, sh, sw] + [cells.get(c, "") for c in columns[6:]])
    with open(root / "label.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "name", "category", "frequency", "coverage", "syns"])
        for number in range(1, n_concepts):
            cats = ";".join(f"{c}({freq[ci, number]})" for ci, c in enumerate(categories)
                            if freq[ci, number])
            writer.writerow([number, data.concepts[number], cats, int(freq[:, number].sum()),
                             f"{cover[:, number].sum():.6f}", ""])
    with open(root / "category.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "first", "last", "count", "frequency"])
        for ci, cat in enumerate(categories):
            numbers = np.nonzero(freq[ci])[0]
            first, last = (int(numbers.min()), int(numbers.max())) if len(numbers) else (0, 0)
            annotated = n if cat in scalars else int((masks[cat].flatten(1) > 0).any(1).sum())
            writer.writerow([cat, first, last, len(numbers), annotated])
            with open(root / f"c_{cat}.csv", "w", newline="") as g:
                w = csv.writer(g)
                w.writerow(["code", "number", "name", "frequency", "coverage"])
                w.writerow([0, 0, "-", 0, 0.0])
                for code, number in enumerate(numbers, start=1):
                    w.writerow([code, int(number), data.concepts[number], int(freq[ci, number]),
                                f"{cover[ci, number]:.6f}"])
    return root


@pytest.fixture(scope="module")
def synthetic():
    return make_concept_dataset(n=40, seed=7, design="v1")


@pytest.fixture(scope="module")
def export(synthetic, tmp_path_factory):
    return write_broden(synthetic, tmp_path_factory.mktemp("broden") / "synthetic_broden")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_is_in_broden_format(export, synthetic):
    index = _rows(export / "index.csv")
    assert list(index[0]) == ["image", "split", "ih", "iw", "sh", "sw", "color", "object",
                              "material", "part", "scene", "texture"]
    assert len(index) == 40 and index[0]["ih"] == "32" and index[0]["sh"] == "32"
    assert index[0]["scene"].isdigit() and index[0]["texture"] == ""
    png = np.asarray(Image.open(export / "images" / index[0]["object"]))
    assert png.dtype == np.uint8 and png.shape == (32, 32, 3)
    np.testing.assert_array_equal(png[..., 0].astype(int) + 256 * png[..., 1].astype(int), synthetic.masks["object"][0].numpy())
    labels = _rows(export / "label.csv")
    assert list(labels[0]) == ["number", "name", "category", "frequency", "coverage", "syns"]
    assert [r["name"] for r in labels] == synthetic.concepts[1:]
    assert labels[0]["category"] == f"object({int((synthetic.masks['object'] == 1).flatten(1).any(1).sum())})"
    assert [r["name"] for r in _rows(export / "category.csv")] == ["object", "part", "color", "material", "scene"]
    assert {r["name"] for r in _rows(export / "c_scene.csv")} >= {"sky", "grass", "water", "brick"}


def test_reader_sees_the_same_concept_data(export, synthetic):
    ds = BrodenDataset(export)
    mem = ImageSetConcepts(synthetic)
    assert len(ds) == 40
    assert (ds.concepts, ds.categories, ds.primary, ds.mask_size) == \
        (mem.concepts, mem.categories, mem.primary, mem.mask_size)
    a, b = ds.take([3, 17]), mem.take([3, 17])
    assert torch.equal(a.images, b.images)
    for cat in b.pixel:
        assert torch.equal(a.pixel[cat].long(), b.pixel[cat].long())
    assert torch.equal(a.scalar["scene"], b.scalar["scene"])


def test_dissecting_the_export_equals_dissecting_in_memory(export, synthetic):
    torch.manual_seed(0)
    model = get_model("resnet8_w8", 12).eval()
    in_memory = dissect(model, "layer3", synthetic, quantile=0.02, batch_size=16, progress=False)
    from_disk = dissect(model, "layer3", BrodenDataset(export), quantile=0.02, batch_size=16, progress=False)
    assert from_disk.table.equals(in_memory.table)
    assert torch.equal(from_disk.iou, in_memory.iou)
    assert from_disk.counts.equals(in_memory.counts)
    with_workers = dissect(model, "layer3", BrodenDataset(export, num_workers=1), quantile=0.02,
                           batch_size=16, progress=False)
    assert with_workers.table.equals(in_memory.table)


def _tiny_broden(root: Path):
    """A hand-made Broden directory: two part layers, a label in two categories, textures."""
    (root / "images" / "x").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(root / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "name", "category", "frequency", "coverage", "syns"])
        w.writerows([[1, "red", "color(6)", 6, 1.0, ""], [2, "dog", "object(6);part(2)", 6, 1.0, "hound"],
                     [3, "leg", "part(6)", 6, 1.0, ""], [4, "head", "part(6)", 6, 1.0, ""],
                     [5, "banded", "texture(3)", 3, 3.0, ""], [6, "dotted", "texture(3)", 3, 3.0, ""],
                     [300, "far", "object(1)", 1, 0.1, ""]])
    cats = {"color": [1], "object": [2, 300], "part": [2, 3, 4], "texture": [5, 6]}
    coverage = {("object", 2): 2.0, ("part", 2): 0.1}          # dog: primary category object
    with open(root / "category.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "first", "last", "count", "frequency"])
        for c, numbers in cats.items():
            w.writerow([c, min(numbers), max(numbers), len(numbers), 6])
            with open(root / f"c_{c}.csv", "w", newline="") as g:
                cw = csv.writer(g)
                cw.writerow(["code", "number", "name", "frequency", "coverage"])
                for code, number in enumerate(numbers, 1):
                    cw.writerow([code, number, "n", 1, coverage.get((c, number), 1.0)])
    rows = []
    for i in range(6):
        img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "images" / "x" / f"{i}.jpg", quality=95)
        cells = {}
        for cat, choices in (("color", [1]), ("object", [2, 300]), ("part", [2, 3]), ("part2", [4])):
            m = np.where(rng.random((8, 8)) < 0.4, rng.choice(choices, (8, 8)), 0)
            enc = np.stack([m % 256, m // 256, np.zeros_like(m)], -1).astype(np.uint8)
            Image.fromarray(enc).save(root / "images" / "x" / f"{i}_{cat}.png")
            name = f"x/{i}_{cat}.png"
            key = "part" if cat == "part2" else cat
            cells[key] = f"{cells[key]};{name}" if key in cells else name
        cells["texture"] = "5;6" if i % 2 else "5"
        rows.append([f"x/{i}.jpg", "train", 16, 16, 8, 8, cells["color"], cells["object"], "",
                     cells["part"], "", cells["texture"]])
    with open(root / "index.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "split", "ih", "iw", "sh", "sw", "color", "object", "material", "part",
                    "scene", "texture"])
        w.writerows(rows)
    (root / "c_material.csv").write_text("code,number,name,frequency,coverage\n")
    (root / "c_scene.csv").write_text("code,number,name,frequency,coverage\n")
    return root


def test_multilayer_broden_equals_reference(tmp_path):
    root = _tiny_broden(tmp_path / "tiny")
    ds = BrodenDataset(root)
    assert ds.categories == ["color", "object", "part", "texture"]
    assert ds.primary[2] == ds.categories.index("object") and ds.primary[3] == ds.categories.index("part")
    assert ds.concepts[300] == "far" and ds.concepts[150] == "-"
    item = ds.take([1])
    assert item.pixel["part"].shape == (1, 2, 8, 8) and item.scalar["texture"].tolist() == [[5, 6]]
    torch.manual_seed(1)
    model = get_model("resnet8_w8", 5).eval()
    thresholds, iou = reference_dissect(model, "layer2", ds, quantile=0.05)
    result = dissect(model, "layer2", ds, quantile=0.05, batch_size=4, progress=False)
    np.testing.assert_array_equal(result.thresholds.numpy(), thresholds)
    np.testing.assert_allclose(result.iou.numpy(), iou, rtol=0, atol=1e-12)
    assert result.iou[:, 5:7].max() > 0  # image-level texture labels were scored


def test_missing_directory_says_how_to_get_broden(tmp_path):
    with pytest.raises(FileNotFoundError, match="get_broden.py"):
        BrodenDataset(tmp_path / "broden1_224")


def _break(root, file, old, new):
    path = root / file
    path.write_text(path.read_text().replace(old, new, 1))


def test_missing_column_names_file_and_column(tmp_path):
    root = _tiny_broden(tmp_path / "t")
    _break(root, "index.csv", "image,split,ih,iw,sh,sw", "image,split,ih,iw,sh,width")
    with pytest.raises(BrodenFormatError, match=r"index\.csv: missing column\(s\) sw"):
        BrodenDataset(root)


def test_unknown_label_in_index_names_line(tmp_path):
    root = _tiny_broden(tmp_path / "t")
    lines = (root / "index.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",77"
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BrodenFormatError, match=r"index\.csv line 4, column 'texture': label 77 is not in label\.csv"):
        BrodenDataset(root)


def test_unreadable_png_names_file_and_line(tmp_path):
    root = _tiny_broden(tmp_path / "t")
    (root / "images" / "x" / "2_object.png").write_bytes(b"not a png")
    ds = BrodenDataset(root)
    with pytest.raises(BrodenFormatError, match=r"2_object\.png \(index\.csv line 4, column 'object'\): cannot read"):
        ds.take([2])


def test_png_label_not_in_label_csv(tmp_path):
    root = _tiny_broden(tmp_path / "t")
    bad = np.zeros((8, 8, 3), dtype=np.uint8)
    bad[0, 0] = (44, 1, 0)   # label 44 + 256 = 300 exists; 45 + 256 does not
    bad[1, 1] = (45, 1, 0)
    Image.fromarray(bad).save(root / "images" / "x" / "0_color.png")
    with pytest.raises(BrodenFormatError, match=r"0_color\.png \(index\.csv line 2.*\[301\] not in label\.csv"):
        BrodenDataset(root).take([0])


def test_malformed_label_csv_names_line(tmp_path):
    root = _tiny_broden(tmp_path / "t")
    _break(root, "label.csv", "part(6)", "part 6")
    with pytest.raises(BrodenFormatError, match=r"label\.csv line 4, column 'category'"):
        BrodenDataset(root)
