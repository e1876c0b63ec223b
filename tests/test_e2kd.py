"""The e²KD loss and objective (kdlab.losses.e2kd_loss, ExplanationDistillation), and the
experiment helpers of notebooks 05 and 06 (kdlab.experiments.e2kd)."""

import pytest
import torch
import torch.nn.functional as F

from kdlab import bcos
from kdlab.data import Batch
from kdlab.datasets import load_dataset
from kdlab.explain import explanation_pass
from kdlab.losses import ExplanationDistillation, e2kd_loss, explanation_loss, kd_loss
from kdlab.models import get_model
from kdlab.recipes import Recipe, fixed_steps, train_config
from kdlab.train import TrainConfig, fit

bcos.register_models()
# how the comparisons below train their students: two SGD steps of 32 images
HOW = {"cfg": train_config(batch_size=32, lr=0.05), "steps": 2}
E2KD = Recipe("student", "e2kd", lam=1.0, alpha=1.0)


def _hand_cosine_loss(a, b):
    a, b = a.reshape(len(a), -1).double(), b.reshape(len(b), -1).double()
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    return (1 - cos).mean()


def test_e2kd_loss_against_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    s_logits, t_logits = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    s_maps, t_maps = torch.rand(5, 1, 6, 6, generator=g), torch.rand(5, 1, 6, 6, generator=g)
    y = torch.randint(7, (5,), generator=g)
    T, alpha, lam = 3.0, 0.7, 2.5
    p_t = F.softmax(t_logits.double() / T, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(s_logits.double() / T, 1))).sum(1).mean()
    ce = -F.log_softmax(s_logits.double(), 1)[torch.arange(5), y].mean()
    expected = alpha * T**2 * kl + (1 - alpha) * ce + lam * _hand_cosine_loss(s_maps, t_maps)
    got = e2kd_loss(s_logits, t_logits, s_maps, t_maps, y, T, alpha, lam)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # λ = 0 is plain KD; identical maps (up to scale) cost nothing
    assert e2kd_loss(s_logits, t_logits, s_maps, t_maps, y, T, alpha, 0.0) == kd_loss(s_logits, t_logits, y, T, alpha)
    assert explanation_loss(t_maps, 4 * t_maps).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="lam"):
        e2kd_loss(s_logits, t_logits, s_maps, t_maps, y, lam=-1.0)


def test_explanation_loss_resizes_the_student_map():
    student = torch.rand(3, 1, 8, 8)
    teacher = F.interpolate(student, size=(32, 32), mode="bilinear", align_corners=False)
    assert explanation_loss(student, teacher).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="differ"):
        explanation_loss(torch.rand(3, 2, 8, 8), torch.rand(3, 1, 8, 8))


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", "train", n=64, seed=3)


def test_objective_explains_the_teachers_top1_class(data):
    torch.manual_seed(0)
    teacher, student = get_model("resnet8", 12).eval(), get_model("resnet8_w8", 12).eval()
    x = data.float_images(torch.arange(16))
    batch = Batch(x=x, y=data.labels[:16], index=torch.arange(16))
    objective = ExplanationDistillation(temperature=4.0, alpha=0.5, lam=3.0, method="gradcam")
    loss, logits = objective(student, teacher, batch)
    t_logits, t_maps = explanation_pass(teacher, x, None, "gradcam", size=(32, 32))
    s_logits, s_maps = explanation_pass(student, x, t_logits.argmax(1), "gradcam", size=(32, 32))
    expected = kd_loss(s_logits, t_logits, batch.y, 4.0, 0.5) + 3.0 * _hand_cosine_loss(s_maps, t_maps)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(logits.detach(), s_logits)
    loss.backward()
    assert student.conv1.weight.grad.abs().sum() > 0
    assert objective.config() == {"objective": "e2kd", "temperature": 4.0, "alpha": 0.5, "lam": 3.0,
                                  "method": "gradcam", "layer": None, "teacher_layer": None}


