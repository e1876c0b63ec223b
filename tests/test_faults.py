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
