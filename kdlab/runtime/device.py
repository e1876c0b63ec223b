"""Where a model trains: the device, and how many CPU threads training uses.

Taught in notebook 01 (every notebook starts with `pick_device`).
"""

from __future__ import annotations

import os

import torch

def pick_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")



# Training on a CPU uses this many threads, whatever the machine offers (fewer only where fewer
# cores are usable). oneDNN and PyTorch split a convolution's and a BatchNorm's sums by thread, so
# the same training on 1, 2 or 8 threads ends with weights that differ in their last bits, and
# an unconverged detail (a unit's IoU near a threshold) can follow. A fixed count makes a model,
# and every number the notebooks show, the same on every machine of one processor family with
# one torch build (another processor may round differently: what must hold everywhere is the
# verdicts). Two: the course's 2-core laptop, and most of what these small ResNets gain from
# threads (on 2 cores a resnet8 teacher trains 1.9x faster than on one thread, a resnet8_w8
# student 1.3-1.5x; bench/bench_threads.py). kdlab.runtime.parallel uses further cores by
# training several models at once.
CPU_TRAINING_THREADS = 2


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def training_threads(device: torch.device) -> int | None:
    """Threads a training loop runs on (None: leave torch's setting): CPU_TRAINING_THREADS on a
    CPU, fewer only where fewer cores are usable."""
    return min(CPU_TRAINING_THREADS, usable_cores()) if device.type == "cpu" else None
