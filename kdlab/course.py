"""The course's shared experiments: one teacher and the scratch / LS / KD students.

Notebooks 01, 02 and 04 train the same models; calling these functions with the same
parameters gives the same cache keys, so a model trained in one notebook is loaded in the
next (kdlab.train.load_or_train says which happened). Taught in notebooks 01 and 02.
"""

from __future__ import annotations

import torch

from .data import ImageSet, load_dataset
from .losses import CrossEntropy, Distillation
from .models import get_model
from .train import TrainConfig, TrainedModel, load_or_train

STUDENT_KINDS = ("scratch", "ls", "kd", "kd_from_ls")


def course_data(dataset: str = "synthetic", n_train: int = 6000, n_test: int = 2000,
                seed: int = 0, root=None) -> tuple[ImageSet, ImageSet]:
    """The training and test sets every notebook of the course shares."""
    train = load_dataset(dataset, "train", n=n_train, seed=seed, root=root)
    test = load_dataset(dataset, "test", n=n_test, seed=seed, root=root)
    return train, test


def train_teacher(train: ImageSet, arch: str = "resnet8", epochs: int = 8, lr: float = 0.1,
                  batch_size: int = 128, label_smoothing: float = 0.0, seed: int = 0,
                  device="auto") -> TrainedModel:
    """The teacher: a larger network trained on all training images (with LS if asked)."""
    name = "teacher" if label_smoothing == 0 else f"teacher-ls{label_smoothing:g}"
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return load_or_train(name, lambda: get_model(arch, train.num_classes, train.in_channels),
                         train, CrossEntropy(label_smoothing), cfg, device=device)


def train_student(kind: str, train: ImageSet, teacher: TrainedModel | None = None,
                  arch: str = "resnet8_w8", n_images: int = 4000, epochs: int = 6,
                  lr: float = 0.1, batch_size: int = 128, temperature: float = 4.0,
                  alpha: float = 0.9, epsilon: float = 0.1, seed: int = 0,
                  device="auto") -> TrainedModel:
    """A student of one of the kinds compared in notebook 02.

    scratch: cross-entropy on the labels; ls: label smoothing with `epsilon`;
    kd / kd_from_ls: distillation from `teacher` (pass the LS-trained teacher for kd_from_ls)
    with `temperature` and `alpha` (alpha weights the KD term, kdlab.losses.kd_loss).
    Students see the first `n_images` training images: less data than the teacher, the
    regime where a teacher's soft labels help most.
    """
    if kind not in STUDENT_KINDS:
        raise ValueError(f"unknown student kind {kind!r}; choose one of {STUDENT_KINDS}")
    if kind.startswith("kd") and teacher is None:
        raise ValueError(f"a {kind} student needs a teacher")
    objective = {
        "scratch": lambda: CrossEntropy(),
        "ls": lambda: CrossEntropy(epsilon),
        "kd": lambda: Distillation(temperature, alpha),
        "kd_from_ls": lambda: Distillation(temperature, alpha),
    }[kind]()
    subset = train.subset(torch.arange(min(n_images, len(train))))
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return load_or_train(f"student-{kind}-seed{seed}",
                         lambda: get_model(arch, train.num_classes, train.in_channels),
                         subset, objective, cfg, teacher=teacher if kind.startswith("kd") else None,
                         device=device)
