"""Fault injection: every bad input and fault ends in a clear error naming the culprit, or in a
correct recovery, and nothing is lost or left behind.

Each case states the fault, the message (or recovery) a user gets, and what must survive.
Cases that need a trained model use a one-epoch model on a few hundred synthetic images, so
the whole file runs in well under a minute.
"""

from __future__ import annotations

import errno
import gzip
import json
import re

import numpy as np
import pytest
import torch
import yaml

from kdlab.datasets import DatasetError, load_fashion_mnist, read_idx
from kdlab.runtime.files import WriteError, write_atomic, write_json_atomic
from kdlab.runtime.notebook import ParameterError, declared_parameters, validate
from kdlab.tools import run

PAPERMILL = "# Parameters\n"


def injected(defaults_cell: str, overrides: dict, rules=None, may_be_empty=()):
    """Validate papermill-style overrides the way check_params does in a notebook."""
    from papermill.translators import PythonTranslator

    history = [defaults_cell, PythonTranslator.codify(overrides)]
    defaults, given = declared_parameters(history)
    namespace = {**defaults, **given}
    return validate(namespace, defaults, given, rules, may_be_empty)


DEFAULTS = "alpha = 0.9\nepochs = 6\nseeds = [0, 1, 2]\nname = 'x'\n"


# ---------------------------------------------------------------------- notebook parameters

def test_a_nan_parameter_never_switches_off_the_unknown_name_check():
    with pytest.raises(ParameterError, match="unknown parameter 'epoch' \\(did you mean 'epochs'\\?\\)"):
        injected(DEFAULTS, {"alpha": float("nan"), "epoch": 3})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_by_name(value):
    with pytest.raises(ParameterError, match="'alpha' must be a finite number"):
        injected(DEFAULTS, {"alpha": value}, rules={"alpha": (0.0, 1.0)})


def test_none_for_a_number_names_the_parameter():
    with pytest.raises(ParameterError, match="'epochs' must be of type int .* got None"):
        injected(DEFAULTS, {"epochs": None}, rules={"epochs": (1, None)})


def test_an_empty_seed_list_is_refused_before_anything_trains():
    with pytest.raises(ParameterError, match="'seeds' must not be empty"):
        injected(DEFAULTS, {"seeds": []})
    # a list the notebook allows to be empty (02 and 04: soft_kinds = [] trains no such students)
    assert injected(DEFAULTS, {"seeds": []}, may_be_empty=["seeds"])["seeds"] == []


def test_rules_hold_for_every_item_of_a_list():
    with pytest.raises(ParameterError, match="'seeds' = \\[0, -1\\] is out of range"):
        injected(DEFAULTS, {"seeds": [0, -1]}, rules={"seeds": (0, None)})
    with pytest.raises(ParameterError, match="'seeds' must hold items of type int"):  # before any rule
        injected(DEFAULTS, {"seeds": ["a"]}, rules={"seeds": (0, None)})


def test_a_course_file_given_to_papermill_says_how_to_run_it():
    with pytest.raises(ParameterError, match="python -m kdlab.tools.run --params <name>"):
        injected(DEFAULTS, {"description": "x", "all": {"seed": 1}, "notebooks": {}})


# ---------------------------------------------------------------------- parameter files

def write_params(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("all:\n  student_epoch: 3\n", "`all:` gives 'student_epoch', which no notebook declares "
                                   "\\(did you mean 'student_epochs'\\?\\)"),
    ("all: [1, 2]\n", "`all:` must be a mapping"),
    ("notebooks:\n  01:\n    seed: 1\n", "read by YAML as a int: quote it \\('01'"),
    ("notebooks:\n  '0':\n    seed: 1\n", "matches 7 notebooks"),
    ("notebooks:\n  01_knowledge_distillation: [1]\n", "must be a mapping \\(parameter: value\\)"),
    ("notebooks:\n  '01':\n    temprature: 2\n", "has no parameter 'temprature' \\(did you mean 'temperature'\\?\\)"),
    ("all:\n  dataset: synthetic\n bad indent: 1\n", "line 3, column 2: not valid YAML"),
    ("- a\n- b\n", "must be a mapping with the keys"),
])
def test_parameter_file_faults_name_the_file_and_the_fix(tmp_path, text, message):
    path = write_params(tmp_path, text)
    with pytest.raises(SystemExit, match=message) as err:
        run.load_params_file(path)
    assert path in str(err.value)


