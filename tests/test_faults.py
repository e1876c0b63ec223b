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
from kdlab.files import WriteError, write_atomic, write_json_atomic
from kdlab.notebook import ParameterError, declared_parameters, validate
from kdlab.tools import run

PAPERMILL = "# Parameters\n"


def injected(defaults_cell: str, overrides: dict, rules=None):
    """Validate papermill-style overrides the way check_params does in a notebook."""
    from papermill.translators import PythonTranslator

    history = [defaults_cell, PythonTranslator.codify(overrides)]
    defaults, given = declared_parameters(history)
    namespace = {**defaults, **given}
    return validate(namespace, defaults, given, rules)


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


def test_rules_hold_for_every_item_of_a_list():
    with pytest.raises(ParameterError, match="'seeds' = \\[0, -1\\] is out of range"):
        injected(DEFAULTS, {"seeds": [0, -1]}, rules={"seeds": (0, None)})
    with pytest.raises(ParameterError, match="'seeds' must hold numbers"):
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
    from kdlab.train import CheckpointError, load_checkpoint, save_atomic

    build, *_ = tiny_setup()
    path = tmp_path / "model.pt"
    save_atomic({"key": "k", "complete": True, "epoch": 1, "model": build().state_dict()}, path)
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "empty": b"", "text": b"hello"}[damage])
    with pytest.raises(CheckpointError, match=f"{re.escape(str(path))} cannot be read .*\\(rm '"):
        load_checkpoint(path, build())


def test_a_plain_state_dict_is_called_what_it_is(tmp_path):
    from kdlab.train import CheckpointError, load_checkpoint

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
