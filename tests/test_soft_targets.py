"""Fixed soft targets (kdlab.soft_targets): notebook 02's test of Han et al.'s mechanism."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from kdlab import soft_targets
from kdlab.data import Batch
from kdlab.losses import CrossEntropy
from kdlab.recipes import KINDS, SOFT_KINDS, Recipe, student_name
from kdlab.soft_targets import PERMUTED, SoftTargets, groups_of, permuted_partition, target_matrix
from kdlab.synthetic import CLASSES, class_family

K, M = len(CLASSES), 0.3


@pytest.mark.parametrize("kind", soft_targets.KINDS)
def test_rows_are_distributions_with_1_minus_m_on_the_true_class(kind):
    t = target_matrix(groups_of(kind), K, M)
    assert torch.allclose(t.sum(1), torch.ones(K))
    assert torch.allclose(t.diagonal(), torch.full((K,), 1 - M))
    assert (t >= 0).all()


def test_family_targets_put_the_mass_evenly_on_the_family():
    t = target_matrix(groups_of("family"), K, M)
    for y in range(K):
        family = [c for c in range(K) if class_family(c) == class_family(y) and c != y]
        assert t[y, family].sum().item() == pytest.approx(M)
        assert torch.allclose(t[y, family], torch.full((len(family),), M / len(family)))


def test_part_and_uniform_targets():
    part = target_matrix(groups_of("part"), K, M)
    assert part[0, [3, 6, 9]].sum().item() == pytest.approx(M)  # disk-eye: the other eyes
    uniform = target_matrix(groups_of("uniform"), K, M)
    off = uniform[~torch.eye(K, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, M / (K - 1)))


def test_the_permuted_partition_has_the_families_sizes_and_none_of_their_groups():
    assert permuted_partition() == PERMUTED  # fixed by its seed
    assert sorted(Counter(PERMUTED).values()) == sorted(Counter(groups_of("family")).values()) == [3] * 4
    groups = [{c for c in range(K) if PERMUTED[c] == g} for g in set(PERMUTED)]
    for kind in ("family", "part"):
        other = [{c for c in range(K) if groups_of(kind)[c] == g} for g in set(groups_of(kind))]
        assert not any(group <= o for group in groups for o in other), kind
    # the same entropy as the family targets, row by row
    entropy = [(-(t * t.clamp_min(1e-12).log()).sum(1)) for t in
               (target_matrix(PERMUTED, K, M), target_matrix(groups_of("family"), K, M))]
    assert torch.allclose(*entropy)


def test_soft_uniform_is_label_smoothing():
    torch.manual_seed(0)
    logits, y = torch.randn(16, K), torch.randint(0, K, (16,))
    model = lambda x: logits  # noqa: E731 - the objective only calls the student
    batch = Batch(x=torch.zeros(16, 1), y=y, index=torch.arange(16))
    soft, _ = SoftTargets("uniform", M)(model, None, batch)
    ls, _ = CrossEntropy(M * K / (K - 1))(model, None, batch)
    assert soft.item() == pytest.approx(ls.item(), rel=1e-6)
    family, _ = SoftTargets("family", M)(model, None, batch)
    expected = -(target_matrix(groups_of("family"), K, M)[y] * F.log_softmax(logits, 1)).sum(1).mean()
    assert family.item() == pytest.approx(expected.item(), rel=1e-6)


def test_recipes_know_the_soft_kinds():
    assert set(SOFT_KINDS) <= set(KINDS["student"])
    recipe = Recipe("student", "soft_permuted", soft_mass=0.4)
    assert not recipe.distils and recipe.name(seed=2) == student_name("soft_permuted", 2) == "student-soft_permuted-seed2"
    config = recipe.objective().config()
    assert config == {"objective": "soft_targets", "kind": "permuted", "mass": 0.4, "groups": PERMUTED}
    assert Recipe("student", "soft_family").objective().config() != Recipe("student", "soft_part").objective().config()
    # the older kinds' objectives, hence their cache keys, are unchanged
    assert Recipe("student", "scratch").objective().config() == CrossEntropy().config()


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        groups_of("shape")
    with pytest.raises(ValueError, match="mass"):
        SoftTargets("family", 1.0)
    with pytest.raises(ValueError, match="12 classes"):
        target_matrix(groups_of("family"), 10, M)
    assert target_matrix(None, 10, M).shape == (10, 10)  # uniform: any number of classes
