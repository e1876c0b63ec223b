"""Time to plateau of a default student: the notebooks' training recipe against a candidate.

    python bench/bench_plateau.py [--data v1|v2] [--budgets 4,8,16] [--kinds scratch,kd]
                                  [--new "batch_size=256,lr=0.2"] [--new-stored-logits]

Convergence is what the course's comparisons need, and training speed is what pays for it on
a laptop. For each recipe and kind of student, one student is trained for each epoch budget
(a full cosine schedule per budget: accuracy midway through a longer schedule would understate
it) and its test accuracy measured. A recipe's plateau is the best accuracy over the budgets. The
recipes run interleaved (old, new, old, new ...) so machine noise hits both. Both recipes
are timed to the same target, one point below the better recipe's plateau, so a recipe that
is fast only because it settles lower does not win; the ratio old / new is the figure to quote.

--new takes TrainConfig fields (kdlab.train) to change; --new-stored-logits gives the KD
student the teacher's logits computed once per image instead of a teacher pass per batch
(exact only without augmentation, so it also turns augmentation off for that recipe).
"""

import argparse
import time

import torch

from kdlab import metrics
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset
from kdlab.train import TrainConfig, fit, pick_device


def parse_overrides(text: str) -> dict:
    fields = TrainConfig.__dataclass_fields__
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--new: {name!r} is not a TrainConfig field ({', '.join(fields)})")
        kind = type(fields[name].default)
        out[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", default="v1", choices=["v1", "v2"], help="synthetic dataset design")
    ap.add_argument("--images", type=int, default=4000, help="the students' training images")
    ap.add_argument("--test-images", type=int, default=2000)
    ap.add_argument("--budgets", default="4,8,16", help="epoch budgets, comma-separated")
    ap.add_argument("--kinds", default="scratch,kd")
    ap.add_argument("--teacher-epochs", type=int, default=8)
    ap.add_argument("--new", default="batch_size=256,lr=0.2", help="TrainConfig changes of the candidate")
    ap.add_argument("--new-stored-logits", action="store_true")
    args = ap.parse_args()
    device = pick_device(args.device)
    budgets = [int(b) for b in args.budgets.split(",")]
    kinds = args.kinds.split(",")

    def data(n, seed):
        return make_concept_dataset(n=n, seed=seed, design=args.data)

    train, test = data(6000, 0), data(args.test_images, 1)
    students = train.subset(torch.arange(args.images))
    torch.manual_seed(0)
    teacher = get_model("resnet8", train.num_classes)
    fit(teacher, train, CrossEntropy(), TrainConfig(epochs=args.teacher_epochs, lr=0.1), device=device,
        progress=False)
    teacher_acc = metrics.evaluate(teacher, test)["accuracy"]
    stored = {"teacher_logits": metrics.predict(teacher, students)}
    base = dict(lr=0.1, batch_size=128)
    recipes = {"old": (base, False), "new": ({**base, **parse_overrides(args.new)}, args.new_stored_logits)}

    rows = []
    for epochs in budgets:
        for kind in kinds:
            for name, (overrides, use_stored) in recipes.items():
                stored_here = use_stored and kind == "kd"
                cfg = TrainConfig(epochs=epochs, **{**overrides, **({"augment": False} if stored_here else {})})
                objective = CrossEntropy() if kind == "scratch" else Distillation(4.0, 0.9)
                torch.manual_seed(0)
                model = get_model("resnet8_w8", train.num_classes)
                t0 = time.perf_counter()
                fit(model, students, objective, cfg, teacher=None if stored_here or kind == "scratch" else teacher,
                    extras=stored if stored_here else None, device=device, progress=False)
                seconds = time.perf_counter() - t0
                rows.append({"recipe": name, "kind": kind, "epochs": epochs, "seconds": seconds,
                             "accuracy": metrics.evaluate(model, test)["accuracy"]})
                print(f"{name:4s} {kind:8s} {epochs:3d} epochs {seconds:7.1f} s  accuracy {rows[-1]['accuracy']:.3f}",
                      flush=True)

    print(f"\ndata {args.data}, {args.images} student images, teacher resnet8 at {teacher_acc:.3f}; "
          f"old = {base}, new = {recipes['new'][0]}{' + stored teacher logits' if args.new_stored_logits else ''}")
    for kind in kinds:
        mine = {name: [r for r in rows if r["recipe"] == name and r["kind"] == kind] for name in recipes}
        best = {name: max(r["accuracy"] for r in runs) for name, runs in mine.items()}
        target = max(best.values()) - 0.01  # within one point of the better recipe's plateau
        reached = {}
        for name, runs in mine.items():
            hits = [r for r in runs if r["accuracy"] >= target]
            reached[name] = min(hits, key=lambda r: r["seconds"]) if hits else None
            when = (f"at {reached[name]['epochs']} epochs in {reached[name]['seconds']:.1f} s"
                    if hits else f"not within {args.budgets} epochs")
            print(f"{kind:8s} {name}: plateau {best[name]:.3f}; reaches {target:.3f} {when}")
        if all(reached.values()):
            print(f"{kind:8s} time to plateau old / new: {reached['old']['seconds'] / reached['new']['seconds']:.2f}x")
        else:
            print(f"{kind:8s} time to plateau old / new: undefined ("
                  + ", ".join(n for n, r in reached.items() if r is None) + " never reached it)")

if __name__ == "__main__":
    main()
