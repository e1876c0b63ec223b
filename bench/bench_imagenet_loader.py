"""How fast kdlab.scale.imagenet feeds training: decoded, augmented images/s by worker count, side by side.

Writes ImageNet-like JPEGs (default 500×375, quality 90, ~100 KB like ILSVRC's) into a
temporary class-folder tree, then times one training epoch of `ImageFolderData.loader`
(random resized crop to 224, flip, uint8 → [0, 1] on the device) for each worker count,
after a warm-up epoch. The ratio to 0 workers shows what the worker processes buy; compare
the images/s with the training step's (bench/bench_precision.py, bench/README.md): the GPU
waits on the loader when the loader is the slower of the two.

    python bench/bench_imagenet_loader.py                          # CPU defaults
    python bench/bench_imagenet_loader.py --device cuda --workers 0,4,8,16 --images 4000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kdlab.scale.imagenet import ImageFolderData
from kdlab.train import pick_device


def write_tree(root: Path, images: int, classes: int, width: int, height: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(images):
        folder = root / f"n{i % classes:08d}"
        folder.mkdir(exist_ok=True)
        # smooth colour gradients plus noise: JPEG sizes close to real photographs'
        base = np.stack([(xx * rng.uniform(0.2, 0.6) + yy * rng.uniform(0.1, 0.5) + rng.uniform(0, 255)) % 256
                         for _ in range(3)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:06d}.JPEG", quality=90)


def epoch_rate(loader, epoch: int, device) -> float:
    loader.set_epoch(epoch)
    t0, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch.y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--classes", type=int, default=16)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    ap.add_argument("--rounds", type=int, default=2, help="timed epochs per worker count (median)")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_tree(Path(tmp), args.images, args.classes, args.width, args.height)
        size_kb = sum(p.stat().st_size for p in Path(tmp).rglob("*.JPEG")) / args.images / 1024
        data = ImageFolderData(tmp, size=args.size)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"device {name}; {args.images} JPEGs {args.width}x{args.height} (mean {size_kb:.0f} KB, "
              f"written in {time.perf_counter() - t0:.0f} s) -> {args.size}x{args.size}, batch "
              f"{args.batch_size}, pin_memory={device.type == 'cuda'}")
        rates = {w: [] for w in counts}
        loaders = {w: data.loader(args.batch_size, device, train=True, workers=w) for w in counts}
        for w in counts:  # warm-up: file cache, worker start, allocator
            epoch_rate(loaders[w], 0, device)
        for r in range(args.rounds):  # interleaved, so machine noise hits every count alike
            for w in counts:
                rates[w].append(epoch_rate(loaders[w], r + 1, device))
    base = statistics.median(rates[counts[0]])
    print(f"{'workers':>8} {'images/s':>10} {'vs ' + str(counts[0]) + ' workers':>14}")
    for w in counts:
        median = statistics.median(rates[w])
        print(f"{w:>8} {median:10.0f} {median / base:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
