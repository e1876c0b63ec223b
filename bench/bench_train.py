"""Training throughput of scratch, label-smoothing and KD students, measured side by side.

    python bench/bench_train.py [--device auto] [--arch resnet8_w8] [--teacher resnet8] [--rounds 3]

Prints images/s for each objective and KD's cost as a ratio to scratch (target <= 1.15x).
KD runs a teacher forward pass per batch; "KD, stored logits" reuses teacher logits computed
once per image (no teacher pass in the loop). Rounds are interleaved (A B C D A B C D ...) and
the median per objective is reported, so machine noise hits every objective alike.
"""

import argparse
import statistics
import time

import torch

from kdlab.datasets import load_dataset
from kdlab.losses import CrossEntropy, Distillation
from kdlab.metrics import predict
from kdlab.models import get_model
from kdlab.train import TrainConfig, fit, pick_device


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="resnet8_w8", help="student architecture")
    ap.add_argument("--teacher", default=None, help="teacher architecture (default: the student's)")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    device = pick_device(args.device)
    data = load_dataset("synthetic", "train", n=args.images)
    torch.manual_seed(0)
    teacher = get_model(args.teacher or args.arch, data.num_classes).to(device).eval()
    stored = {"teacher_logits": predict(teacher, data)}
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, compile=args.compile)
    runs = {
        "scratch": (CrossEntropy(), None, None),
        "label smoothing": (CrossEntropy(0.1), None, None),
        "KD (teacher in the loop)": (Distillation(4.0, 0.9), teacher, None),
        "KD (stored teacher logits)": (Distillation(4.0, 0.9), None, stored),
    }
    rates = {name: [] for name in runs}
    for r in range(args.rounds + 1):          # round 0 warms up caches and allocators
        for name, (objective, t, extras) in runs.items():
            torch.manual_seed(0)
            model = get_model(args.arch, data.num_classes)
            t0 = time.perf_counter()
            fit(model, data, objective, cfg, teacher=t, extras=extras, device=device, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r > 0:
                rates[name].append(len(data) // args.batch_size * args.batch_size / (time.perf_counter() - t0))
    base = statistics.median(rates["scratch"])
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"student {args.arch}, teacher {args.teacher or args.arch}, {args.images} images, "
          f"batch {args.batch_size}, median of {args.rounds} interleaved rounds")
    print(f"{'objective':30s} {'images/s':>10s} {'cost vs scratch':>16s}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:30s} {median:10.0f} {base / median:15.2f}x")
    print("target: KD <= 1.15x scratch")


if __name__ == "__main__":
    main()
