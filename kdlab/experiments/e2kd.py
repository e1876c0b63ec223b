"""The e²KD experiments on ImageSets: KD vs e²KD students with scarce data, and on shortcut data.

Taught in notebooks 05 (scarce data, frozen explanations) and 06 (right features). e²KD
(Parchami-Araghi et al., ECCV 2024) adds to KD the distance between the teacher's and the
student's explanations: L = L_KD + λ·(1 - cos(E(T, x, ŷ_T), E(S, x, ŷ_T))), both maps for the
teacher's top-1 class (kdlab.losses.e2kd_loss). The paper: Adam at lr 1e-3, cosine schedule
after 5 warm-up epochs, T ∈ {1, 5}, λ ∈ {0, 0.2, 1, 5, 10}, label-free (α = 1). ImageNet
folders, Waterbirds and VOC: kdlab.scale.realdata.

A comparison's students: a kdlab.recipes.Recipe of kind e2kd (what), a TrainConfig (how), a
number of optimizer steps (kdlab.recipes.fixed_steps) and whether they learn from the teacher's
stored outputs (`frozen`, kdlab.experiments.frozen) or from the teacher run at every step,
trained once through kdlab.recipes.train_students and then loaded from the cache. KD is e²KD
with λ = 0 (`pair_recipes`): same data, steps, teacher outputs and initial weights.

Fair comparisons: students on their plateau (`plateau`, PLATEAU_GAIN), KD's T and e²KD's λ
chosen on held-out training images, never the test set (`choose_setting`), and claims decided
from paired per-seed numbers (`per_seed_table` for kdlab.claims; `verdict_table`, `ood_table`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, replace
from functools import partial, wraps
from inspect import Parameter, signature

import torch
from torch import nn

from .. import bcos, recipes
from ..data import ImageSet, few_shot_indices
from ..explain import explain
from ..explain_metrics import epg_summary, map_similarity, nanmean, thresholded_iou
from ..metrics import accuracy, agreement, predict
from ..runtime.moved import moved_names
from ..runtime.parallel import run_all
from ..runtime.progress import summary
from ..recipes import COURSE, Recipe, train_config
from ..train import TrainConfig, TrainedModel
from .frozen import FrozenTeacher, freeze_teacher, step_cost

KINDS = ("kd", "e2kd")
LABELS = {"kd": "KD", "e2kd": "e²KD", "e2kd_online": "e²KD online"}  # kinds as tables print them
PLATEAU_GAIN = 0.02  # a student is on its plateau when its late gain (`plateau`) is at most this

__getattr__ = moved_names(__name__, {"shortcut_data": "kdlab.experiments.e2kd:synthetic_shortcut_data"})


def pair_recipes(recipe: Recipe, kinds=KINDS) -> dict[str, Recipe]:
    """The students of one comparison, {kind: Recipe}: `recipe` (kind e2kd) itself as the
    e²KD student and, with λ = 0, as the KD student, so that the two differ only in λ."""
    if recipe.kind != "e2kd":
        raise ValueError(f"a comparison's recipe is of kind e2kd (its KD student has λ = 0), got {recipe.kind!r}")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown student kind {unknown[0]!r}; choose one of {KINDS}")
    return {kind: recipe if kind == "e2kd" else replace(recipe, lam=0.0) for kind in kinds}


def freeze(teacher: TrainedModel | nn.Module, data: ImageSet, recipe: Recipe, device="auto") -> FrozenTeacher:
    """The teacher's logits and `recipe`'s explanations for `data`, computed once and cached
    (kdlab.experiments.frozen; its `seconds` say how long computing them took)."""
    return freeze_teacher(teacher, data, recipe.explain_method, recipe.layer, device=device)


def train_pair(data: ImageSet, teacher: TrainedModel | nn.Module, recipe: Recipe, seeds=(0,), name: str = "e2kd",
               kinds=KINDS, device="auto", progress: bool = False, *, cfg: TrainConfig, steps: int,
               frozen: bool | FrozenTeacher = True, held_out: ImageSet | None = None
               ) -> dict[tuple[str, int], TrainedModel]:
    """A KD and an e²KD student (by default) per seed, distilled from `teacher` on `data` for
    `steps` optimizer steps with `cfg`: kdlab.recipes.train_students' {(kind, seed): TrainedModel}.

    frozen: True: both learn from the teacher's outputs stored once for `data` (`freeze`);
    a FrozenTeacher: those outputs, frozen already; False: the teacher runs at every step.
    The students are named `<name>-<method>-<kind>-n<images>-seed<seed>`. held_out: images
    whose accuracy the histories record (kdlab.train.fit), a held-out learning curve.
    """
    bcos.register_models()  # a B-cos comparison (notebook 05), in this process or a worker
    if frozen is True:
        frozen = freeze(teacher, data, recipe, device)
    stored = {"extras": frozen.extras, "extras_key": frozen.key} if frozen else {}
    # one after another (workers=1): train_pair runs inside the parallel jobs of
    # fewshot_comparison, choose_temperature and notebooks 05 and 06
    return recipes.train_students(dict.fromkeys(kinds, teacher), seeds, data, n_images=None,
                                  recipes=pair_recipes(recipe, kinds), cfg=cfg, steps=steps,
                                  name=f"{name}-{recipe.explain_method}", device=device, workers=1,
                                  progress=progress, held_out=held_out, **stored)


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


def fewshot_comparison(train, test, teacher, shots, seeds, recipe: Recipe,
                       name: str = "e2kd-fewshot", device="auto", progress: bool = True,
                       evaluate=None, histories: dict | None = None, *, cfg: TrainConfig, steps: int,
                       frozen: bool = True, online: bool = False, held_out: ImageSet | None = None
                       ) -> list[dict]:
    """KD vs e²KD students for every (shots per class, seed): one row per student (notebook 05).

    recipe, cfg, steps, frozen: the students (`train_pair`).
    train: an ImageSet, or a callable (shots, seed) -> few-shot training data.
    teacher: a TrainedModel or a model (e.g. a pretrained ImageNet network).
    evaluate: model -> row of metrics; default `report` on the ImageSet `test` against the
        teacher's view (kdlab.scale.realdata.imagenet_fewshot passes ImageNet's evaluation).
    histories: a dict to fill with the students' training histories,
        {shots: {"KD": [history per seed], "e²KD": [...]}} (kdlab.figures.plots.plot_learning_curves);
        with held_out (images never trained on) they record its accuracy too (`train_pair`).
    online: with frozen, also an e²KD student per run that runs the teacher at every step
        (student "e²KD online", named `<name>-online-...`): frozen against online explanations.
    Each row also holds `plateau`'s numbers and on_plateau: late gain at most PLATEAU_GAIN.
    """
    if evaluate is None:
        method, layer = recipe.explain_method, recipe.layer
        view = teacher_view(getattr(teacher, "model", teacher), test, method, layer)
        evaluate = lambda model: report(model, test, view, method, layer)  # noqa: E731
    rows = []
    runs = [(s, seed) for s in shots for seed in seeds]
    kinds = KINDS + (("e2kd_online",) if online and frozen else ())
    n_students = len(runs) * len(kinds)
    with summary(f"{n_students} few-shot students", total=n_students, enabled=progress):
        students_of = partial(train_pair, teacher=teacher, recipe=recipe, name=name, device=device, cfg=cfg,
                              steps=steps, frozen=frozen, held_out=held_out)
        jobs = {(n_shots, seed): partial(_few_shot_students, train, n_shots, seed, students_of, "e2kd_online" in kinds)
                for n_shots, seed in runs}
        # several runs at once on a many-core CPU (kdlab.runtime.parallel); data streamed from disk
        # (ImageNet folders) brings its own loader workers, so those runs go one after another
        pairs = run_all(jobs, device, workers=1 if callable(train) else None)
        for (n_shots, seed), students in pairs.items():
            for kind in kinds:
                trained, label = students[kind, seed], LABELS[kind]
                row = {"shots": n_shots, "seed": seed, "student": label}
                row.update(evaluate(trained.model))
                row.update(plateau(trained.history))
                row["on_plateau"] = row["late_gain"] <= PLATEAU_GAIN
                row["train_seconds"] = sum(h["seconds"] for h in trained.history)
                rows.append(row)
                if histories is not None:
                    histories.setdefault(n_shots, {}).setdefault(label, []).append(trained.history)
    return rows


def _few_shot_students(train, n_shots: int, seed: int, students_of, online: bool = False) -> dict:
    """One run of `fewshot_comparison`: its few-shot data, then its KD and e²KD students (and
    with `online` its online e²KD student, as kind e2kd_online)."""
    data = train(n_shots, seed) if callable(train) else few_shot_data(train, n_shots, seed)
    students = students_of(data, seeds=[seed])
    if online:
        name = students_of.keywords["name"]
        trained = students_of(data, seeds=[seed], kinds=("e2kd",), frozen=False, name=f"{name}-online")
        students["e2kd_online", seed] = trained["e2kd", seed]
    return students


def plateau(history: list[dict]) -> dict:
    """Has a student stopped learning? From its per-epoch accuracy on the training batches:
    final_train_acc, the mean over the last tenth of the epochs, and late_gain, how much that
    exceeds the mean over the tenth just before the last quarter. A late gain near zero says
    the student reached its plateau; a large one, that a comparison would measure how fast
    each student learns rather than where it ends (notebook 05)."""
    acc = [record["train_acc"] for record in history]
    tenth = max(1, len(acc) // 10)
    last_quarter = len(acc) - len(acc) // 4
    final = sum(acc[-tenth:]) / tenth
    before = acc[max(0, last_quarter - tenth):last_quarter] or acc[:1]
    return {"final_train_acc": final, "late_gain": final - sum(before) / len(before)}


def heldout_data(train: ImageSet, shots: int, seed: int, n: int) -> ImageSet:
    """Up to `n` training images that are not among the `shots` per class drawn with `seed`:
    data to choose settings on, so that the test set is never used for a choice (notebook 05)."""
    unused = torch.ones(len(train), dtype=torch.bool)
    unused[few_shot_indices(train.labels, shots, seed=seed)] = False
    return train.subset(torch.nonzero(unused).flatten()[:n])


def choose_setting(train: ImageSet, teacher, shots: int, seed: int, field: str, values, recipe: Recipe,
                   kind: str = "kd", n_heldout: int = 1000, name: str = "e2kd-fewshot", device="auto", *,
                   cfg: TrainConfig, steps: int, frozen: bool = True, held_out: ImageSet | None = None
                   ) -> tuple[float, list[dict]]:
    """The recipe's `field` ("temperature" for KD, "lam" for e²KD) chosen on held-out training
    images (notebook 05): one student of `kind` per value, trained on the `shots` images of `seed`
    as the comparison trains it (`train_pair`, same name: the comparison loads the chosen one),
    scored by its accuracy on `heldout_data`. Returns the most accurate value (the first on a
    tie) and one row per value. The test set is never used for the choice (held_out: `train_pair`'s,
    the learning curves the comparison shows for the chosen student)."""
    data = few_shot_data(train, shots, seed)
    heldout = heldout_data(train, shots, seed, n_heldout)
    with summary(f"{len(values)} {LABELS[kind]} students, one per {field}", total=len(values)):
        trained = run_all({value: partial(train_pair, data, teacher, replace(recipe, **{field: value}), [seed], name,
                                          kinds=(kind,), device=device, cfg=cfg, steps=steps, frozen=frozen,
                                          held_out=held_out)
                           for value in values}, device)
    rows = [{field: value, "heldout_accuracy": accuracy(predict(students[kind, seed].model, heldout), heldout.labels),
             **plateau(students[kind, seed].history)} for value, students in trained.items()]
    best = max(rows, key=lambda row: row["heldout_accuracy"])  # max keeps the first on a tie
    return best[field], rows


def choose_temperature(train: ImageSet, teacher, shots: int, seed: int, temperatures, recipe: Recipe,
                       n_heldout: int = 1000, name: str = "e2kd-fewshot", device="auto", **how
                       ) -> tuple[float, list[dict]]:
    """KD's temperature, chosen on held-out training images (`choose_setting`; notebook 05)."""
    return choose_setting(train, teacher, shots, seed, "temperature", temperatures, recipe, "kd", n_heldout,
                          name, device, **how)


