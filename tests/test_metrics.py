import pytest
import torch

from kdlab.metrics import accuracy, agreement, expected_calibration_error, nll


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
