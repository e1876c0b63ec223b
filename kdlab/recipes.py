"""What to train: the course's teacher and its students of each kind, their objective, name
and configuration.

Taught in notebooks 01 and 02; notebooks 03-06 reuse the same teacher and students, and the
command line (kdlab.scale.cli) trains them outside a notebook. A `Recipe` is one model to
train; its kind decides its objective (kdlab.losses):

    scratch     cross-entropy on the labels
    ls          label smoothing: targets y_LS = (1 - ε)·y + ε/K, ε = 0.1 (Müller et al. 2019)
    kd          knowledge distillation (Hinton et al. 2015) from the teacher:
                L = (1 - α)·CE(y, σ(z_s)) + α·T²·KL(σ(z_t/T) ‖ σ(z_s/T))
    kd_from_ls  the same, from a teacher trained with label smoothing (pass that teacher)
    e2kd        KD plus λ·(1 - cos) between the teacher's and the student's explanations of
                the teacher's top-1 class (Parchami-Araghi et al. 2024; notebook 05)

Teachers are of kind scratch or ls. A model's cache name is `teacher`, `teacher-ls<ε>` or
`student-<kind>-seed<seed>`; its cache key is kdlab.train.cache_location's hash of the whole
configuration. The same parameters give the same name and key in every notebook and on the
command line, so a model trained once is loaded everywhere else (load_or_train says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from .data import ImageSet
from .datasets import load_dataset
from .losses import CrossEntropy, Distillation, ExplanationDistillation
from .models import get_model
from .parallel import run_all
from .synthetic import COURSE_DESIGN
from .train import TrainConfig, TrainedModel, load_or_train

KINDS = {"teacher": ("scratch", "ls"), "student": ("scratch", "ls", "kd", "kd_from_ls", "e2kd")}


def student_name(kind: str, seed: int, prefix: str = "student", n_images: int | None = None) -> str:
    """`student-<kind>-seed<seed>`; an e²KD comparison (notebooks 05, 06) names its students
    `<comparison>-<method>-<kind>-n<images>-seed<seed>` with prefix and n_images."""
    return "-".join([prefix, kind] + ([f"n{n_images}"] if n_images is not None else []) + [f"seed{seed}"])


@dataclass
class Recipe:
    """One model to train: its role, kind, architecture and objective settings.

    The comments are the command line's help (kdlab.scale.cli).
    """

    role: str = "student"           # teacher | student
    kind: str = "scratch"           # scratch | ls | kd | kd_from_ls | e2kd (teachers: scratch | ls)
    arch: str = "resnet8_w8"        # the model to train (a kdlab.models.get_model name)
    temperature: float = 4.0        # KD temperature T
    alpha: float = 0.5              # weight α of the KD term (Han et al.: 0.5); 1 - α weights the labels
    epsilon: float = 0.1            # label smoothing ε of kind ls
    lam: float = 1.0                # e2kd: λ, the weight of the explanation term
    explain_method: str = "gradcam"  # e2kd: gradcam | bcos | input_x_gradient
    layer: str | None = None        # e2kd: the layer GradCAM explains (default: the last stage)

    def __post_init__(self):
        if self.role not in KINDS:
            raise ValueError(f"role must be 'teacher' or 'student', got {self.role!r}")
        if self.kind not in KINDS[self.role]:
            raise ValueError(f"a {self.role} can be of kind {', '.join(KINDS[self.role])}; got {self.kind!r}")

    @property
    def distils(self) -> bool:
        """Whether it learns from a teacher."""
        return self.kind in ("kd", "kd_from_ls", "e2kd")

    def objective(self):
        """The kdlab.losses objective of this kind."""
        if self.kind == "scratch":
            return CrossEntropy()
        if self.kind == "ls":
            return CrossEntropy(self.epsilon)
        if self.kind == "e2kd":
            return ExplanationDistillation(self.temperature, self.alpha, self.lam, self.explain_method,
                                           self.layer)
        return Distillation(self.temperature, self.alpha)  # kd and kd_from_ls

    def name(self, seed: int = 0) -> str:
        """The cache name: teacher, teacher-ls<ε> or student-<kind>-seed<seed>."""
        if self.role == "teacher":
            return "teacher" if self.kind == "scratch" else f"teacher-ls{self.epsilon:g}"
        return student_name(self.kind, seed)

    def build(self, data) -> torch.nn.Module:
        """A freshly initialised model for `data`'s classes and channels."""
        return get_model(self.arch, data.num_classes, data.in_channels)

    def train(self, data, cfg: TrainConfig, teacher: TrainedModel | torch.nn.Module | None = None,
              name: str | None = None, **options) -> TrainedModel:
        """Train it on `data` with `cfg`, or load it from the cache (kdlab.train.load_or_train,
        which takes `options` such as device, cache_dir, extras). A teacher is used only by
        the kinds that distil; `name` replaces the default cache name."""
        if self.distils and teacher is None:
            raise ValueError(f"a {self.kind} student needs a teacher")
        return load_or_train(name or self.name(cfg.seed), lambda: self.build(data), data, self.objective(),
                             cfg, teacher=teacher if self.distils else None, **options)