@pytest.mark.notebooks
def test_changed_parameters_rerun_a_complete_notebook(tmp_path, capsys):
    out = tmp_path / "run"
    spec = {"description": "t", "hardware": "any", "notebooks": {"00_tour": {"n_images": 64, "gallery": 4}}}
    path = write_params(tmp_path, yaml.safe_dump(spec))
    assert run.run_course(path, only=["00"], out=str(out)) == 0
    spec["notebooks"]["00_tour"]["gallery"] = 6
    path = write_params(tmp_path, yaml.safe_dump(spec))
    assert run.run_course(path, only=["00"], out=str(out)) == 0
    assert "complete, but with other parameters" in capsys.readouterr().out
    results = json.loads((out / "00_tour.json").read_text())
    assert results["params"]["gallery"] == 6  # the results match the values now recorded
    assert json.loads((out / "summary.json").read_text())["notebooks"][0]["status"] == "ran"


# ---------------------------------------------------------------------- datasets

def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fashion_files(folder, n_images=4, n_labels=4, label=3):
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((n_images, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(n_labels, label))
    return folder


def test_truncated_and_non_gzip_idx_files_are_named(tmp_path):
    good = fashion_files(tmp_path / "fashion-mnist") / "t10k-images-idx3-ubyte.gz"
    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(DatasetError, match="cut-idx3-ubyte.gz: cannot be read .* download it again"):
        read_idx(cut)
    plain = tmp_path / "plain-idx3-ubyte.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="plain-idx3-ubyte.gz: cannot be read"):
        read_idx(plain)
    empty = tmp_path / "empty-idx3-ubyte"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="empty-idx3-ubyte: not an unsigned-byte idx file"):
        read_idx(empty)


def test_labels_out_of_range_and_count_mismatch_are_caught_at_load(tmp_path):
    fashion_files(tmp_path / "fashion-mnist", label=200)
    with pytest.raises(DatasetError, match="labels must lie in 0..9 .* found 200..200"):
        load_fashion_mnist("test", tmp_path)
    fashion_files(tmp_path / "fashion-mnist", n_labels=3)
    with pytest.raises(DatasetError, match="4 images but 3 labels"):
        load_fashion_mnist("test", tmp_path)


# ---------------------------------------------------------------------- writes

def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_json_atomic({"v": 1}, tmp_path / "r.json")

    def disk_full(tmp):
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match="could not write .*r.json: .*No space left"):
        write_atomic(target, disk_full)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_an_unwritable_destination_is_named(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(WriteError, match="could not write .*cache/model.pt"):
        write_atomic(blocker / "model.pt", lambda tmp: torch.save({"w": 1}, tmp))


def test_an_interrupted_write_leaves_nothing_behind(tmp_path):
    def interrupted(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "x.json", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_writers_never_corrupt_a_file(tmp_path):
    import threading

    target = tmp_path / "shared.json"

    def writer(i):
        for j in range(30):
            write_json_atomic({"writer": i, "round": j, "pad": "x" * 5000}, target)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(target.read_text())["round"] == 29  # a whole record from one writer
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]


# ---------------------------------------------------------------------- checkpoints and the cache

def tiny_setup():
    from kdlab.datasets import load_dataset
    from kdlab.losses import CrossEntropy
    from kdlab.models import get_model
    from kdlab.train import TrainConfig

    data = load_dataset("synthetic", "train", n=256, seed=0)
    return (lambda: get_model("resnet8_w8", data.num_classes)), data, CrossEntropy(), \
        TrainConfig(epochs=1, batch_size=64)


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_an_unreadable_checkpoint_is_named_with_the_fix(tmp_path, damage):
    from kdlab.runtime.checkpoints import CheckpointError, load_checkpoint, save_atomic

    build, *_ = tiny_setup()
    path = tmp_path / "model.pt"
    save_atomic({"key": "k", "complete": True, "epoch": 1, "model": build().state_dict()}, path)
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "empty": b"", "text": b"hello"}[damage])
    with pytest.raises(CheckpointError, match=f"{re.escape(str(path))} cannot be read .*\\(rm '"):
        load_checkpoint(path, build())


