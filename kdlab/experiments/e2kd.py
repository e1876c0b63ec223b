"""The e²KD experiments on ImageSets: KD vs e²KD students with scarce data, and on shortcut data.

Taught in notebook 05 (scarce data, GradCAM and B-cos variants, frozen explanations) and
notebook 06 (right features and interpretability). e²KD (Parchami-Araghi et al., ECCV 2024)
adds to KD the distance between the teacher's and the student's explanations:
L = L_KD + λ·(1 - cos(E(T, x, ŷ_T), E(S, x, ŷ_T))), both maps for the teacher's top-1 class,
flattened, averaged over the batch (kdlab.losses.e2kd_loss). The paper's settings: Adam at
lr 1e-3 with a cosine schedule after 5 warm-up epochs, T ∈ {1, 5}, λ ∈ {0, 0.2, 1, 5, 10},
label-free (α = 1) as in the reference code. The same comparisons on ImageNet folders,
Waterbirds and VOC live in kdlab.scale.realdata.

Students are trained through kdlab.recipes and kdlab.train.load_or_train, so every
configuration is trained once and then loaded from the cache. KD and e²KD students of one
comparison differ only in λ (KD is e²KD with λ = 0, the same objective code): same data,
same steps, same stored or online teacher outputs, same initial weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..data import ImageSet, few_shot_indices
from ..explain import explain
from ..explain_metrics import epg_summary, map_similarity, nanmean, thresholded_iou
from ..losses import ExplanationDistillation
from ..metrics import accuracy, agreement, predict
from ..recipes import Recipe, student_name
from ..train import TrainConfig, TrainedModel
from .frozen import freeze_teacher

KINDS = ("kd", "e2kd")


@dataclass
class StudentRecipe:
    """How the students of one comparison are trained (all of it goes into the cache key)."""

    arch: str = "resnet8_w8"
    steps: int = 300              # optimizer steps, whatever the number of images
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"        # sgd (weight decay 5e-4) | adam (no weight decay)
    warmup_epochs: int = 0        # linear warm-up (the paper: 5 epochs)
    temperature: float = 4.0
    alpha: float = 1.0            # weight of the KL term; 1 = label-free, as in the paper
    lam: float = 1.0              # λ of e²KD
    method: str = "gradcam"
    layer: str | None = None
    frozen: bool = True           # stored teacher outputs (kdlab.experiments.frozen) instead of online

    def config(self, n_images: int, seed: int) -> TrainConfig:
        batch = min(self.batch_size, n_images)
        per_epoch = max(1, n_images // batch)
        return TrainConfig(epochs=max(1, math.ceil(self.steps / per_epoch)), batch_size=batch, lr=self.lr,
                           optimizer=self.optimizer, weight_decay=5e-4 if self.optimizer == "sgd" else 0.0,
                           warmup_epochs=self.warmup_epochs, seed=seed)

    def student(self, kind: str) -> Recipe:
        """The kdlab.recipes.Recipe of a KD or e²KD student: kind e2kd, with λ = 0 for KD."""
        if kind not in KINDS:
            raise ValueError(f"unknown student kind {kind!r}; choose one of {KINDS}")
        return Recipe("student", "e2kd", self.arch, self.temperature, self.alpha,
                      lam=self.lam if kind == "e2kd" else 0.0, explain_method=self.method, layer=self.layer)

    def objective(self, kind: str) -> ExplanationDistillation:
        return self.student(kind).objective()


def train_students(data: ImageSet, teacher: TrainedModel | nn.Module, recipe: StudentRecipe, seed: int = 0,
                   name: str = "e2kd", kinds=KINDS, device="auto", progress: bool = False) -> dict:
    """A KD and an e²KD student (by default) distilled from `teacher` on `data`.

    Returns {kind: TrainedModel} plus "frozen_seconds": the time spent computing the stored
    teacher outputs (0 when they came from the cache or recipe.frozen is False).
    """
    extras, extras_key, frozen_seconds = None, "", 0.0
    if recipe.frozen:
        frozen = freeze_teacher(teacher, data, recipe.method, recipe.layer, device=device)
        extras, extras_key = frozen.extras, frozen.key
        frozen_seconds = 0.0 if frozen.loaded else frozen.seconds
    cfg = recipe.config(len(data), seed)
    out = {"frozen_seconds": frozen_seconds}
    for kind in kinds:
        out[kind] = recipe.student(kind).train(
            data, cfg, teacher, name=student_name(kind, seed, f"{name}-{recipe.method}", len(data)),
            extras=extras, extras_key=extras_key, device=device, progress=progress)
    return out


def teacher_view(teacher: nn.Module, test: ImageSet, method: str = "gradcam", layer: str | None = None) -> dict:
    """The teacher's logits and explanation maps (of its own top-1 class) on `test`."""
    logits = predict(teacher, test)
    return {"logits": logits, "maps": explain(teacher, test, logits.argmax(1), method, layer)}


def object_masks(data: ImageSet) -> torch.Tensor | None:
    """Boolean object masks (N, H, W) where the dataset has them, else None."""
    if data.masks and "object" in data.masks:
        return data.masks["object"] > 0
    return None


