"""Speed and peak memory of kdlab.dissect.dissect against the plain loop reference.

    .venv/bin/python bench/bench_dissect.py [--images 2000] [--arch resnet8] [--layer layer3]

Default data: notebook 03's defaults, the synthetic test set (2000 images of 32×32, masks
32×32) and the teacher architecture (resnet8, layer3 = 64 units of 8×8; seeded random
weights, since timing does not depend on training). Each implementation runs in its own
subprocess, one after the other, so that each peak resident memory (ru_maxrss, minus the
process's peak before the dissection starts) is its own. The reference is
tests/test_dissect.py::reference_dissect: all activations held, np.quantile per unit, loops
over images and units. Both include their passes through the network; the script also
prints the time of one plain forward pass over the data, so the share of the network in
each total is visible, and repeats the comparison with a one-layer probe network of the same
output shape, where the time is the dissection's own work. It checks that both give the
same thresholds and IoUs.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1000   # images per batch for both (notebooks 03/04 use 1000: small networks run much faster)


def rss_mib() -> float:
    """This process's resident memory now (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    """Samples the resident memory every millisecond in a thread: the peak during a block,
    minus the memory held when it started (ru_maxrss cannot be reset, and generating the
    data set already raised it above what the dissection needs)."""

    def __enter__(self):
        import threading

        self.start = self.peak = rss_mib()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_mib())
        self.extra = self.peak - self.start


def probe_network():
    """A one-layer network with resnet8's layer3 output shape (64 units of 8×8), so cheap that
    the timing is the dissection's own work and not the network's."""
    from torch import nn

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AvgPool2d(4)
            self.layer3 = nn.Sequential(nn.Conv2d(3, 64, 1), nn.ReLU())

        def forward(self, x):
            return self.layer3(self.pool(x))

    return Probe().eval()


def child(which: str, data_file: str, arch: str, layer: str, out: str, repeat: int) -> None:
    import importlib.util

    import numpy as np
    import torch

    from kdlab.dissect import dissect
    from kdlab.models import get_model

    data = torch.load(data_file, weights_only=False)  # made by the parent: no generation peak here
    torch.manual_seed(0)
    model = probe_network() if arch == "probe" else get_model(arch, data.num_classes).eval()
    spec = importlib.util.spec_from_file_location("ref", ROOT / "tests" / "test_dissect.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    def algorithm(d):
        if which == "fast":
            result = dissect(model, layer, d, batch_size=BATCH, progress=False)
            return result.thresholds.numpy(), result.iou.numpy()
        return ref.reference_dissect(model, layer, d, batch_size=BATCH)

    algorithm(data.subset(torch.arange(64)))      # warm-up: thread pools, allocator, lazy inits
    times, extra = [], 0.0
    for _ in range(repeat):                       # the fastest of `repeat` runs: less noise
        with PeakRSS() as memory:
            t0 = time.perf_counter()
            thresholds, iou = algorithm(data)
            times.append(time.perf_counter() - t0)
        extra = max(extra, memory.extra)
    seconds = min(times)
    forward = float("inf")
    with torch.inference_mode():                  # one plain forward pass, for scale
        for _ in range(repeat):
            t0 = time.perf_counter()
            for s in range(0, len(data), BATCH):
                model(data.images[s:s + BATCH].float().div_(255))
            forward = min(forward, time.perf_counter() - t0)
    np.savez(out, thresholds=thresholds, iou=iou)
    print(json.dumps({"seconds": seconds, "forward": forward, "peak_extra_mib": extra}))


def run(which, args, out):
    cmd = [sys.executable, __file__, "--child", which, "--data", args.data, "--repeat", str(args.repeat),
           "--arch", args.arch, "--layer", args.layer, "--out", out]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--arch", default="resnet8", help="a kdlab model, or 'probe' (see probe_network)")
    ap.add_argument("--only-arch", action="store_true", help="skip the second run with the probe network")
    ap.add_argument("--layer", default="layer3")
    ap.add_argument("--child", choices=["fast", "reference"])
    ap.add_argument("--repeat", type=int, default=2, help="runs per implementation; the fastest counts")
    ap.add_argument("--out")
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.data, args.arch, args.layer, args.out, args.repeat)

    import torch

    from kdlab.datasets import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        args.data = f"{tmp}/data.pt"
        torch.save(load_dataset("synthetic", "test", n=args.images, seed=0), args.data)
        run_all(args)


def run_all(args):

    compare(args)
    if args.arch != "probe" and not args.only_arch:
        args.arch = "probe"
        print()
        compare(args)


def compare(args):
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        fast = run("fast", args, f"{tmp}/fast.npz")
        ref = run("reference", args, f"{tmp}/ref.npz")
        a, b = np.load(f"{tmp}/fast.npz"), np.load(f"{tmp}/ref.npz")
        same = bool(np.array_equal(a["thresholds"], b["thresholds"]) and np.allclose(a["iou"], b["iou"], rtol=0, atol=1e-12))
    print(f"dissection of {args.arch}.{args.layer} on {args.images} synthetic images (CPU)")
    print(f"  one forward pass over the data: {fast['forward']:.2f} s (fast run), {ref['forward']:.2f} s (reference run)")
    print(f"  fast (kdlab.dissect):   {fast['seconds']:8.2f} s  peak memory +{fast['peak_extra_mib']:.0f} MiB")
    print(f"  reference (loops):      {ref['seconds']:8.2f} s  peak memory +{ref['peak_extra_mib']:.0f} MiB")
    print(f"  speed ratio reference / fast: {ref['seconds'] / fast['seconds']:.1f}x")
    print(f"  the network's share: one forward pass is {fast['forward'] / fast['seconds']:.0%} of the fast "
          f"run (which makes two) and {ref['forward'] / ref['seconds']:.0%} of the reference (one)")
    print(f"  same thresholds and IoUs: {same}")
    if not same:
        raise SystemExit("the fast dissection and the reference disagree")


if __name__ == "__main__":
    main()