def test_a_plain_state_dict_is_called_what_it_is(tmp_path):
    from kdlab.runtime.checkpoints import CheckpointError, load_checkpoint

    build, *_ = tiny_setup()
    torch.save(build().state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="not a kdlab checkpoint .* plain state_dict"):
        load_checkpoint(tmp_path / "weights.pt", build())


def test_a_damaged_cache_file_is_moved_aside_and_the_model_retrained(tmp_path, capsys):
    from kdlab.train import load_or_train

    build, data, objective, cfg = tiny_setup()
    first = load_or_train("m", build, data, objective, cfg, cache_dir=tmp_path, progress=False)
    reference = {k: v.clone() for k, v in first.model.state_dict().items()}
    first.path.write_bytes(first.path.read_bytes()[:100])  # a crash of the disk, not of kdlab
    again = load_or_train("m", build, data, objective, cfg, cache_dir=tmp_path, progress=False)
    out = capsys.readouterr().out
    assert "could not be used" in out and "Moved it to" in out and "Trained m" in out
    assert again.path == first.path and not again.loaded
    assert all(torch.equal(reference[k], v) for k, v in again.model.state_dict().items())
    assert len(list(tmp_path.glob("m-*.pt.unreadable-*"))) == 1  # kept for inspection


# ---------------------------------------------------------------------- distributed runs

def test_a_stale_rank_is_an_error_not_silence(monkeypatch, capsys):
    from kdlab.scale import cli

    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert cli.main(["train", "--epochs", "1", "--n-train", "200", "--n-test", "100"]) == 2
    assert "RANK=1 is set but WORLD_SIZE is 1" in capsys.readouterr().err


def test_a_missing_process_is_waited_for_a_bounded_time(monkeypatch):
    import time

    from kdlab.scale import distributed

    port = _free_port()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    t0 = time.monotonic()
    with pytest.raises(distributed.SetupError, match="not every process came .* `torchrun --nproc_per_node=2"):
        distributed.init(device="cpu", rendezvous_s=2)
    assert time.monotonic() - t0 < 30


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flag", ["--lr", "--temperature", "--alpha", "--gamma"])
def test_the_command_line_refuses_non_finite_numbers(flag, capsys):
    from kdlab.scale import cli

    assert cli.main(["train", flag, "nan", "--dry-run"]) == 2
    assert f"option '{flag[2:]}' must be a finite number" in capsys.readouterr().err


def test_image_folders_with_different_classes_per_split_are_refused(tmp_path):
    from PIL import Image

    from kdlab.scale.imagenet import load_imagenet

    for split, classes in (("train", ["a", "b", "c"]), ("val", ["a", "c"])):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / c / "x.png")
    with pytest.raises(ValueError, match="different class folders .* only in train: \\['b'\\]"):
        load_imagenet("val", tmp_path, size=8, workers=0)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path):
    from kdlab.train import fit, load_or_train

    build, data, objective, cfg = tiny_setup()
    cfg = type(cfg)(epochs=2, batch_size=64)
    straight = load_or_train("s", build, data, objective, cfg, cache_dir=tmp_path / "a", progress=False)

    class Interrupt(Exception):
        pass

    def stop_after_first_epoch(epoch, _record):
        if epoch == 0:
            raise Interrupt

    torch.manual_seed(cfg.seed)
    model = build()
    from kdlab.train import cache_location

    key, path = cache_location("s", model, data, objective, cfg, cache_dir=tmp_path / "b")
    with pytest.raises(Interrupt):
        fit(model, data, objective, cfg, checkpoint=path, key=key, progress=False,
            on_epoch_end=stop_after_first_epoch)
    resumed = load_or_train("s", build, data, objective, cfg, cache_dir=tmp_path / "b", progress=False)
    assert not resumed.loaded and [h["epoch"] for h in resumed.history] == [1, 2]
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in straight.model.state_dict().items())


