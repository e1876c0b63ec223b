"""Deciding a claim from per-seed numbers: paired differences, a t-interval, a verdict.

The rule for the conclusions notebooks 02, 04, 05 and 06 state (taught there; kdlab.claims
applies it to the claims fixed in params/claims.yaml). A claim compares two kinds of model
trained with the same seeds, so the evidence is the paired difference d = a - b per seed (or a minus
a constant). The rule is the paired t-interval of the mean of d, not a percentile bootstrap: with
no effect, the bootstrap's 95 % interval over 3, 5, 10 seeds contains zero only 76, 84, 90 % of
the time, the t-interval's 95 % (tests/test_verdicts.py measures both).

    shown         the (1-α) interval excludes zero on the side the claim states
    opposite      it excludes zero on the other side
    equivalent    within ±margin by two one-sided tests (TOST) at α: the (1-2α) interval
                  lies inside ±margin. A claim of direction "equal" (matched accuracy) is
                  equivalent, or opposite when the (1-α) interval lies wholly outside ±margin
    inconclusive  none of these: more seeds, or a larger effect, are needed
    not testable  no spread to judge by (under 2 pairs, all differences equal), or a
                  manipulation check the claim relies on failed (`reason` says which)

The margin is the smallest effect of interest, fixed in advance. A notebook's one or two primary
claims share α by Holm's step-down (`holm`, `decide_holm`); every other claim is exploratory, at
1-α on its own. `sign_flip_p` is an exact cross-check assuming no normal law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTCOMES = ("shown", "opposite", "equivalent", "inconclusive", "not testable")
DIRECTIONS = ("greater", "less", "equal")


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome: mean paired difference, its interval (at `level`) and the verdict."""

    claim: str
    mean: float
    low: float
    high: float
    n: int
    verdict: str
    p: float = math.nan           # two-sided t-test of mean 0; NaN when not testable
    level: float = 0.95           # the interval's level (1 - α/2 under Holm, 1 - 2α for "equal")
    margin: float = 0.0
    reason: str = ""              # why not testable
    beyond_margin: bool = False   # "equal" claims: the (1-α) interval lies outside ±margin

    def __str__(self) -> str:
        why = f"; {self.reason}" if self.reason else ""
        return (f"{self.claim}: {self.verdict} (mean difference {self.mean:+.3g}, {self.level:.1%} "
                f"interval [{self.low:+.3g}, {self.high:+.3g}], p = {self.p:.3g}, "
                f"{self.n} paired runs{why})")


def differences(a, b) -> np.ndarray:
    """a - b as float64, per seed; b may be one number (one-sample)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64)
    if b.ndim and b.size != a.size:
        raise ValueError(f"paired values need the same seeds: {a.shape} vs {b.shape}")
    d = a - (b.ravel() if b.ndim else b)
    if not np.isfinite(d).all():
        raise ValueError(f"paired differences must be finite, got {d.tolist()}")
    return d


def t_interval(d, level: float = 0.95):
    """(mean, low, high): the t-interval of the mean over the last axis of `d` (vectorised)."""
    d = np.asarray(d, dtype=np.float64)
    n, mean = d.shape[-1], d.mean(-1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * d.std(-1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def decide(claim: str, a, b, direction: str = "greater", level: float = 0.95,
           margin: float = 0.0, reason: str = "") -> Verdict:
    """Verdict on "a is `direction` than b" (greater, less, equal within ±margin), paired by
    position; b may be a number. `reason` (a failed check) makes it not testable."""
    if direction not in DIRECTIONS or direction == "equal" and not margin > 0:
        raise ValueError(f"{claim}: direction must be one of {DIRECTIONS} (equal needs a margin "
                         f"> 0), got {direction!r}, margin {margin!r}")
    d, alpha = differences(a, b), 1 - level
    n, mean = len(d), float(d.mean()) if len(d) else math.nan
    if n < 2 or np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # float noise: no spread
        zero = not np.any(np.asarray(a, dtype=float)) and not np.any(np.asarray(b, dtype=float))
        why = (f"{n} paired run(s): an interval needs 2" if n < 2
               else "both sides are 0 in every run: nothing to compare" if zero
               else f"every paired difference is {d[0]:+.3g}: no spread to judge it by")
        return Verdict(claim, mean, math.nan, math.nan, n, "not testable", math.nan, level, margin,
                       reason or why)
    p = float(2 * stats.t.sf(abs(mean) / (d.std(ddof=1) / math.sqrt(n)), n - 1))
    _, low, high = t_interval(d, level)
    _, eq_low, eq_high = t_interval(d, 1 - 2 * alpha)  # TOST's
    side = "greater" if low > 0 else "less" if high < 0 else None  # the side of zero, if any
    beyond = high < -margin or low > margin
    verdict = ("not testable" if reason
               else ("shown" if side == direction else "opposite") if side and direction != "equal"
               else "equivalent" if margin > 0 and -margin < eq_low and eq_high < margin
               else "opposite" if direction == "equal" and beyond  # shown to differ by > margin
               else "inconclusive")
    if direction == "equal":  # shown: the (1-2α) interval that TOST decides by
        low, high, level = eq_low, eq_high, 1 - 2 * alpha
    return Verdict(claim, mean, float(low), float(high), n, verdict, p, level, margin, reason,
                   bool(beyond and direction == "equal"))


def decide_equivalent(claim: str, a, b, margin: float, level: float = 0.95) -> Verdict:
    """Verdict on "a equals b within ±margin" (`decide`, direction "equal")."""
    return decide(claim, a, b, "equal", level, margin)


def tost_p(d, margin: float) -> float:
    """p of the two one-sided tests that the mean of `d` lies within ±margin (the larger one)."""
    d = np.asarray(d, dtype=np.float64)
    se, t = d.std(ddof=1) / math.sqrt(len(d)), stats.t(len(d) - 1)
    return float(max(t.sf((d.mean() + margin) / se), t.cdf((d.mean() - margin) / se)))


def sign_flip_p(d) -> float:
    """Exact two-sided p of mean zero from all 2^n sign flips of `d` (a null effect's differences
    are symmetric about zero); never below 2/2^n (0.25 at 3 seeds)."""
    d = np.asarray(d, dtype=np.float64).ravel()
    if not 1 <= len(d) <= 20:
        raise ValueError(f"sign flips enumerate 2^n cases for 1 <= n <= 20, got n = {len(d)}")
    signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    return float(np.mean(np.abs(signs @ d) >= abs(d.sum()) - tol))


def holm(p_values, alpha: float = 0.05) -> list[float]:
    """Holm's α per claim, in the order given: the i-th smallest p (from 0) is tested at α/(m-i)
    until one fails; it and all later keep that step's α (not rejected). Family-wise error <= α."""
    p = np.asarray(p_values, dtype=np.float64)
    if np.isnan(p).any():
        raise ValueError(f"Holm needs a p for every claim, got {p.tolist()}")
    levels, failed = [0.0] * len(p), None
    for i, j in enumerate(np.argsort(p, kind="stable")):
        levels[j] = failed if failed is not None else alpha / (len(p) - i)
        if failed is None and not p[j] <= levels[j]:
            failed = levels[j]
    return levels


