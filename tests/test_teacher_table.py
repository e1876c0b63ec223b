"""kdlab.teacher_table: the teacher's logits for every crop and flip, looked up by KD (notebook 02)."""

import pytest
import torch

import kdlab.teacher_table as tt
from kdlab.data import DeviceLoader
from kdlab.losses import CrossEntropy, Distillation
from kdlab.models import get_model
from kdlab.synthetic import make_concept_dataset
from kdlab.train import TrainConfig, cache_location, fit


@pytest.fixture(scope="module")
def data():
    return make_concept_dataset(n=48, seed=0, design="v1")


def teacher_for(data):
    torch.manual_seed(7)
    teacher = get_model("resnet8_w8", data.num_classes)
    for m in teacher.modules():  # running statistics away from 0 and 1, as a trained teacher's
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
    return teacher.eval()


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_table_holds_the_online_teachers_logits_for_each_view(data, tmp_path, channels_last):
    tt._last.clear()
    teacher = teacher_for(data)
    table = tt.logits_table(teacher, data, 4, True, "cpu", channels_last, cache_dir=tmp_path, progress=False)
    assert table.shape == (48, 162, data.num_classes) and table.dtype == torch.float32
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    teacher.to(memory_format=fmt)
    seen = set()
    with torch.inference_mode():
        for b in DeviceLoader(data, 16, train=True, pad=4, seed=0, views=True):
            online = teacher(b.x.contiguous(memory_format=fmt))
            looked_up = table[b.index, b.extras["view"]]
            assert (online - looked_up).abs().max() < 1e-5 * max(1.0, online.abs().max().item())
            seen.update(b.extras["view"].tolist())
    assert len(seen) > 10 and max(seen) >= 81  # crops of every kind, flipped and not


def test_the_table_is_cached_and_keyed_by_teacher_data_and_views(data, tmp_path, capsys):
    tt._last.clear()
    teacher = teacher_for(data)
    first = tt.logits_table(teacher, data, 1, False, cache_dir=tmp_path, progress=False)
    assert "Computed the teacher's logits for 48 images × 9 views" in capsys.readouterr().out
    assert tt.logits_table(teacher, data, 1, False, cache_dir=tmp_path, progress=False) is first
    assert capsys.readouterr().out == ""  # said once per process
    tt._last.clear()
    again = tt.logits_table(teacher, data, 1, False, cache_dir=tmp_path, progress=False)
    assert "Loaded the teacher's logits table from the cache" in capsys.readouterr().out
    assert torch.equal(first, again)
    tt.logits_table(teacher, data, 1, True, cache_dir=tmp_path, progress=False)
    tt.logits_table(teacher, data.subset(torch.arange(40)), 1, False, cache_dir=tmp_path, progress=False)
    with torch.no_grad():
        teacher.fc.bias.add_(1.0)
    tt.logits_table(teacher, data, 1, False, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("teacher-table-*.pt"))) == 4 and not list(tmp_path.glob(".*tmp"))


class Recorded(Distillation):
    def __init__(self):
        super().__init__(4.0, 0.5)
        self.losses = []

    def __call__(self, student, teacher, batch):
        loss, logits = super().__call__(student, teacher, batch)
        self.losses.append(loss.item())
        return loss, logits


def test_a_student_trained_with_the_table_follows_the_online_one(data, tmp_path):
    tt._last.clear()
    teacher, calls = teacher_for(data), []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    runs = {}
    for table in (False, True):
        cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=1, teacher_table=table)
        torch.manual_seed(0)
        student, objective = get_model("resnet8_w8", data.num_classes), Recorded()
        fit(student, data, objective, cfg, teacher=teacher, checkpoint=tmp_path / f"s{table}.pt",
            device="cpu", progress=False)
        runs[table] = objective.losses
        if not table:
            assert len(calls) == 6  # the online teacher: one pass per step
    assert len(calls) == 6 + 162  # the table: one pass per view (one batch of 48 images), none per step
    assert len(runs[True]) == len(runs[False]) == 6
    # not bit for bit: the table's batches round differently
    assert max(abs(a - b) for a, b in zip(runs[True], runs[False])) < 1e-3
    assert list(tmp_path.glob("teacher-table-*.pt"))


def test_the_table_is_opt_in_and_has_its_own_cache_key(data):
    assert "teacher_table" not in TrainConfig().key_fields()  # keys of earlier models unchanged
    student, teacher = get_model("resnet8_w8", data.num_classes), teacher_for(data)
    keys = {cache_location("s", student, data, Distillation(), TrainConfig(teacher_table=on), teacher)[0]
            for on in (False, True)}
    assert len(keys) == 2
    with pytest.raises(ValueError, match="teacher_table needs"):
        fit(student, data, CrossEntropy(), TrainConfig(epochs=1, batch_size=16, teacher_table=True),
            teacher=teacher, progress=False)