# ---------------------------------------------------------------------- the student edition

def _exercise_notebook(solution_tag: str = "solution") -> dict:
    """A course notebook with one exercise: heading, solution (tagged `solution_tag`), check."""
    def cell(kind, source, tags=(), **extra):
        return {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {},
                "source": source, **extra}

    code = {"outputs": [], "execution_count": None}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        cell("markdown", "# Tiny"),
        cell("markdown", "### Exercise 1: double it"),
        cell("code", "double = lambda x: 2 * x  # the answer", [solution_tag, "hide-input"], **code),
        cell("code", "assert double(2) == 4", ["check"], **code)]}


def _course(tmp_path, nb) -> tuple:
    src, out = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir(exist_ok=True)
    (src / "01_tiny.ipynb").write_text(json.dumps(nb) if not isinstance(nb, str) else nb)
    return src, out


def test_a_second_student_edition_keeps_the_learners_solution(tmp_path, capsys):
    from kdlab.tools import student

    src, out = _course(tmp_path, _exercise_notebook())
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 0
    untouched = out / "01_tiny.ipynb"
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 0  # unchanged: rewritten
    assert sorted(p.name for p in out.iterdir()) == ["01_tiny.ipynb"]
    capsys.readouterr()
    mine = []
    for attempt in range(2):  # twice within a second: neither kept copy overwrites the other
        nb = json.loads(untouched.read_text())
        nb["cells"][2]["source"] = f"double = lambda x: x + x  # my solution {attempt}"
        untouched.write_text(json.dumps(nb))
        assert student.main(["--notebooks", str(src), "--out", str(out)]) == 0
        mine.append(f"my solution {attempt}")
    printed = capsys.readouterr().out
    kept = sorted(out.glob("01_tiny.yours-*.ipynb"))
    assert len(kept) == 2 and "it held your edits: they are kept in" in printed
    assert sorted(json.loads(k.read_text())["cells"][2]["source"][-13:] for k in kept) == mine
    assert json.loads(untouched.read_text())["cells"][2]["source"] == student.stub(1)


@pytest.mark.parametrize("tag, message", [
    ("solutions", "cell 2 is tagged 'solutions' \\(did you mean 'solution'\\?\\)"),
    ("Solution", "cell 2 is tagged 'Solution' \\(did you mean 'solution'\\?\\)"),
    ("answer", "cell 2 is tagged 'answer'"),
])
def test_a_solution_under_a_mistyped_tag_never_reaches_the_student(tmp_path, capsys, tag, message):
    from kdlab.tools import student

    src, out = _course(tmp_path, _exercise_notebook())
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 0
    before = (out / "01_tiny.ipynb").read_bytes()
    _course(tmp_path, _exercise_notebook(tag))
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and "01_tiny.ipynb" in err and "exact tag 'solution'" in err
    assert (out / "01_tiny.ipynb").read_bytes() == before  # the student copy is left as it was
    assert "the answer" not in before.decode()


def test_an_exercise_without_a_solution_cell_is_an_error(tmp_path):
    from kdlab.tools import student

    nb = _exercise_notebook()
    nb["cells"][2]["metadata"] = {}
    with pytest.raises(student.StudentError, match="01_tiny.ipynb: exercise 1 \\(heading in cell 1\\) "
                                                   "has no code cell tagged 'solution'"):
        student.student_notebook(nb, "01_tiny.ipynb")


