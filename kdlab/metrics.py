"""Evaluation: accuracy, agreement with the teacher, calibration (ECE) and NLL.

Taught in notebook 01 (accuracy, agreement) and notebook 02 (calibration).
Agreement (Stanton et al. 2021) is the fraction of inputs where the student's top-1 class
equals the teacher's: a student can match the teacher's accuracy and still disagree often.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageSet
from .inference import batches, evaluation


@torch.inference_mode()
def predict(model: nn.Module, data: ImageSet | torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits (float32, on the CPU) of `model` for every image, in order, in eval mode."""
    images = data.images if isinstance(data, ImageSet) else data
    with evaluation(model) as net:
        return torch.cat([net(x).float().cpu() for x in batches(net, images, batch_size)])


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Fraction of inputs on which student and teacher predict the same class."""
    return (student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean().item()


def nll(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true labels."""
    return F.cross_entropy(logits.float(), labels).item()


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE: the confidence-vs-accuracy gap, averaged over equal-width confidence bins
    weighted by how many predictions fall in each."""
    confidence, predicted = F.softmax(logits.float(), dim=1).max(1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    which = torch.bucketize(confidence, edges[1:-1])  # bin index 0..bins-1
    ece = torch.zeros(())
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.float().mean() * (confidence[in_bin].mean() - correct[in_bin].mean()).abs()
    return ece.item()


def evaluate(model: nn.Module, data: ImageSet, teacher_logits: torch.Tensor | None = None) -> dict:
    """Accuracy, NLL and ECE on `data`; agreement too when the teacher's logits are given."""
    logits = predict(model, data)
    result = {"accuracy": accuracy(logits, data.labels), "nll": nll(logits, data.labels),
              "ece": expected_calibration_error(logits, data.labels)}
    if teacher_logits is not None:
        result["agreement"] = agreement(logits, teacher_logits)
    return result
