"""One training loop for every student: scratch, label smoothing, KD and e²KD.

Taught in notebook 01 (and reused by every later notebook).

`fit` trains a model on a device-resident dataset with any objective from kdlab.losses.
It picks the device (CUDA, MPS or CPU; kdlab.runtime.device), uses bf16 autocast on CUDA and
channels_last (on a CPU only during training), trains on a CPU with a fixed number of threads
(kdlab.runtime.device.CPU_TRAINING_THREADS) so that a model comes out the same on every
machine of one processor family, can torch.compile the model, shows a tqdm progress bar, keeps
the teacher in inference mode, writes an atomic checkpoint after every epoch and resumes from
it. `load_or_train` wraps it in a cache keyed by the complete configuration
(`cache_location`; the files themselves: kdlab.runtime.checkpoints): it reuses a checkpoint
trained with exactly this configuration, says which it did, and never hands back random
weights. What happens around the loop in one process (`OneProcess`: which batches, which module
steps, where the checkpoint goes) is a small object that kdlab.scale.distributed.DDP replaces
to run the same loop in several processes.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .runtime.checkpoints import (CheckpointError, architecture_signature, config_key, load_checkpoint,
                                  save_atomic, weights_key)
from .data import DeviceLoader, ImageSet
from .metrics import accuracy, predict
from .runtime.device import pick_device, training_threads
from .runtime.files import CACHE_DIR
from .runtime.progress import bar as progress_bar, report
from .teacher_table import logits_table

HELD_OUT_POINTS = 40  # fit's held-out evaluations per run at most (a few-shot run has 200 epochs)


@dataclass
class TrainConfig:
    """Optimisation settings; every field is part of the cache key. The comments are the
    command line's help (kdlab.scale.cli)."""

    epochs: int = 10                # training epochs
    batch_size: int = 128           # (global) batch size, split over processes under torchrun
    optimizer: str = "sgd"          # sgd (momentum, Nesterov) | adam (AdamW)
    lr: float = 0.05                # peak learning rate
    momentum: float = 0.9           # SGD momentum
    weight_decay: float = 5e-4      # weight decay
    schedule: str = "cosine"        # cosine | step (multiply by gamma at milestones)
    milestones: tuple[int, ...] = ()  # step schedule epochs, e.g. 150,180,210
    gamma: float = 0.1              # step schedule factor
    warmup_epochs: int = 0          # linear warm-up epochs
    augment: bool = True            # padded random crop + horizontal flip, on the device
    pad: int = 4                    # crop padding (device-resident data)
    seed: int = 0                   # initial weights and batch order
    bf16: bool = True               # autocast to bfloat16 (CUDA only)
    channels_last: bool = True      # channels_last memory format (CPU: even batches, inside fit)
    compile: bool = False           # torch.compile the student
    teacher_table: bool = False     # KD: the teacher's logits for every crop and flip, computed once

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise ValueError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for name in ("momentum", "weight_decay", "warmup_epochs", "pad"):  # torch fails later, naming none
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.gamma <= 0:
            raise ValueError(f"gamma must be positive, got {self.gamma}")
        self.milestones = tuple(self.milestones)

    def key_fields(self) -> dict:
        """The fields as the cache key sees them: teacher_table only when on (older keys stay valid)."""
        fields = asdict(self)
        if not self.teacher_table:
            del fields["teacher_table"]
        return fields


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at a step: linear warm-up, then cosine decay or steps."""
    epoch = step / steps_per_epoch
    if epoch < cfg.warmup_epochs:
        return (step + 1) / (cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)


class OneProcess:
    """What `fit` does around its loop when it runs in a single process (the default).

    kdlab.scale.distributed.DDP overrides these hooks to run the same loop in several
    processes under torchrun; the loop itself knows nothing about processes.
    """

    rank, world_size = 0, 1

    def cpu_threads(self, device: torch.device) -> int | None:
        """Threads the loop runs on (kdlab.runtime.device.training_threads)."""
        return training_threads(device)

    def loader(self, data, cfg: TrainConfig, device: torch.device, extras=None):
        """This epoch's training batches: shuffled always, cropped and flipped if cfg.augment.

        An ImageSet is batched on the device (kdlab.data.DeviceLoader); data streamed from disk
        brings its own loader (kdlab.scale.imagenet.ImageFolderData.loader).
        """
        if isinstance(data, ImageSet):
            return DeviceLoader(data, cfg.batch_size, device, train=True, seed=cfg.seed, extras=extras,
                                pad=cfg.pad if cfg.augment else 0, flip=cfg.augment, views=cfg.teacher_table)
        return data.loader(cfg.batch_size, device, train=True, augment=cfg.augment, seed=cfg.seed,
                           extras=extras)

    def prepare(self, model: nn.Module, device: torch.device, start_epoch: int, checkpoint) -> nn.Module:
        """The module the loop calls, once any checkpoint has been resumed."""
        return model

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """`t` summed over the processes."""
        return t

    def save(self, state: dict, path) -> None:
        save_atomic(state, path)

    def finish(self, model: nn.Module) -> None:
        """Called once after the last epoch."""


@dataclass
class TrainedModel:
    """What `load_or_train` returns: the model, its cache key and how it was obtained."""

    model: nn.Module
    key: str
    path: Path
    history: list[dict] = field(default_factory=list)
    loaded: bool = False


def fit(model: nn.Module, data: ImageSet, objective, cfg: TrainConfig, teacher: nn.Module | None = None,
        checkpoint: str | Path | None = None, key: str | None = None, device="auto",
        extras: dict[str, torch.Tensor] | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, dict], None] | None = None, desc: str = "train",
        strategy: OneProcess | None = None, held_out: ImageSet | None = None) -> list[dict]:
    """Train `model` on `data` by minimising `objective(student, teacher, batch)`.

    data: an ImageSet (batched on the device), or data streamed from disk that brings its own
        loader (kdlab.scale.imagenet.ImageFolderData).
    checkpoint: file written atomically after every epoch; if it already holds an unfinished run
        with the same key, training resumes from it (same batches, same result).
    key: identity of the run stored in the checkpoint (default: a hash of the configuration,
        objective, architecture and data); a checkpoint with another key is an error.
    extras: per-image tensors passed along with each batch (e.g. frozen teacher outputs).
    on_epoch_end(epoch, record): called after each epoch's checkpoint is written.
    strategy: around the loop (default OneProcess(); torchrun: kdlab.scale.distributed.DDP()).
    The teacher leaves as it came (training mode, requires_grad, memory format), except that it
    stays on `device`. cfg.teacher_table: KD reads its logits from kdlab.teacher_table's table
    (cached beside `checkpoint`) instead of running the teacher on every batch.
    held_out: images it never trains on; the records of HELD_OUT_POINTS evenly spaced epochs (the
        last included) add their accuracy (heldout_acc): a held-out learning curve.
    Returns the history: a record per epoch (loss, training accuracy, seconds, images per second).
    """
    run = strategy or OneProcess()
    held_out_every = math.ceil(cfg.epochs / HELD_OUT_POINTS)
    if cfg.teacher_table and (teacher is None or not isinstance(data, ImageSet)
                              or objective.config()["objective"] != "kd"):
        raise ValueError("teacher_table needs a teacher, an ImageSet and the KD objective (Distillation)")
    device = pick_device(device)
    on_cuda = device.type == "cuda"
    if key is None:
        key = config_key(cfg.key_fields(), objective.config(), architecture_signature(model),
                         data.fingerprint())
    # channels_last is faster on CUDA and about 1.4x for these small ResNets on a CPU. On a CPU,
    # torch 2.14's oneDNN kernels crash (a segfault) in the backward pass of 8-channel convolutions
    # on channels_last batches of odd size, so there it is used only for even per-process batches
    # (training batches all have that size) and only inside fit: the model leaves it contiguous.
    channels_last = cfg.channels_last and (on_cuda or (cfg.batch_size // run.world_size) % 2 == 0)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    loader = run.loader(data, cfg, device, extras)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(data)} images are fewer than one batch of {cfg.batch_size}")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, steps_per_epoch, cfg))

    history, start_epoch = [], 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, expected_key=key, require_complete=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
        if start_epoch and start_epoch < cfg.epochs and run.rank == 0:
            print(f"Resuming {desc} from {Path(checkpoint).name} after epoch {start_epoch}/{cfg.epochs}")
    train_model = run.prepare(model, device, start_epoch, checkpoint)
    step_model = torch.compile(train_model) if cfg.compile else train_model

    threads, ambient_threads = run.cpu_threads(device), torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    bar = table = None
    if teacher is not None:  # restored below: notebooks 05, 06 evaluate the teacher after its students
        teacher_was = ([m.training for m in teacher.modules()], [p.requires_grad for p in teacher.parameters()],
                       all(p.is_contiguous() for p in teacher.parameters()))
    try:
        if teacher is not None:
            teacher.to(device).eval()
            if channels_last:
                teacher.to(memory_format=torch.channels_last)
            for p in teacher.parameters():
                p.requires_grad_(False)
        if cfg.teacher_table:  # computed as the online teacher runs (format, bf16), on the training threads
            table = logits_table(teacher, data, cfg.pad if cfg.augment else 0, cfg.augment, device,
                                 channels_last, on_cuda and cfg.bf16, checkpoint and Path(checkpoint).parent,
                                 progress=progress and run.rank == 0)
        bar = progress_bar(cfg.epochs * steps_per_epoch, desc, enabled=progress and run.rank == 0,
                           initial=start_epoch * steps_per_epoch)
        for epoch in range(start_epoch, cfg.epochs):
            train_model.train()
            loader.set_epoch(epoch)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen, t0 = 0, time.perf_counter()
            for step, batch in enumerate(loader):
                if channels_last:
                    batch.x = batch.x.contiguous(memory_format=torch.channels_last)
                if table is not None:  # the logits of the views the loader drew; Distillation uses them
                    batch.extras["teacher_logits"] = table[batch.index, batch.extras.pop("view")]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda and cfg.bf16):
                    loss, logits = objective(step_model, teacher, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach()
                correct += (logits.detach().argmax(1) == batch.y).sum()
                seen += len(batch.y)
                bar.update(1)
                if step % 50 == 0 or step == steps_per_epoch - 1:
                    # the mean over all processes, so that all of them stop together on a NaN
                    mean_loss = run.total(loss_sum).item() / run.world_size / (step + 1)
                    if not math.isfinite(mean_loss):
                        raise FloatingPointError(
                            f"{desc}: the loss became {mean_loss} in epoch {epoch + 1}, step {step + 1}. "
                            "Nothing was saved from this epoch (the last checkpoint is intact); "
                            "try a lower learning rate or check the inputs.")
                    bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3f}", refresh=False)
            seconds = time.perf_counter() - t0
            # the history describes the whole (global) batch, not one process's share
            loss_sum, correct = run.total(loss_sum), run.total(correct)
            seen = int(run.total(torch.tensor(seen, device=device)).item())
            record = {"epoch": epoch + 1, "loss": loss_sum.item() / run.world_size / steps_per_epoch,
                      "train_acc": correct.item() / seen, "seconds": seconds,
                      "images_per_s": seen / seconds}
            if held_out is not None and (cfg.epochs - 1 - epoch) % held_out_every == 0:  # the last, and back
                record["heldout_acc"] = accuracy(predict(model, held_out), held_out.labels)  # eval, no grad
            history.append(record)
            if checkpoint is not None:
                run.save({"key": key, "epoch": epoch + 1, "complete": epoch + 1 == cfg.epochs,
                          "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "history": history,
                          "config": asdict(cfg), "objective": objective.config(),
                          "world_size": run.world_size, "cpu_threads": threads},
                         checkpoint)  # provenance, not part of the key
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(ambient_threads)  # the caller's own work keeps its setting
        if channels_last and not on_cuda:
            model.to(memory_format=torch.contiguous_format)
        if teacher is not None:
            modes, grads, contiguous = teacher_was
            for m, mode in zip(teacher.modules(), modes):
                m.training = mode
            for p, g in zip(teacher.parameters(), grads):
                p.requires_grad_(g)
            if contiguous:
                teacher.to(memory_format=torch.contiguous_format)
    run.finish(model)
    model.eval()
    return history


def cache_location(name: str, model: nn.Module, data, objective, cfg: TrainConfig,
                   teacher: TrainedModel | nn.Module | None = None, extras_key: str = "",
                   cache_dir: str | Path | None = None) -> tuple[str, Path]:
    """(key, file) of `name` trained with exactly this configuration.

    The key covers the architecture, every TrainConfig field, the objective's settings, the
    training data's fingerprint, the teacher's identity (its cache key, or a hash of its
    weights) and the stored teacher outputs (extras_key), so a change to any of them trains anew.
    """
    if isinstance(teacher, TrainedModel):
        teacher_id = teacher.key
    else:
        teacher_id = None if teacher is None else weights_key(teacher)
    key = config_key(architecture_signature(model), cfg.key_fields(), objective.config(),
                     data.fingerprint(), teacher_id, extras_key)
    return key, Path(cache_dir or CACHE_DIR) / f"{name}-{key}.pt"


def load_or_train(name: str, build_model: Callable[[], nn.Module], data: ImageSet, objective,
                  cfg: TrainConfig, teacher: TrainedModel | nn.Module | None = None,
                  cache_dir: str | Path | None = None, device="auto", progress: bool = True,
                  extras: dict[str, torch.Tensor] | None = None, extras_key: str = "",
                  strategy: OneProcess | None = None, held_out: ImageSet | None = None) -> TrainedModel:
    """Reuse the model trained with exactly this configuration (`cache_location`), or train
    and cache it. Prints which of the two happened. An interrupted training resumes.
    """
    torch.manual_seed(cfg.seed)  # the same initial weights for the same seed
    model = build_model()
    key, path = cache_location(name, model, data, objective, cfg, teacher, extras_key, cache_dir)
    if path.exists():
        try:
            state = load_checkpoint(path, model, expected_key=key, require_complete=False)
        except CheckpointError as err:  # never a dead end: keep the file for inspection, retrain
            stem, n = f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}", 1
            aside = path.with_name(stem)
            while aside.exists():  # one was moved aside this second already: never overwrite it
                n += 1
                aside = path.with_name(f"{stem}-{n}")
            path.rename(aside)
            print(f"The cached {path.name} could not be used ({err}). Moved it to {aside.name} "
                  "and training again.")
        else:
            if state.get("complete"):
                model.to(pick_device(device)).eval()
                report("loaded from the cache", f"Loaded {name} from the cache ({path.name}): trained "
                       "earlier with this exact configuration.")
                return TrainedModel(model, key, path, state["history"], loaded=True)
            # an unfinished run: fit below resumes it from the checkpoint
    t0 = time.perf_counter()
    teacher_model = teacher.model if isinstance(teacher, TrainedModel) else teacher
    history = fit(model, data, objective, cfg, teacher=teacher_model, checkpoint=path, key=key,
                  device=device, progress=progress, extras=extras, desc=name, strategy=strategy,
                  held_out=held_out)
    report("trained", f"Trained {name} in {time.perf_counter() - t0:.0f} s "
           f"({cfg.epochs} epochs, final training accuracy {history[-1]['train_acc']:.3f}); "
           f"saved to the cache as {path.name}.")
    return TrainedModel(model, key, path, history, loaded=False)
