"""Frozen explanations (kdlab.experiments.frozen): stored once, equal to the online computation, augmented
jointly with their images, reused from the cache."""

import pytest
import torch

from kdlab import bcos
from kdlab.data import Batch, DeviceLoader
from kdlab.datasets import load_dataset
from kdlab.explain import explanation_pass
from kdlab.experiments.frozen import freeze_teacher
from kdlab.losses import ExplanationDistillation
from kdlab.models import get_model
from kdlab.train import TrainConfig, load_or_train

bcos.register_models()


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", "train", n=48, seed=5)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return get_model("resnet8", 12).eval()


@pytest.mark.parametrize("method,teacher_arch,student_arch", [
    ("gradcam", "resnet8", "resnet8_w8"), ("bcos", "bcos_resnet8_w8", "bcos_resnet8_w8")])
def test_frozen_batch_without_augmentation_equals_online(tmp_path, data, method, teacher_arch, student_arch):
    torch.manual_seed(0)
    teacher, student = get_model(teacher_arch, 12).eval(), get_model(student_arch, 12).eval()
    frozen = freeze_teacher(teacher, data, method, cache_dir=tmp_path, batch_size=20)
    assert frozen.extras["teacher_logits"].shape == (48, 12)
    assert frozen.extras["teacher_maps"].shape == ((48, 1, 32, 32) if method == "gradcam" else (48, 6, 32, 32))
    objective = ExplanationDistillation(4.0, 0.5, 2.0, method)
    loader = DeviceLoader(data, 16, train=False, extras=frozen.extras)
    for batch in loader:
        frozen_loss, frozen_logits = objective(student, None, batch)
        online = Batch(x=batch.x, y=batch.y, index=batch.index)
        online_loss, online_logits = objective(student, teacher, online)
        assert frozen_loss.item() == pytest.approx(online_loss.item(), rel=1e-5, abs=1e-6)
        torch.testing.assert_close(frozen_logits, online_logits)
        t_logits, t_maps = explanation_pass(teacher, batch.x, None, method, size=(32, 32))
        torch.testing.assert_close(batch.extras["teacher_maps"], t_maps)
        torch.testing.assert_close(batch.extras["teacher_logits"], t_logits)


def test_augmentation_moves_image_and_map_together(data):
    x = data.float_images()
    # a map that is a pixel-wise function of its image: after any joint crop and flip it must
    # still equal the same function of the augmented image
    extras = {"teacher_maps": x.mean(1, keepdim=True) ** 2, "teacher_logits": torch.randn(48, 12)}
    loader = DeviceLoader(data, 16, train=True, pad=4, seed=1, extras=extras)
    moved = 0
    for batch in loader:
        torch.testing.assert_close(batch.extras["teacher_maps"], batch.x.mean(1, keepdim=True) ** 2)
        torch.testing.assert_close(batch.extras["teacher_logits"], extras["teacher_logits"][batch.index])
        original = x[batch.index]
        moved += int((batch.x - original).abs().flatten(1).amax(1).gt(0).sum())
    assert moved > 24  # most images really were shifted or flipped


def test_frozen_gradcam_map_follows_a_flip(tmp_path, data, teacher):
    """A stored map, augmented with its image, shows the object where the augmented image has it."""
    frozen = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path)
    loader = DeviceLoader(data, 48, train=True, pad=0, seed=0, extras=frozen.extras)
    batch = next(iter(loader))
    original = data.float_images(batch.index)
    flipped = (batch.x - original).abs().flatten(1).amax(1) > 0
    assert flipped.any() and (~flipped).any()
    stored = frozen.extras["teacher_maps"][batch.index]
    torch.testing.assert_close(batch.extras["teacher_maps"][flipped], stored[flipped].flip(-1))
    torch.testing.assert_close(batch.extras["teacher_maps"][~flipped], stored[~flipped])


def test_frozen_cache_is_reused_and_keyed(tmp_path, data, teacher, capsys):
    first = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path)
    second = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path)
    assert not first.loaded and second.loaded and first.key == second.key and first.path.exists()
    for k in first.extras:
        assert torch.equal(first.extras[k], second.extras[k])
    assert "Loaded frozen gradcam explanations" in capsys.readouterr().out
    other_layer = freeze_teacher(teacher, data, "gradcam", layer="layer2", cache_dir=tmp_path)
    fewer = freeze_teacher(teacher, data.subset(torch.arange(20)), "gradcam", cache_dir=tmp_path)
    half = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path, dtype=torch.float16)
    assert len({first.key, other_layer.key, fewer.key, half.key}) == 4
    assert other_layer.extras["teacher_maps"].shape == (48, 1, 32, 32)
    assert half.extras["teacher_maps"].dtype == torch.float16
    # a file that does not match (here: truncated to other images) is recomputed, not trusted
    state = torch.load(first.path, weights_only=False)
    state["extras"] = {k: v[:5] for k, v in state["extras"].items()}
    torch.save(state, first.path)
    again = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path)
    assert not again.loaded and len(again.extras["teacher_logits"]) == 48
    with pytest.raises(ValueError, match="unknown explanation method"):
        freeze_teacher(teacher, data, "smoothgrad", cache_dir=tmp_path)


def test_load_or_train_with_frozen_extras_needs_no_teacher(tmp_path, data, teacher):
    frozen = freeze_teacher(teacher, data, "gradcam", cache_dir=tmp_path)
    cfg = TrainConfig(epochs=1, batch_size=16)
    objective = ExplanationDistillation(4.0, 0.9, 1.0, "gradcam")
    trained = load_or_train("student", lambda: get_model("resnet8_w8", 12), data, objective, cfg,
                            extras=frozen.extras, extras_key=frozen.key, cache_dir=tmp_path,
                            device="cpu", progress=False)
    assert not trained.loaded and torch.isfinite(torch.tensor(trained.history[0]["loss"]))
    again = load_or_train("student", lambda: get_model("resnet8_w8", 12), data, objective, cfg,
                          extras=frozen.extras, extras_key=frozen.key, cache_dir=tmp_path,
                          device="cpu", progress=False)
    assert again.loaded and again.key == trained.key
