"""KD from the teacher's logits table (kdlab.teacher_table) against KD with the teacher in the loop.

    python bench/bench_teacher_table.py [--epochs 3] [--rounds 3] [--device auto]

Notebook 02's students (resnet8_w8 on the first 2,000 images of the course data, batch 64, the
COURSE learning rate, T and alpha) distil from a resnet8 teacher (untrained: a pass costs the
same whatever its weights). Measured side by side in one run: seconds per student epoch for
scratch, KD with the teacher in the loop and KD with the table (TrainConfig(teacher_table=True)),
rounds interleaved (A B C A B C ...) and the median reported; and the table's one-off cost
(computing and saving it; loading it again, as a later process would). Prints KD's cost as
ratios to scratch and the break-even: the number of students of one teacher, trained for the
course's epochs, from which the table pays for itself.
"""

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import kdlab.teacher_table as tt
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.recipes import COURSE, course_data, first_images
from kdlab.runtime.device import pick_device, training_threads
from kdlab.train import TrainConfig, fit


def timed(device, work) -> float:
    t0 = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per measured student")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    device = pick_device(args.device)
    threads = training_threads(device)
    if threads:  # the table is computed on fit's training threads too
        torch.set_num_threads(threads)
    train, _ = course_data(n_test=100)
    data = first_images(train, COURSE.student_images)
    torch.manual_seed(0)
    teacher = get_model(COURSE.teacher_arch, data.num_classes).to(device).eval()
    cfg = TrainConfig(epochs=args.epochs, batch_size=COURSE.batch_size, lr=COURSE.lr)
    # the table fit would compute: the teacher as fit runs it (channels_last for even batches, bf16 on CUDA)
    channels_last = cfg.channels_last and (device.type == "cuda" or cfg.batch_size % 2 == 0)
    bf16 = device.type == "cuda" and cfg.bf16
    kd = Distillation(COURSE.temperature, COURSE.alpha)
    runs = {"scratch": (CrossEntropy(), None, cfg),
            "KD, teacher in the loop": (kd, teacher, cfg),
            "KD, teacher's table": (kd, teacher, replace(cfg, teacher_table=True))}
    with tempfile.TemporaryDirectory() as tmp:
        tt.CACHE_DIR = Path(tmp)  # fit's table goes here, never into the model cache

        def table():
            teacher.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            tt.logits_table(teacher, data, cfg.pad, True, device, channels_last, bf16, cache_dir=tmp)
        tt._last.clear()
        compute_s = timed(device, table)
        tt._last.clear()
        load_s = timed(device, table)  # a later process: from the disk
        per_epoch = {name: [] for name in runs}
        for r in range(args.rounds + 1):  # round 0 (one epoch each) warms up caches and allocators
            for name, (objective, t, c) in runs.items():
                torch.manual_seed(0)
                model = get_model(COURSE.student_arch, data.num_classes)
                c = c if r else replace(c, epochs=1)
                seconds = timed(device, lambda: fit(model, data, objective, c, teacher=t, device=device,
                                                    progress=False))
                if r:
                    per_epoch[name].append(seconds / c.epochs)
    views = tt.view_count(cfg.pad, True)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"device {device} ({where}), "
          f"students {COURSE.student_arch} on {len(data)} images, batch {cfg.batch_size}, teacher "
          f"{COURSE.teacher_arch}; {args.epochs} epochs per student, median of {args.rounds} interleaved rounds")
    med = {name: statistics.median(v) for name, v in per_epoch.items()}
    epochs = COURSE.student_epochs
    print(f"{'student':26s} {'s/epoch':>8s} {'vs scratch':>11s} {f's per {epochs}-epoch student':>24s}")
    for name, s in med.items():
        print(f"{name:26s} {s:8.3f} {s / med['scratch']:10.2f}x {s * epochs:24.1f}")
    print(f"table of {len(data)} images x {views} views x {data.num_classes} classes: computed and saved "
          f"in {compute_s:.1f} s, loaded in {load_s:.2f} s")
    saved = (med["KD, teacher in the loop"] - med["KD, teacher's table"]) * epochs
    if saved > 0:
        print(f"break-even: {compute_s / saved:.1f} students of one teacher ({compute_s:.1f} s of table "
              f"against {saved:.1f} s saved per {epochs}-epoch student)")
    else:
        print("break-even: never (a table student is not faster than an online one here)")


if __name__ == "__main__":
    main()
