"""Waterbirds and PASCAL VOC loaders, on tiny fake datasets written in the real on-disk layouts."""

import numpy as np
import pytest
import torch
from PIL import Image

from kdlab.scale import realdata


def _write_jpeg(path, color, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), color, dtype=np.uint8)).save(path, quality=95)


@pytest.fixture
def waterbirds_root(tmp_path):
    folder = tmp_path / realdata.WATERBIRDS_FOLDER
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    specs = [(0, 0, 0), (0, 0, 1), (1, 0, 1), (1, 1, 0), (0, 2, 1), (1, 2, 0), (1, 2, 1), (0, 2, 0)]
    for i, (y, split, place) in enumerate(specs):
        name = f"{'001.Albatross' if y else '002.Sparrow'}/img_{i}.jpg"
        _write_jpeg(folder / name, (200 * y, 50 * place, 30 + i))
        rows.append(f"{i + 1},{name},{y},{split},{place},/x/y.jpg")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_waterbirds_splits_labels_and_groups(waterbirds_root):
    test = realdata.load_waterbirds("test", root=waterbirds_root, size=16)
    assert test.images.shape == (4, 3, 16, 16) and test.images.dtype == torch.uint8
    assert test.labels.tolist() == [0, 1, 1, 0]
    assert test.image_labels["place"].tolist() == [1, 0, 1, 0]
    assert test.meta["group"].tolist() == [1, 2, 3, 0]
    assert test.classes == ["landbird", "waterbird"]
    # the image content survives: waterbirds were written red
    assert test.images[1, 0].float().mean() > 150 and test.images[0, 0].float().mean() < 50
    train = realdata.load_waterbirds("train", root=waterbirds_root / realdata.WATERBIRDS_FOLDER, size=16)
    assert len(train) == 3 and train.labels.tolist() == [0, 0, 1]


def test_group_accuracies(waterbirds_root):
    test = realdata.load_waterbirds("test", root=waterbirds_root, size=8)
    # a "model" that predicts the place: right in distribution, wrong on flipped backgrounds
    logits = torch.nn.functional.one_hot(test.image_labels["place"], 2).float()
    acc = realdata.group_accuracies(logits, test)
    assert acc["in_distribution"] == 1.0 and acc["out_of_distribution"] == 0.0
    assert acc["worst_group"] == 0.0 and acc["average"] == 0.5
    assert acc["waterbird/water"] == 1.0 and acc["landbird/water"] == 0.0


def test_waterbirds_missing_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.csv.*waterbird_complete95"):
        realdata.load_waterbirds("train", root=tmp_path)


def test_waterbirds_bad_metadata(tmp_path):
    (tmp_path / "metadata.csv").write_text("img_id,img_filename,y\n1,a.jpg,0\n")
    with pytest.raises(ValueError, match="missing columns"):
        realdata.load_waterbirds("train", root=tmp_path)
    (tmp_path / "metadata.csv").write_text("img_id,img_filename,y,split,place\n1,a.jpg,3,0,0\n")
    with pytest.raises(ValueError, match="line 2"):
        realdata.load_waterbirds("train", root=tmp_path)
    (tmp_path / "metadata.csv").write_text("img_id,img_filename,y,split,place\n1,a.jpg,1,0,0\n")
    with pytest.raises(FileNotFoundError, match="missing"):
        realdata.load_waterbirds("train", root=tmp_path)


