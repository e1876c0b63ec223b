"""A table of the teacher's logits for every training image in every crop and flip, shared by
all its students (KD, notebook 02; opt-in: TrainConfig(teacher_table=True)).

Training augments each image by a padded crop at offset (dy, dx) in 0..2·pad and a horizontal
flip (kdlab.data.random_crop_flip): (2·pad+1)²·2 = 162 views for pad 4. The teacher runs in
eval mode, so its logits for an (image, view) are the same for every student, seed and epoch:
computed once, a KD step looks them up instead of running the teacher. The table is N × views
× classes float32 (2,000 images, 12 classes: 16 MB), cached beside the models keyed by the
teacher's weights, the data, the views and how it was computed (device, memory format, bf16).
Its 162 passes per image cost about four 40-epoch students' teacher passes: it pays from about
five students of one teacher on (bench/bench_teacher_table.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageSet
from .runtime.checkpoints import architecture_signature, config_key, save_atomic, weights_key
from .runtime.files import CACHE_DIR
from .runtime.progress import bar, report

_last: dict = {}  # the last table used, so the students of one teacher read it from disk once


def view_count(pad: int, flip: bool) -> int:
    return (2 * pad + 1) ** 2 * (2 if flip else 1)


def logits_table(teacher: nn.Module, data: ImageSet, pad: int = 4, flip: bool = True, device="cpu",
                 channels_last: bool = False, bf16: bool = False, cache_dir: str | Path | None = None,
                 batch_size: int = 512, progress: bool = True) -> torch.Tensor:
    """The teacher's float32 logits (N, views, classes) for view v = dy·(2·pad+1) + dx +
    flipped·(2·pad+1)² of every image, on `device`: loaded from the cache or computed there.
    channels_last and bf16 (autocast, CUDA) as kdlab.train.fit's online teacher: the same rounding."""
    device = torch.device(device)
    key = config_key("teacher_table", weights_key(teacher), architecture_signature(teacher),
                     data.fingerprint(), pad, flip, device.type, channels_last, bf16)
    path = Path(cache_dir or CACHE_DIR) / f"teacher-table-{key}.pt"
    if key not in _last:
        _last.clear()
        if path.exists():
            _last[key] = torch.load(path, map_location="cpu")
            report("teacher table loaded", f"Loaded the teacher's logits table from the cache ({path.name}).")
        else:
            _last[key] = _compute(teacher, data, pad, flip, device, channels_last, bf16, batch_size, progress)
            save_atomic(_last[key], path)
            report("teacher table computed", f"Computed the teacher's logits for {len(data)} images × "
                   f"{view_count(pad, flip)} views; saved to the cache as {path.name}.")
    return _last[key].to(device)


def _compute(teacher, data, pad, flip, device, channels_last, bf16, batch_size, progress) -> torch.Tensor:
    n, (h, w), side = len(data), data.images.shape[-2:], 2 * pad + 1
    table = torch.empty(n, view_count(pad, flip), data.num_classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    starts = range(0, n, batch_size)
    with bar(len(starts) * table.shape[1], "teacher table", progress) as progress_bar, torch.inference_mode():
        for start in starts:
            x = data.float_images(torch.arange(start, min(start + batch_size, n)), device)
            padded = F.pad(x, (pad, pad, pad, pad), mode="reflect") if pad else x
            for v in range(table.shape[1]):  # the crop and flip of kdlab.data.random_crop_flip
                dy, dx = divmod(v % side ** 2, side)
                view = padded[..., dy:dy + h, dx:dx + w]
                view = (view.flip(-1) if v >= side ** 2 else view).contiguous(memory_format=fmt)
                with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                    table[start:start + len(x), v] = teacher(view).float().cpu()
                progress_bar.update(1)
    return table
