"""What to train: the course's settings, the teacher and its students of each kind, their
objective, name and configuration.

Taught in notebooks 01 and 02; notebooks 03-06 reuse the same teacher and students, and the
command line (kdlab.scale.cli) trains them outside a notebook. `COURSE` holds the settings
the notebooks share; every function here takes its defaults from it, and the notebooks'
parameter cells repeat them as literals (papermill needs literals), which
tests/test_course_settings.py checks. A `Recipe` says what to train (role, kind,
architecture, objective); a kdlab.train.TrainConfig says how. The kind decides the objective
(kdlab.losses):

    scratch     cross-entropy on the labels
    ls          label smoothing: targets y_LS = (1 - ε)·y + ε/K, ε = 0.1 (Müller et al. 2019)
    kd          knowledge distillation (Hinton et al. 2015) from the teacher:
                L = (1 - α)·CE(y, σ(z_s)) + α·T²·KL(σ(z_t/T) ‖ σ(z_s/T))
    kd_from_ls  the same, from a teacher trained with label smoothing (pass that teacher)
    e2kd        KD plus λ·(1 - cos) between the teacher's and the student's explanations of
                the teacher's top-1 class (Parchami-Araghi et al. 2024; notebook 05)
    soft_family, soft_permuted, soft_uniform, soft_part
                no teacher: fixed soft targets with wrong-class mass m = soft_mass over the
                true class's shape family, a permuted group, all classes or its part
                (kdlab.soft_targets; notebook 02's test of Han et al.'s mechanism)

Teachers are of kind scratch or ls. A model's cache name is `teacher`, `teacher-ls<ε>` or
`student-<kind>-seed<seed>`; its cache key is kdlab.train.cache_location's hash of the whole
configuration. The same parameters give the same name and key in every notebook and on the
command line, so a model trained once is loaded everywhere else (load_or_train says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import torch

from .data import ImageSet
from .datasets import load_dataset
from .losses import CrossEntropy, Distillation, ExplanationDistillation
from .models import get_model
from .runtime.parallel import run_all
from .soft_targets import SoftTargets
from .synthetic import COURSE_DESIGN
from .train import TrainConfig, TrainedModel, load_or_train

SOFT_KINDS = ("soft_family", "soft_permuted", "soft_uniform", "soft_part")
KINDS = {"teacher": ("scratch", "ls"), "student": ("scratch", "ls", "kd", "kd_from_ls", "e2kd") + SOFT_KINDS}


@dataclass(frozen=True)
class CourseSettings:
    """The teacher and student settings the notebooks share. The same settings give the same
    cache keys, so the teacher and students trained in notebooks 01 and 02 are loaded by 03-06."""

    dataset: str = "synthetic"
    design: str = COURSE_DESIGN        # the synthetic data's design (notebook 00)
    n_train: int = 6000                # training images; the teacher sees all of them
    n_test: int = 2000
    teacher_arch: str = "resnet8"
    teacher_epochs: int = 15           # about 95 % test accuracy: the teacher errs on some images
    teacher_batch_size: int = 128
    lr: float = 0.1                    # SGD, cosine schedule: the teacher and every student
    student_arch: str = "resnet8_w8"   # 4x fewer parameters than the teacher
    student_images: int = 2000         # KD and LS students see fewer images than the teacher
    student_epochs: int = 40           # to their plateau (bench/bench_plateau.py; notebook 02's curves)
    batch_size: int = 64               # the students' batch size
    temperature: float = 4.0           # KD temperature T
    alpha: float = 0.5                 # weight α of the KD term (Han et al.); 1 - α weights the labels
    epsilon: float = 0.1               # label smoothing ε
    e2kd_alpha: float = 1.0            # α of the e²KD comparisons (notebooks 05, 06): label-free, as in the paper
    lam: float = 5.0                   # λ of the e²KD comparisons (the paper: 1, 5 or 10)
    soft_mass: float = 0.0917          # m of the soft_* students: label smoothing's wrong-class mass ε·(K−1)/K (notebook 02)


COURSE = CourseSettings()


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
    kind: str = "scratch"           # scratch | ls | kd | kd_from_ls | e2kd | soft_* (teachers: scratch | ls)
    arch: str = COURSE.student_arch  # the model to train (a kdlab.models.get_model name)
    temperature: float = COURSE.temperature  # KD temperature T
    alpha: float = COURSE.alpha     # weight α of the KD term (Han et al.: 0.5); 1 - α weights the labels
    epsilon: float = COURSE.epsilon  # label smoothing ε of kind ls
    lam: float = 1.0                # e2kd: λ, the weight of the explanation term
    explain_method: str = "gradcam"  # e2kd: gradcam | bcos | input_x_gradient
    layer: str | None = None        # e2kd: the layer GradCAM explains (default: the last stage)
    soft_mass: float = COURSE.soft_mass  # soft_*: the targets' wrong-class mass m

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
        if self.kind in SOFT_KINDS:
            return SoftTargets(self.kind.removeprefix("soft_"), self.soft_mass)
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
        # the teacher-logit table (kdlab.teacher_table) serves plain KD only: a shared config's
        # switch is ignored by the other kinds
        cfg = replace(cfg, teacher_table=cfg.teacher_table and self.kind in ("kd", "kd_from_ls"))
        return load_or_train(name or self.name(cfg.seed), lambda: self.build(data), data, self.objective(),
                             cfg, teacher=teacher if self.distils else None, **options)


# --- how: the optimiser, and how long -------------------------------------------------------------

def train_config(optimizer: str = "sgd", **settings) -> TrainConfig:
    """A TrainConfig as the course trains every model: SGD with weight decay 5e-4, or Adam
    without weight decay (the B-cos networks; notebook 05). `settings`: the other fields."""
    return TrainConfig(optimizer=optimizer, weight_decay=5e-4 if optimizer == "sgd" else 0.0, **settings)


def fixed_steps(cfg: TrainConfig, steps: int, n_images: int) -> TrainConfig:
    """`cfg` with as many epochs as `steps` optimizer steps take on `n_images` images, so that
    students given more or fewer images get the same number of updates (notebooks 05, 06: an
    e²KD comparison's few-shot students). The batch never holds more than the images."""
    batch = min(cfg.batch_size, n_images)
    per_epoch = max(1, n_images // batch)
    return replace(cfg, epochs=max(1, math.ceil(steps / per_epoch)), batch_size=batch)


def first_images(train: ImageSet, n_images: int | None) -> ImageSet:
    """The first `n_images` training images (all of them for None): what the students see."""
    return train if n_images is None else train.subset(torch.arange(min(n_images, len(train))))


# --- the course's data, teacher and students ------------------------------------------------------

def course_data(dataset: str = COURSE.dataset, n_train: int = COURSE.n_train, n_test: int = COURSE.n_test,
                seed: int = 0, root=None) -> tuple[ImageSet, ImageSet]:
    """The training and test sets every notebook of the course shares (the synthetic data in
    the course's design, COURSE.design)."""
    options = {"design": COURSE.design} if dataset == "synthetic" else {}
    train = load_dataset(dataset, "train", n=n_train, seed=seed, root=root, **options)
    test = load_dataset(dataset, "test", n=n_test, seed=seed, root=root, **options)
    return train, test


def train_teacher(train: ImageSet, arch: str = COURSE.teacher_arch, epochs: int = COURSE.teacher_epochs,
                  lr: float = COURSE.lr, batch_size: int = COURSE.teacher_batch_size,
                  label_smoothing: float = 0.0, seed: int = 0, device="auto",
                  channels_last: bool = True) -> TrainedModel:
    """The teacher: a larger network trained on all training images (with LS if asked).
    channels_last=False: the same teacher under other numerics (TrainConfig.channels_last)."""
    recipe = Recipe("teacher", "ls" if label_smoothing else "scratch", arch, epsilon=label_smoothing)
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, channels_last=channels_last)
    return recipe.train(train, cfg, device=device)


def train_student(kind: str, train: ImageSet, teacher: TrainedModel | None = None,
                  arch: str = COURSE.student_arch, n_images: int = COURSE.student_images,
                  epochs: int = COURSE.student_epochs, lr: float = COURSE.lr,
                  batch_size: int = COURSE.batch_size, temperature: float = COURSE.temperature,
                  alpha: float = COURSE.alpha, epsilon: float = COURSE.epsilon, seed: int = 0,
                  device="auto", **options) -> TrainedModel:
    """A student of one of the kinds compared in notebook 02 (scratch, ls, kd, kd_from_ls):
    `train_students` for one kind and one seed (notebook 01); options as there."""
    students = train_students({kind: teacher}, [seed], train, arch, n_images, epochs, lr, batch_size,
                              temperature, alpha, epsilon, device, **options)
    return students[kind, seed]


def train_students(teachers: dict[str, TrainedModel | torch.nn.Module | None], seeds, train: ImageSet,
                   arch: str = COURSE.student_arch, n_images: int | None = COURSE.student_images,
                   epochs: int = COURSE.student_epochs, lr: float = COURSE.lr,
                   batch_size: int = COURSE.batch_size, temperature: float = COURSE.temperature,
                   alpha: float = COURSE.alpha, epsilon: float = COURSE.epsilon, device="auto", *,
                   recipes: dict[str, Recipe] | None = None, cfg: TrainConfig | None = None,
                   steps: int | None = None, name: str = "student", workers: int | None = None,
                   soft_mass: float = COURSE.soft_mass, channels_last: bool = True,
                   **options) -> dict[tuple[str, int], TrainedModel]:
    """A student of every kind in `teachers` ({kind: its teacher}, None for scratch and ls) for
    every seed: {(kind, seed): TrainedModel}, seed by seed, in the order of `teachers`.

    Notebook 02's students: each kind's course Recipe (arch, temperature, alpha, epsilon) on the
    first `n_images` training images, for `epochs` epochs of SGD at `lr` (kd / kd_from_ls distil
    from their teacher; pass the LS-trained one for kd_from_ls). Students see less data than the
    teacher, the regime where a teacher's soft labels help most; the defaults train a student to
    its plateau on the synthetic data (notebook 02 shows the curves).

    An experiment with students of its own (e²KD's, notebooks 05 and 06: kdlab.experiments.e2kd)
    passes `recipes` ({kind: Recipe}) and `cfg` (how; the seed is set per student), which replace
    arch ... epsilon and epochs, lr, batch_size. steps: train each for that many optimizer steps
    instead of cfg's epochs (`fixed_steps`); such students carry their number of images in their
    name. name: the names' prefix. soft_mass: the soft_* kinds' m (kdlab.soft_targets; teacher
    None). channels_last=False: other numerics (params/numerics.yaml). options: load_or_train's
    (extras and extras_key for stored teacher outputs, progress, cache_dir, held_out: images
    whose accuracy the history records, kdlab.train.fit's held-out learning curve). Several train at once
    on a CPU with cores to spare (kdlab.runtime.parallel, `workers` processes; the same models).
    """
    data = first_images(train, n_images)
    recipes = recipes or {kind: Recipe("student", kind, arch, temperature, alpha, epsilon, soft_mass=soft_mass)
                          for kind in teachers}
    cfg = cfg or TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, channels_last=channels_last)
    if steps is not None:
        cfg = fixed_steps(cfg, steps, len(data))
    shown_images = len(data) if steps is not None else None  # epochs, hence models, depend on it
    jobs = {(kind, seed): partial(recipes[kind].train, data, replace(cfg, seed=seed), teacher,
                                  name=student_name(kind, seed, name, shown_images), device=device, **options)
            for seed in seeds for kind, teacher in teachers.items()}
    return run_all(jobs, device, workers)
