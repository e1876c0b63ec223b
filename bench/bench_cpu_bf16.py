"""Where a CPU training step's time goes, and what bf16 autocast would buy on a CPU.

    python bench/bench_cpu_bf16.py [--rounds 5] [--steps 30] [--kinds scratch,kd,teacher]

kdlab.train.fit uses bf16 autocast on CUDA only. Some CPUs (AVX512-BF16, AMX) run bf16
convolutions natively, so the question for a faster `make run` is how much bf16 would save on
the course's own models and batches. For a scratch student (resnet8_w8, batch 64), a KD student
(the same, with the resnet8 teacher in the loop) and the teacher (resnet8, batch 128), this
times training steps on the course's synthetic images in float32 and under bf16 autocast,
interleaved round by round on kdlab.runtime.device.CPU_TRAINING_THREADS threads with channels_last (as
fit does), and prints images/s and the ratio.

It also profiles one float32 epoch of the scratch student and prints each kind of operation's
share of the time: a speed-up that leaves every number as it is could only come from what is
neither a convolution nor a BatchNorm (their kernels' summation order decides the weights'
last bits, and with them every committed number).
"""

import argparse
import statistics
import time
from collections import defaultdict
from contextlib import nullcontext

import torch
from torch.profiler import ProfilerActivity, profile

from kdlab import recipes
from kdlab.data import DeviceLoader
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.runtime.device import CPU_TRAINING_THREADS
from kdlab.train import TrainConfig, make_optimizer

MODELS = {  # kind: (architecture, batch size, distils from the teacher)
    "scratch": ("resnet8_w8", 64, False),
    "kd": ("resnet8_w8", 64, True),
    "teacher": ("resnet8", 128, False),
}


def trainer(kind, data, teacher):
    """A function that trains `kind` for n steps (fp32 or bf16) and returns images/s."""
    arch, batch_size, distils = MODELS[kind]
    torch.manual_seed(0)
    model = get_model(arch, data.num_classes).to(memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, TrainConfig(lr=0.1))
    objective = Distillation(4.0, 0.5) if distils else CrossEntropy()
    loader = DeviceLoader(data, batch_size, train=True)

    def run(steps: int, bf16: bool) -> float:
        done, t0 = 0, time.perf_counter()
        while done < steps:
            for batch in loader:
                batch.x = batch.x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
                    loss, _ = objective(model, teacher if distils else None, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done += 1
                if done == steps:
                    break
        return steps * batch_size / (time.perf_counter() - t0)

    return run


def time_shares(run, data) -> dict[str, float]:
    """Share of one float32 epoch's self CPU time per kind of operation."""
    groups = {"convolution": ("convolution",), "batch norm": ("batch_norm",),
              "optimizer": ("Optimizer", "_foreach", "AccumulateGrad"),
              "augmentation and indexing": ("index", "reflection_pad", "flip", "where", "randint",
                                            "randperm", "cat", "div")}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(len(data) // 64, bf16=False)
    totals = defaultdict(float)
    for event in prof.key_averages():
        group = next((g for g, keys in groups.items() if any(k in event.key for k in keys)), "other")
        totals[group] += event.self_cpu_time_total
    whole = sum(totals.values())
    return {g: totals[g] / whole for g in [*groups, "other"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per round and precision")
    ap.add_argument("--kinds", default=",".join(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(CPU_TRAINING_THREADS)
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(f"{CPU_TRAINING_THREADS} threads; oneDNN bf16 supported by this CPU: {native}")
    train, _ = recipes.course_data("synthetic", 6000, 100)
    students = train.subset(torch.arange(2000))
    torch.manual_seed(0)
    teacher = get_model("resnet8", train.num_classes).to(memory_format=torch.channels_last).eval()

    print("\n| model | float32 images/s | bf16 autocast images/s | bf16 / float32 |\n|---|---|---|---|")
    for kind in args.kinds.split(","):
        run = trainer(kind, students if kind != "teacher" else train, teacher)
        for bf16 in (False, True):  # warm-up: oneDNN builds its kernels once per precision
            run(5, bf16=bf16)
        fp32, bf16 = [], []
        for _ in range(args.rounds):
            fp32.append(run(args.steps, bf16=False))
            bf16.append(run(args.steps, bf16=True))
        a, b = statistics.median(fp32), statistics.median(bf16)
        print(f"| {kind} | {a:.0f} | {b:.0f} | {b / a:.2f}x |", flush=True)

    shares = time_shares(trainer("scratch", students, teacher), students)
    print("\nOne float32 epoch of the scratch student, share of the time:")
    for group, share in shares.items():
        print(f"  {group:28s} {share:6.1%}")


if __name__ == "__main__":
    main()
