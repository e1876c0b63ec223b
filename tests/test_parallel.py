from functools import partial

import pytest
import torch

from kdlab.runtime import parallel, progress
from kdlab.datasets import load_dataset
from kdlab.recipes import Recipe
from kdlab.runtime.checkpoints import weights_key
from kdlab.train import TrainConfig


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic", "train", n=128, seed=5)


def jobs(data, cache, kind="scratch"):
    return {seed: partial(Recipe("student", kind).train, data, TrainConfig(epochs=1, batch_size=64, seed=seed),
                          cache_dir=cache, progress=False) for seed in (0, 1)}


def test_workers_train_the_models_a_serial_run_trains(tiny, tmp_path):
    serial = parallel.run_all(jobs(tiny, tmp_path / "serial"), workers=1)
    with progress.summary("2 students", total=2, enabled=False) as block:
        together = parallel.run_all(jobs(tiny, tmp_path / "workers"), workers=2)
    assert list(together) == [0, 1]
    assert block.counts == {"trained": 2}  # the workers' cache reports reach this process
    for seed in (0, 1):
        assert weights_key(serial[seed].model) == weights_key(together[seed].model)
    assert weights_key(serial[0].model) != weights_key(serial[1].model)  # the comparison can tell models apart


def test_a_failing_job_raises_its_error_here(tiny, tmp_path):
    with pytest.raises(ValueError, match="needs a teacher"):
        parallel.run_all(jobs(tiny, tmp_path, kind="kd"), workers=2)


def test_one_worker_per_two_cores_and_none_on_a_gpu(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    assert parallel.worker_count(20, "cpu") == 4
    assert parallel.worker_count(3, "cpu") == 3
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    assert parallel.worker_count(20, "cpu") == 1
    monkeypatch.setattr(parallel, "pick_device", lambda device: torch.device("cuda"))
    assert parallel.worker_count(20, "cuda") == 1
