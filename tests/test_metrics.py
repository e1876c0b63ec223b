"""kdlab.metrics (accuracy, agreement, ECE, NLL, predictions) and kdlab.inference, the batched
evaluation pass that predictions, dissection and explanations share."""

import pytest
import torch
from torch import nn

from kdlab.inference import batches, capture, device_of, evaluation, find_layer, unwrap
from kdlab.metrics import (accuracy, agreement, class_similarity, expected_calibration_error, nll,
                           predict, template_projection)
from kdlab.models import get_model, penultimate_features
from kdlab.train import TrainedModel


def test_accuracy_and_agreement():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert agreement(logits, teacher) == pytest.approx(2 / 3)


def test_ece_by_hand():
    # two bins are used: confidences 0.9 (two predictions, one right) and 0.6 (two, both right)
    p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 0, 0])
    want = 0.5 * abs(0.9 - 0.5) + 0.5 * abs(0.6 - 1.0)
    assert expected_calibration_error(p.log(), labels, bins=10) == pytest.approx(want, abs=1e-6)
    perfect = torch.tensor([[1.0, 0.0]]).mul(50)
    assert expected_calibration_error(perfect, torch.tensor([0])) == pytest.approx(0.0, abs=1e-6)


def test_nll():
    logits = torch.log(torch.tensor([[0.25, 0.75]]))
    assert nll(logits, torch.tensor([1])) == pytest.approx(-torch.log(torch.tensor(0.75)).item(), rel=1e-6)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def test_predict_in_eval_mode_in_batches_restores_the_mode():
    model = _net().train()
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    logits = predict(model, images, batch_size=3)
    assert model.training  # restored
    with torch.no_grad():
        expected = model.eval()(images.float() / 255)
    torch.testing.assert_close(logits, expected)  # eval mode (BatchNorm's running statistics)
    wrapped = TrainedModel(model, "k", None)
    torch.testing.assert_close(predict(wrapped, images.float() / 255), expected)


def test_evaluation_and_capture_clean_up_after_an_error():
    model = _net().train()
    layer = find_layer(model, "2")
    with pytest.raises(RuntimeError, match="boom"):
        with evaluation(model) as net, capture(layer) as seen:
            assert not net.training
            net(torch.rand(2, 3, 8, 8))
            assert seen.value.shape == (2, 4, 6, 6)
            raise RuntimeError("boom")
    assert model.training and not layer._forward_hooks and not layer._forward_pre_hooks


def test_capture_input_and_leaf():
    model = _net().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(2, 3, 8, 8)
    with capture(model[5], input=True) as features, capture(model[0], leaf=True) as conv:
        logits = model(x)
    assert features.value.shape == (2, 4)
    assert conv.value.is_leaf and conv.value.requires_grad  # a frozen model still has gradients there
    (grad,) = torch.autograd.grad(logits.sum(), conv.value)
    assert grad.shape == (2, 4, 6, 6)
    torch.testing.assert_close(penultimate_features(model, x, batch_size=1), features.value)


def test_unwrap_find_layer_and_batches():
    model = get_model("resnet8_w8", 3)
    assert unwrap(nn.DataParallel(model)) is model and unwrap(TrainedModel(model, "k", None)) is model
    assert find_layer(nn.DataParallel(model), "layer3.0.conv1") is model.layer3[0].conv1
    with pytest.raises(KeyError, match="no layer 'layer9'"):
        find_layer(model, "layer9")
    with pytest.raises(TypeError, match="not a path"):
        unwrap("model.pt")
    images = torch.full((5, 3, 4, 4), 255, dtype=torch.uint8)
    parts = list(batches(model, images, 2))
    assert [len(b) for b in parts] == [2, 2, 1] and all(b.dtype == torch.float32 and b.max() == 1 for b in parts)
    assert device_of(model) == torch.device("cpu")


def test_class_similarity_averages_each_true_class():
    probabilities = torch.tensor([[0.8, 0.2, 0.0], [0.6, 0.2, 0.2], [0.1, 0.9, 0.0]])
    matrix = class_similarity(probabilities, torch.tensor([0, 0, 1]), 3)
    assert torch.allclose(matrix[0], torch.tensor([0.7, 0.2, 0.1]))
    assert torch.allclose(matrix[1], torch.tensor([0.1, 0.9, 0.0]))
    assert matrix[2].isnan().all(), "a class without images has no row"


def test_template_projection_keeps_distances_in_the_templates_plane():
    weight = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    three = (1, 3, 4)
    coords = template_projection(weight[list(three)], weight, three)
    assert coords.shape == (3, 2)
    assert torch.allclose(coords[0], torch.zeros(2), atol=1e-5), "the first template is the origin"
    for a, b in ((0, 1), (0, 2), (1, 2)):  # the plane holds the templates: distances are kept
        assert torch.dist(coords[a], coords[b]) == pytest.approx(
            torch.dist(weight[three[a]], weight[three[b]]).item(), rel=1e-4)
