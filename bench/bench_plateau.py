"""Time to plateau of a default student: the course's old recipe against its new one.

    python bench/bench_plateau.py [--old-budgets 6,12,24] [--new-budgets 20,40,60]
                                  [--kinds scratch,kd,ls] [--teacher-epochs 15]

Convergence is what the course's comparisons need, and training speed is what pays for it on
a laptop. A recipe is the students' training images, batch size, KD weight α and memory
format:

    old  the notebooks' recipe until November 2026: 4,000 images, batch 128, α = 0.9,
         contiguous tensors
    new  the current notebook 02 recipe: 2,000 images, batch 64, α = 0.5 (Han et al.),
         channels_last (about 1.4x faster for these small ResNets on a CPU)

For each recipe and kind of student, one student is trained for each epoch budget (a full
cosine schedule per budget: accuracy midway through a longer schedule would understate it)
and its test accuracy measured. A recipe's plateau is its best accuracy over the budgets; the
recipes run interleaved (old, new, old, new ...) so machine noise hits both. Both are timed to
the same target, one point below the better plateau, so a recipe that is fast only because it
settles lower does not win; the ratio old / new is the figure to quote. Both distil from the
same teacher (resnet8, trained once here on 6,000 images of design v2).
"""

import argparse
import time

import torch

from kdlab import metrics
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset
from kdlab.train import TrainConfig, fit, pick_device

RECIPES = {
    "old": {"images": 4000, "batch_size": 128, "alpha": 0.9, "channels_last": False},
    "new": {"images": 2000, "batch_size": 64, "alpha": 0.5, "channels_last": True},
}


def objective(kind, recipe):
    return {"scratch": CrossEntropy(), "ls": CrossEntropy(0.1),
            "kd": Distillation(4.0, recipe["alpha"])}[kind]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--test-images", type=int, default=2000)
    ap.add_argument("--old-budgets", default="6,12,24", help="epoch budgets of the old recipe")
    ap.add_argument("--new-budgets", default="20,40,60", help="epoch budgets of the new recipe")
    ap.add_argument("--kinds", default="scratch,kd")
    ap.add_argument("--teacher-epochs", type=int, default=15)
    args = ap.parse_args()
    device = pick_device(args.device)
    budgets = {"old": [int(b) for b in args.old_budgets.split(",")],
               "new": [int(b) for b in args.new_budgets.split(",")]}
    kinds = args.kinds.split(",")

    train = make_concept_dataset(n=6000, seed=0, design="v2")
    test = make_concept_dataset(n=args.test_images, seed=1, design="v2")
    torch.manual_seed(0)
    teacher = get_model("resnet8", train.num_classes)
    fit(teacher, train, CrossEntropy(), TrainConfig(epochs=args.teacher_epochs, lr=0.1), device=device,
        progress=False)
    teacher_acc = metrics.evaluate(teacher, test)["accuracy"]
    print(f"teacher resnet8, {args.teacher_epochs} epochs: test accuracy {teacher_acc:.3f}", flush=True)

    rows = []
    for i in range(max(map(len, budgets.values()))):
        for kind in kinds:
            for name, recipe in RECIPES.items():
                if i >= len(budgets[name]):
                    continue
                epochs = budgets[name][i]
                cfg = TrainConfig(epochs=epochs, lr=0.1, batch_size=recipe["batch_size"],
                                  channels_last=recipe["channels_last"])
                students = train.subset(torch.arange(recipe["images"]))
                torch.manual_seed(0)
                model = get_model("resnet8_w8", train.num_classes)
                t0 = time.perf_counter()
                fit(model, students, objective(kind, recipe), cfg, teacher=teacher if kind == "kd" else None,
                    device=device, progress=False)
                seconds = time.perf_counter() - t0
                accuracy = metrics.evaluate(model, test)["accuracy"]
                rows.append({"recipe": name, "kind": kind, "epochs": epochs, "seconds": seconds,
                             "accuracy": accuracy})
                print(f"{name:4s} {kind:8s} {epochs:3d} epochs {seconds:7.1f} s  accuracy {accuracy:.3f}", flush=True)

    print(f"\nold = {RECIPES['old']}, new = {RECIPES['new']}")
    for kind in kinds:
        mine = {name: [r for r in rows if r["recipe"] == name and r["kind"] == kind] for name in RECIPES}
        best = {name: max(r["accuracy"] for r in runs) for name, runs in mine.items()}
        target = max(best.values()) - 0.01  # within one point of the better recipe's plateau
        reached = {}
        for name, runs in mine.items():
            hits = [r for r in runs if r["accuracy"] >= target]
            reached[name] = min(hits, key=lambda r: r["seconds"]) if hits else None
            when = (f"at {reached[name]['epochs']} epochs in {reached[name]['seconds']:.1f} s"
                    if hits else f"not within {budgets[name]} epochs")
            print(f"{kind:8s} {name}: plateau {best[name]:.3f}; reaches {target:.3f} {when}")
        if all(reached.values()):
            print(f"{kind:8s} time to plateau old / new: {reached['old']['seconds'] / reached['new']['seconds']:.2f}x")
        else:
            print(f"{kind:8s} time to plateau old / new: undefined ("
                  + ", ".join(n for n, r in reached.items() if r is None) + " never reached it)")


if __name__ == "__main__":
    main()
