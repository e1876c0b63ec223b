"""`python -m kdlab.scale.cli`: options from YAML and flags, clear errors, the notebook cache, torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kdlab import recipes
from kdlab.scale.cli import main, parse_options

TINY = ["--n-train", "300", "--n-test", "100", "--epochs", "1", "--batch-size", "64",
        "--lr", "0.1", "--no-progress"]


@pytest.fixture
def one_thread():
    """One intra-op thread: two only spin against each other on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_mistyped_options_fail_naming_the_closest_valid_one(capsys, tmp_path):
    assert "did you mean --epochs?" in error_of(["train", "--epoch", "3"], capsys)
    assert "did you mean --batch-size?" in error_of(["--batchsize=64"], capsys)
    assert "did you mean 'train'" in error_of(["trian", "--epochs", "3"], capsys)
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 3\nlearning_rate: 0.1\n")
    assert "unknown option 'learning_rate'" in error_of(["--config", str(config)], capsys)
    config.write_text("lr: fast\n")
    assert "'lr' must be a number" in error_of(["--config", str(config)], capsys)
    config.write_text("epochs: 2.5\n")
    assert "'epochs' must be an integer" in error_of(["--config", str(config)], capsys)
    config.write_text("milestones: [1, two]\n")
    assert "'milestones' must be a list of integers" in error_of(["--config", str(config)], capsys)
    config.write_text("augment: maybe\n")
    assert "'augment' must be true or false" in error_of(["--config", str(config)], capsys)
    config.write_text("- epochs\n")
    assert "mapping" in error_of(["--config", str(config)], capsys)
    assert "does not exist" in error_of(["--config", str(tmp_path / "nope.yaml")], capsys)


def test_values_that_do_not_make_a_run_fail_before_anything_is_loaded(capsys):
    assert "needs --teacher-arch" in error_of(["--kind", "kd"], capsys)
    assert "needs a teacher" in error_of(["--kind", "kd", "--teacher-arch", "resnet8"], capsys)
    assert "kind scratch, ls" in error_of(["--role", "teacher", "--kind", "kd"], capsys)
    assert "dataset must be one of" in error_of(["--dataset", "cifar1000"], capsys)
    assert "optimizer must be" in error_of(["--optimizer", "lion"], capsys)
    assert "uses no teacher" in error_of(["--teacher-checkpoint", "x.pt"], capsys)


def test_flags_override_the_yaml_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("role: teacher\nepochs: 5\nbatch_size: 32\nmilestones: [3, 4]\naugment: false\n")
    recipe, cfg, options = parse_options(["--params", str(config), "--epochs", "2", "--milestones", "1,2"])
    assert (recipe.role, cfg.epochs, cfg.batch_size, cfg.milestones, cfg.augment) == \
        ("teacher", 2, 32, (1, 2), False)
    assert parse_options(["train", "--batch_size", "16", "--augment"])[1].batch_size == 16
    _, _, options = parse_options(["--data-root", "none", "--n-images", "null", "--no-dry-run"])
    assert options.data_root is None and options.n_images is None and not options.dry_run


def test_every_field_is_an_option_with_its_comment_as_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, help_text in [("--temperature", "KD temperature T"), ("--batch-size", "split over processes"),
                            ("--warmup-epochs", "linear warm-up epochs"), ("--dry-run", "train nothing"),
                            ("--explain-method", "gradcam | bcos")]:
        assert flag in text and help_text in text, flag


def test_the_cli_and_the_notebooks_share_the_cache(tmp_path, monkeypatch, one_thread, capsys):
    """A model trained by a notebook (kdlab.recipes) is found by the CLI and vice versa."""
    import kdlab.train

    cache = tmp_path / "cache"
    monkeypatch.setattr(kdlab.train, "CACHE_DIR", cache)
    train, _ = recipes.course_data("synthetic", n_train=300, n_test=100)
    teacher = recipes.train_teacher(train, arch="resnet8_w8", epochs=1, lr=0.1, batch_size=64,
                                   device="cpu")
    common = TINY + ["--cache-dir", str(cache), "--device", "cpu", "--arch", "resnet8_w8"]
    assert main(["train", "--role", "teacher", *common, "--results", str(tmp_path / "t.json")]) == 0
    result = json.loads((tmp_path / "t.json").read_text())
    assert result["loaded"] and result["checkpoint"] == str(teacher.path)  # not trained again
    assert result["name"] == "teacher" and 0 <= result["test"]["accuracy"] <= 1

    student_args = ["train", "--kind", "kd", *common, "--n-images", "200", "--temperature", "4",
                    "--alpha", "0.9", "--teacher-arch", "resnet8_w8",
                    "--teacher-checkpoint", str(cache / "teacher-*.pt"),
                    "--results", str(tmp_path / "s.json")]
    assert main([*student_args, "--dry-run"]) == 0
    planned = capsys.readouterr().out.strip().splitlines()[-1].split(" into ")[-1]
    assert not Path(planned).exists()  # a dry run trains nothing
    assert main(student_args) == 0
    result = json.loads((tmp_path / "s.json").read_text())
    assert not result["loaded"] and result["checkpoint"] == planned
    assert "agreement" in result["test"] and result["train_images"] == 200
    student = recipes.train_student("kd", train, teacher, arch="resnet8_w8", n_images=200, epochs=1,
                                   lr=0.1, batch_size=64, temperature=4.0, alpha=0.9, device="cpu")
    assert student.loaded and str(student.path) == planned


def test_a_teacher_glob_must_name_exactly_one_checkpoint(tmp_path, capsys):
    args = ["--kind", "kd", "--teacher-arch", "resnet8_w8", "--n-train", "64", "--n-test", "32",
            "--teacher-checkpoint", str(tmp_path / "teacher-*.pt")]
    assert "matches 0 files" in error_of(args, capsys)


@pytest.mark.distributed
def test_torchrun_two_processes_then_one_process_finds_the_finished_run(tmp_path):
    """The real launcher: torchrun starts 2 gloo processes; rank 0 alone writes and speaks."""
    ckpt, results = tmp_path / "run.pt", tmp_path / "run.json"
    args = ["-m", "kdlab.scale.cli", "train", "--role", "teacher", "--arch", "resnet8_w8",
            "--n-train", "128", "--n-test", "64", "--epochs", "1", "--batch-size", "32",
            "--device", "cpu", "--checkpoint", str(ckpt), "--results", str(results)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KDLAB_RUN_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", *args], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("teacher: checkpoint") == 1  # rank 1's stdout is silenced
    result = json.loads(results.read_text())
    assert result["world_size"] == 2 and len(result["history"]) == 1
    state = torch.load(ckpt, weights_only=False)
    assert state["complete"] and state["key"] == result["key"]
    # the key does not depend on the number of processes: one process finds the run finished
    again = subprocess.run([sys.executable, *args, "--results", str(tmp_path / "again.json")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["loaded"] and again["history"] == result["history"]
