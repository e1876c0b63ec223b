"""Several models trained at once, one process each, on a CPU with cores to spare.

Taught in notebook 02; notebooks 04, 05 and 06 train their students the same way.

`fit` trains on a fixed kdlab.train.CPU_TRAINING_THREADS threads on a CPU, so that a model
comes out the same on every machine. A machine with more cores would leave the rest idle while
a notebook trains its twenty students one after another. `run_all` runs such independent jobs
in worker processes instead, one per CPU_TRAINING_THREADS usable cores (4 on an 8-core
laptop). Each worker trains exactly as this process would, so the models are bit for bit the
ones a serial run gives (tests/test_parallel.py). With fewer cores than two workers need (the
course's 2-core machine), on a GPU, or for a single job, the jobs run here, one after another.

A job is a picklable call that trains or loads one model (or a few), such as
`functools.partial(recipes.train_student, "kd", train, teacher, seed=3)`. Workers start with
Python's "spawn" method (safe next to the threads torch has running) and import kdlab afresh,
which takes a few seconds. What a job reports to the cache's summary ("trained", "loaded
from the cache", kdlab.progress.report) is replayed here as each job finishes, so a notebook's
`summary` block counts it as usual; what it prints is printed here.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Hashable

import torch

from . import progress
from .train import CPU_TRAINING_THREADS, pick_device, usable_cores


def worker_count(n_jobs: int, device="auto") -> int:
    """How many processes `run_all` uses: one per CPU_TRAINING_THREADS usable cores, at most
    one per job; 1 (this process) on a GPU or an MPS device."""
    if pick_device(device).type != "cpu":
        return 1
    return max(1, min(n_jobs, usable_cores() // CPU_TRAINING_THREADS))


def run_all(jobs: dict[Hashable, Callable[[], object]], device="auto",
            workers: int | None = None) -> dict:
    """{key: job()} for every job, computed in `workers` processes at once (default
    `worker_count`). When a job fails, the jobs not yet started are cancelled, those running
    finish, and the error is raised here; every model finished is in the cache, and a rerun
    loads it."""
    n = workers or worker_count(len(jobs), device)
    if n <= 1:
        return {key: job() for key, job in jobs.items()}
    results = {}
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(torch.get_num_threads(),))
    try:
        pending = {pool.submit(_recorded, job): key for key, job in jobs.items()}
        for done in as_completed(pending):
            result, events, printed = done.result()
            if printed.strip():
                print(printed, end="")
            for event, message in events:
                progress.report(event, message)
            results[pending[done]] = result
    finally:
        pool.shutdown(cancel_futures=True)
    return {key: results[key] for key in jobs}


def _start_worker(threads: int) -> None:
    # outside fit (a frozen teacher's pass, an evaluation inside a job) a worker computes with
    # this process's thread count, so that those numbers, too, are the ones a serial run gets
    torch.set_num_threads(threads)


def _recorded(job: Callable[[], object]):
    """In a worker: the job's result, its reports and what it printed."""
    printed = io.StringIO()
    with progress.recording() as events, contextlib.redirect_stdout(printed):
        result = job()
    return result, events, printed.getvalue()