VOC_XML = """<annotation><folder>VOC2012</folder><filename>{name}.jpg</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
VOC_OBJECT = """<object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated>
<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"""


@pytest.fixture
def voc_root(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2012"
    images = {"2008_000001": [("dog", 1, 1, 20, 40)],                        # one object
              "2008_000002": [("person", 1, 1, 10, 10), ("cat", 11, 1, 40, 40)]}  # cat is larger
    for name, objects in images.items():
        _write_jpeg(base / "JPEGImages" / f"{name}.jpg", (10, 120, 200), size=(40, 40))
        xml = VOC_XML.format(name=name, w=40, h=40, objects="".join(
            VOC_OBJECT.format(cls=c, x0=a, y0=b, x1=d, y1=e) for c, a, b, d, e in objects))
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "Annotations" / f"{name}.xml").write_text(xml)
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "ImageSets" / "Main" / "train.txt").write_text("\n".join(images) + "\n")
    return tmp_path


def test_voc_labels_boxes_and_masks(voc_root):
    data = realdata.load_voc("train", root=voc_root, size=20)
    dog, cat, person = (realdata.VOC_CLASSES.index(c) for c in ("dog", "cat", "person"))
    assert data.images.shape == (2, 3, 20, 20)
    assert data.labels.tolist() == [dog, cat]          # the largest object's class
    assert data.meta["multi_hot"][1, cat] == 1 and data.meta["multi_hot"][1, person] == 1
    assert data.meta["multi_hot"][0].sum() == 1
    # the dog box covers x in [0, 20) of 40 pixels -> the left half of a 20-pixel image
    mask = data.masks["object"][0]
    assert mask[:, :10].eq(dog + 1).all() and mask[:, 10:].eq(0).all()
    # the person's box is not part of the cat image's object mask
    person_mask = realdata.box_masks(data.meta["boxes"], person, 20)
    assert person_mask[1, :5, :5].all() and not (data.masks["object"][1].bool() & person_mask[1]).any()


def test_voc_missing_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="VOCdevkit/VOC2012/JPEGImages"):
        realdata.load_voc("train", root=tmp_path)


def test_shortcut_data_from_waterbirds(waterbirds_root):
    d = realdata.shortcut_data("waterbirds", root=waterbirds_root, size=8)
    assert len(d["teacher_train"]) == 1 and len(d["student_train"]) == 3
    assert (d["test_in"].labels == d["test_in"].image_labels["place"]).all()
    assert (d["test_ood"].labels != d["test_ood"].image_labels["place"]).all()
    assert len(d["test_in"]) + len(d["test_ood"]) == 4
    with pytest.raises(ValueError, match="unknown dataset"):
        realdata.shortcut_data("imagenet")


def test_shortcut_data_serves_the_synthetic_data_too():
    d = realdata.shortcut_data("synthetic", correlation=0.9, n_student=30, n_test=20, seed=1)
    assert d["teacher_train"] is None and len(d["student_train"]) == 30 and len(d["test_ood"]) == 20
    assert d["test_in"].fingerprint() != d["test_ood"].fingerprint()


def test_imagenet_fewshot_compares_kd_and_e2kd_students_on_folders(tmp_path, monkeypatch):
    """Notebook 05's comparison on ImageNet-style folders: callable training data, streamed evaluation."""
    import kdlab.train
    from kdlab.models import get_model
    from kdlab.recipes import Recipe, train_config

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path / "cache")
    for split, count in (("train", 4), ("val", 2)):
        for c, wnid in enumerate(["n01", "n02", "n03"]):
            for i in range(count):
                color = [40, 40, 40]
                color[c] = 200
                _write_jpeg(tmp_path / split / wnid / f"{wnid}_{i}.JPEG", tuple(color), size=(20 + i, 18))
    torch.manual_seed(0)
    teacher = get_model("resnet8", 3).eval()
    recipe = Recipe("student", "e2kd", alpha=1.0)  # the teacher runs online on folder data
    rows = realdata.imagenet_fewshot(tmp_path, teacher, shots=[2], seeds=[0], recipe=recipe, device="cpu",
                                     progress=False, size=16, workers=0, cfg=train_config(batch_size=3), steps=2)
    assert [r["student"] for r in rows] == ["KD", "e²KD"]
    for row in rows:
        assert row["shots"] == 2 and row["images"] == 6 and 0 <= row["agreement"] <= 1
    names = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache").glob("*.pt"))
    assert names == ["e2kd-fewshot-gradcam-e2kd-n6-seed0", "e2kd-fewshot-gradcam-kd-n6-seed0"]
