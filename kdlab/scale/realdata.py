"""The e²KD experiments on real data: Waterbirds (right features), PASCAL VOC
(interpretability) and ImageNet few-shot, with ImageNet-pretrained teachers.

Used by the full-run parameter files of notebooks 05 (params/imagenet_fewshot.yaml:
`imagenet_fewshot`) and 06 (params/waterbirds.yaml, params/voc.yaml: `shortcut_data`,
`train_real_teacher`); the experiments themselves are kdlab.experiments.e2kd's, on ImageSets.
`shortcut_data` serves notebook 06 its data on every dataset, the synthetic one included.

Waterbirds and VOC are read from their standard on-disk layouts into an in-memory `ImageSet`,
resized to `size`×`size` pixels (ImageNet is streamed from disk: kdlab.scale.imagenet).
Neither can be downloaded here: if the files are missing, the error says
where to get them and where to put them.

Waterbirds (Sagawa et al. 2020): <root>/metadata.csv with columns img_id, img_filename, y
(0 landbird, 1 waterbird), split (0 train, 1 val, 2 test), place (0 land, 1 water) and the
images at <root>/<img_filename>. In the training split 95 % of the birds stand on their own
kind of background; val and test are balanced, so the groups "landbird on water" and
"waterbird on land" are the out-of-distribution test of the shortcut experiment.

PASCAL VOC (through torchvision's VOCDetection): <root>/VOCdevkit/VOC2012/{JPEGImages,
Annotations, ImageSets/Main/<split>.txt}. VOC is multi-label; kdlab's objectives are
single-label, so `load_voc` labels each image with the class of its largest object (the
multi-hot labels and all boxes are kept in `meta`), and the object mask is the union of that
class's boxes: the ground truth of the energy pointing game (kdlab.explain_metrics).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import bcos
from ..data import ImageSet
from ..experiments import e2kd
from ..runtime.files import DATA_DIR
from ..losses import CrossEntropy
from ..models import get_model
from ..recipes import Recipe, train_config
from ..train import TrainConfig, TrainedModel, load_or_train

WATERBIRDS_URL = "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz"
WATERBIRDS_FOLDER = "waterbird_complete95_forest2water2"
WATERBIRDS_CLASSES = ["landbird", "waterbird"]
WATERBIRDS_PLACES = ["land", "water"]
WATERBIRDS_SPLITS = {"train": 0, "val": 1, "test": 2}
WATERBIRDS_COLUMNS = ("img_filename", "y", "split", "place")

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor"]


def _load_image(path: Path, size: int) -> np.ndarray:
    """An RGB image resized (short side to `size`) and centre-cropped to size×size, as uint8 CHW."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def find_waterbirds(root: str | Path | None = None) -> Path:
    """The folder holding Waterbirds' metadata.csv (root itself, or root/<the archive's folder>)."""
    base = Path(root) if root else DATA_DIR / "waterbirds"
    candidates = [base, base / WATERBIRDS_FOLDER, DATA_DIR / WATERBIRDS_FOLDER]
    for folder in candidates:
        if (folder / "metadata.csv").is_file():
            return folder
    raise FileNotFoundError(
        "Waterbirds not found: no metadata.csv in any of " + ", ".join(str(c) for c in candidates)
        + f". On a machine with internet download {WATERBIRDS_URL} (about 0.5 GB), extract it and "
        f"pass root=<the extracted {WATERBIRDS_FOLDER} folder> or put it under {DATA_DIR / 'waterbirds'}.")


def read_waterbirds_metadata(folder: Path) -> list[dict]:
    """The rows of metadata.csv, checked: required columns present, numbers in range."""
    path = folder / "metadata.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in WATERBIRDS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; Waterbirds' metadata.csv has "
                             f"img_id, img_filename, y, split, place, place_filename")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                item = {"file": row["img_filename"], "y": int(row["y"]), "split": int(float(row["split"])),
                        "place": int(float(row["place"]))}
            except ValueError as err:
                raise ValueError(f"{path}, line {line}: {err}") from err
            if item["y"] not in (0, 1) or item["place"] not in (0, 1) or item["split"] not in (0, 1, 2):
                raise ValueError(f"{path}, line {line}: y and place must be 0 or 1 and split 0, 1 "
                                 f"or 2, got {item}")
            rows.append(item)
    return rows


