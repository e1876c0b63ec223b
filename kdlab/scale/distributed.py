"""Several processes, one training run: PyTorch's DistributedDataParallel set up from torchrun.

Taught in the README's "Full runs at scale" section (no notebook trains on several devices;
notebook 01 teaches the `fit` that runs under it). `torchrun --nproc_per_node=N` starts N
copies of a program and gives each the environment variables RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; `init()` reads them and joins the process group: NCCL between
GPUs (one GPU per process, cuda:LOCAL_RANK), gloo between CPU processes. Started without
torchrun (WORLD_SIZE unset or 1) it does nothing, so the same program runs as one process.
`DDP()` is what `kdlab.train.fit(..., strategy=DDP())` does differently in each of the
processes (`strategy()` picks it when there are several): wrap the model in
DistributedDataParallel, train on this process's share of every global batch, sum the
history over the processes, write the checkpoint from rank 0 alone, and keep rank 0's
BatchNorm statistics at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..runtime.checkpoints import CheckpointError
from ..data import Batch, DeviceLoader, ImageSet
from ..train import OneProcess, TrainConfig


class SetupError(RuntimeError):
    """The environment does not describe a run that can start (stale or missing variables,
    processes that never arrived); the message says what to set or unset."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run: its rank, the number of processes, its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SetupError(f"environment variable {name}={value!r} is not an integer "
                         "(it is set by torchrun; unset it to run as a single process)") from None


def init(backend: str | None = None, device: str = "auto", timeout_s: float = 1800,
         rendezvous_s: float | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any.

    backend: None picks "nccl" when CUDA is available and the device is not the CPU, else "gloo".
    device: "auto" uses cuda:LOCAL_RANK when CUDA is available, else the CPU; "cpu" forces gloo.
    timeout_s: how long a collective operation may wait once the group is running.
    rendezvous_s: how long to wait for every process to arrive (default $KDLAB_RENDEZVOUS_TIMEOUT
        or 300 s); a process started alone with a stale WORLD_SIZE stops then with a message,
        instead of waiting out the 30-minute collective timeout.
    Single process (WORLD_SIZE unset or 1): returns DistInfo with world_size 1 and starts nothing.
    Calling it again in an initialised process returns the same description.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if world_size <= 1 and rank != 0:
        raise SetupError(f"RANK={rank} is set but WORLD_SIZE is {world_size}: a leftover of an "
                           "earlier torchrun? Unset RANK (and LOCAL_RANK) to run as one process, or "
                           "start the program with `torchrun --nproc_per_node=N ...`")
    local_rank = _env_int("LOCAL_RANK", rank)
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but CUDA is not available on this machine")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise SetupError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs "
                               "are visible: start at most one process per GPU")
        torch.cuda.set_device(local_rank)  # before init, so NCCL binds this process to its GPU
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, None)
    if not 0 <= rank < world_size:
        raise SetupError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    backend = backend or ("nccl" if use_cuda else "gloo")
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise SetupError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: start the "
                           "program with `torchrun --nproc_per_node=N ...`, which sets them")
    if rendezvous_s is None:
        rendezvous_s = float(os.environ.get("KDLAB_RENDEZVOUS_TIMEOUT", 300))
    try:  # meet the other processes within rendezvous_s, then run with the longer timeout_s
        store, rank, world_size = next(dist.rendezvous(
            "env://", rank=rank, world_size=world_size, timeout=timedelta(seconds=rendezvous_s)))
    except (RuntimeError, ValueError) as err:  # DistStoreError is a RuntimeError
        raise SetupError(
            f"process {rank} of WORLD_SIZE={world_size} waited {rendezvous_s:g} s at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} and not every process came "
            f"({str(err).splitlines()[0][:160]}). Start all of them with `torchrun "
            f"--nproc_per_node={world_size} ...`; if you meant one process, unset WORLD_SIZE and "
            "RANK (left over from an earlier run?). $KDLAB_RENDEZVOUS_TIMEOUT sets the wait.") from None
    store.set_timeout(timedelta(seconds=timeout_s))
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s),
                            device_id=dev if use_cuda else None)
    return DistInfo(rank, world_size, local_rank, dev, backend)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_rank0() -> bool:
    """Whether this process writes files, prints and shows progress (rank 0, or no group)."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t` over all processes (a copy; `t` itself is left unchanged)."""
    t = t.detach().clone()
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun program)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class RankShare:
    """This process's share of every global batch of a DeviceLoader: images rank, rank+N, ...

    Every process draws the same global batch with the same crops and flips and keeps its
    1/N, so N processes together see exactly the batches a single process would, and a run
    resumes identically with any number of processes.
    """

    def __init__(self, loader: DeviceLoader, rank: int, world_size: int):
        self.loader, self.rank, self.world_size = loader, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        share = slice(self.rank, None, self.world_size)
        for b in self.loader:
            yield Batch(x=b.x[share], y=b.y[share], index=b.index[share],
                        extras={k: v[share] for k, v in b.extras.items()})


class DDP(OneProcess):
    """`fit` in one of several processes (kdlab.train.OneProcess's hooks, for DDP).

    cfg.batch_size stays the *global* batch: each of the N processes trains on its 1/N of
    every batch, so N processes take the same steps as one process would (models with
    BatchNorm normalise over each process's share). The history is summed over processes;
    only rank 0 writes the checkpoint (and shows progress); every process resumes from it;
    on_epoch_end runs in every process.
    """

    def __init__(self):
        if not is_distributed():
            raise RuntimeError("DDP() needs an initialised process group of several processes: "
                               "call kdlab.scale.distributed.init() under torchrun")
        self.rank, self.world_size = rank(), world_size()

    def cpu_threads(self, device: torch.device) -> None:
        """torchrun's setting (OMP_NUM_THREADS, 1 per process by default): several processes
        on one machine's cores must not each take a fixed number of threads."""
        return None

    def loader(self, data, cfg: TrainConfig, device: torch.device, extras=None):
        if cfg.batch_size % self.world_size:
            raise ValueError(f"batch_size {cfg.batch_size} is the global batch; it must divide evenly "
                             f"among the {self.world_size} processes")
        if isinstance(data, ImageSet):
            return RankShare(super().loader(data, cfg, device, extras), self.rank, self.world_size)
        # streamed from disk: a DistributedSampler gives each process its share
        return data.loader(cfg.batch_size // self.world_size, device, train=True, augment=cfg.augment,
                           seed=cfg.seed, rank=self.rank, world_size=self.world_size, extras=extras)

    def prepare(self, model: nn.Module, device: torch.device, start_epoch: int, checkpoint) -> nn.Module:
        # every process must resume from the same epoch, or they would wait for each other forever
        t = torch.tensor([start_epoch, -start_epoch], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if t[0].item() != -t[1].item():
            raise CheckpointError(
                f"processes resume from different epochs ({-t[1].item()} to {t[0].item()}): the "
                f"checkpoint {checkpoint} must be on a file system that every process can read")
        from torch.nn.parallel import DistributedDataParallel

        if device.type != "cuda":
            return DistributedDataParallel(model)
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index])

    def total(self, t: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(t)

    def save(self, state: dict, path) -> None:
        if self.rank == 0:
            super().save(state, path)
        barrier()  # no process starts the next epoch before the checkpoint exists

    def finish(self, model: nn.Module) -> None:
        # BatchNorm statistics differ per process: keep rank 0's, the checkpointed ones
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def strategy() -> DDP | None:
    """DDP() inside a process group of several processes, else None (fit's one-process default)."""
    return DDP() if is_distributed() else None
