"""kdlab.runtime.progress: one summary line instead of one line and one bar per model."""

from __future__ import annotations

import pytest
import torch

from kdlab.runtime import progress
from kdlab.losses import CrossEntropy
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset
from kdlab.train import TrainConfig, load_or_train


def test_outside_a_block_every_report_is_printed(capsys):
    progress.report("trained", "Trained a model")
    assert capsys.readouterr().out == "Trained a model\n"


def test_a_block_counts_reports_and_prints_one_line(capsys):
    with progress.summary("3 students", total=3, enabled=False) as block:
        progress.report("loaded from the cache", "Loaded student 1")
        progress.report("loaded from the cache", "Loaded student 2")
        progress.report("trained", "Trained student 3")
        progress.report("teacher explanations loaded", "Loaded explanations")
    out = capsys.readouterr().out
    assert "Loaded student" not in out and "Trained student" not in out
    assert out.startswith("3 students: 2 loaded from the cache, 1 trained, teacher explanations loaded: 1 in ")
    assert out.count("\n") == 1
    assert block.counts == {"loaded from the cache": 2, "trained": 1, "teacher explanations loaded": 1}


def test_a_nested_block_reports_to_the_outer_one(capsys):
    with progress.summary("outer", enabled=False):
        with progress.summary("inner", enabled=False):
            progress.report("loaded from the cache", "x")
        progress.report("loaded from the cache", "y")
    assert capsys.readouterr().out == "outer: 2 loaded from the cache, 0 trained.\n"


def test_bars_are_hidden_inside_a_block_and_the_block_closes_on_errors():
    assert not progress.bar(10, "loop").disable
    with pytest.raises(RuntimeError):
        with progress.summary("failing", enabled=False):
            assert progress.bar(10, "loop").disable
            raise RuntimeError("boom")
    assert progress._open == []  # an error inside the block leaves nothing open
    assert not progress.bar(10, "loop").disable


def test_load_or_train_reports_through_the_block(tmp_path, capsys):
    data = make_concept_dataset(64, size=16, seed=0, design="v1")
    cfg = TrainConfig(epochs=1, batch_size=32, seed=0)

    def train():
        return load_or_train("tiny", lambda: get_model("resnet8_w8", data.num_classes, 3), data,
                             CrossEntropy(), cfg, cache_dir=tmp_path, device="cpu")

    with progress.summary("2 models", total=2, enabled=False):
        first, second = train(), train()
    assert not first.loaded and second.loaded
    assert torch.equal(first.model.conv1.weight, second.model.conv1.weight)
    assert capsys.readouterr().out.startswith("2 models: 1 loaded from the cache, 1 trained in ")


@pytest.mark.notebooks
def test_in_a_notebook_the_block_leaves_one_line_and_no_widget(tmp_path):
    """What a committed notebook keeps: the summary line in place of the bar, and a finished
    bar as one line of text; no tqdm widget (it would stay in the saved outputs, hidden)."""
    import nbformat
    from nbclient import NotebookClient

    source = ("from kdlab.runtime import progress\n"
              "with progress.summary('2 students', total=2):\n"
              "    progress.report('trained', 'Trained a')\n"
              "    progress.report('loaded from the cache', 'Loaded b')\n"
              "for _ in progress.bar(3, 'loop', iterable=range(3)):\n"
              "    pass\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "display_data"]
    assert all(set(o.data) == {"text/plain"} for o in outputs)
    assert outputs[0].data["text/plain"].startswith("2 students: 1 loaded from the cache, 1 trained in ")
    assert outputs[1].data["text/plain"].startswith("loop: 100%")
