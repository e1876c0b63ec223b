"""Training objectives: cross-entropy, label smoothing, knowledge distillation and e²KD.

Taught in notebook 01 (KD: Hinton et al. 2015), notebook 02 (label smoothing: Müller et
al. 2019) and notebook 05 (e²KD: Parchami-Araghi et al. 2024).

An *objective* is a callable `objective(student, teacher, batch) -> (loss, student_logits)`
that `kdlab.train.fit` minimises. Objectives that need more than logits (e²KD's explanation
term, notebook 05) are written the same way and passed to the same `fit`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor | None,
            temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al.'s (2015) distillation loss.

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
    used instead: frozen teacher outputs (notebook 05), or the logits of the views drawn, looked
    up in the teacher's table (kdlab.teacher_table; kdlab.train.fit with cfg.teacher_table).
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


# --- Explanation-enhanced KD (e²KD; notebook 05) ----------------------------------------------
# L = L_KD + λ·(1 - cos(E(T, x, ŷ_T), E(S, x, ŷ_T))): both explanations are of the teacher's
# top-1 class ŷ_T, flattened and compared by cosine, averaged over the batch. GradCAM maps are
# ReLU(Σ_k w_k A_k), w_k the spatial mean gradient of the chosen logit with respect to the
# channel A_k of the last convolutional stage; B-cos maps are the dynamic linear weights W(x)
# of y = W(x)ᵀx (kdlab.explain). The student's map stays differentiable (create_graph=True),
# so the explanation term trains the student.

def explanation_loss(student_maps: torch.Tensor, teacher_maps: torch.Tensor) -> torch.Tensor:
    """1 - cos(flattened student map, flattened teacher map), averaged over the batch.

    Maps are (N, C, H, W) (or (N, H, W)). If their sizes differ, the student's maps are
    resized bilinearly to the teacher's (e.g. an 8x8 CAM against a stored 32x32 teacher map).
    """
    if student_maps.dim() == 3:
        student_maps, teacher_maps = student_maps[:, None], teacher_maps[:, None]
    if student_maps.shape[-2:] != teacher_maps.shape[-2:]:
        student_maps = F.interpolate(student_maps.float(), size=teacher_maps.shape[-2:],
                                     mode="bilinear", align_corners=False)
    if student_maps.shape != teacher_maps.shape:
        raise ValueError(f"student maps {tuple(student_maps.shape)} and teacher maps "
                         f"{tuple(teacher_maps.shape)} differ in batch size or channels")
    cos = F.cosine_similarity(student_maps.flatten(1).float(), teacher_maps.flatten(1).float(), dim=1)
    return (1.0 - cos).mean()


def e2kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, student_maps: torch.Tensor,
              teacher_maps: torch.Tensor, targets: torch.Tensor | None, temperature: float = 4.0,
              alpha: float = 0.5, lam: float = 1.0) -> torch.Tensor:
    """e²KD (Parchami-Araghi et al., ECCV 2024): L = kd_loss + λ · (1 - cos(E_S, E_T)).

    Both maps must explain the teacher's top-1 class (kdlab.explain.explanation_pass with
    classes=teacher_logits.argmax(1)); `alpha` weights the KL term of kd_loss as everywhere.
    """
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    loss = kd_loss(student_logits, teacher_logits, targets, temperature, alpha)
    if lam > 0:
        loss = loss + lam * explanation_loss(student_maps, teacher_maps)
    return loss


class ExplanationDistillation(Distillation):
    """e²KD: distil the teacher's logits and its explanations (`e2kd_loss`; notebook 05).

    method: "gradcam" (any CNN; maps of `layer`, default the last stage, compared at the
    image's size), "bcos" (B-cos teacher and student from kdlab.bcos; the dynamic linear
    weights W(x) are compared) or "input_x_gradient". The student's explanation is computed
    in the same forward pass as its logits and stays differentiable. B-cos students take a
    second pass in explanation mode for W(x) (kdlab.bcos.encoded_forward), while their
    logits come from a normal pass, as for every other student.
    Frozen explanations: if the batch carries `teacher_logits` and `teacher_maps` in
    `batch.extras` (kdlab.experiments.frozen), they are used and the teacher is not run at all.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5, lam: float = 1.0,
                 method: str = "gradcam", layer: str | None = None, teacher_layer: str | None = None):
        from .explain import METHODS

        super().__init__(temperature, alpha)
        if method not in METHODS:
            raise ValueError(f"unknown explanation method {method!r}; choose one of {METHODS}")
        if lam < 0:
            raise ValueError(f"lam must be non-negative, got {lam}")
        self.lam, self.method, self.layer = lam, method, layer
        self.teacher_layer = teacher_layer or layer

    def teacher_outputs(self, teacher, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(teacher logits, teacher maps at the image's size): stored ones, else computed now."""
        from .explain import explanation_pass

        stored = [k for k in ("teacher_logits", "teacher_maps") if k in batch.extras]
        if len(stored) == 2:
            return batch.extras["teacher_logits"], batch.extras["teacher_maps"]
        if stored and self.lam > 0:
            raise ValueError(f"the batch carries only {stored[0]!r}; frozen e²KD needs both "
                             "'teacher_logits' and 'teacher_maps' (kdlab.experiments.frozen)")
        if self.lam == 0:  # plain KD: no explanation needed
            return self.teacher_logits(teacher, batch), None
        if teacher is None:
            raise ValueError("e²KD needs a teacher model (or frozen teacher outputs in the batch)")
        return explanation_pass(teacher, batch.x, None, self.method, self.teacher_layer,
                                size=batch.x.shape[-2:])

    def __call__(self, student, teacher, batch):
        from .explain import explanation_pass

        teacher_logits, teacher_maps = self.teacher_outputs(teacher, batch)
        if self.lam == 0:
            logits = student(batch.x)
            return kd_loss(logits, teacher_logits, batch.y, self.temperature, self.alpha), logits
        classes = teacher_logits.argmax(1)
        if self.method == "bcos":
            # Two passes: the logits as in normal training, W(x) in explanation mode (the
            # released code uses the explanation-mode logits for the KD term as well; with
            # the detached scalings and norm statistics our small students learnt much slower).
            logits = student(batch.x)
            _, maps = explanation_pass(student, batch.x, classes, "bcos", create_graph=True)
        else:
            logits, maps = explanation_pass(student, batch.x, classes, self.method, self.layer,
                                            create_graph=True, size=batch.x.shape[-2:])
        loss = e2kd_loss(logits, teacher_logits, maps, teacher_maps, batch.y,
                         self.temperature, self.alpha, self.lam)
        return loss, logits

    def config(self) -> dict:
        return {"objective": "e2kd", "temperature": self.temperature, "alpha": self.alpha,
                "lam": self.lam, "method": self.method, "layer": self.layer,
                "teacher_layer": self.teacher_layer}
