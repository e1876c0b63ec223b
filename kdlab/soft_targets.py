"""Fixed soft targets that carry a chosen class similarity, without a teacher: notebook 02's
mechanism students (notebook 04 dissects them).

Han et al. (ICML 2023) argue that KD makes students more interpretable because the teacher's
soft labels carry class similarity. These targets test the mechanism directly. A class-y
image's target is (1 − m)·onehot(y) + m·G[y], G row-stochastic with a zero diagonal: the same
wrong-class mass m spread evenly over the other classes of y's group, one of

    family    y's shape family (kdlab.synthetic.class_family; 4 groups of 3)
    permuted  y's group in PERMUTED, a fixed random partition of the 12 classes into 4 groups
              of 3: the families' sizes, hence the same entropy, but no visual meaning (no
              group lies within one family or one part). The control for `family`.
    uniform   all other classes: label smoothing with ε = m·K/(K − 1)
    part      the classes with y's distinctive part (3 groups of 4)

The loss is the cross-entropy with these targets (the cost of a scratch student). The groups
exist for the synthetic data's 12 classes only; `uniform` works for any number of classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .synthetic import CLASSES, PARTS, class_family

KINDS = ("family", "permuted", "uniform", "part")
PERMUTATION_SEED = 0


def permuted_partition(seed: int = PERMUTATION_SEED) -> list[int]:
    """The group of each of the 12 classes in a random partition into 4 groups of 3, drawn
    with `seed` (torch.randperm, classes in order of the permutation, three per group) and
    drawn again while a group lies within one shape family or one part."""
    g = torch.Generator().manual_seed(seed)
    while True:
        groups = torch.randperm(len(CLASSES), generator=g).view(4, 3)
        if all(len({class_family(int(c)) for c in row}) > 1 and len({int(c) % len(PARTS) for c in row}) > 1
               for row in groups):
            break
    group = [0] * len(CLASSES)
    for i, row in enumerate(groups.tolist()):
        for c in row:
            group[c] = i
    return group


# seed 0's first draw: {disk-eye, square-vbar, triangle-vbar}, {square-hbar, triangle-hbar,
# diamond-eye}, {disk-vbar, square-eye, diamond-hbar}, {disk-hbar, triangle-eye, diamond-vbar}.
# No group holds two classes of one family (its targets put nothing on the family; 1/6 of m on
# the same part, against 3/11 if spread evenly).
PERMUTED = permuted_partition()


def groups_of(kind: str) -> list[int] | None:
    """The group of each synthetic class for `kind` (None for uniform: one group of all)."""
    if kind not in KINDS:
        raise ValueError(f"soft-target kind must be one of {KINDS}, got {kind!r}")
    classes = range(len(CLASSES))
    return {"family": [class_family(c) for c in classes], "part": [c % len(PARTS) for c in classes],
            "permuted": PERMUTED, "uniform": None}[kind]


def target_matrix(groups: list[int] | None, num_classes: int, mass: float) -> torch.Tensor:
    """K × K: row y is the target of a class-y image, (1 − mass)·onehot(y) + mass·G[y], G
    spreading evenly over the other classes of y's group (all other classes for None)."""
    if groups is not None and len(groups) != num_classes:
        raise ValueError(f"these groups are defined for {len(groups)} classes (the synthetic data's), "
                         f"not {num_classes}")
    labels = torch.as_tensor(groups if groups is not None else [0] * num_classes)
    others = (labels[:, None] == labels[None, :]).float().fill_diagonal_(0)
    return (1 - mass) * torch.eye(num_classes) + mass * others / others.sum(1, keepdim=True)


class SoftTargets:
    """Cross-entropy with fixed soft targets of one `kind` and wrong-class mass `mass`
    (an objective like kdlab.losses.CrossEntropy: no teacher)."""

    def __init__(self, kind: str, mass: float):
        if not 0.0 <= mass < 1.0:
            raise ValueError(f"the wrong-class mass must be in [0, 1), got {mass}")
        self.kind, self.mass, self.groups = kind, mass, groups_of(kind)
        self._matrix = None

    def matrix(self, num_classes: int) -> torch.Tensor:
        if self._matrix is None or len(self._matrix) != num_classes:
            self._matrix = target_matrix(self.groups, num_classes, self.mass)
        return self._matrix

    def __call__(self, student, teacher, batch):
        logits = student(batch.x)
        targets = self.matrix(logits.shape[1]).to(logits.device)[batch.y]
        return F.cross_entropy(logits.float(), targets), logits

    def config(self) -> dict:
        return {"objective": "soft_targets", "kind": self.kind, "mass": self.mass, "groups": self.groups}