def course_data(dataset: str = "synthetic", n_train: int = 6000, n_test: int = 2000,
                seed: int = 0, root=None) -> tuple[ImageSet, ImageSet]:
    """The training and test sets every notebook of the course shares (the synthetic data in
    design `COURSE_DESIGN`)."""
    options = {"design": COURSE_DESIGN} if dataset == "synthetic" else {}
    train = load_dataset(dataset, "train", n=n_train, seed=seed, root=root, **options)
    test = load_dataset(dataset, "test", n=n_test, seed=seed, root=root, **options)
    return train, test


def train_teacher(train: ImageSet, arch: str = "resnet8", epochs: int = 15, lr: float = 0.1,
                  batch_size: int = 128, label_smoothing: float = 0.0, seed: int = 0,
                  device="auto") -> TrainedModel:
    """The teacher: a larger network trained on all training images (with LS if asked)."""
    recipe = Recipe("teacher", "ls" if label_smoothing else "scratch", arch, epsilon=label_smoothing)
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return recipe.train(train, cfg, device=device)


def train_student(kind: str, train: ImageSet, teacher: TrainedModel | None = None,
                  arch: str = "resnet8_w8", n_images: int = 2000, epochs: int = 40,
                  lr: float = 0.1, batch_size: int = 64, temperature: float = 4.0,
                  alpha: float = 0.5, epsilon: float = 0.1, seed: int = 0,
                  device="auto") -> TrainedModel:
    """A student of one of the kinds compared in notebook 02 (scratch, ls, kd, kd_from_ls).

    kd / kd_from_ls distil from `teacher` (pass the LS-trained teacher for kd_from_ls) with
    `temperature` and `alpha` (alpha weights the KD term; 0.5 as in Han et al.); ls smooths
    with `epsilon`. Students see the first `n_images` training images: less data than the
    teacher, the regime where a teacher's soft labels help most. The defaults train a student
    to its plateau on the synthetic data (bench/bench_plateau.py; notebook 02 shows the curves).
    """
    recipe = Recipe("student", kind, arch, temperature, alpha, epsilon)
    subset = train.subset(torch.arange(min(n_images, len(train))))
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return recipe.train(subset, cfg, teacher, device=device)


def train_students(teachers: dict[str, TrainedModel | None], seeds, train: ImageSet,
                   arch: str = "resnet8_w8", n_images: int = 2000, epochs: int = 40,
                   lr: float = 0.1, batch_size: int = 64, temperature: float = 4.0,
                   alpha: float = 0.5, epsilon: float = 0.1,
                   device="auto") -> dict[tuple[str, int], TrainedModel]:
    """Notebook 02's students: one of every kind in `teachers` ({kind: its teacher}, None for
    scratch and ls) for every seed, as `train_student` trains them. Several train at once on
    a CPU with cores to spare (kdlab.parallel; the same models as one after another).
    Returns {(kind, seed): TrainedModel}, seed by seed, in the order of `teachers`."""
    jobs = {(kind, seed): partial(train_student, kind, train, teacher, arch, n_images, epochs, lr,
                                  batch_size, temperature, alpha, epsilon, seed=seed, device=device)
            for seed in seeds for kind, teacher in teachers.items()}
    return run_all(jobs, device)
