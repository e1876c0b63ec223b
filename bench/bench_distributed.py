"""One configuration trained with 1, 2, ... processes under torchrun, side by side.

Runs `torchrun --standalone --nproc_per_node=N -m kdlab.scale.cli train <args>` for each N, reads
each run's results file and checkpoint, and prints the training images/s (epochs after the
first), the speed-up over the first N, and how far each run's final weights are from the
first run's (the same global batches, so only BatchNorm's per-process statistics and
floating-point summation order separate them; see tests/test_distributed.py).

    python bench/bench_distributed.py                           # CPU: 1 process vs 2 gloo processes
    python bench/bench_distributed.py --nproc 1,2,4,8 -- --device cuda --dataset cifar100 \\
        --arch resnet8x4 --epochs 3 --batch-size 512 --no-evaluate   # a multi-GPU machine (NCCL)

Arguments after `--` go to kdlab.scale.cli (they replace the CPU defaults below).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CPU_DEFAULTS = ["--role", "teacher", "--arch", "resnet8_w8", "--n-train", "2048", "--n-test", "256",
                "--epochs", "3", "--batch-size", "128", "--device", "cpu", "--no-evaluate",
                "--no-progress"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cli_args = argv[argv.index("--") + 1:] if "--" in argv else CPU_DEFAULTS
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", default="1,2", help="comma-separated process counts")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per process (OMP_NUM_THREADS); default: cores // processes")
    args = ap.parse_args(own)
    counts = [int(n) for n in args.nproc.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            ckpt, results = Path(tmp) / f"n{n}.pt", Path(tmp) / f"n{n}.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                   "-m", "kdlab.scale.cli", "train", *cli_args, "--checkpoint", str(ckpt), "--results", str(results)]
            threads = args.threads or max(1, (os.cpu_count() or 1) // n)
            env = {**os.environ, "KDLAB_RUN_DIR": tmp, "OMP_NUM_THREADS": str(threads)}
            run = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{n} process(es) failed:\n{run.stderr[-3000:]}")
                return 1
            result = json.loads(results.read_text())
            rate = statistics.median(h["images_per_s"] for h in result["history"][1:] or result["history"])
            rows.append((n, rate, torch.load(ckpt, map_location="cpu", weights_only=False)["model"],
                         result["environment"], threads))
    base_n, base_rate, base_weights, environment, _ = rows[0]
    print(f"device {environment['device_name']} ({environment['device']}), torch {environment['torch']}; "
          f"kdlab.scale.cli {' '.join(cli_args)}")
    print(f"{'processes':>9} {'threads':>8} {'images/s':>10} {'speed-up':>9} {'max |w - w_' + str(base_n) + '|':>14}")
    for n, rate, weights, _, threads in rows:
        diff = max((weights[k].float() - base_weights[k].float()).abs().max().item()
                   for k in weights if weights[k].is_floating_point())
        print(f"{n:>9} {threads:>8} {rate:10.0f} {rate / base_rate:8.2f}x {diff:14.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