@pytest.mark.parametrize("text, message", [
    ("[]", "holds a JSON list, not an nbformat 4 notebook"),
    ("{\"cells\": [", "cannot be read as a notebook"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {"tags": "solution"}}]}),
     "cell 0 has metadata or tags that are not"),
])
def test_a_malformed_notebook_is_named_and_nothing_is_written(tmp_path, capsys, text, message):
    from kdlab.tools import student

    src, out = _course(tmp_path, text)
    assert student.main(["--notebooks", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "01_tiny.ipynb" in err
    assert not out.exists()


# ---------------------------------------------------------------------- comparing a run

def _committed_notebook(path, metrics):
    outputs = [] if metrics is None else [{"output_type": "display_data", "data": {"text/plain": "x"},
                                           "metadata": {"kdlab": {"results": {"notebook": path.stem,
                                                                              "metrics": metrics}}}}]
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {},
                                           "execution_count": 1, "outputs": outputs}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def _two_sides(tmp_path, committed: dict, ours: dict):
    notebooks, run_folder = tmp_path / "notebooks", tmp_path / "run"
    notebooks.mkdir()
    run_folder.mkdir()
    for stem, metrics in committed.items():
        _committed_notebook(notebooks / f"{stem}.ipynb", metrics)
    for stem, metrics in ours.items():
        (run_folder / f"{stem}.json").write_text(json.dumps({"notebook": stem, "metrics": metrics}))
    return notebooks, run_folder


def test_a_null_or_missing_number_is_counted_not_called_unmoved(tmp_path, capsys):
    from kdlab.tools import compare

    committed = {"accuracy": {"kd": 0.9, "ls": 0.8, "scratch": 0.7}, "teacher_seed": None}
    ours = {"accuracy": {"kd": 0.9, "ls": None}, "teacher_seed": None}  # NaN saved as null; one gone
    notebooks, run_folder = _two_sides(tmp_path, {"01_kd": committed}, {"01_kd": ours})
    assert compare.main([str(run_folder), "--against", str(notebooks)]) == 1
    out = capsys.readouterr().out
    assert "accuracy / ls: null or NaN in the run, 0.8 in the other" in out
    assert "accuracy / scratch: only in the committed record" in out
    # 2 compared: kd, and the teacher seed both sides leave undefined
    assert "01_kd: 0 of 2 numbers moved by more than 0.02; 2 could not be compared" in out
    assert "NOT COMPARED (listed above): numbers or verdicts: 2, notebooks: 0" in out


def test_a_notebook_with_a_record_on_one_side_only_is_named(tmp_path, capsys):
    from kdlab.tools import compare

    notebooks, run_folder = _two_sides(tmp_path, {"01_kd": {"a": 1.0}, "02_ls": None, "03_x": {"b": 2.0}},
                                       {"01_kd": {"a": 1.0}, "02_ls": {"a": 1.0}})
    assert compare.main([str(run_folder), "--against", str(notebooks)]) == 1
    out = capsys.readouterr().out
    assert "02_ls: NOT COMPARED:" in out and "02_ls.ipynb holds no results record" in out
    assert "03_x: NOT COMPARED: no 03_x.json in" in out
    assert "0 of 1 numbers moved" in out and "numbers or verdicts: 0, notebooks: 2" in out


def test_a_complete_comparison_still_passes(tmp_path, capsys):
    from kdlab.tools import compare

    same = {"accuracy": {"kd": 0.9}, "seed": None, "verdicts": [{"verdict": "shown"}]}
    notebooks, run_folder = _two_sides(tmp_path, {"01_kd": same}, {"01_kd": same})
    assert compare.main([str(run_folder), "--against", str(notebooks)]) == 0
    assert "NOT COMPARED" not in capsys.readouterr().out


# ---------------------------------------------------------------------- verdicts from tables

def _seed_table(kd=(0.91, 0.92, 0.93, 0.94, 0.95), scratch=(0.90, 0.90, 0.90, 0.90, 0.90)):
    import pandas as pd

    rows = [("kd", s, v) for s, v in enumerate(kd)] + [("scratch", s, v) for s, v in enumerate(scratch)]
    return pd.DataFrame(rows, columns=["kind", "seed", "accuracy"])


def test_a_nan_metric_is_refused_naming_the_row():
    from kdlab.verdicts import decide_table

    table = _seed_table(kd=(0.91, float("nan"), 0.93, 0.94, 0.95))
    kept = table.copy()
    with pytest.raises(ValueError, match="'accuracy' is not a finite number in the row\\(s\\) "
                                         "\\('kd', seed 1\\): nan"):
        decide_table(table, "KD > scratch", "accuracy", "kd", "scratch")
    assert table.equals(kept)  # the caller's table is untouched


def test_a_repeated_kind_and_seed_is_refused_not_averaged():
    import pandas as pd

    from kdlab.verdicts import decide_table

    table = pd.concat([_seed_table(), pd.DataFrame([("kd", 0, 0.70)], columns=["kind", "seed", "accuracy"])])
    with pytest.raises(ValueError, match="\\('kd', seed 0\\): 0.91, \\('kd', seed 0\\): 0.7 repeat a"):
        decide_table(table, "KD > scratch", "accuracy", "kd", "scratch")


def test_an_unpaired_seed_is_refused_unless_asked():
    from kdlab.verdicts import decide_table

    table = _seed_table()
    table = table[~((table.kind == "scratch") & (table.seed == 4))]
    with pytest.raises(ValueError, match="seed 4 \\(kd only\\) has no partner .* allow_unpaired=True"):
        decide_table(table, "KD > scratch", "accuracy", "kd", "scratch")
    assert decide_table(table, "KD > scratch", "accuracy", "kd", "scratch", allow_unpaired=True).n == 4


# ---------------------------------------------------------------------- the book's records

def test_a_results_record_without_metrics_is_refused_by_name(tmp_path, capsys):
    from kdlab.tools import book

    folder = tmp_path / "results" / "fashion_mnist"
    folder.mkdir(parents=True)
    bad = folder / "02_kd_vs_label_smoothing.json"
    bad.write_text(json.dumps({"notebook": "02_kd_vs_label_smoothing", "params": {}}))
    (folder / "summary.json").write_text(json.dumps({"notebooks": []}))  # not a record: skipped
    with pytest.raises(book.BookError, match=f"{re.escape(str(bad))} is not a results record "
                                             "\\(it has no 'metrics'.*--only NN --force"):
        book.committed_run_records(tmp_path / "results")
    assert json.loads(bad.read_text())["notebook"] == "02_kd_vs_label_smoothing"  # left for inspection


def test_a_notebook_file_that_is_not_a_notebook_is_named(tmp_path):
    from kdlab.runtime.notebook import NotebookFileError
    from kdlab.tools import book

    path = tmp_path / "01_kd.ipynb"
    path.write_text("[1, 2]")
    with pytest.raises(NotebookFileError,
                       match=f"{re.escape(str(path))} is not a notebook: it holds a JSON list"):
        book.embedded_records(path)


# ---------------------------------------------------------------------- parallel jobs

def _job(folder: str, name: str, die: bool = False):
    """A job for run_all: writes <name>.done (its 'cache'); a job with die=True waits for the
    other job to be done, then kills its own worker as the out-of-memory killer would."""
    import os
    import signal
    import time
    from pathlib import Path

    if die:
        while not (Path(folder) / "fine.done").exists():
            time.sleep(0.05)
        time.sleep(1.0)  # let the finished job's result reach run_all
        os.kill(os.getpid(), signal.SIGKILL)
    (Path(folder) / f"{name}.done").write_text(name)
    return f"{name} result"


def test_a_killed_worker_names_its_job_and_keeps_the_finished_ones(tmp_path):
    from functools import partial

    from kdlab.runtime import parallel

    jobs = {"fine": partial(_job, str(tmp_path), "fine"),
            "killed": partial(_job, str(tmp_path), "killed", True)}
    with pytest.raises(parallel.WorkerDied, match="died while running job\\(s\\) 'killed'.* "
                                                  "Finished: 'fine'.*Free memory") as err:
        parallel.run_all(jobs, workers=2)
    assert err.value.finished == {"fine": "fine result"} and err.value.lost == ["killed"]
    assert (tmp_path / "fine.done").exists() and not (tmp_path / "killed.done").exists()


def test_a_failing_job_is_named_and_the_finished_results_kept(tmp_path):
    from functools import partial

    from kdlab.runtime import parallel

    def broken():
        raise ValueError("the job's own error")

    jobs = {"first": partial(_job, str(tmp_path), "first"), "broken": broken,
            "later": partial(_job, str(tmp_path), "later")}
    with pytest.raises(ValueError, match="the job's own error") as err:  # its own type, as before
        parallel.run_all(jobs, workers=1)
    assert "job 'broken' failed. Finished: 'first'" in err.value.__notes__[0]
    assert "Not started: 'later'" in err.value.__notes__[0]
    assert err.value.finished == {"first": "first result"}


# ---------------------------------------------------------------------- the course runner

def _code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def _tiny_course(folder, monkeypatch):
    """A course of two notebooks: 00 runs, 01 kills its own kernel in its second cell."""
    folder.mkdir()
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    for name, cells in (("00_fine", [_code_cell("x = 1")]),
                        ("01_killed", [_code_cell("x = 1"),
                                       _code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                                       _code_cell("y = 2")])):
        nb = {"cells": [{**c, "id": f"c{i}"} for i, c in enumerate(cells)], "metadata": meta,
              "nbformat": 4, "nbformat_minor": 5}
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(run, "NOTEBOOK_DIR", folder)


@pytest.mark.notebooks  # papermill runs two tiny notebooks in a kernel (2 s)
def test_a_killed_kernel_names_the_cell_and_keeps_the_finished_notebooks(tmp_path, monkeypatch, capsys):
    _tiny_course(tmp_path / "course", monkeypatch)
    params = write_params(tmp_path, "description: tiny\n")
    out = tmp_path / "run"
    assert run.run_course(params, out=str(out)) == 1
    err = capsys.readouterr().err
    assert "01_killed: FAILED" in err and "at cell 1 ('import os, signal'): the kernel died " \
                                          "(DeadKernelError" in err and "out-of-memory killer" in err
    assert run.is_complete(out / "00_fine.ipynb")           # the finished notebook is kept
    assert not run.is_complete(out / "01_killed.ipynb")     # and the killed one is rerun next time
    summary = json.loads((out / "summary.json").read_text())["notebooks"]
    assert [s["status"] for s in summary] == ["ran", "failed"] and "kernel died" in summary[1]["error"]


def test_a_read_only_run_folder_is_named_before_anything_runs(tmp_path, monkeypatch):
    import os
    import tempfile

    _tiny_course(tmp_path / "course", monkeypatch)
    params = write_params(tmp_path, "description: tiny\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "earlier.json").write_text("{}")
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: give the folder the error a user would get
        def refused(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    try:
        with pytest.raises(SystemExit, match=f"the run folder {re.escape(str(out))} cannot be written "
                                             "\\(Permission denied\\); nothing was run.*--out"):
            run.run_course(params, out=str(out))
    finally:
        out.chmod(0o755)
    assert [p.name for p in out.iterdir()] == ["earlier.json"]


def test_list_parameter_items_must_have_the_defaults_type():
    from kdlab.runtime.notebook import notebook_defaults

    defaults = notebook_defaults(run.NOTEBOOK_DIR / "02_kd_vs_label_smoothing.ipynb")
    with pytest.raises(ParameterError, match="'seeds' must hold items of type int .* got \\['a', 1.5\\]: "
                                             "'a' is a str"):
        validate({**defaults, "seeds": ["a", 1.5]}, defaults, {"seeds": ["a", 1.5]})
    assert validate({**defaults, "seeds": [5, 6]}, defaults, {"seeds": [5, 6]})["seeds"] == [5, 6]
    with pytest.raises(ParameterError, match="'temperatures' must hold items of type float"):
        injected("temperatures = [1.0, 4.0]\n", {"temperatures": [2.0, "hot"]})
    assert injected("temperatures = [1.0, 4.0]\n", {"temperatures": [2, 8.0]})["temperatures"] == [2, 8.0]


# ---------------------------------------------------------------------- concept data

def test_an_empty_broden_index_names_the_folder(tmp_path):
    from kdlab.scale.broden import BrodenDataset, BrodenFormatError

    root = tmp_path / "broden1_224"
    root.mkdir()
    (root / "label.csv").write_text("number,name,category\n1,dog,object(1)\n")
    (root / "category.csv").write_text("name\nobject\n")
    (root / "c_object.csv").write_text("code,number,name,coverage\n1,1,dog,1.0\n")
    (root / "index.csv").write_text("image,split,ih,iw,sh,sw,object\n")
    with pytest.raises(BrodenFormatError, match=f"{re.escape(str(root / 'index.csv'))}: no images"):
        BrodenDataset(root)
    with pytest.raises(BrodenFormatError, match="no images of split 'train'"):
        (root / "index.csv").write_text("image,split,ih,iw,sh,sw,object\nx.jpg,val,8,8,8,8,1\n")
        BrodenDataset(root, split="train")
    assert (root / "index.csv").exists()


# ---------------------------------------------------------------------- the command line

def test_a_teacher_of_another_architecture_points_at_teacher_arch(tmp_path, capsys):
    from kdlab.datasets import load_dataset
    from kdlab.models import get_model
    from kdlab.scale import cli
    from kdlab.runtime.checkpoints import save_atomic

    classes = load_dataset("synthetic", "train", n=64, seed=0).num_classes
    path = tmp_path / "teacher.pt"
    save_atomic({"key": "k", "complete": True, "epoch": 1,
                 "model": get_model("resnet8_w8", classes).state_dict()}, path)
    before = path.read_bytes()
    code = cli.main(["train", "--kind", "kd", "--teacher-arch", "resnet8", "--teacher-checkpoint", str(path),
                     "--n-train", "64", "--n-test", "32", "--no-progress", "--dry-run",
                     "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and f"teacher checkpoint {path} does not fit --teacher-arch resnet8" in err
    assert "It fits --teacher-arch resnet8_w8" in err and "size mismatch" not in err
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--momentum", "-5", "momentum must be"), ("--weight-decay", "-1", "weight_decay must be"),
    ("--gamma", "0", "gamma must be"), ("--warmup-epochs", "-1", "warmup_epochs must be"),
])
def test_out_of_range_training_options_are_named(flag, value, message, capsys):
    from kdlab.scale import cli

    assert cli.main(["train", flag, value, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_damaged_cache_files_moved_aside_in_one_second_never_overwrite_each_other(tmp_path, monkeypatch):
    import time

    from kdlab.train import cache_location, load_or_train

    build, data, objective, cfg = tiny_setup()
    monkeypatch.setattr(time, "strftime", lambda *args: "20250101-120000")  # the same second
    _, path = cache_location("m", build(), data, objective, cfg, cache_dir=tmp_path)
    first = path.with_name(f"{path.name}.unreadable-20250101-120000")
    first.write_bytes(b"first damage")  # moved aside a moment ago
    path.write_bytes(b"second damage")
    trained = load_or_train("m", build, data, objective, cfg, cache_dir=tmp_path, progress=False)
    assert trained.path == path and not trained.loaded
    kept = sorted(p.read_bytes() for p in tmp_path.glob("m-*.pt.unreadable-*"))
    assert kept == [b"first damage", b"second damage"]
