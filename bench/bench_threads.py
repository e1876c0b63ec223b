"""Where a second core goes: one student on one or two threads, or two students at once.

    python bench/bench_threads.py [--epochs 8] [--kinds scratch,kd,teacher]

kdlab trains every model on a fixed two threads on a CPU (kdlab.runtime.device.CPU_TRAINING_THREADS), so
that results do not depend on the machine. This measures, for notebook 02's models (resnet8_w8
students on the first 2,000 images of design v2, batch 64, KD from an untrained resnet8 of the
same cost as the course teacher; the teacher itself on all 6,000 images, batch 128), the images
per second of

    one process on 2 threads (what the notebooks do now),
    one process on 1 thread,
    two processes on 1 thread each, running at the same time (both counted),

each as a ratio to the first, measured side by side in one run. A ratio above 1 for two
processes means training several students at once, one thread each, would use two cores better
than one student on two threads (bench/README.md says what that would take).
"""

import argparse
import json
import subprocess
import sys
import time

import torch

WORKER = "--worker"


def train_one(kind: str, threads: int, epochs: int) -> float:
    """Images per second of `epochs` epochs of one model on `threads` threads (first epoch dropped)."""
    from kdlab import recipes
    from kdlab.train import OneProcess, TrainConfig, fit

    class Fixed(OneProcess):
        def cpu_threads(self, device):
            return threads

    train, _ = recipes.course_data("synthetic", 6000, 100)
    if kind == "teacher":
        recipe, data, batch = recipes.Recipe("teacher", "scratch", "resnet8"), train, 128
    else:
        recipe, data, batch = recipes.Recipe("student", kind), train.subset(torch.arange(2000)), 64
    torch.manual_seed(0)
    model = recipe.build(data)
    teacher = recipes.Recipe("teacher", "scratch", "resnet8").build(data) if recipe.distils else None
    print("ready", flush=True)
    sys.stdin.readline()  # processes measured together start training together
    history = fit(model, data, recipe.objective(), TrainConfig(epochs=epochs, batch_size=batch, seed=0),
                  teacher=teacher, progress=False, strategy=Fixed())
    later = history[1:] or history
    return sum(h["images_per_s"] for h in later) / len(later)


def launch(kind: str, threads: int, epochs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, WORKER, kind, str(threads), str(epochs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def images_per_s(processes: list[subprocess.Popen]) -> float:
    """Summed images per second of processes that start training at the same moment (each
    waits, ready, for the word; an unsynchronised start would let one run alone for a while)."""
    for p in processes:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit("a worker failed before training")
    for p in processes:
        p.stdin.write("go\n")
        p.stdin.flush()
    total = 0.0
    for p in processes:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
        total += json.loads(out.strip().splitlines()[-1])["images_per_s"]
    return total


def main():
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        kind, threads, epochs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps({"images_per_s": train_one(kind, threads, epochs)}))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8, help="epochs per measurement (the first is dropped)")
    ap.add_argument("--kinds", default="scratch,kd,teacher")
    args = ap.parse_args()
    print("| model | 1 process × 2 threads | 1 × 1 | 2 processes × 1 thread (summed) |\n|---|---|---|---|")
    for kind in args.kinds.split(","):
        t0 = time.perf_counter()
        two = images_per_s([launch(kind, 2, args.epochs)])
        one = images_per_s([launch(kind, 1, args.epochs)])
        pair = images_per_s([launch(kind, 1, args.epochs) for _ in range(2)])
        print(f"| {kind} | {two:.0f} images/s (1.00x) | {one / two:.2f}x | {pair / two:.2f}x |"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