def choose_lambda(train: ImageSet, teacher, shots: int, seed: int, lams, recipe: Recipe, n_heldout: int = 1000,
                  name: str = "e2kd-fewshot", device="auto", **how) -> tuple[float, list[dict]]:
    """e²KD's λ, chosen like KD's T (`choose_setting`; pass the recipe with the chosen T)."""
    return choose_setting(train, teacher, shots, seed, "lam", lams, recipe, "e2kd", n_heldout, name, device, **how)


def per_seed_table(results, teacher: dict | None = None, kind_column: str = "student"):
    """kdlab.claims' per-seed table from `fewshot_comparison`'s rows: a column `kind` (kd, e2kd,
    e2kd_online from the labels KD, e²KD, e²KD online) and, given the teacher's own metrics on the
    same images (`report`), a teacher row per seed, so that teacher - student pairs by seed."""
    import pandas as pd

    table = results.assign(kind=results[kind_column].map({label: kind for kind, label in LABELS.items()}))
    if teacher is not None:
        keys = [c for c in ("shots", "seed") if c in table]
        table = pd.concat([table, pd.DataFrame([{**teacher, "kind": "teacher", **dict(zip(keys, values))} for values
                                                in table[keys].drop_duplicates().itertuples(index=False, name=None)])],
                          ignore_index=True)
    return table[["kind", "seed"] + [c for c in table if c not in ("kind", "seed", kind_column)]]


