"""Several models trained at once, one process each, on a CPU with cores to spare.

Taught in notebook 02; notebooks 04, 05 and 06 train their students the same way.

`fit` trains on a fixed kdlab.runtime.device.CPU_TRAINING_THREADS threads on a CPU, so that a model
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
from the cache", kdlab.runtime.progress.report) is replayed here as each job finishes, so a
notebook's `summary` block counts it as usual; what it prints is printed here.

When a job fails, the jobs not yet started are cancelled and those running finish; their
results are kept, not discarded. The error is raised here with a note naming the failed job
and the finished ones (`err.finished` holds their results; models they trained are in the
cache, so a rerun loads them). A worker process that dies (killed by the out-of-memory
killer, a segfault) is a WorkerDied error naming the jobs it may have been running.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Hashable

import torch

from . import progress
from .device import CPU_TRAINING_THREADS, pick_device, usable_cores


def worker_count(n_jobs: int, device="auto") -> int:
    """How many processes `run_all` uses: one per CPU_TRAINING_THREADS usable cores, at most
    one per job; 1 (this process) on a GPU or an MPS device."""
    if pick_device(device).type != "cpu":
        return 1
    return max(1, min(n_jobs, usable_cores() // CPU_TRAINING_THREADS))


class WorkerDied(RuntimeError):
    """A worker process of `run_all` ended abruptly; `finished` holds the results of the jobs
    that finished, `lost` names those that were running in a worker when it happened."""

    def __init__(self, message: str, finished: dict, lost: list):
        super().__init__(message)
        self.finished, self.lost = finished, lost


def run_all(jobs: dict[Hashable, Callable[[], object]], device="auto",
            workers: int | None = None) -> dict:
    """{key: job()} for every job, computed in `workers` processes at once (default
    `worker_count`). When a job fails, the jobs not yet started are cancelled, those running
    finish, and the error is raised here naming the job, with the finished jobs' results in
    its `finished` attribute; every model finished is in the cache, and a rerun loads it."""
    n = workers or worker_count(len(jobs), device)
    if n <= 1:
        return _run_here(jobs)
    results, failed, started, keys = {}, None, [], list(jobs)
    context = multiprocessing.get_context("spawn")
    # workers write the number of each job they start here, unbuffered (a killed worker's
    # buffered message would be lost), so that a dead worker's jobs can be named
    starts = context.SimpleQueue()
    pool = ProcessPoolExecutor(n, mp_context=context, initializer=_start_worker,
                               initargs=(torch.get_num_threads(), starts))
    try:
        pending = {pool.submit(_recorded, i, jobs[key]): key for i, key in enumerate(keys)}
        for done in as_completed(pending):
            started += [keys[i] for i in _drain(starts)]
            if done.cancelled():
                continue
            try:
                result, events, printed = done.result()
            except BaseException as err:  # noqa: BLE001 - raised below, once the others finish
                failed = failed or (pending[done], err)
                for future in pending:
                    future.cancel()
                continue
            _replay(events, printed)
            results[pending[done]] = result
    finally:
        pool.shutdown(cancel_futures=True)
    if failed:
        raise _failure(*failed, jobs, results, started + [keys[i] for i in _drain(starts)])
    return {key: results[key] for key in jobs}


def _run_here(jobs: dict) -> dict:
    """run_all in this process, one job after another, with the same account of a failure."""
    results = {}
    for key, job in jobs.items():
        try:
            results[key] = job()
        except Exception as err:
            _failure(key, err, jobs, results, list(results) + [key])
            raise
    return results


def _failure(key, err: BaseException, jobs: dict, finished: dict, started: list) -> BaseException:
    """The error to raise for a failed run: the job's own error with a note naming it and the
    finished jobs, or WorkerDied when a worker process ended abruptly."""
    done = (f"Finished: {_keys(finished)}" + (" (kept in the error's `finished`; their models are "
                                              "in the cache, so a rerun loads them)" if finished else "")
            + f". Not started: {_keys(k for k in jobs if k not in started)}.")
    if isinstance(err, BrokenProcessPool):
        lost = [k for k in started if k not in finished]
        died = WorkerDied(f"a worker process died while running job(s) {_keys(lost)}: it was "
                          "killed (the out-of-memory killer does this when memory runs out) or "
                          f"crashed. {done} Free memory, or run fewer jobs at once (workers=1, "
                          "or fewer cores with taskset), and rerun.", finished, lost)
        died.__cause__ = err
        return died
    err.finished = finished
    note = f"kdlab.runtime.parallel.run_all: job {key!r} failed. {done}"
    if hasattr(err, "add_note"):  # Python 3.11+: shown under the error's message
        err.add_note(note)
    else:
        print(note, file=sys.stderr)
    return err


def _keys(keys) -> str:
    return ", ".join(repr(k) for k in keys) or "none"


def _drain(starts) -> list[int]:
    """The numbers of the jobs the workers reported starting since the last call, in order."""
    keys = []
    with contextlib.suppress(OSError, EOFError):
        while not starts.empty():
            keys.append(starts.get())
    return keys


def _replay(events, printed: str) -> None:
    """What a job printed and reported in its worker, printed and reported here."""
    if printed.strip():
        print(printed, end="")
    for event, message in events:
        progress.report(event, message)


_STARTS = None  # in a worker: where it tells run_all which job it starts


def _start_worker(threads: int, starts=None) -> None:
    # outside fit (a frozen teacher's pass, an evaluation inside a job) a worker computes with
    # this process's thread count, so that those numbers, too, are the ones a serial run gets
    global _STARTS
    torch.set_num_threads(threads)
    _STARTS = starts


def _recorded(number: int, job: Callable[[], object]):
    """In a worker: the job's result, its reports and what it printed."""
    if _STARTS is not None:
        _STARTS.put(number)
    printed = io.StringIO()
    with progress.recording() as events, contextlib.redirect_stdout(printed):
        result = job()
    return result, events, printed.getvalue()