def load_waterbirds(split: str = "train", root: str | Path | None = None, size: int = 64,
                    n: int | None = None) -> ImageSet:
    """Waterbirds' `split` ("train", "val", "test") as an ImageSet of size×size images.

    labels: 0 landbird, 1 waterbird; image_labels["place"]: 0 land, 1 water;
    meta["group"] = 2·y + place (0 landbird/land, 1 landbird/water, 2 waterbird/land,
    3 waterbird/water); n keeps the first n images of the split.
    """
    if split not in WATERBIRDS_SPLITS:
        raise ValueError(f"split must be one of {list(WATERBIRDS_SPLITS)}, got {split!r}")
    folder = find_waterbirds(root)
    rows = [r for r in read_waterbirds_metadata(folder) if r["split"] == WATERBIRDS_SPLITS[split]]
    if n is not None:
        rows = rows[:n]
    if not rows:
        raise ValueError(f"{folder / 'metadata.csv'} lists no images of the {split} split")
    missing = [r["file"] for r in rows if not (folder / r["file"]).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images listed in {folder / 'metadata.csv'} are missing, "
                                f"e.g. {folder / missing[0]}; re-extract the archive from {WATERBIRDS_URL}")
    images = torch.from_numpy(np.stack([_load_image(folder / r["file"], size) for r in rows]))
    y = torch.tensor([r["y"] for r in rows], dtype=torch.int64)
    place = torch.tensor([r["place"] for r in rows], dtype=torch.int64)
    return ImageSet(images=images, labels=y, classes=list(WATERBIRDS_CLASSES), name="waterbirds",
                    image_labels={"place": place},
                    meta={"group": 2 * y + place, "split": split, "files": [r["file"] for r in rows]})


def group_accuracies(logits: torch.Tensor, data: ImageSet) -> dict:
    """Waterbirds' accuracy per (bird, place) group, the worst group's and the average: the
    dataset's standard metrics, for analysing full runs (no notebook prints them yet).

    'in_distribution' covers birds on their own kind of background, 'out_of_distribution'
    the flipped combinations (landbird on water, waterbird on land).
    """
    y, place = data.labels, data.image_labels["place"]
    correct = (logits.argmax(1) == y).float()
    result = {}
    for yi, bird in enumerate(WATERBIRDS_CLASSES):
        for pi, where in enumerate(WATERBIRDS_PLACES):
            members = (y == yi) & (place == pi)
            if members.any():
                result[f"{bird}/{where}"] = correct[members].mean().item()
    result["worst_group"] = min(result.values())
    result["in_distribution"] = correct[y == place].mean().item() if (y == place).any() else float("nan")
    result["out_of_distribution"] = correct[y != place].mean().item() if (y != place).any() else float("nan")
    result["average"] = correct.mean().item()
    return result


def voc_targets(annotation: dict, width: int, height: int, size: int) -> torch.Tensor:
    """(k, 5) float rows [class, x0, y0, x1, y1] of one torchvision VOC annotation, in the
    coordinates of the image resized to size×size."""
    rows = []
    for obj in annotation.get("object", []):
        name = obj["name"]
        if name not in VOC_CLASSES:
            raise ValueError(f"unknown VOC class {name!r} in {annotation.get('filename')}")
        box = obj["bndbox"]
        x0, y0 = (float(box["xmin"]) - 1) * size / width, (float(box["ymin"]) - 1) * size / height
        x1, y1 = float(box["xmax"]) * size / width, float(box["ymax"]) * size / height
        rows.append([VOC_CLASSES.index(name), x0, y0, x1, y1])
    return torch.tensor(rows, dtype=torch.float32).view(-1, 5)


