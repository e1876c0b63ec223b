"""`fit` under DistributedDataParallel: two gloo processes on this CPU against one process.

Two processes (`launch_local` below sets up the environment torchrun would) train with
`fit(..., strategy=kdlab.scale.distributed.DDP())` a small model without BatchNorm with a
global batch of 32 (16 per process), are interrupted
after epoch 1 and resume from the checkpoint. They must end with bit-identical weights, and
those weights must match one process trained without interruption on the same global
batches within a float32 rounding tolerance.

Why a tolerance and not equality: with DDP each process averages the gradient over its 16
images and the two averages are averaged again, while one process averages over all 32 at
once. Both are the same mean, summed in a different order, so each step's gradient differs
by float32 rounding (about 1e-7 relative); over the 24 SGD steps here the largest weight
difference measured is about 1e-7, so we allow 1e-5 (atol) + 1e-4 (rtol). A real bug (a
wrong share of the batch, a gradient summed instead of averaged, a different augmentation,
a resume that skips a batch) moves the weights by 1e-3 or more.

BatchNorm: without SyncBatchNorm each process normalises over its own 16 images, which is
a different computation from one process normalising over 32; SyncBatchNorm needs CUDA
(PyTorch rejects CPU tensors), so the equivalence test uses a model without BatchNorm. A
BatchNorm model is still checked to end with identical weights *and* statistics on both ranks.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
from torch import nn

from kdlab.data import ImageSet
from kdlab.losses import CrossEntropy
from kdlab.models import get_model
from kdlab.scale import distributed
from kdlab.runtime.checkpoints import CheckpointError
from kdlab.train import TrainConfig, fit

pytestmark = pytest.mark.distributed

CFG = TrainConfig(epochs=3, batch_size=32, lr=0.1, seed=0, pad=2)
ATOL, RTOL = 1e-5, 1e-4


def tiny_data(n: int = 256) -> ImageSet:
    """Noise images whose class (0-3) brightens one channel (class 3: none), 12×12."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(4, (n,), generator=g)
    images = torch.randint(0, 128, (n, 3, 12, 12), generator=g)
    for c in range(3):
        images[labels == c, c] += 100
    return ImageSet(images=images.to(torch.uint8), labels=labels, classes=list("abcd"), name="tiny")


