"""kdlab.explain (GradCAM, B-cos, input×gradient) and kdlab.explain_metrics (EPG, IoU, pixel scores)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlab import bcos
from kdlab.explain import default_layer, explain, explanation_pass
from kdlab.explain_metrics import (energy_pointing_game, epg_summary, ground_truth_scores, map_similarity,
                                   nanmean, thresholded_iou)
from kdlab.models import get_model

bcos.register_models()


@pytest.fixture
def images():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_gradcam_matches_hand_computation(images):
    torch.manual_seed(0)
    model = get_model("resnet8_w8", 12).eval()
    classes = torch.tensor([0, 3, 5, 11, 2, 2])
    logits, cam = explanation_pass(model, images, classes, "gradcam")
    acts = {}
    handle = model.layer3.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    with torch.no_grad():
        expected_logits = model(images)
    handle.remove()
    a = acts["a"]  # after layer3 come global average pooling and fc: d logit_c / dA_k = W[c, k] / HW
    weights = model.fc.weight[classes] / (a.shape[-1] * a.shape[-2])
    expected = F.relu((weights[:, :, None, None] * a).sum(1, keepdim=True))
    assert cam.shape == (6, 1, 8, 8)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(cam, expected, rtol=1e-4, atol=1e-6)
    assert not cam.requires_grad and not logits.requires_grad


def test_gradcam_of_the_student_is_differentiable_finite_differences():
    torch.manual_seed(1)
    model = get_model("resnet8_w8", 4).double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    target = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    classes = torch.tensor([1, 2])

    def loss_fn():
        _, cam = explanation_pass(model, x, classes, "gradcam", create_graph=True, size=(16, 16))
        return 1 - F.cosine_similarity(cam.flatten(1), target.flatten(1)).mean()

    loss = loss_fn()
    params = [model.conv1.weight, model.layer2[0].conv1.weight, model.fc.weight]
    grads = torch.autograd.grad(loss, params)
    assert all(g.abs().sum() > 0 for g in grads)  # reaches the stem, the middle and the head
    eps = 1e-6
    for p, g in zip(params, grads):
        for flat in (0, p.numel() // 2, p.numel() - 1):
            idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), p.shape))
            with torch.no_grad():
                p[idx] += eps
                up = loss_fn().item()
                p[idx] -= 2 * eps
                down = loss_fn().item()
                p[idx] += eps
            numeric = (up - down) / (2 * eps)
            assert math.isclose(g[idx].item(), numeric, rel_tol=1e-3, abs_tol=1e-7), (p.shape, idx)


def test_teacher_without_parameter_gradients(images):
    teacher = get_model("resnet8", 12).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    logits, cam = explanation_pass(teacher, images, None, "gradcam", size=(32, 32))
    assert cam.shape == (6, 1, 32, 32) and (cam >= 0).all() and cam.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        explanation_pass(teacher, images)


def test_bcos_contributions_sum_to_the_logit(images):
    torch.manual_seed(0)
    model = get_model("bcos_resnet8_w8", 12).eval()
    logits, weights = explanation_pass(model, images, None, "bcos")
    assert weights.shape == (6, 6, 32, 32)
    # dynamic linearity: logit = W(x)ᵀ x + the logit layer's constant bias
    contributions = (model.encode(images) * weights).sum((1, 2, 3))
    top = logits.max(1).values - model.net.logit_layer.logit_bias
    torch.testing.assert_close(contributions, top, rtol=1e-4, atol=1e-6)
    shown = explain(model, images, method="bcos")
    torch.testing.assert_close(shown.sum((1, 2)), top, rtol=1e-4, atol=1e-6)


def test_bcos_models_are_registered_by_an_explicit_idempotent_call(images):
    bcos.register_models()  # again: nothing changes
    model = get_model("bcos_resnet8_w8", 12)
    assert bcos.is_bcos_model(model) and not bcos.is_bcos_model(get_model("resnet8_w8", 12))
    assert bcos.contribution_map(model, images, torch.ones(6, 6, 32, 32)).shape == (6, 32, 32)
    with pytest.raises(ValueError, match="register_models"):
        get_model("bcos_resnet99", 12)


def test_bcos_explanation_is_differentiable_for_the_student(images):
    torch.manual_seed(0)
    student = get_model("bcos_resnet8_w8", 12)
    _, weights = explanation_pass(student, images, torch.zeros(6, dtype=torch.long), "bcos",
                                  create_graph=True)
    weights.square().sum().backward()
    grads = [p.grad for p in student.parameters() if p.requires_grad]
    assert sum(g is not None and g.abs().sum() > 0 for g in grads) >= len(grads) // 2


def test_input_x_gradient_of_a_linear_model(images):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5))
    maps = explain(model, images, classes=3, method="input_x_gradient")
    expected = (images * model[1].weight[3].view(3, 32, 32)).sum(1)
    torch.testing.assert_close(maps, expected.detach())


def test_explain_interface(images):
    model = get_model("resnet8_w8", 12)
    model.train()
    maps = explain(model, (images * 255).to(torch.uint8), classes=[1, 2, 3, 4, 5, 6], batch_size=4)
    assert maps.shape == (6, 32, 32) and model.training  # mode restored
    with pytest.raises(ValueError, match="unknown explanation method"):
        explain(model, images, method="lime")
    with pytest.raises(ValueError, match="B-cos network"):
        explain(model, images, method="bcos")
    with pytest.raises(ValueError, match="one class per image"):
        explain(model, images, classes=[1, 2])
    with pytest.raises(ValueError, match="one class per image"):
        explain(model, images, classes=list(range(5)), batch_size=4)  # not silently 5 maps
    with pytest.raises(ValueError, match="none of the layers"):
        explain(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5)), images)


def test_default_layers():
    assert default_layer(get_model("resnet8", 3)) == "layer3"
    assert default_layer(get_model("resnet18", 3)) == "layer4"
    assert default_layer(get_model("bcos_resnet8_w8", 3)) in ("layer3", "net.layer3")


def test_energy_pointing_game_and_iou_by_hand():
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[:, :2, :] = True                       # the top half is the object
    maps = torch.zeros(3, 4, 4)
    maps[0, 0, 0] = 2.0                          # all energy inside
    maps[1, 0, 0], maps[1, 3, 3] = 1.0, 3.0      # a quarter inside
    maps[1, 2, 2] = -5.0                         # negative evidence does not count
    epg = energy_pointing_game(maps, masks)
    assert epg.tolist() == [1.0, 0.25, 0.0]      # an all-zero map scores 0, as in the reference
    maps_iou = torch.zeros(2, 4, 4)
    maps_iou[0, :2, :] = 1.0                     # exactly the object
    maps_iou[1, :, :2] = 1.0                     # the left half: 4 of 12 union pixels overlap
    iou = thresholded_iou(maps_iou, masks[:2])
    assert iou.tolist() == pytest.approx([1.0, 4 / 12])
    assert nanmean(torch.tensor([1.0, float("nan"), 0.0])) == 0.5
    # a low-resolution CAM is upsampled to the mask's size
    assert energy_pointing_game(torch.ones(1, 1, 2, 2), masks[:1]).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="threshold"):
        thresholded_iou(maps_iou, masks[:2], threshold=0.0)


def reference_epg(maps, masks):
    """Model-Guidance's BoundingBoxEnergyMultiple (include_undefined=True), one image at a time,
    with a mask in place of the union of boxes."""
    fractions = []
    for attributions, mask in zip(maps, masks):
        positive = attributions.clamp(min=0)
        inside, total = positive[mask].sum(), positive.sum()
        fractions.append(0.0 if total < 1e-7 else (inside / total).item())
    return sum(fractions) / len(fractions)


def test_epg_counts_all_zero_maps_as_zero():
    masks = torch.zeros(5, 4, 4, dtype=torch.bool)
    masks[:4, :2, :] = True                      # the top half is the object; image 4 has none
    maps = torch.zeros(5, 4, 4)
    maps[0, 0, 0] = 2.0                          # all energy inside: 1
    maps[1, 0, 0], maps[1, 3, 3] = 1.0, 3.0      # a quarter inside: 0.25
    # image 2: all zero (a GradCAM whose ReLU removed everything): 0
    maps[3] = -1.0                               # only negative evidence: 0
    maps[4, 1, 1] = 5.0                          # energy, but no object to hold it: 0
    assert energy_pointing_game(maps, masks).tolist() == [1.0, 0.25, 0.0, 0.0, 0.0]
    summary = epg_summary(maps, masks)
    assert summary == {"epg": pytest.approx((1 + 0.25) / 5), "all_zero_maps": 2, "images": 5}
    assert summary["epg"] == pytest.approx(reference_epg(maps, masks))
    # the old rule -- drop the all-zero maps -- would have reported 1.25 / 3
    assert summary["epg"] < nanmean(torch.tensor([1.0, 0.25, float("nan"), float("nan"), 0.0]))


def test_epg_equals_the_reference_on_random_maps():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(40, 16, 16, generator=g).relu()   # GradCAM-like: nonnegative
    maps[::7] = 0.0                                      # some maps vanish entirely
    masks = torch.rand(40, 16, 16, generator=g) < 0.3
    summary = epg_summary(maps, masks)
    assert summary["all_zero_maps"] == 6 and summary["images"] == 40
    assert summary["epg"] == pytest.approx(reference_epg(maps, masks), rel=1e-6)
    assert summary["epg"] == pytest.approx(energy_pointing_game(maps, masks).mean().item())


def test_map_similarity():
    a = torch.rand(4, 1, 8, 8)
    assert torch.allclose(map_similarity(a, 3 * a), torch.ones(4))
    b = torch.zeros(4, 1, 8, 8)
    b[:, :, :4], a[:, :, 4:] = 1.0, 0.0
    a[:, :, :4] = 0.0
    a[:, :, 4:] = 1.0
    assert torch.allclose(map_similarity(a, b), torch.zeros(4))


def test_ground_truth_scores_by_hand():
    obj = torch.zeros(2, 4, 4, dtype=torch.uint8)
    obj[:, :2, :2] = 1                                   # 4 object pixels per image, 12 background
    part = torch.zeros_like(obj)
    part[:, 0, 0] = 1
    perfect = ground_truth_scores(obj.float() * 3, obj, part)
    assert perfect == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "fpr": 0.0,
                       "salient_fraction": 0.25, "part_recall": 1.0}
    sal = torch.zeros(2, 4, 4)
    sal[:, 0, :] = 1.0                                   # the top row: 2 object + 2 background pixels
    sal[:, 1, 1] = 0.4                                   # below half the maximum: not salient
    s = ground_truth_scores(sal, obj, part, level=0.5)
    assert (s["precision"], s["recall"], s["fpr"]) == (0.5, 0.5, pytest.approx(2 / 12))
    assert s["accuracy"] == pytest.approx((4 + 20) / 32)
    assert ground_truth_scores(torch.zeros(2, 4, 4), obj)["salient_fraction"] == 0.0
    with pytest.raises(ValueError, match="differ"):
        ground_truth_scores(sal[:, :3], obj)