def decide_holm(claims: list[dict], alpha: float = 0.05) -> list[Verdict]:
    """`decide` for primary claims (dicts of decide's keywords) at Holm's levels among the testable."""
    first = [decide(**c, level=1 - alpha) for c in claims]
    family = [i for i, v in enumerate(first) if v.verdict != "not testable"]
    ps = [tost_p(differences(claims[i]["a"], claims[i]["b"]), claims[i]["margin"])
          if claims[i].get("direction") == "equal" else first[i].p for i in family]
    for i, a_i in zip(family, holm(ps, alpha)):
        first[i] = decide(**claims[i], level=1 - a_i)
    return first


def paired(table, claim: str, metric: str, kind_a, kind_b, kind_column: str = "kind",
           seed_column: str = "seed", allow_unpaired: bool = False):
    """(a, b): `metric` of kind_a and kind_b in a long table, paired by seed (b: kind_b if it is
    a number). Refuses, naming the rows, a non-finite metric, a row without a seed, a repeated
    (kind, seed), and a seed without its partner (unless `allow_unpaired`: then left out)."""
    one_sample = isinstance(kind_b, (int, float)) and not isinstance(kind_b, bool)
    kinds, wanted = sorted(set(table[kind_column]), key=str), [kind_a] + ([] if one_sample else [kind_b])
    missing = [k for k in wanted if k not in kinds]
    if missing:
        raise KeyError(f"no {missing} rows in the table; kinds: {kinds}")
    rows = table[table[kind_column].isin(wanted)]
    _refuse_bad_rows(rows, claim, metric, kind_column, seed_column)
    wide = rows.pivot_table(index=seed_column, columns=kind_column, values=metric)[wanted]
    if one_sample:
        return wide[kind_a].to_numpy(), float(kind_b)
    both = wide.dropna()
    if len(both) < len(wide) and not allow_unpaired:
        alone = wide.drop(both.index).notna()
        listed = ", ".join(f"{seed!r} ({kind_a if alone.at[seed, kind_a] else kind_b} only)"
                           for seed in alone.index)
        raise ValueError(f"{claim}: {seed_column} {listed} has no partner of the other kind; "
                         "train the missing model, or pass allow_unpaired=True to decide on "
                         "the paired seeds alone")
    return both[kind_a].to_numpy(), both[kind_b].to_numpy()


def decide_table(table, claim: str, metric: str, kind_a, kind_b, direction: str = "greater",
                 kind_column: str = "kind", seed_column: str = "seed", allow_unpaired: bool = False,
                 margin: float = 0.0, level: float = 0.95, reason: str = "") -> Verdict:
    """`decide` on a long pandas table (a row per model: kind, seed, metrics), via `paired`."""
    a, b = paired(table, claim, metric, kind_a, kind_b, kind_column, seed_column, allow_unpaired)
    return decide(claim, a, b, direction, level, margin, reason)


def _refuse_bad_rows(rows, claim: str, metric: str, kind_column: str, seed_column: str) -> None:
    def named(part):
        return ", ".join(f"({k!r}, {seed_column} {s!r}): {v!r}"
                         for k, s, v in zip(part[kind_column], part[seed_column], part[metric]))

    values = np.asarray(rows[metric], dtype=np.float64)
    unseeded = rows[rows[seed_column].isna()]
    repeated = rows[rows.duplicated([kind_column, seed_column], keep=False)]
    if not np.isfinite(values).all():
        raise ValueError(f"{claim}: {metric!r} is not a finite number in the row(s) "
                         f"{named(rows[~np.isfinite(values)])}; a verdict over the other seeds would "
                         "not be the one designed. Find why, or drop its seed from both kinds")
    if len(unseeded):
        raise ValueError(f"{claim}: the row(s) {named(unseeded)} have no {seed_column} to pair by")
    if len(repeated):
        raise ValueError(f"{claim}: the rows {named(repeated)} repeat a (kind, {seed_column}): which "
                         "run counts? Keep one row per model (filter the table, e.g. by test set)")