def verdict_table(results, claims, kind_column: str = "student", by: str | None = None):
    """kdlab.verdicts.decide_table for every claim, paired by seed, within each value of `by`
    (e.g. per shot count): a pandas table, one row per claim (notebooks 05 and 06).

    claims: (claim, metric, kind_a, kind_b, direction) tuples, "kind_a is `direction` than
    kind_b". Groups with fewer than 2 paired seeds are left out: no interval without them.
    """
    import pandas as pd

    from ..verdicts import decide_table

    groups = results.groupby(by, sort=True) if by else [(None, results)]
    rows = []
    for value, part in groups:
        for claim, metric, a, b, direction in claims:
            if metric not in part:
                continue
            wide = part.pivot_table(index="seed", columns=kind_column, values=metric)
            if not {a, b} <= set(wide.columns) or len(wide[[a, b]].dropna()) < 2:
                continue
            verdict = decide_table(part, claim, metric, a, b, direction, kind_column=kind_column)
            rows.append({**({by: value} if by else {}), **asdict(verdict)})
    return pd.DataFrame(rows)


def train_bcos_teacher(train: ImageSet, arch: str = "bcos_resnet8", epochs: int = 4, lr: float = 3e-3,
                       batch_size: int = 128, seed: int = 0, device="auto") -> TrainedModel:
    """A B-cos teacher for the default data, trained with Adam (kdlab.bcos; notebook 05)."""
    bcos.register_models()
    cfg = train_config("adam", epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return Recipe("teacher", arch=arch).train(train, cfg, name=f"bcos-teacher-{arch}", device=device)


def synthetic_shortcut_data(correlation: float = 0.95, n_student: int = 1200, n_test: int = 1000,
                            seed: int = 0) -> dict:
    """The synthetic data of the shortcut experiment (notebook 06), in-distribution and flipped
    (kdlab.scale.realdata.shortcut_data("synthetic", ...) serves it with Waterbirds and VOC).

    The course's design (v2): class c has two designated scenes, c and c + 12, each hinting at
    exactly one class (kdlab.synthetic.designated_scenes). Students train on images
    that show one of their class's designated scenes with probability `correlation`; test_in
    has the same correlation, test_ood never shows one (kdlab.synthetic's flip_background).
    teacher_train is None: the course teacher is the teacher; its own training images carry
    only v2's weak default hint (25-27 % designated scenes against 8 % by chance).
    """
    from ..synthetic import make_concept_dataset

    def images(n, stream, **scenes):
        return make_concept_dataset(n, seed=stream, design=COURSE.design, **scenes)

    # streams far from the course data's (0, 1): new images, never the teacher's own
    return {"teacher_train": None,
            "student_train": images(n_student, 1000 + seed, background_correlation=correlation),
            "test_in": images(n_test, 2001, background_correlation=correlation),
            "test_ood": images(n_test, 2003, flip_background=True)}


def scene_classes(data: ImageSet) -> torch.Tensor | None:
    """The class each image's background scene is designated for (notebook 06), or None
    where the data has no scene labels or a scene hints at several classes (design v1).

    In the course design (v2) each scene is designated for exactly one class
    (kdlab.synthetic.designated_scenes), so on the flipped test images a model that decides
    by the scene predicts this class, never the true one.
    """
    from ..synthetic import designated_scenes

    if not data.image_labels or "scene" not in data.image_labels or not data.concept_categories:
        return None
    numbers = [i for i, c in enumerate(data.concept_categories) if c == "scene"]
    owners: dict[int, list[int]] = {}
    for c in range(data.num_classes):
        for scene in designated_scenes(c, data.meta.get("design", "v1")):
            owners.setdefault(scene, []).append(c)
    if not numbers or sorted(owners) != list(range(len(numbers))) \
            or any(len(classes) != 1 for classes in owners.values()):
        return None
    lookup = torch.tensor([owners[s][0] for s in range(len(numbers))])
    return lookup[data.image_labels["scene"].long() - numbers[0]]


def ood_table(results, baseline: str, models, test_in: str = "in distribution",
              test_ood: str = "flipped backgrounds", margin: float = 0.02):
    """Out-of-distribution accuracy of each of `models` against `baseline`, paired by seed,
    with the in-distribution (ID) accuracies beside it: a pandas table (notebook 06).

    results: one row per (model, seed, test) with an "accuracy" column. A model that is more
    accurate OOD only because it is more accurate overall has not learnt the right features,
    so each row says whether the ID accuracies are matched (mean paired difference within
    ±margin; id_note says by how much they differ otherwise) and decides, besides "more
    accurate OOD", a claim that controls for ID accuracy: the model loses less accuracy
    than the baseline when the backgrounds flip (drop = ID - OOD accuracy).
    """
    import pandas as pd

    from ..verdicts import decide

    wide = results.pivot_table(index="seed", columns=["model", "test"], values="accuracy")
    rows = []
    for model in models:
        pair = wide[[(m, t) for m in (model, baseline) for t in (test_in, test_ood)]].dropna()
        m_in, m_ood = pair[(model, test_in)], pair[(model, test_ood)]
        b_in, b_ood = pair[(baseline, test_in)], pair[(baseline, test_ood)]
        id_gap = (m_in - b_in).mean()
        matched = abs(id_gap) <= margin
        row = {"model": model, "seeds": len(pair), "id_acc": m_in.mean(),
               "id_acc_baseline": b_in.mean(), "id_gap": id_gap,
               "id_note": "" if matched else f"ID accuracies differ by {100 * id_gap:+.1f} points",
               "ood_acc": m_ood.mean(), "ood_acc_baseline": b_ood.mean()}
        if len(pair) >= 2:  # an interval needs two paired seeds
            ood = decide(f"{model} more accurate OOD than {baseline}", m_ood, b_ood)
            drop = decide(f"{model} loses less accuracy OOD than {baseline}",
                          m_in - m_ood, b_in - b_ood, "less")
            row.update({"ood_gain": ood.mean, "ood_low": ood.low, "ood_high": ood.high,
                        "ood_verdict": ood.verdict, "drop_difference": drop.mean,
                        "drop_verdict": drop.verdict})
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


# --- older notebooks (deprecated) -----------------------------------------------------------------
# Copies of notebooks 05 and 06 from before kdlab.recipes took over the students' recipe pass a
# StudentRecipe and call train_students; both keep working, with a DeprecationWarning.

@dataclass
class StudentRecipe:
    """Deprecated: a kdlab.recipes.Recipe of kind e2kd (what), a TrainConfig (how), steps and
    frozen, passed separately (`split` gives them)."""

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

    def __post_init__(self):
        warnings.warn("kdlab.experiments.e2kd.StudentRecipe is deprecated: pass a kdlab.recipes.Recipe of kind "
                      "e2kd and cfg=, steps=, frozen= instead", DeprecationWarning, stacklevel=3)

    def split(self) -> tuple[Recipe, TrainConfig, int, bool]:
        """(recipe, cfg, steps, frozen) as the functions above take them."""
        recipe = Recipe("student", "e2kd", self.arch, self.temperature, self.alpha, lam=self.lam,
                        explain_method=self.method, layer=self.layer)
        cfg = train_config(self.optimizer, batch_size=self.batch_size, lr=self.lr, warmup_epochs=self.warmup_epochs)
        return recipe, cfg, self.steps, self.frozen


def accepts_student_recipe(function):
    """`function` that also takes a deprecated StudentRecipe as its recipe: the recipe goes in
    its place, and cfg, steps and frozen to the keyword-only arguments `function` has."""
    wanted = [name for name, p in signature(function).parameters.items() if p.kind is Parameter.KEYWORD_ONLY]

    def split(old: StudentRecipe, kwargs: dict) -> Recipe:
        recipe, *how = old.split()
        kwargs.update({k: v for k, v in zip(("cfg", "steps", "frozen"), how) if k in wanted})
        return recipe

    @wraps(function)
    def wrapper(*args, **kwargs):
        args = [split(a, kwargs) if isinstance(a, StudentRecipe) else a for a in args]
        if isinstance(kwargs.get("recipe"), StudentRecipe):
            kwargs["recipe"] = split(kwargs["recipe"], kwargs)
        return function(*args, **kwargs)

    return wrapper


fewshot_comparison = accepts_student_recipe(fewshot_comparison)
choose_temperature = accepts_student_recipe(choose_temperature)
step_cost = accepts_student_recipe(step_cost)


def train_students(data: ImageSet, teacher: TrainedModel | nn.Module, recipe: StudentRecipe, seed: int = 0,
                   name: str = "e2kd", kinds=KINDS, device="auto", progress: bool = False) -> dict:
    """Deprecated: `train_pair`. Returns the old {kind: TrainedModel} plus "frozen_seconds", the
    time spent computing the stored teacher outputs (0 when loaded from the cache or online)."""
    warnings.warn("kdlab.experiments.e2kd.train_students is deprecated: use train_pair, which returns "
                  "{(kind, seed): TrainedModel}", DeprecationWarning, stacklevel=2)
    what, cfg, steps, frozen = recipe.split()
    outputs = freeze(teacher, data, what, device) if frozen else False
    students = train_pair(data, teacher, what, [seed], name, kinds, device, progress, cfg=cfg, steps=steps,
                          frozen=outputs)
    seconds = outputs.seconds if outputs and not outputs.loaded else 0.0
    return {"frozen_seconds": seconds, **{kind: students[kind, seed] for kind in kinds}}