def report(model: nn.Module, test: ImageSet, teacher: dict | None = None, method: str = "gradcam",
           layer: str | None = None, iou_threshold: float = 0.5) -> dict:
    """Accuracy; with the teacher's view: agreement and explanation similarity (cosine of the
    maps for the teacher's top-1 class); with object masks: EPG and IoU of the model's own
    explanation (its top-1 class), and all_zero_maps: how many of those maps have no positive
    attribution (they score EPG 0 and count in its mean, as in the reference; the IoU leaves
    them out)."""
    logits = predict(model, test)
    row = {"accuracy": accuracy(logits, test.labels)}
    if teacher is not None:
        row["agreement"] = agreement(logits, teacher["logits"])
        maps_for_teacher_class = explain(model, test, teacher["logits"].argmax(1), method, layer)
        row["similarity"] = map_similarity(maps_for_teacher_class, teacher["maps"]).mean().item()
    masks = object_masks(test)
    if masks is not None:
        own = explain(model, test, logits.argmax(1), method, layer)
        epg = epg_summary(own, masks)
        row["epg"], row["all_zero_maps"] = epg["epg"], epg["all_zero_maps"]
        row["iou"] = nanmean(thresholded_iou(own, masks, iou_threshold))
    return row


def few_shot_data(train: ImageSet, shots: int, seed: int) -> ImageSet:
    """`shots` training images per class, drawn with `seed`."""
    return train.subset(few_shot_indices(train.labels, shots, seed=seed))


def fewshot_comparison(train, test, teacher, shots, seeds, recipe: StudentRecipe,
                       name: str = "e2kd-fewshot", device="auto", progress: bool = True,
                       evaluate=None) -> list[dict]:
    """KD vs e²KD students for every (shots per class, seed): one row per student (notebook 05).

    train: an ImageSet, or a callable (shots, seed) -> few-shot training data.
    teacher: a TrainedModel or a model (e.g. a pretrained ImageNet network).
    evaluate: model -> row of metrics; default `report` on the ImageSet `test` against the
        teacher's view (kdlab.scale.realdata.imagenet_fewshot passes ImageNet's evaluation).
    """
    from tqdm.auto import tqdm

    if evaluate is None:
        view = teacher_view(getattr(teacher, "model", teacher), test, recipe.method, recipe.layer)
        evaluate = lambda model: report(model, test, view, recipe.method, recipe.layer)  # noqa: E731
    rows = []
    runs = [(s, seed) for s in shots for seed in seeds]
    for n_shots, seed in tqdm(runs, desc="few-shot students", disable=not progress, leave=False):
        data = train(n_shots, seed) if callable(train) else few_shot_data(train, n_shots, seed)
        students = train_students(data, teacher, recipe, seed, name, device=device)
        for kind in KINDS:
            trained = students[kind]
            row = {"shots": n_shots, "seed": seed, "student": "e²KD" if kind == "e2kd" else "KD"}
            row.update(evaluate(trained.model))
            row["train_seconds"] = sum(h["seconds"] for h in trained.history)
            rows.append(row)
    return rows


def train_bcos_teacher(train: ImageSet, arch: str = "bcos_resnet8", epochs: int = 4, lr: float = 3e-3,
                       batch_size: int = 128, seed: int = 0, device="auto") -> TrainedModel:
    """A B-cos teacher for the default data, trained with Adam (kdlab.experiments.bcos_models)."""
    from . import bcos_models  # noqa: F401  (registers the B-cos architectures)

    cfg = TrainConfig(epochs=epochs, lr=lr, optimizer="adam", weight_decay=0.0, batch_size=batch_size, seed=seed)
    return Recipe("teacher", arch=arch).train(train, cfg, name=f"bcos-teacher-{arch}", device=device)


def step_cost(recipe: StudentRecipe, data: ImageSet, teacher: nn.Module, steps: int = 3,
              rounds: int = 3, device="cpu") -> dict:
    """Seconds per training step of KD online, e²KD online and e²KD frozen, measured side by
    side (interleaved) on one batch; only their ratios mean anything (notebook 05)."""
    from ..data import Batch
    from ..explain import explanation_pass

    batch_size = min(recipe.batch_size, len(data))
    x = data.float_images(torch.arange(batch_size), device)
    y = data.labels[:batch_size].to(device)
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    t_logits, t_maps = explanation_pass(teacher, x, None, recipe.method, recipe.layer, size=x.shape[-2:])
    student = recipe.student("kd").build(data).to(device)
    opt = torch.optim.SGD(student.parameters(), lr=1e-4)
    plain = Batch(x, y, torch.arange(batch_size))
    stored = Batch(x, y, torch.arange(batch_size), {"teacher_logits": t_logits, "teacher_maps": t_maps})
    cases = {"KD online": (recipe.objective("kd"), teacher, plain),
             "e²KD online": (recipe.objective("e2kd"), teacher, plain),
             "e²KD frozen": (recipe.objective("e2kd"), None, stored)}
    times = {k: [] for k in cases}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for name, (objective, t, batch) in cases.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                loss, _ = objective(student, t, batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
            times[name].append((time.perf_counter() - t0) / steps)
    return {k: sorted(v[1:])[len(v[1:]) // 2] for k, v in times.items()}


def shortcut_data(correlation: float = 0.95, n_student: int = 1200, n_test: int = 1000,
                  seed: int = 0) -> dict:
    """The synthetic data of the shortcut experiment (notebook 06), in-distribution and flipped.

    Students train on images whose scene predicts the class with probability `correlation`;
    test_in has the same correlation, test_ood never shows the class's designated scene
    (kdlab.synthetic's flip_background). teacher_train is None: the course teacher (trained
    on scene-independent data) is the teacher. Waterbirds and VOC: kdlab.scale.realdata.shortcut_data.
    """
    from ..synthetic import make_concept_dataset

    # streams far from the course data's (0, 1): new images, never the teacher's own
    return {"teacher_train": None,
            "student_train": make_concept_dataset(n_student, seed=1000 + seed, background_correlation=correlation),
            "test_in": make_concept_dataset(n_test, seed=2001, background_correlation=correlation),
            "test_ood": make_concept_dataset(n_test, seed=2003, flip_background=True)}
