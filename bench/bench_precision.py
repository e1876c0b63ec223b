"""Training throughput in eager float32 against bf16 + channels_last + torch.compile, side by side.

Objectives: scratch (cross-entropy), KD with the teacher run online, KD with stored teacher
logits, e²KD (GradCAM) online and with frozen explanations (kdlab.experiments.frozen). Modes: "eager"
(float32, no channels_last, no torch.compile) against "fast" (bf16 autocast + channels_last
+ torch.compile; fit uses bf16 and channels_last only on CUDA, so on a CPU "fast" means
compile alone) and, with --modes eager,bf16,fast, "bf16" (the same without compile). Every configuration trains a fresh student with the same seed on the same
random 32×32 data; the first epoch (compilation, cuDNN autotuning) is not timed.

Prints images/s and the ratios the issue sets targets for: KD step time ≤ 1.15 × scratch,
fast ≥ 2 × eager. Timings on a shared machine vary from run to run: only ratios measured
in the same run count. See bench/README.md for the commands and recorded figures.

    python bench/bench_precision.py                        # CPU defaults, a few minutes on 2 cores
    python bench/bench_precision.py --device cuda --teacher resnet32x4 --student resnet8x4 \\
        --images 25600 --batch-size 256 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from kdlab.data import ImageSet
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.train import TrainConfig, fit, pick_device

OBJECTIVES = ("scratch", "kd", "kd_stored", "e2kd", "e2kd_frozen")
MODES = ("eager", "bf16", "fast")  # fast = bf16 + channels_last + compile; bf16 = the same without compile


def random_data(n: int, size: int, classes: int) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    return ImageSet(images=torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
                    labels=torch.randint(classes, (n,), generator=g), classes=[str(c) for c in range(classes)],
                    name="bench")


def objective_and_extras(name: str, teacher, data: ImageSet, device):
    """(objective, extras) for one objective; extras hold stored teacher outputs."""
    if name == "scratch":
        return CrossEntropy(), None
    if name in ("kd", "kd_stored"):
        extras = None
        if name == "kd_stored":
            from kdlab.metrics import predict

            extras = {"teacher_logits": predict(teacher, data)}
        return Distillation(4.0, 0.9), extras
    from kdlab.losses import ExplanationDistillation  # e²KD (issue 4)

    extras = None
    if name == "e2kd_frozen":
        from kdlab.experiments.frozen import compute_teacher_outputs

        extras = compute_teacher_outputs(teacher, data, "gradcam", device=device)
    return ExplanationDistillation(4.0, 0.9, lam=1.0, method="gradcam"), extras


def measure(args, name: str, mode: str, data: ImageSet, teacher, device) -> float:
    """Images per second of the epochs after the first (median)."""
    objective, extras = objective_and_extras(name, teacher, data, device)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.05, seed=0,
                      bf16=mode != "eager", channels_last=mode != "eager", compile=mode == "fast")
    torch.manual_seed(0)
    student = get_model(args.student, data.num_classes)
    history = fit(student, data, objective, cfg, teacher=teacher if name in ("kd", "e2kd") else None,
                  device=device, extras=extras, progress=False, desc=f"{name}/{mode}")
    return statistics.median(h["images_per_s"] for h in history[1:])


def measure_dissect(args, mode: str, device) -> float:
    """Images/s of kdlab.dissect.dissect of the teacher's last stage on the synthetic concept data.

    "fast" = bf16 autocast + channels_last, on CUDA only (no torch.compile: dissection reads the
    layer through a forward hook, which a compiled module does not run).
    """
    from contextlib import nullcontext

    from kdlab.datasets import load_dataset
    from kdlab.dissect import dissect

    data = load_dataset("synthetic", "test", n=args.dissect_images, size=args.size)
    torch.manual_seed(0)
    model = get_model(args.teacher, data.num_classes).to(device)
    layer = "layer4" if hasattr(model, "layer4") else "layer3"
    fast = mode != "eager" and device.type == "cuda"
    if fast:
        model.to(memory_format=torch.channels_last)
    rates = []
    for _ in range(2):  # the first run warms up
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16) if fast else nullcontext():
            dissect(model, layer, data, device=device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(data) / (time.perf_counter() - t0))
    return rates[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--teacher", default="resnet8")
    parser.add_argument("--student", default="resnet8_w8")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2, help="at least 2; the first is not timed")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat the whole sweep, interleaved, and report medians")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--modes", default="eager,fast", help=f"from {MODES}")
    parser.add_argument("--dissect-images", type=int, default=500,
                        help="synthetic images for the dissection throughput (0: skip it)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up)")
    objectives = args.objectives.split(",")
    modes = args.modes.split(",")
    for o in objectives:
        if o not in OBJECTIVES:
            parser.error(f"unknown objective {o!r}; choose from {OBJECTIVES}")
    for m in modes:
        if m not in MODES:
            parser.error(f"unknown mode {m!r}; choose from {MODES}")
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; teacher {args.teacher} -> student {args.student}; "
          f"{args.images} images {args.size}x{args.size}, batch {args.batch_size}, {args.epochs} epochs")
    data = random_data(args.images, args.size, args.classes)
    torch.manual_seed(1)
    teacher = get_model(args.teacher, args.classes).to(device).eval()
    samples: dict[tuple[str, str], list] = {(o, m): [] for o in objectives for m in modes}
    for r in range(args.rounds):  # interleaved rounds: machine noise hits every configuration alike
        for o in objectives:
            for m in modes:
                if samples[(o, m)] and isinstance(samples[(o, m)][0], str):
                    continue  # failed in an earlier round
                t0 = time.perf_counter()
                try:
                    samples[(o, m)].append(measure(args, o, m, data, teacher, device))
                    text = f"{samples[(o, m)][-1]:9.0f} images/s"
                except Exception as err:  # record it and go on: one failure must not hide the rest
                    samples[(o, m)].append(f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
                    text = samples[(o, m)][-1]
                print(f"round {r + 1} {o:>12} {m:>6}: {text}  ({time.perf_counter() - t0:.0f} s incl. warm-up)",
                      flush=True)
    results: dict[str, dict[str, float | str]] = {o: {} for o in objectives}
    for (o, m), values in samples.items():
        results[o][m] = values[0] if isinstance(values[0], str) else statistics.median(values)
    print(f"\nmedian images/s over {args.rounds} rounds:")
    for o in objectives:
        print(f"{o:>12}: " + "   ".join(f"{m} {v:.0f}" if isinstance(v, float) else f"{m} {v}"
                                      for m, v in results[o].items()))

    if args.dissect_images:
        results["dissect"] = {}
        for m in modes:
            if m != "eager" and device.type != "cuda":
                results["dissect"][m] = "n/a: bf16 and channels_last are used on CUDA only"
                continue
            try:
                results["dissect"][m] = measure_dissect(args, m, device)
                text = f"{results['dissect'][m]:9.0f} images/s"
            except Exception as err:
                results["dissect"][m] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
                text = results["dissect"][m]
            print(f"{'dissect':>12} {m:>6}: {text}", flush=True)
        objectives = objectives + ["dissect"]

    def ratio(a, b):
        return a / b if isinstance(a, float) and isinstance(b, float) else None

    print("\nratios (step time of the first over the second; > 1 means slower):")
    checks = []
    for m in modes:
        for o in objectives:
            if o not in ("scratch", "dissect") and "scratch" in results:
                r = ratio(results["scratch"][m], results[o][m])
                target = " (target <= 1.15)" if o in ("kd", "kd_stored") else ""
                print(f"  {m:>6}: {o} / scratch = {r:.2f}{target}" if r else f"  {m:>6}: {o}: n/a")
                if r and o in ("kd", "kd_stored"):
                    checks.append((f"{m} {o}/scratch <= 1.15", r <= 1.15))
    for m in modes:
        if m == "eager" or "eager" not in modes:
            continue
        print(f"speed-up of {m} over eager (images/s ratio):")
        for o in objectives:
            r = ratio(results[o][m], results[o]["eager"])
            print(f"  {o:>12}: {r:.2f}x (target >= 2)" if r else f"  {o:>12}: n/a")
            if r and m == "fast":
                checks.append((f"{o} fast/eager >= 2", r >= 2))
    print("targets: " + "; ".join(f"{c}: {'met' if ok else 'NOT met'}" for c, ok in checks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "args": vars(args),
                       "images_per_s": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
