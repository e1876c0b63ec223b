"""Notebook 06's shortcut experiment: the control student's data and the per-seed table its
claims (params/claims.yaml, kdlab.claims) are decided from.

The control is the KD student of the shortcut comparison (same teacher, objective, number of
images and steps, same seed) trained on images whose background does not give the class away.
Its accuracy with flipped backgrounds is what the training budget allows a student to learn
of the objects; the KD and e²KD students are read against that ceiling.
"""

from __future__ import annotations

from ..data import ImageSet

# {model name in notebook 06's results: kind in params/claims.yaml}
KD, CONTROL = "KD student", "control student"
TESTS = {"in distribution": "id", "flipped backgrounds": "ood"}


def e2kd_name(layer: str) -> str:
    """The results' name of the e²KD student that matches the teacher's GradCAM at `layer`."""
    return f"e²KD student ({layer})"


def kind_of(model: str) -> str | None:
    """The claims' kind of a model named as in notebook 06's results: kd, e2kd_<layer>,
    control; None for any other model (the teacher)."""
    if model == KD:
        return "kd"
    if model == CONTROL:
        return "control"
    if model.startswith("e²KD student (") and model.endswith(")"):
        return "e2kd_" + model[len("e²KD student ("):-1]
    return None


def synthetic_control_train(n_student: int, seed: int = 0) -> ImageSet:
    """The shortcut students' synthetic training images without the shortcut: the same
    generator stream as kdlab.experiments.e2kd.synthetic_shortcut_data's student_train (the
    same objects, labels and masks: the scene draws use the generator the same way at any
    correlation), with every scene drawn independently of the class (background_correlation
    0: one of the class's designated scenes in 1 of 12 images, as by chance)."""
    from ..recipes import COURSE
    from ..synthetic import make_concept_dataset

    return make_concept_dataset(n_student, seed=1000 + seed, design=COURSE.design,
                                background_correlation=0.0)


def control_train(dataset: str, data: dict, n_student: int, seed: int = 0) -> ImageSet | None:
    """The control student's training images for kdlab.scale.realdata.shortcut_data's `data`:
    synthetic: `synthetic_control_train`; waterbirds: the validation split, whose backgrounds
    are balanced (the real teacher's training images; a different number of images); None
    where the data has no shortcut to control for (voc)."""
    if dataset == "synthetic":
        return synthetic_control_train(n_student, seed)
    if data.get("test_ood") is None:
        return None
    return data.get("teacher_train")


def per_seed_table(results, tests: dict[str, str] = TESTS):
    """The claims' per-seed table from notebook 06's `results` (a row per model, seed and test,
    with accuracy and, where the data has object masks, epg): a row per student (kind, seed)
    with <prefix>_accuracy and <prefix>_epg per test, prefixes from `tests` (id: in
    distribution, ood: flipped backgrounds); the teacher and unnamed models are left out."""
    import pandas as pd

    rows = results[results.model.map(kind_of).notna() & results.test.isin(list(tests))]
    values = [m for m in ("accuracy", "epg") if m in rows]
    wide = rows.pivot_table(index=["model", "seed"], columns="test", values=values, sort=False)
    wide.columns = [f"{tests[test]}_{metric}" for metric, test in wide.columns]
    wide = wide.reset_index()
    wide.insert(0, "kind", wide.pop("model").map(kind_of))
    wide["seed"] = wide["seed"].astype(int)
    order = [c for p in tests.values() for c in (f"{p}_accuracy", f"{p}_epg") if c in wide]
    first = {kind: i for i, kind in enumerate(dict.fromkeys(wide.kind))}  # as in results
    wide = wide.sort_values(["kind", "seed"], key=lambda c: c.map(first) if c.name == "kind" else c)
    return wide[["kind", "seed", *order]].reset_index(drop=True)
