"""Deciding a claim from per-seed numbers: paired differences, a bootstrap interval, a verdict.

The decision rule for the conclusions the notebooks state (02, 04, 05, 06).

An experiment fixes its design, seeds and decision rule before it looks at the numbers. Each
claim compares two kinds of model trained with the same seeds ("KD has more concept detectors
than scratch"), so the unit of evidence is the *paired* difference per seed. The mean
difference gets a percentile-bootstrap 95 % interval (resampling the seeds), and the verdict
is computed from it:

    shown         the interval excludes zero in the direction the paper claims
    opposite      the interval excludes zero in the other direction
    not resolved  the interval contains zero: more seeds (or a larger effect) are needed

A claim that two things are the same ("frozen explanations train as well as online ones")
is decided against a margin fixed beforehand (`decide_equivalent`): shown when the whole
interval lies within ±margin, opposite when it lies entirely outside, not resolved otherwise.

With very few seeds the percentile bootstrap is optimistic (5 seeds have only 126 distinct
resamples), which is why the course asks for at least 5 seeds per kind, and why a verdict is
never stronger than "shown" at the stated seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

VERDICTS = ("shown", "opposite", "not resolved")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim: mean paired difference, its interval and the verdict."""

    claim: str
    mean: float
    low: float
    high: float
    n: int
    verdict: str

    def __str__(self) -> str:
        return (f"{self.claim}: {self.verdict} (mean difference {self.mean:+.3g}, "
                f"95 % interval [{self.low:+.3g}, {self.high:+.3g}], {self.n} paired runs)")


def bootstrap_interval(differences, level: float = 0.95, resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `differences` (deterministic for a seed)."""
    d = torch.as_tensor(differences, dtype=torch.float64).flatten()
    if len(d) < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 paired differences, got {len(d)}")
    if not torch.isfinite(d).all():
        raise ValueError(f"paired differences must be finite, got {d.tolist()}")
    g = torch.Generator().manual_seed(seed)
    means = d[torch.randint(len(d), (resamples, len(d)), generator=g)].mean(1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high


def decide(claim: str, a, b, direction: str = "greater", level: float = 0.95,
           seed: int = 0) -> Verdict:
    """Verdict on "a is `direction` than b" from paired per-seed values (same order of seeds).

    direction: "greater" (the paper claims a > b) or "less" (a < b).
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    a, b = (torch.tensor(np.asarray(v, dtype=np.float64)) for v in (a, b))  # copies: arrays may be read-only
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same seeds: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff = a - b
    low, high = bootstrap_interval(diff, level, seed=seed)
    if low > 0 or high < 0:  # the interval excludes zero: which side is it on?
        verdict = "shown" if (low > 0) == (direction == "greater") else "opposite"
    else:
        verdict = "not resolved"
    return Verdict(claim, diff.mean().item(), low, high, len(diff), verdict)


def decide_table(table, claim: str, metric: str, kind_a: str, kind_b: str,
                 direction: str = "greater", kind_column: str = "kind",
                 seed_column: str = "seed", allow_unpaired: bool = False) -> Verdict:
    """`decide` on a long pandas table (a row per model: kind, seed, metrics), paired by seed.

    Refuses, naming the rows, what `decide` refuses when given the values directly: a
    missing or non-finite `metric`, a row without a seed, and two rows of one kind with the
    same seed (which of them is the run?). A seed of one kind without its partner of the other
    is an error too, unless `allow_unpaired`: it is then left out, and the verdict's n says
    how many pairs remain.
    """
    kinds = sorted(set(table[kind_column]), key=str)
    missing = [k for k in (kind_a, kind_b) if k not in kinds]
    if missing:
        raise KeyError(f"no {missing} rows in the table; kinds: {kinds}")
    rows = table[table[kind_column].isin([kind_a, kind_b])]
    _refuse_bad_rows(rows, claim, metric, kind_column, seed_column)
    wide = rows.pivot_table(index=seed_column, columns=kind_column, values=metric)[[kind_a, kind_b]]
    paired = wide.dropna()
    if len(paired) < len(wide) and not allow_unpaired:
        alone = wide.drop(paired.index).notna()
        listed = ", ".join(f"{seed!r} ({kind_a if alone.at[seed, kind_a] else kind_b} only)"
                           for seed in alone.index)
        raise ValueError(f"{claim}: {seed_column} {listed} has no partner of the other kind; "
                         "train the missing model, or pass allow_unpaired=True to decide on "
                         "the paired seeds alone")
    return decide(claim, paired[kind_a].to_numpy(), paired[kind_b].to_numpy(), direction)


def _refuse_bad_rows(rows, claim: str, metric: str, kind_column: str, seed_column: str) -> None:
    """ValueError naming the (kind, seed) rows whose metric is not a finite number, that have
    no seed, or that share their kind and seed with another row."""
    def named(part):
        return ", ".join(f"({k!r}, {seed_column} {s!r}): {v!r}"
                         for k, s, v in zip(part[kind_column], part[seed_column], part[metric]))

    values = np.asarray(rows[metric], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{claim}: {metric!r} is not a finite number in the row(s) "
                         f"{named(rows[~np.isfinite(values)])}; a verdict over the other seeds "
                         "would not be the one designed. Find why that run has no number, or "
                         "drop its seed from both kinds")
    unseeded = rows[rows[seed_column].isna()]
    if len(unseeded):
        raise ValueError(f"{claim}: the row(s) {named(unseeded)} have no {seed_column}, so they "
                         "cannot be paired")
    repeated = rows[rows.duplicated([kind_column, seed_column], keep=False)]
    if len(repeated):
        raise ValueError(f"{claim}: the rows {named(repeated)} repeat a (kind, {seed_column}); "
                         "averaging them would hide which run counts. Keep one row per model "
                         "(filter the table, e.g. by test set) first")


def decide_equivalent(claim: str, a, b, margin: float, level: float = 0.95, seed: int = 0) -> Verdict:
    """Verdict on "a equals b within ±margin" from paired per-seed values."""
    a, b = (torch.tensor(np.asarray(v, dtype=np.float64)) for v in (a, b))
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same seeds: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff = a - b
    low, high = bootstrap_interval(diff, level, seed=seed)
    if -margin < low and high < margin:
        verdict = "shown"
    elif high <= -margin or low >= margin:
        verdict = "opposite"
    else:
        verdict = "not resolved"
    return Verdict(claim, diff.mean().item(), low, high, len(diff), verdict)
