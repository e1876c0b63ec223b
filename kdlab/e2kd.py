"""The e²KD experiments: KD vs e²KD students with scarce data, and on shortcut data.

Taught in notebook 05 (scarce data, GradCAM and B-cos variants, frozen explanations) and
notebook 06 (right features and interpretability); DESIGN §2.4.

Students are trained through kdlab.train.load_or_train, so every configuration is trained
once and then loaded from the cache. KD and e²KD students of one comparison differ only in λ
(KD is `ExplanationDistillation` with λ = 0): same data, same steps, same stored or online
teacher outputs, same initial weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import ImageSet, few_shot_indices
from .explain import explain
from .explain_metrics import energy_pointing_game, map_similarity, nanmean, thresholded_iou
from .losses import CrossEntropy, ExplanationDistillation
from .metrics import accuracy, agreement, predict
from .models import get_model
from .train import TrainConfig, TrainedModel, load_or_train

KINDS = ("kd", "e2kd")


@dataclass
class StudentRecipe:
    """How the students of one comparison are trained (all of it goes into the cache key)."""

    arch: str = "resnet8_w8"
    steps: int = 300              # optimizer steps, whatever the number of images
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    temperature: float = 4.0
    alpha: float = 1.0            # weight of the KL term; 1 = label-free, as in the paper
    lam: float = 1.0              # λ of e²KD
    method: str = "gradcam"
    layer: str | None = None
    frozen: bool = True           # stored teacher outputs (kdlab.frozen) instead of online
    extra: dict = field(default_factory=dict)  # further TrainConfig fields

    def config(self, n_images: int, seed: int) -> TrainConfig:
        batch = min(self.batch_size, n_images)
        per_epoch = max(1, n_images // batch)
        weight_decay = self.extra.get("weight_decay", 5e-4 if self.optimizer == "sgd" else 0.0)
        rest = {k: v for k, v in self.extra.items() if k != "weight_decay"}
        return TrainConfig(epochs=max(1, math.ceil(self.steps / per_epoch)), batch_size=batch, lr=self.lr,
                           optimizer=self.optimizer, weight_decay=weight_decay, seed=seed, **rest)

    def objective(self, kind: str) -> ExplanationDistillation:
        if kind not in KINDS:
            raise ValueError(f"unknown student kind {kind!r}; choose one of {KINDS}")
        return ExplanationDistillation(self.temperature, self.alpha, self.lam if kind == "e2kd" else 0.0,
                                       self.method, self.layer)


def train_students(data, teacher: TrainedModel | nn.Module, recipe: StudentRecipe, seed: int = 0,
                   name: str = "e2kd", kinds=KINDS, device="auto", progress: bool = False) -> dict:
    """A KD and an e²KD student (by default) distilled from `teacher` on `data`.

    Returns {kind: TrainedModel} plus "frozen_seconds": the time spent computing the stored
    teacher outputs (0 when they came from the cache or recipe.frozen is False).
    """
    extras, extras_key, frozen_seconds = None, "", 0.0
    if recipe.frozen and isinstance(data, ImageSet):
        from .frozen import freeze_teacher

        frozen = freeze_teacher(teacher, data, recipe.method, recipe.layer, device=device)
        extras, extras_key = frozen.extras, frozen.key
        frozen_seconds = 0.0 if frozen.loaded else frozen.seconds
    cfg = recipe.config(len(data), seed)
    out = {"frozen_seconds": frozen_seconds}
    for kind in kinds:
        out[kind] = load_or_train(
            f"{name}-{recipe.method}-{kind}-n{len(data)}-seed{seed}",
            lambda: get_model(recipe.arch, data.num_classes, data.in_channels),
            data, recipe.objective(kind), cfg, teacher=teacher, extras=extras, extras_key=extras_key,
            device=device, progress=progress)
    return out


def teacher_view(teacher: nn.Module, test, method: str = "gradcam", layer: str | None = None) -> dict:
    """The teacher's logits and explanation maps (of its own top-1 class) on `test`.

    For image-folder data (kdlab.imagenet, streamed from disk) only the model is kept:
    accuracy and agreement are then computed in one streaming pass by `report`.
    """
    if not isinstance(test, ImageSet):
        return {"model": teacher}
    logits = predict(teacher, test)
    return {"logits": logits, "maps": explain(teacher, test, logits.argmax(1), method, layer)}


def object_masks(data: ImageSet) -> torch.Tensor | None:
    """Boolean object masks (N, H, W) where the dataset has them, else None."""
    if data.masks and "object" in data.masks:
        return data.masks["object"] > 0
    return None


def report(model: nn.Module, test, teacher: dict | None = None, method: str = "gradcam",
           layer: str | None = None, iou_threshold: float = 0.5) -> dict:
    """Accuracy; with the teacher's view: agreement and explanation similarity (cosine of the
    maps for the teacher's top-1 class); with object masks: EPG and IoU of the model's own
    explanation (its top-1 class). Image-folder data: accuracy and agreement only."""
    if not isinstance(test, ImageSet):
        from .imagenet import evaluate_folder

        return evaluate_folder(model, test, teacher=(teacher or {}).get("model"))
    logits = predict(model, test)
    row = {"accuracy": accuracy(logits, test.labels)}
    if teacher is not None:
        row["agreement"] = agreement(logits, teacher["logits"])
        maps_for_teacher_class = explain(model, test, teacher["logits"].argmax(1), method, layer)
        row["similarity"] = map_similarity(maps_for_teacher_class, teacher["maps"]).mean().item()
    masks = object_masks(test)
    if masks is not None:
        own = explain(model, test, logits.argmax(1), method, layer)
        row["epg"] = nanmean(energy_pointing_game(own, masks))
        row["iou"] = nanmean(thresholded_iou(own, masks, iou_threshold))
    return row


def few_shot_data(train, shots: int, seed: int):
    """`shots` training images per class drawn with `seed`: a subset of an ImageSet, or what a
    callable `train(shots, seed)` returns (e.g. kdlab.imagenet.load_imagenet with shots=)."""
    if isinstance(train, ImageSet):
        return train.subset(few_shot_indices(train.labels, shots, seed=seed))
    return train(shots, seed)


def fewshot_comparison(train, test, teacher, shots, seeds, recipe: StudentRecipe,
                       name: str = "e2kd-fewshot", device="auto", progress: bool = True) -> list[dict]:
    """KD vs e²KD students for every (shots per class, seed): one row per student (notebook 05).

    train: an ImageSet, or a callable (shots, seed) -> few-shot training data (image folders).
    teacher: a TrainedModel or a model (e.g. a pretrained ImageNet network).
    """
    from tqdm.auto import tqdm

    view = teacher_view(getattr(teacher, "model", teacher), test, recipe.method, recipe.layer)
    rows = []
    runs = [(s, seed) for s in shots for seed in seeds]
    for n_shots, seed in tqdm(runs, desc="few-shot students", disable=not progress, leave=False):
        students = train_students(few_shot_data(train, n_shots, seed), teacher, recipe, seed, name,
                                  device=device)
        for kind in KINDS:
            trained = students[kind]
            row = {"shots": n_shots, "seed": seed, "student": "e²KD" if kind == "e2kd" else "KD"}
            row.update(report(trained.model, test, view, recipe.method, recipe.layer))
            row["train_seconds"] = sum(h["seconds"] for h in trained.history)
            rows.append(row)
    return rows


def train_bcos_teacher(train: ImageSet, arch: str = "bcos_resnet8", epochs: int = 4, lr: float = 3e-3,
                       batch_size: int = 128, seed: int = 0, device="auto") -> TrainedModel:
    """A B-cos teacher for the default data, trained with Adam (kdlab.bcos_models)."""
    from . import bcos_models  # noqa: F401  (registers the B-cos architectures)

    cfg = TrainConfig(epochs=epochs, lr=lr, optimizer="adam", weight_decay=0.0, batch_size=batch_size, seed=seed)
    return load_or_train(f"bcos-teacher-{arch}", lambda: get_model(arch, train.num_classes, train.in_channels),
                         train, CrossEntropy(), cfg, device=device)


def step_cost(recipe: StudentRecipe, data: ImageSet, teacher: nn.Module, steps: int = 3,
              rounds: int = 3, device="cpu") -> dict:
    """Seconds per training step of KD online, e²KD online and e²KD frozen, measured side by
    side (interleaved) on one batch; only their ratios mean anything (notebook 05)."""
    from .data import Batch
    from .explain import explanation_pass

    batch_size = min(recipe.batch_size, len(data))
    x = data.float_images(torch.arange(batch_size), device)
    y = data.labels[:batch_size].to(device)
    teacher = teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    t_logits, t_maps = explanation_pass(teacher, x, None, recipe.method, recipe.layer, size=x.shape[-2:])
    student = get_model(recipe.arch, data.num_classes, data.in_channels).to(device)
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


def shortcut_data(dataset: str = "synthetic", correlation: float = 0.95, n_student: int = 1200,
                  n_test: int = 1000, seed: int = 0, root=None, size: int = 64) -> dict:
    """The data of the shortcut experiment (notebook 06), in-distribution and flipped.

    synthetic: students train on images whose scene predicts the class with probability
        `correlation`; test_in has the same correlation, test_ood never shows the class's
        designated scene (kdlab.synthetic's flip_background). teacher_train is None: the
        course teacher (trained on scene-independent data) is the teacher.
    waterbirds: students train on the training split (95 % correlated); test_in / test_ood are
        the test split's birds on their own / the other background; the teacher trains on the
        validation split, where the backgrounds are balanced.
    voc: no shortcut: students and teacher train on VOC train, test_in is VOC val (for the
        interpretability metrics), test_ood is None.
    """
    from .synthetic import make_concept_dataset

    if dataset == "synthetic":
        # streams far from the course data's (0, 1): new images, never the teacher's own
        return {"teacher_train": None,
                "student_train": make_concept_dataset(n_student, seed=1000 + seed, background_correlation=correlation),
                "test_in": make_concept_dataset(n_test, seed=2001, background_correlation=correlation),
                "test_ood": make_concept_dataset(n_test, seed=2003, flip_background=True)}
    from . import realdata

    if dataset == "waterbirds":
        test = realdata.load_waterbirds("test", root, size)
        same = test.labels == test.image_labels["place"]
        return {"teacher_train": realdata.load_waterbirds("val", root, size),
                "student_train": realdata.load_waterbirds("train", root, size),
                "test_in": test.subset(same), "test_ood": test.subset(~same)}
    if dataset == "voc":
        train = realdata.load_voc("train", root, size=size)
        return {"teacher_train": train, "student_train": train,
                "test_in": realdata.load_voc("val", root, size=size), "test_ood": None}
    raise ValueError(f"unknown dataset {dataset!r}; choose synthetic, waterbirds or voc")


def pretrained_classifier(arch: str, num_classes: int) -> nn.Module:
    """An ImageNet-pretrained network (torchvision or kdlab.bcos_models) with a new, randomly
    initialised classifier for `num_classes` classes: the starting point of a real-data teacher."""
    from . import bcos_models

    model = get_model(arch, 1000, pretrained=True)
    if isinstance(model, bcos_models.BcosClassifier):
        old = model.net.fc
        model.net.fc = type(old)(old.in_channels, num_classes, kernel_size=1, b=old.b)
        model.net.logit_layer.logit_bias = -math.log(num_classes - 1)
        return model
    if isinstance(getattr(model, "fc", None), nn.Linear):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model
    raise ValueError(f"do not know where the classifier of {arch} is; use a ResNet")


def train_real_teacher(data: ImageSet, arch: str, epochs: int, lr: float, batch_size: int = 64,
                       pretrained: bool = True, seed: int = 0, device="auto") -> TrainedModel:
    """A teacher for real data (notebook 06's full runs): ImageNet-pretrained and fine-tuned, or
    from scratch; B-cos networks with Adam, others with SGD."""
    bcos = arch.startswith("bcos_")
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                      optimizer="adam" if bcos else "sgd", weight_decay=0.0 if bcos else 5e-4)
    build = (lambda: pretrained_classifier(arch, data.num_classes)) if pretrained else \
        (lambda: get_model(arch, data.num_classes, data.in_channels))
    return load_or_train(f"{data.name}-teacher-{arch}{'-pretrained' if pretrained else ''}", build, data,
                         CrossEntropy(), cfg, device=device)


def plot_explanations(images: torch.Tensor, maps: dict, titles: list[str] | None = None,
                      signed: bool = False):
    """Images in the first row, then one row of explanation maps per model (notebooks 05, 06).

    signed=True draws maps with a diverging colour map centred at 0 (B-cos contributions and
    input×gradient can be negative); otherwise each map is scaled to its own maximum.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(images)
    fig, axes = plt.subplots(1 + len(maps), n, figsize=(1.5 * n, 1.55 * (1 + len(maps))), squeeze=False)
    for j in range(n):
        img = images[j].float() / 255 if images.dtype == torch.uint8 else images[j].float()
        axes[0, j].imshow(img.permute(1, 2, 0).numpy().squeeze(), cmap="gray")
        if titles:
            axes[0, j].set_title(titles[j], fontsize=7)
        for i, (name, m) in enumerate(maps.items(), start=1):
            m = m[j].float().numpy()
            if signed:
                v = float(np.abs(m).max()) or 1.0
                axes[i, j].imshow(m, cmap="bwr", vmin=-v, vmax=v)
            else:
                axes[i, j].imshow(m, cmap="inferno", vmin=0, vmax=float(m.max()) or 1.0)
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