def test_objective_validates(data):
    with pytest.raises(ValueError, match="unknown explanation method"):
        ExplanationDistillation(method="lrp")
    with pytest.raises(ValueError, match="lam"):
        ExplanationDistillation(lam=-0.5)
    student = get_model("resnet8_w8", 12)
    batch = Batch(x=data.float_images(torch.arange(4)), y=data.labels[:4], index=torch.arange(4),
                  extras={"teacher_logits": torch.randn(4, 12)})
    with pytest.raises(ValueError, match="teacher_maps"):
        ExplanationDistillation(lam=1.0)(student, None, batch)
    with pytest.raises(ValueError, match="needs a teacher"):
        ExplanationDistillation(lam=1.0)(student, None, Batch(batch.x, batch.y, batch.index))
    loss, _ = ExplanationDistillation(lam=0.0)(student, None, batch)  # λ = 0: KD from stored logits
    assert torch.isfinite(loss)


@pytest.mark.parametrize("method,teacher_arch,student_arch", [
    ("gradcam", "resnet8", "resnet8_w8"),
    ("bcos", "bcos_resnet8_w8", "bcos_resnet8_w8"),
    ("input_x_gradient", "resnet8", "resnet8_w8"),
])
def test_fit_trains_with_e2kd(data, method, teacher_arch, student_arch):
    torch.manual_seed(0)
    teacher, student = get_model(teacher_arch, 12), get_model(student_arch, 12)
    before = [p.detach().clone() for p in student.parameters()]
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.01, optimizer="adam" if method == "bcos" else "sgd")
    history = fit(student, data, ExplanationDistillation(4.0, 0.9, 1.0, method), cfg, teacher=teacher,
                  device="cpu", progress=False)
    assert len(history) == 1 and torch.isfinite(torch.tensor(history[0]["loss"]))
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, student.parameters()))
    assert all(p.grad is None for p in teacher.parameters())  # the teacher is never trained


