"""Training objectives: cross-entropy, label smoothing and knowledge distillation.

Taught in notebook 01 (KD) and notebook 02 (label smoothing). DESIGN §2.1.

An *objective* is a callable `objective(student, teacher, batch) -> (loss, student_logits)`
that `kdlab.train.fit` minimises. Objectives that need more than logits (e²KD's explanation
term, notebook 05) are written the same way and passed to the same `fit`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
            temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al.'s distillation loss.

        L = (1 - alpha) * CE(y, softmax(z_s)) + alpha * T² * KL(softmax(z_t/T) || softmax(z_s/T))

    Convention: **alpha weights the distillation (KL) term** and 1 - alpha the hard-label
    cross-entropy (torchdistill's KDLoss uses the opposite). The KL divergence is summed over
    classes and averaged over the batch ("batchmean"); averaging over classes as well would
    silently divide it by the number of classes. T² keeps the gradient scale of the soft
    term comparable across temperatures. With targets=None (or alpha=1) the CE term is
    dropped: label-free distillation.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    loss = alpha * temperature**2 * soft
    if targets is not None and alpha < 1.0:
        loss = loss + (1.0 - alpha) * F.cross_entropy(student_logits.float(), targets)
    return loss


def smoothed_targets(targets: torch.Tensor, num_classes: int, epsilon: float) -> torch.Tensor:
    """Label-smoothed target distributions: (1 - ε)·one_hot(y) + ε/K (Müller et al. 2019)."""
    return (1.0 - epsilon) * F.one_hot(targets, num_classes).float() + epsilon / num_classes


class CrossEntropy:
    """Train on hard labels, optionally smoothed by epsilon (label smoothing; notebook 02)."""

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def __call__(self, student, teacher, batch):
        logits = student(batch.x)
        # PyTorch's label_smoothing is exactly (1-ε)·y + ε/K, the formula above.
        return F.cross_entropy(logits.float(), batch.y, label_smoothing=self.label_smoothing), logits

    def config(self) -> dict:
        return {"objective": "cross_entropy", "label_smoothing": self.label_smoothing}


class Distillation:
    """Knowledge distillation from a fixed teacher (`kd_loss`; notebook 01).

    The teacher runs in inference mode on the same augmented batch as the student.
    If the batch carries stored teacher logits (`batch.extras['teacher_logits']`) they are
    used instead, which is how frozen teacher outputs are reused (notebook 05).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), None, temperature, alpha)  # validate now
        self.temperature, self.alpha = temperature, alpha

    def teacher_logits(self, teacher, batch) -> torch.Tensor:
        if "teacher_logits" in batch.extras:
            return batch.extras["teacher_logits"]
        if teacher is None:
            raise ValueError("distillation needs a teacher model (or stored teacher logits)")
        with torch.inference_mode():
            logits = teacher(batch.x)
        return logits.clone()  # a normal tensor again, so autograd may save it

    def __call__(self, student, teacher, batch):
        logits = student(batch.x)
        loss = kd_loss(logits, self.teacher_logits(teacher, batch), batch.y,
                       self.temperature, self.alpha)
        return loss, logits

    def config(self) -> dict:
        return {"objective": "kd", "temperature": self.temperature, "alpha": self.alpha}
