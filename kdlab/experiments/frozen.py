"""Frozen explanations: predict and explain once, augment many times (e²KD; notebook 05).

e²KD (Parchami-Araghi et al., ECCV 2024) trains the student with
L = L_KD + λ(1 − cos(E(T,x,ŷ_T), E(S,x,ŷ_T))), where E are the explanation maps of teacher T
and student S, both for the teacher's top-1 class ŷ_T. Running the teacher and explaining its
decision in every training step costs a teacher forward and backward pass per step. Because
the teacher is fixed, its logits and explanation maps for each (unaugmented) training image
can be computed once, stored on disk and reused by every student and every run. During
training the stored map must move with its image: kdlab.data.DeviceLoader stacks every
per-image tensor that has the image's height and width with the image's channels before the
random crop and flip, so image and map get the same transform. Maps are therefore stored at
the image's size (GradCAM maps are upsampled bilinearly, exactly as the online e²KD loss does
before comparing). `step_cost` times a frozen step against online ones.

    frozen = freeze_teacher(teacher, train, method="gradcam")
    student = load_or_train(..., objective=ExplanationDistillation(...),
                            extras=frozen.extras, extras_key=frozen.key)

The cost of freezing: one pass of the teacher over the data (with the backward pass that the
explanation needs), paid once. What is lost: the teacher sees the unaugmented image, so its
logits and map are those of the original image, shifted and flipped, rather than of the
augmented one (identical for flips of a flip-equivariant teacher, close for small shifts).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..data import Batch, ImageSet
from ..explain import METHODS, default_layer, explanation_pass
from ..inference import batches, evaluation
from ..runtime.checkpoints import CheckpointError, config_key, read_checkpoint, save_atomic, weights_key
from ..runtime.device import pick_device
from ..runtime.files import CACHE_DIR
from ..runtime.progress import bar as progress_bar, report
from ..train import TrainedModel

FORMAT = "frozen-explanations-v1"


@dataclass
class FrozenTeacher:
    """Stored teacher outputs for every image of a dataset, in the dataset's order."""

    extras: dict[str, torch.Tensor]   # "teacher_logits" (N, K), "teacher_maps" (N, C, H, W)
    key: str                          # identifies teacher, data, method and layer (cache keys)
    path: Path
    loaded: bool                      # True if reused from disk
    seconds: float                    # how long computing them took (when they were computed)


def frozen_key(teacher_id: str, data: ImageSet, method: str, layer: str | None, dtype) -> str:
    return config_key(FORMAT, teacher_id, data.fingerprint(), method, layer, str(dtype))


def compute_teacher_outputs(teacher: nn.Module, data: ImageSet, method: str = "gradcam",
                            layer: str | None = None, batch_size: int = 256, device="auto",
                            dtype=torch.float32, progress: bool = False) -> dict[str, torch.Tensor]:
    """Teacher logits and explanation maps (at the image's size) for every image, on the CPU."""
    device = pick_device(device)
    teacher.to(device)
    logits_out, maps_out = [], []
    with evaluation(teacher) as net:
        for x in progress_bar(-(-len(data) // batch_size), "freeze teacher", progress,
                               iterable=batches(net, data.images, batch_size)):
            logits, maps = explanation_pass(net, x, None, method, layer, size=x.shape[-2:])
            logits_out.append(logits.float().cpu())
            maps_out.append(maps.to(dtype).cpu())
    return {"teacher_logits": torch.cat(logits_out), "teacher_maps": torch.cat(maps_out)}


def freeze_teacher(teacher: TrainedModel | nn.Module, data: ImageSet, method: str = "gradcam",
                   layer: str | None = None, batch_size: int = 256, device="auto",
                   cache_dir: str | Path | None = None, dtype=torch.float32,
                   progress: bool = False) -> FrozenTeacher:
    """The teacher's logits and explanations for `data`, computed once and cached on disk.

    The file is keyed by the teacher (its load_or_train key, or a hash of its weights), the
    data's fingerprint, the method, the layer and the storage dtype, written atomically, and
    reused by every later call with the same inputs. dtype=torch.float16 halves the storage
    (maps are compared by cosine, so the rounding hardly matters); the default float32 makes
    frozen and online e²KD identical on unaugmented batches.
    """
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose one of {METHODS}")
    model = teacher.model if isinstance(teacher, TrainedModel) else teacher
    teacher_id = teacher.key if isinstance(teacher, TrainedModel) else weights_key(model)
    if method == "gradcam":
        layer = layer or default_layer(model)
    key = frozen_key(teacher_id, data, method, layer, dtype)
    path = Path(cache_dir or CACHE_DIR) / f"frozen-{method}-{key}.pt"
    if path.exists():
        try:
            state = read_checkpoint(path)
        except CheckpointError as err:
            print(f"Ignoring {path.name}: {err}")
            state = {}
        extras = state.get("extras", {}) if isinstance(state, dict) else {}
        if isinstance(state, dict) and state.get("key") == key \
                and len(extras.get("teacher_logits", ())) == len(data):
            report("teacher explanations loaded", f"Loaded frozen {method} explanations from the "
                   f"cache ({path.name}).")
            return FrozenTeacher(extras, key, path, loaded=True, seconds=state.get("seconds", 0.0))
        print(f"Ignoring {path.name}: it does not match this teacher and data; recomputing.")
    t0 = time.perf_counter()
    extras = compute_teacher_outputs(model, data, method, layer, batch_size, device, dtype, progress)
    seconds = time.perf_counter() - t0
    save_atomic({"key": key, "format": FORMAT, "method": method, "layer": layer, "teacher": teacher_id,
                 "data": data.fingerprint(), "seconds": seconds, "extras": extras}, path)
    report("teacher explanations computed", f"Computed frozen {method} explanations for "
           f"{len(data)} images in {seconds:.1f} s; saved to the cache as {path.name}.")
    return FrozenTeacher(extras, key, path, loaded=False, seconds=seconds)


def step_cost(recipe, data: ImageSet, teacher: nn.Module, steps: int = 3,
              rounds: int = 3, device="cpu", *, cfg) -> dict:
    """Seconds per training step of KD online, e²KD online and e²KD frozen, measured side by
    side (interleaved) on one batch of cfg's size, `steps` steps per round; only their
    ratios mean anything (notebook 05)."""
    students = {"kd": replace(recipe, lam=0.0), "e2kd": recipe}
    batch_size = min(cfg.batch_size, len(data))
    x = data.float_images(torch.arange(batch_size), device)
    y = data.labels[:batch_size].to(device)
    teacher = copy.deepcopy(teacher).to(device).eval()  # the caller's teacher stays as it is
    for p in teacher.parameters():
        p.requires_grad_(False)
    t_logits, t_maps = explanation_pass(teacher, x, None, recipe.explain_method, recipe.layer, size=x.shape[-2:])
    student = students["kd"].build(data).to(device)
    opt = torch.optim.SGD(student.parameters(), lr=1e-4)
    plain = Batch(x, y, torch.arange(batch_size))
    stored = Batch(x, y, torch.arange(batch_size), {"teacher_logits": t_logits, "teacher_maps": t_maps})
    cases = {"KD online": (students["kd"].objective(), teacher, plain),
             "e²KD online": (students["e2kd"].objective(), teacher, plain),
             "e²KD frozen": (students["e2kd"].objective(), None, stored)}
    times = {k: [] for k in cases}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for name, (objective, t, batch) in cases.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                loss, _ = objective(student, t, batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
            times[name].append((time.perf_counter() - t0) / steps)
    return {k: sorted(v[1:])[len(v[1:]) // 2] for k, v in times.items()}