def test_e2kd_pulls_the_students_explanation_towards_the_teachers(data):
    """A few steps with a large λ raise the teacher-student explanation similarity."""
    torch.manual_seed(0)
    teacher, student = get_model("resnet8", 12).eval(), get_model("resnet8_w8", 12)
    x = data.float_images()
    objective = ExplanationDistillation(4.0, 1.0, lam=10.0, method="gradcam")
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    batch = Batch(x=x, y=data.labels, index=torch.arange(len(x)))
    t_logits, t_maps = objective.teacher_outputs(teacher, batch)

    def similarity():
        student.eval()
        _, s_maps = explanation_pass(student, x, t_logits.argmax(1), "gradcam", size=(32, 32))
        student.train()
        return 1 - explanation_loss(s_maps, t_maps).item()

    start = similarity()
    for _ in range(15):
        loss, _ = objective(student, teacher, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert similarity() > start + 0.05


# --- the experiment helpers of notebooks 05 and 06 (kdlab.experiments.e2kd) ----------------------------------

def test_fixed_steps_turn_into_epochs_and_kd_is_e2kd_without_lambda():
    from kdlab.experiments.e2kd import pair_recipes

    cfg = fixed_steps(train_config("adam", batch_size=64, lr=3e-3, warmup_epochs=5), 250, n_images=240)
    assert (cfg.epochs, cfg.batch_size, cfg.weight_decay, cfg.warmup_epochs) == (84, 64, 0.0, 5)  # 3 steps/epoch
    assert fixed_steps(cfg, 250, n_images=40).batch_size == 40  # never more than the data
    assert train_config().weight_decay == 5e-4
    students = pair_recipes(E2KD)
    assert students["kd"].objective().lam == 0.0 and students["e2kd"].objective().lam == E2KD.lam
    # KD is e²KD with λ = 0, through the same kind → objective mapping as every other student
    assert students["kd"].objective().config() == {**students["e2kd"].objective().config(), "lam": 0.0}
    with pytest.raises(ValueError, match="student kind"):
        pair_recipes(E2KD, kinds=("scratch",))
    with pytest.raises(ValueError, match="kind e2kd"):
        pair_recipes(Recipe("student", "kd"))


def test_shortcut_data_flips_the_backgrounds():
    """Design v2 (the course teacher's): class c's designated scenes are c and c + 12."""
    from kdlab.scale.realdata import shortcut_data
    from kdlab.synthetic import CONCEPT_NUMBER_V2, CONCEPTS_V2, SCENES_V2, designated_scenes

    d = shortcut_data("synthetic", correlation=1.0, n_student=60, n_test=40)
    assert d["teacher_train"] is None and len(d["student_train"]) == 60 and len(d["test_ood"]) == 40
    assert d["student_train"].concepts == [name for name, _ in CONCEPTS_V2]

    def designated(data):
        numbers = [{CONCEPT_NUMBER_V2[SCENES_V2[s]] for s in designated_scenes(int(c), "v2")}
                   for c in data.labels]
        scenes = data.image_labels["scene"].tolist()
        return sum(scene in wanted for scene, wanted in zip(scenes, numbers)) / len(scenes)

    assert designated(d["student_train"]) == 1.0 and designated(d["test_in"]) == 1.0
    assert designated(d["test_ood"]) == 0.0
    shown = {SCENES_V2[s] for s in designated_scenes(0, "v2")}
    assert shown == {SCENES_V2[0], SCENES_V2[12]}  # two scenes per class, one class per scene


def test_train_pair_and_report(tmp_path, monkeypatch, data):
    import kdlab.experiments.frozen
    import kdlab.train
    from kdlab.experiments import e2kd

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(kdlab.experiments.frozen, "CACHE_DIR", tmp_path)
    torch.manual_seed(0)
    teacher = get_model("resnet8", 12).eval()
    students = e2kd.train_pair(data, teacher, E2KD, [0, 1], name="t", device="cpu", **HOW)
    assert list(students) == [("kd", 0), ("e2kd", 0), ("kd", 1), ("e2kd", 1)]
    assert students["kd", 0].key != students["e2kd", 0].key != students["e2kd", 1].key
    assert students["kd", 0].path.name.startswith("t-gradcam-kd-n64-seed0-")
    test = load_dataset("synthetic", "test", n=24, seed=3)
    view = e2kd.teacher_view(teacher, test)
    row = e2kd.report(students["e2kd", 0].model, test, view)
    assert set(row) == {"accuracy", "agreement", "similarity", "epg", "all_zero_maps", "iou"}
    assert isinstance(row["all_zero_maps"], int) and 0 <= row["all_zero_maps"] <= len(test)
    assert e2kd.report(teacher, test, view)["agreement"] == 1.0
    # the stored teacher outputs are a step of their own, which says what it cost
    frozen = e2kd.freeze(teacher, data, E2KD, device="cpu")
    assert frozen.loaded and frozen.seconds > 0
    again = e2kd.train_pair(data, teacher, E2KD, [0], name="t", device="cpu", frozen=frozen, **HOW)
    assert again["kd", 0].loaded and again["e2kd", 0].key == students["e2kd", 0].key
    online = e2kd.train_pair(data, teacher, E2KD, [0], name="t", kinds=("e2kd",), device="cpu", frozen=False, **HOW)
    assert list(online) == [("e2kd", 0)] and online["e2kd", 0].key != students["e2kd", 0].key


def test_deprecated_names_still_work(tmp_path, monkeypatch, data):
    """Older copies of notebooks 05 and 06 call the e²KD helpers by their old names and shapes."""
    import kdlab.experiments.frozen
    import kdlab.explain
    import kdlab.train
    from kdlab.experiments import e2kd

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(kdlab.experiments.frozen, "CACHE_DIR", tmp_path)
    torch.manual_seed(0)
    teacher = get_model("resnet8", 12).eval()
    with pytest.warns(DeprecationWarning):
        old = e2kd.StudentRecipe(steps=2, batch_size=32, lr=0.05, lam=1.0)
    with pytest.warns(DeprecationWarning, match="train_pair"):
        students = e2kd.train_students(data, teacher, old, seed=0, name="t", device="cpu")
    assert list(students) == ["frozen_seconds", "kd", "e2kd"] and students["frozen_seconds"] > 0
    new = e2kd.train_pair(data, teacher, E2KD, [0], name="t", device="cpu", **HOW)
    assert [new[k, 0].key for k in e2kd.KINDS] == [students[k].key for k in e2kd.KINDS]  # the same models
    with pytest.warns(DeprecationWarning):
        again = e2kd.train_students(data, teacher, old, seed=0, name="t", device="cpu")
    assert again["frozen_seconds"] == 0.0 and again["kd"].loaded
    with pytest.warns(DeprecationWarning, match="synthetic_shortcut_data"):
        assert e2kd.shortcut_data is e2kd.synthetic_shortcut_data
    with pytest.warns(DeprecationWarning, match="kdlab.bcos"):
        assert kdlab.explain.is_bcos_model is bcos.is_bcos_model
    import importlib
    import sys

    sys.modules.pop("kdlab.experiments.bcos_models", None)
    with pytest.warns(DeprecationWarning, match="register_models"):
        module = importlib.import_module("kdlab.experiments.bcos_models")
    with pytest.warns(DeprecationWarning):
        assert module.BcosClassifier is bcos.BcosClassifier


def test_plateau_says_whether_a_student_still_learns():
    from kdlab.experiments.e2kd import plateau

    flat = plateau([{"train_acc": 0.9}] * 40)
    assert flat["final_train_acc"] == pytest.approx(0.9) and flat["late_gain"] == pytest.approx(0.0)
    rising = plateau([{"train_acc": i / 39} for i in range(40)])
    assert rising["final_train_acc"] == pytest.approx(37.5 / 39) and rising["late_gain"] > 0.2
    assert plateau([{"train_acc": 0.5}])["late_gain"] == 0.0  # one epoch: nothing to compare


def test_temperature_is_chosen_on_heldout_training_images(tmp_path, monkeypatch, data):
    from dataclasses import replace

    import kdlab.experiments.frozen
    import kdlab.train
    from kdlab.data import few_shot_indices
    from kdlab.experiments import e2kd

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(kdlab.experiments.frozen, "CACHE_DIR", tmp_path)
    shots = few_shot_indices(data.labels, 2, seed=1)
    held = e2kd.heldout_data(data, 2, seed=1, n=30)
    unused = [i for i in range(len(data)) if i not in set(shots.tolist())][:30]
    assert torch.equal(held.images, data.images[unused])  # never one of the shots
    torch.manual_seed(0)
    teacher = get_model("resnet8", 12).eval()
    chosen, rows = e2kd.choose_temperature(data, teacher, 2, 1, [1.0, 4.0], E2KD, n_heldout=30,
                                           name="t", device="cpu", **HOW)
    assert [r["temperature"] for r in rows] == [1.0, 4.0] and chosen in (1.0, 4.0)
    assert chosen == max(rows, key=lambda r: r["heldout_accuracy"])["temperature"]
    # the comparison's KD student with the chosen temperature is the one already trained
    again = e2kd.train_pair(e2kd.few_shot_data(data, 2, 1), teacher, replace(E2KD, temperature=chosen), [1], "t",
                            kinds=("kd",), device="cpu", **HOW)
    assert again["kd", 1].loaded


def test_verdict_and_ood_tables_decide_from_paired_seeds():
    import pandas as pd

    from kdlab.experiments import e2kd

    rows = pd.DataFrame([{"shots": shots, "seed": seed, "student": kind,
                          "accuracy": base + 0.01 * seed + (0.1 + 0.01 * (seed % 2) if kind == "e²KD" else 0.0)}
                         for shots, base in ((5, 0.3), (20, 0.6)) for seed in range(3)
                         for kind in ("KD", "e²KD")])
    claims = [("e²KD more accurate", "accuracy", "e²KD", "KD", "greater"),
              ("no such metric", "epg", "e²KD", "KD", "greater")]
    table = e2kd.verdict_table(rows, claims, by="shots")
    assert list(table.shots) == [5, 20] and set(table.verdict) == {"shown"}
    assert table["mean"].tolist() == pytest.approx([0.31 / 3, 0.31 / 3])  # paired differences 0.1, 0.11, 0.1
    assert e2kd.verdict_table(rows[rows.seed == 0], claims, by="shots").empty  # one seed: no interval

    results = pd.DataFrame(
        [{"model": "teacher", "test": test, "accuracy": 1.0}
         for test in ("in distribution", "flipped backgrounds")]
        + [{"model": model, "seed": seed, "test": test,
            "accuracy": acc + 0.01 * seed + (0.02 * (seed % 2) if (model, test) == ("e²KD", "flipped backgrounds") else 0)}
           for seed in range(3)
           for model, acc_in, acc_ood in (("KD", 0.95, 0.10), ("e²KD", 0.90, 0.40))
           for test, acc in (("in distribution", acc_in), ("flipped backgrounds", acc_ood))])
    row = e2kd.ood_table(results, "KD", ["e²KD"]).loc["e²KD"]
    assert row.seeds == 3 and row.ood_verdict == "shown" and row.drop_verdict == "shown"
    assert row.id_gap == pytest.approx(-0.05) and "-5.0 points" in row.id_note
    assert row.ood_gain == pytest.approx(0.92 / 3)


def test_fewshot_comparison_without_masks(tmp_path, monkeypatch, data):
    """Data without object masks (Fashion-MNIST in notebook 05), here 1-channel: the
    comparison, KD's temperature choice and the verdicts run; EPG and IoU are left out."""
    from dataclasses import replace

    import pandas as pd

    import kdlab.experiments.frozen
    import kdlab.train
    from kdlab.experiments import e2kd

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(kdlab.experiments.frozen, "CACHE_DIR", tmp_path)
    grey = replace(data, images=data.images[:, :1].contiguous(), masks=None)
    train, test = grey.subset(torch.arange(48)), grey.subset(torch.arange(48, 64))
    assert train.in_channels == 1 and e2kd.object_masks(test) is None
    torch.manual_seed(0)
    teacher = get_model("resnet8", train.num_classes, train.in_channels).eval()
    how = {"cfg": train_config(batch_size=16, lr=0.05), "steps": 2}
    chosen, _ = e2kd.choose_temperature(train, teacher, 1, 0, [1.0, 4.0], E2KD,
                                        n_heldout=8, name="t", device="cpu", **how)
    histories = {}
    rows = e2kd.fewshot_comparison(train, test, teacher, [1], [0, 1],
                                   replace(E2KD, temperature=chosen), name="t",
                                   device="cpu", progress=False, histories=histories, **how)
    results = pd.DataFrame(rows)
    assert len(results) == 4 and set(histories[1]) == {"KD", "e²KD"}
    assert {"accuracy", "agreement", "similarity", "final_train_acc"} <= set(results)
    assert not {"epg", "all_zero_maps", "iou"} & set(results)
    claims = [("more accurate", "accuracy", "e²KD", "KD", "greater"),
              ("keeps the localisation", "epg", "e²KD", "KD", "greater")]
    table = e2kd.verdict_table(results, claims, by="shots")
    assert list(table.claim) == ["more accurate"]   # the EPG claim is left out


def test_report_scores_vanished_maps_zero():
    from kdlab.experiments import e2kd

    test = load_dataset("synthetic", "test", n=24, seed=3)
    torch.manual_seed(0)
    model = get_model("resnet8_w8", 12).eval()
    with torch.no_grad():
        model.fc.weight.zero_()        # every logit's gradient vanishes: every GradCAM is all zero
    row = e2kd.report(model, test)
    assert (row["epg"], row["all_zero_maps"]) == (0.0, 24)   # counted as 0, not left out
    assert torch.isnan(torch.tensor(row["iou"]))             # the IoU is undefined for all of them


def test_pretrained_bcos_weights_offline_error(monkeypatch):
    import urllib.error

    from kdlab.bcos import bcos_imagenet_model

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="need internet once"):
        bcos_imagenet_model("bcos_resnet18", pretrained=True)
    with pytest.raises(ValueError, match="1000 classes"):
        bcos_imagenet_model("bcos_resnet18", num_classes=10, pretrained=True)
    small = bcos_imagenet_model("bcos_resnet18", num_classes=10)   # no download without weights
    assert small(torch.rand(1, 3, 64, 64)).shape == (1, 10)


