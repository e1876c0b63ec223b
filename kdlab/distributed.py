"""Several processes, one training run: PyTorch's DistributedDataParallel set up from torchrun.

Taught in the README's "Full runs at scale" section (no notebook trains on several devices;
notebook 01 teaches the `fit` that runs under it). `torchrun --nproc_per_node=N` starts N
copies of a program and gives each the environment variables RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; `init()` reads them and joins the process group: NCCL between
GPUs (one GPU per process, cuda:LOCAL_RANK), gloo between CPU processes. Started without
torchrun (WORLD_SIZE unset or 1) it does nothing, so the same program runs as one process.
`kdlab.train.fit` notices an initialised group and wraps the model in DDP itself.

`launch_local(fn, nprocs)` starts N gloo processes on this machine without torchrun
(the tests use it).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


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
        raise ValueError(f"environment variable {name}={value!r} is not an integer "
                         "(it is set by torchrun; unset it to run as a single process)") from None


def init(backend: str | None = None, device: str = "auto", timeout_s: float = 1800) -> DistInfo:
    """Join the process group described by torchrun's environment variables, if any.

    backend: None picks "nccl" when CUDA is available and the device is not the CPU, else "gloo".
    device: "auto" uses cuda:LOCAL_RANK when CUDA is available, else the CPU; "cpu" forces gloo.
    Single process (WORLD_SIZE unset or 1): returns DistInfo with world_size 1 and starts nothing.
    Calling it again in an initialised process returns the same description.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' but CUDA is not available on this machine")
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs "
                               "are visible: start at most one process per GPU")
        torch.cuda.set_device(local_rank)  # before init, so NCCL binds this process to its GPU
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size <= 1:
        return DistInfo(0, 1, 0, dev, None)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    backend = backend or ("nccl" if use_cuda else "gloo")
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: start the "
                           "program with `torchrun --nproc_per_node=N ...`, which sets them")
    dist.init_process_group(backend, rank=rank, world_size=world_size,
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


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for launch_local)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_worker(local_rank: int, fn, nprocs: int, port: int, threads: int, args: tuple):
    os.environ.update(RANK=str(local_rank), WORLD_SIZE=str(nprocs), LOCAL_RANK=str(local_rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)  # N processes share the cores instead of each taking all
    info = init(device="cpu")
    try:
        fn(info, *args)
    finally:
        cleanup()


def launch_local(fn, nprocs: int = 2, args: tuple = (), threads: int = 1) -> None:
    """Run `fn(info, *args)` in `nprocs` gloo processes on this machine (CPU), like torchrun.

    `fn` must be importable by name (a module-level function): the processes are spawned.
    An exception in any process is raised here, with that process's traceback.
    """
    import torch.multiprocessing as mp

    mp.spawn(_local_worker, args=(fn, nprocs, free_port(), threads, args), nprocs=nprocs, join=True)