def box_masks(boxes: list[torch.Tensor], classes, size: int) -> torch.Tensor:
    """(N, size, size) bool: per image, the union of the boxes of the given class."""
    classes = torch.as_tensor(classes).long()
    if classes.dim() == 0:
        classes = classes.expand(len(boxes))
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    masks = torch.zeros(len(boxes), size, size, dtype=torch.bool)
    for i, (rows, c) in enumerate(zip(boxes, classes.tolist())):
        for cls, x0, y0, x1, y1 in rows[rows[:, 0] == c].tolist():
            masks[i] |= ((coords[:, None] >= y0) & (coords[:, None] < y1)
                         & (coords[None, :] >= x0) & (coords[None, :] < x1))
    return masks


def load_voc(split: str = "train", root: str | Path | None = None, year: str = "2012", size: int = 128,
             n: int | None = None) -> ImageSet:
    """PASCAL VOC detection data (torchvision's VOCDetection layout) as a single-label ImageSet.

    Each image is resized to size×size (aspect ratio not kept, so boxes stay boxes).
    labels: the class of the image's largest object; masks["object"]: that class's boxes
    (value class + 1); meta["multi_hot"]: (N, 20) all classes present; meta["boxes"]: per image
    a (k, 5) tensor [class, x0, y0, x1, y1] in resized pixels.
    """
    import torchvision

    root = Path(root) if root else DATA_DIR / "voc"
    try:
        ds = torchvision.datasets.VOCDetection(str(root), year=year, image_set=split, download=False)
    except (RuntimeError, FileNotFoundError) as err:
        raise FileNotFoundError(
            f"PASCAL VOC {year} ({split}) not found under {root} ({err}). On a machine with internet "
            f"run `python -c \"import torchvision; torchvision.datasets.VOCDetection('{root}', "
            f"year='{year}', image_set='{split}', download=True)\"` (about 2 GB) and copy the "
            f"folder here, so that {root}/VOCdevkit/VOC{year}/JPEGImages exists.") from err
    count = len(ds) if n is None else min(n, len(ds))
    images, labels, multi_hot, boxes = [], [], torch.zeros(count, len(VOC_CLASSES), dtype=torch.int64), []
    from PIL import Image

    for i in range(count):
        annotation = ds.parse_voc_xml(__import__("xml.etree.ElementTree", fromlist=["parse"])
                                      .parse(ds.annotations[i]).getroot())["annotation"]
        with Image.open(ds.images[i]) as img:
            width, height = img.size
            img = img.convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
        rows = voc_targets(annotation, width, height, size)
        if len(rows) == 0:
            raise ValueError(f"{ds.annotations[i]} has no objects")
        areas = (rows[:, 3] - rows[:, 1]) * (rows[:, 4] - rows[:, 2])
        labels.append(int(rows[areas.argmax(), 0]))
        multi_hot[i, rows[:, 0].long()] = 1
        boxes.append(rows)
    labels = torch.tensor(labels, dtype=torch.int64)
    object_mask = box_masks(boxes, labels, size)
    return ImageSet(images=torch.from_numpy(np.stack(images)), labels=labels, classes=list(VOC_CLASSES),
                    name="voc", masks={"object": (object_mask * (labels + 1).view(-1, 1, 1)).to(torch.uint8)},
                    meta={"multi_hot": multi_hot, "boxes": boxes, "split": split, "year": year})