# --- the guided teacher (kdlab.experiments.guidance), λ's choice and the claims' table ---------------

def test_energy_loss_is_one_minus_the_energy_pointing_game():
    from kdlab.experiments.guidance import energy_loss
    from kdlab.explain_metrics import energy_pointing_game

    g = torch.Generator().manual_seed(0)
    maps, masks = torch.randn(4, 1, 8, 8, generator=g), torch.rand(4, 32, 32, generator=g) > 0.6
    up = F.interpolate(maps, size=(32, 32), mode="bilinear", align_corners=False)
    expected = 1 - energy_pointing_game(up[:, 0], masks).mean()
    assert energy_loss(maps, masks).item() == pytest.approx(expected.item(), rel=1e-5)  # resized to the masks
    inside = masks[:, None].float() * 3.0
    assert energy_loss(inside, masks).item() == pytest.approx(0.0, abs=1e-6)   # all energy on the object
    assert energy_loss(torch.zeros(4, 1, 32, 32), masks).item() == pytest.approx(1.0)  # an empty map: worst


def test_guided_objective_and_teacher(tmp_path, monkeypatch, data):
    from dataclasses import replace

    import kdlab.train
    from kdlab.experiments import guidance
    from kdlab.train import load_or_train

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    extras = guidance.mask_extras(data)
    assert extras["object_mask"].shape == (len(data), 1, 32, 32)
    assert set(extras["object_mask"].unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    model = get_model("resnet8", 12)
    x, y = data.float_images(torch.arange(16)), data.labels[:16]
    batch = Batch(x, y, torch.arange(16), {"object_mask": extras["object_mask"][:16]})
    objective = guidance.GuidedCrossEntropy(mu=2.0)
    loss, logits = objective(model, None, batch)
    _, maps = explanation_pass(model, x, y, "gradcam", size=(32, 32))
    expected = F.cross_entropy(logits.detach(), y) + 2.0 * guidance.energy_loss(maps, batch.extras["object_mask"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.zero_grad()
    _, live = explanation_pass(model, x, y, "gradcam", create_graph=True, size=(32, 32))
    guidance.energy_loss(live, batch.extras["object_mask"]).backward()
    assert model.conv1.weight.grad.abs().sum() > 0   # the energy loss reaches the first layer
    assert objective.config()["mu"] == 2.0 and objective.config()["objective"] == "guided_cross_entropy"
    with pytest.raises(ValueError, match="object_mask"):
        objective(model, None, Batch(x, y, torch.arange(16)))
    with pytest.raises(ValueError, match="mu"):
        guidance.GuidedCrossEntropy(mu=-1.0)

    cfg = train_config(epochs=1, batch_size=32, lr=0.01)
    start = load_or_train("t-teacher", lambda: get_model("resnet8", 12), data, objective, cfg,
                          extras=extras, progress=False)
    before = [p.clone() for p in start.model.parameters()]
    start.model.to(memory_format=torch.channels_last)   # whatever format it was left in
    guided = guidance.guided_teacher(start, data, 1.0, cfg, device="cpu", progress=False)
    assert not guided.loaded and guided.path.name.startswith("teacher-guided-")
    assert all(torch.equal(a, b) for a, b in zip(before, start.model.parameters()))  # the start is untouched
    assert any(not torch.equal(a, b) for a, b in zip(before, guided.model.parameters()))
    again = guidance.guided_teacher(start, data, 1.0, cfg, device="cpu", progress=False)
    assert again.loaded and again.key == guided.key
    assert guidance.guided_teacher(start, data, 3.0, cfg, device="cpu", progress=False).key != guided.key
    with pytest.raises(ValueError, match="object masks"):
        guidance.mask_extras(replace(data, masks=None))


def test_lambda_is_chosen_like_the_temperature_and_online_students_join(tmp_path, monkeypatch, data):
    from dataclasses import replace

    import pandas as pd

    import kdlab.experiments.frozen
    import kdlab.train
    from kdlab.experiments import e2kd

    monkeypatch.setattr(kdlab.train, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(kdlab.experiments.frozen, "CACHE_DIR", tmp_path)
    torch.manual_seed(0)
    teacher = get_model("resnet8", 12).eval()
    chosen, rows = e2kd.choose_lambda(data, teacher, 2, 1, [1.0, 5.0], E2KD, n_heldout=30, name="t",
                                      device="cpu", **HOW)
    assert [r["lam"] for r in rows] == [1.0, 5.0] and chosen == max(rows, key=lambda r: r["heldout_accuracy"])["lam"]
    again = e2kd.train_pair(e2kd.few_shot_data(data, 2, 1), teacher, replace(E2KD, lam=chosen), [1], "t",
                            kinds=("e2kd",), device="cpu", **HOW)
    assert again["e2kd", 1].loaded   # the comparison's e²KD student is the one chosen

    train, test = data.subset(torch.arange(48)), load_dataset("synthetic", "test", n=16, seed=3)
    results = pd.DataFrame(e2kd.fewshot_comparison(train, test, teacher, [1], [0, 1], E2KD, name="t", device="cpu",
                                                   progress=False, online=True, **HOW))
    assert sorted(results.student.unique()) == sorted(["KD", "e²KD", "e²KD online"]) and len(results) == 6
    assert results.on_plateau.dtype == bool
    teacher_row = e2kd.report(teacher, test, e2kd.teacher_view(teacher, test))
    table = e2kd.per_seed_table(results, teacher_row)
    assert sorted(table.kind.unique()) == ["e2kd", "e2kd_online", "kd", "teacher"] and list(table.columns[:2]) == [
        "kind", "seed"]
    teachers = table[table.kind == "teacher"]
    assert sorted(teachers.seed) == [0, 1] and (teachers.agreement == 1.0).all() and (teachers.shots == 1).all()