class TinyNet(nn.Module):
    """conv - relu - conv - relu - pool - linear: no BatchNorm, so DDP equals one process."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.body(x))


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet()


class Interrupted(Exception):
    pass


def _local_worker(local_rank: int, fn, nprocs: int, port: int, args: tuple):
    os.environ.update(RANK=str(local_rank), WORLD_SIZE=str(nprocs), LOCAL_RANK=str(local_rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # the processes share the cores instead of each taking all
    info = distributed.init(device="cpu")
    try:
        fn(info, *args)
    finally:
        distributed.cleanup()


def launch_local(fn, nprocs: int = 2, args: tuple = ()) -> None:
    """Run `fn(info, *args)` in `nprocs` gloo processes on this machine (CPU), like torchrun.

    `fn` must be a module-level function (the processes are spawned); an exception in any
    process is raised here, with that process's traceback.
    """
    import torch.multiprocessing as mp

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a port free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_local_worker, args=(fn, nprocs, port, args), nprocs=nprocs, join=True)


def _worker(info, folder):
    """Runs in each of the two processes."""
    import shutil

    import kdlab.train as train

    assert info.world_size == 2 and distributed.is_distributed()
    writes = []  # which epochs this process wrote a checkpoint for
    real_save = train.save_atomic

    def counting_save(obj, path):
        writes.append(obj["epoch"])
        real_save(obj, path)

    train.save_atomic = counting_save
    data, ckpt = tiny_data(), folder / "ddp.pt"

    def stop_after_first(epoch, record):
        if epoch == 0:
            raise Interrupted

    ddp = distributed.strategy()
    assert isinstance(ddp, distributed.DDP)
    try:
        fit(tiny_net(), data, CrossEntropy(), CFG, checkpoint=ckpt, device="cpu", progress=False,
            on_epoch_end=stop_after_first, strategy=ddp)
    except Interrupted:
        pass
    if info.rank == 0:
        shutil.copy(ckpt, folder / "after-epoch-1.pt")
    distributed.barrier()
    model = tiny_net()  # a fresh process would start from fresh weights too
    history = fit(model, data, CrossEntropy(), CFG, checkpoint=ckpt, device="cpu", progress=False,
                  strategy=ddp)

    # BatchNorm: ranks normalise over different images but must end identical (weights + stats)
    bn_model = get_model("resnet8_w8", 4)
    fit(bn_model, data, CrossEntropy(), TrainConfig(epochs=1, batch_size=32, seed=0),
        device="cpu", progress=False, strategy=ddp)

    # a global batch that does not split evenly, and ranks that would resume different epochs
    errors = {}
    try:
        fit(tiny_net(), data, CrossEntropy(), TrainConfig(epochs=1, batch_size=33), device="cpu",
            progress=False, strategy=ddp)
    except ValueError as err:
        errors["batch"] = str(err)
    mine = folder / ("after-epoch-1.pt" if info.rank == 0 else "missing.pt")
    try:
        fit(tiny_net(), data, CrossEntropy(), CFG, checkpoint=mine, device="cpu", progress=False,
            strategy=ddp)
    except CheckpointError as err:
        errors["resume"] = str(err)
    torch.save({"model": model.state_dict(), "history": history, "writes": writes,
                "bn": bn_model.state_dict(), "errors": errors}, folder / f"rank{info.rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    launch_local(_worker, nprocs=2, args=(folder,))
    return folder, [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def test_ranks_end_with_identical_weights(ranks):
    _, (r0, r1) = ranks
    for name in r0["model"]:
        assert torch.equal(r0["model"][name], r1["model"][name]), name
    for name in r0["bn"]:  # BatchNorm weights and running statistics
        assert torch.equal(r0["bn"][name], r1["bn"][name]), name


def test_two_processes_match_one_process_with_the_same_global_batch(ranks):
    _, (r0, _) = ranks
    single, threads = tiny_net(), torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes; two threads only spin on a busy machine
    try:
        history = fit(single, tiny_data(), CrossEntropy(), CFG, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    start = tiny_net().state_dict()
    for name, value in single.state_dict().items():
        ddp = r0["model"][name]
        assert not torch.allclose(ddp, start[name], atol=1e-3), f"{name} did not train"
        torch.testing.assert_close(ddp, value, atol=ATOL, rtol=RTOL, msg=name)
    # the history averages the processes' shares: the whole global batch, as one process logs it
    assert [h["epoch"] for h in r0["history"]] == [1, 2, 3]
    for mine, one in zip(r0["history"], history):
        assert mine["loss"] == pytest.approx(one["loss"], rel=1e-4)
        assert mine["train_acc"] == pytest.approx(one["train_acc"], abs=2 / 256)


def test_only_rank0_writes_checkpoints_and_all_resume(ranks):
    folder, (r0, r1) = ranks
    assert r0["writes"] == [1, 2, 3]  # epoch 1 before the interruption, 2 and 3 after resuming
    assert r1["writes"] == []
    state = torch.load(folder / "ddp.pt", weights_only=False)
    assert state["complete"] and state["epoch"] == 3 and state["world_size"] == 2
    for name, value in state["model"].items():
        assert torch.equal(value, r1["model"][name])  # what rank 1 holds is what was saved


def test_bad_distributed_setups_fail_clearly_on_every_rank(ranks):
    _, (r0, r1) = ranks
    for r in (r0, r1):
        assert "divide evenly among the 2 processes" in r["errors"]["batch"]
        assert "different epochs" in r["errors"]["resume"]
