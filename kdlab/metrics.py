"""Evaluation: accuracy, agreement with the teacher, calibration (ECE) and NLL; what a model's
outputs say about class similarity.

Taught in notebook 01 (accuracy, agreement) and notebook 02 (calibration, the class-similarity
matrix, Müller et al.'s template projection).
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


# ------------------------------------------------ class similarity in the outputs (notebook 02)


def class_similarity(probabilities: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean predicted distribution per true class: row c is the average of p(·|x) over class c
    (notebook 02's similarity heatmaps)."""
    matrix = torch.zeros(num_classes, num_classes)
    for c in range(num_classes):
        matrix[c] = probabilities[labels == c].mean(0)
    return matrix


def similarity_shares(probabilities: torch.Tensor, labels: torch.Tensor, groups) -> tuple[float, float]:
    """Share of a model's wrong-class probability that goes to classes of the true class's group.

    probabilities: (N, classes) softmax outputs (at any temperature); labels: (N,) true classes;
    groups: the group of each class (e.g. [kdlab.synthetic.class_family(c) for c in range(12)]).
    Returns (share, uniform): the probability on the other classes of the same group divided by
    all probability on wrong classes, summed over images, and the share that spreading it evenly
    over the wrong classes would give. share > uniform: the outputs carry that similarity.
    Taught in notebooks 00 and 02.
    """
    groups = torch.as_tensor(groups)
    p = probabilities.double()
    same = groups[labels].unsqueeze(1) == groups.unsqueeze(0)                # (N, classes)
    same[torch.arange(len(labels)), labels] = False
    off = 1 - p.gather(1, labels.view(-1, 1)).squeeze(1)
    share = (p * same).sum() / off.sum()
    uniform = (off * same.sum(1) / (p.shape[1] - 1)).sum() / off.sum()
    return share.item(), uniform.item()


def template_projection(features: torch.Tensor, weight: torch.Tensor, classes: tuple[int, int, int]):
    """Müller et al.'s view: project penultimate features onto the plane through the three
    classes' templates (rows of the final layer's weight). Returns (N, 2) coordinates
    (notebook 02's projections)."""
    templates = weight[list(classes)].float()                       # 3 × d
    basis = torch.linalg.qr((templates[1:] - templates[0]).T).Q     # d × 2, orthonormal
    return (features.float() - templates[0]) @ basis