def shortcut_data(dataset: str, root: str | Path | None = None, size: int = 64, correlation: float = 0.95,
                  n_student: int = 1200, n_test: int = 1000, seed: int = 0) -> dict:
    """The data of notebook 06's experiment: {"teacher_train", "student_train", "test_in",
    "test_ood"} (teacher_train None: the course teacher; test_ood None: no shortcut to test).

    synthetic: kdlab.experiments.e2kd.synthetic_shortcut_data(correlation, n_student, n_test,
        seed), 32×32 images (root and size do not apply).
    waterbirds (root, size): students train on the training split (95 % correlated); test_in / test_ood are
        the test split's birds on their own / the other background; the teacher trains on the
        validation split, where the backgrounds are balanced.
    voc (root, size): no shortcut: students and teacher train on VOC train, test_in is VOC val (for the
        interpretability metrics), test_ood is None.
    """
    if dataset == "synthetic":
        return e2kd.synthetic_shortcut_data(correlation, n_student, n_test, seed)
    if dataset == "waterbirds":
        test = load_waterbirds("test", root, size)
        same = test.labels == test.image_labels["place"]
        return {"teacher_train": load_waterbirds("val", root, size),
                "student_train": load_waterbirds("train", root, size),
                "test_in": test.subset(same), "test_ood": test.subset(~same)}
    if dataset == "voc":
        train = load_voc("train", root, size=size)
        return {"teacher_train": train, "student_train": train,
                "test_in": load_voc("val", root, size=size), "test_ood": None}
    raise ValueError(f"unknown dataset {dataset!r}; choose synthetic, waterbirds or voc")


def pretrained_classifier(arch: str, num_classes: int) -> nn.Module:
    """An ImageNet-pretrained network (torchvision or kdlab.bcos) with a new, randomly
    initialised classifier for `num_classes` classes: the starting point of a real-data teacher."""
    bcos.register_models()
    model = get_model(arch, 1000, pretrained=True)
    if bcos.is_bcos_model(model):
        return bcos.replace_classifier(model, num_classes)
    if isinstance(getattr(model, "fc", None), nn.Linear):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model
    raise ValueError(f"do not know where the classifier of {arch} is; use a ResNet")


def train_real_teacher(data: ImageSet, arch: str, epochs: int, lr: float, batch_size: int = 64,
                       pretrained: bool = True, seed: int = 0, device="auto") -> TrainedModel:
    """A teacher for real data (notebook 06's full runs): ImageNet-pretrained and fine-tuned, or
    from scratch; B-cos networks with Adam, others with SGD."""
    bcos.register_models()
    cfg = train_config("adam" if arch.startswith("bcos_") else "sgd", epochs=epochs, lr=lr, batch_size=batch_size,
                       seed=seed)
    build = (lambda: pretrained_classifier(arch, data.num_classes)) if pretrained else \
        (lambda: get_model(arch, data.num_classes, data.in_channels))
    return load_or_train(f"{data.name}-teacher-{arch}{'-pretrained' if pretrained else ''}", build, data,
                         CrossEntropy(), cfg, device=device)


@e2kd.accepts_student_recipe
def imagenet_fewshot(root: str | Path | None, teacher: nn.Module, shots, seeds, recipe: Recipe,
                     name: str = "e2kd-fewshot", device="auto", progress: bool = True, size: int = 224,
                     workers: int | None = None, *, cfg: TrainConfig, steps: int) -> list[dict]:
    """Notebook 05's KD vs e²KD comparison (kdlab.experiments.e2kd.fewshot_comparison, with
    its recipe, cfg and steps) on ImageNet folders streamed from disk (kdlab.scale.imagenet),
    with a pretrained `teacher`.

    The teacher runs online (stored maps cannot follow the random resized crops of folder
    data); each student's accuracy and agreement with the teacher are measured on the val
    split in one streaming pass.
    """
    from .imagenet import evaluate_folder, load_imagenet

    test = load_imagenet("val", root, size, workers=workers)
    return e2kd.fewshot_comparison(
        lambda n_shots, seed: load_imagenet("train", root, size, shots=n_shots, seed=seed, workers=workers),
        test, teacher, shots, seeds, recipe, name, device, progress, cfg=cfg, steps=steps, frozen=False,
        evaluate=lambda model: evaluate_folder(model, test, teacher=teacher, workers=workers))
