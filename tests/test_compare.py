"""kdlab.tools.compare: which numbers of a run differ from the committed notebooks'."""

import json

from kdlab.tools.compare import compare, moved, numbers


def _notebook(path, metrics):
    record = {"notebook": path.stem, "metrics": metrics}
    nb = {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                     "outputs": [{"output_type": "display_data", "data": {"text/plain": "x"},
                                  "metadata": {"kdlab": {"results": record}}}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_numbers_flatten_nested_records_and_skip_text():
    record = {"mean": {"kd": {"detectors": 3, "name": "x"}}, "per_model": [{"acc": 0.5}], "ok": True}
    assert numbers(record) == {"mean / kd / detectors": 3.0, "per_model / 0 / acc": 0.5}


def test_moved_uses_absolute_then_relative_tolerance():
    before = {"a": 0.50, "b": 100.0, "c": float("nan"), "d": 1.0, "fit / train_seconds": 3.0}
    after = {"a": 0.53, "b": 101.0, "c": float("nan"), "d": float("nan"), "fit / train_seconds": 9.0}
    assert [p for p, *_ in moved(before, after, 0.02)] == ["a", "d"]


def test_compare_reports_per_notebook(tmp_path):
    committed, run = tmp_path / "notebooks", tmp_path / "run"
    committed.mkdir()
    run.mkdir()
    verdicts = [{"claim": "KD > scratch", "verdict": "shown"}, {"claim": "LS < scratch", "verdict": "not resolved"}]
    _notebook(committed / "01_kd.ipynb", {"accuracy": {"kd": 0.90, "scratch": 0.80}, "verdicts": verdicts})
    verdicts_now = [verdicts[0], {**verdicts[1], "verdict": "opposite"}]
    (run / "01_kd.json").write_text(json.dumps({"notebook": "01_kd", "metrics": {
        "accuracy": {"kd": 0.95, "scratch": 0.805}, "verdicts": verdicts_now}}))
    report = compare(run, committed)
    assert report == {"01_kd": {"compared": 2, "moved": [("accuracy / kd", 0.90, 0.95)], "verdicts": 2,
                                "changed": [("verdicts / 1 / verdict", "not resolved", "opposite")],
                                "not_compared": [], "no_record": None}}
