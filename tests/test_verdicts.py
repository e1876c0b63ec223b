"""Computed verdicts: paired bootstrap intervals and the three outcomes."""

import pandas as pd
import pytest

from kdlab.verdicts import bootstrap_interval, decide, decide_equivalent, decide_table


def test_a_consistent_gain_is_shown_and_its_reverse_is_opposite():
    kd, scratch = [12, 13, 11, 14, 12], [10, 10, 9, 11, 10]
    shown = decide("KD > scratch", kd, scratch, "greater")
    assert shown.verdict == "shown" and shown.mean == pytest.approx(2.4) and shown.low > 0
    assert decide("KD < scratch", kd, scratch, "less").verdict == "opposite"
    assert decide("scratch > KD", scratch, kd, "greater").verdict == "opposite"


def test_differences_of_both_signs_are_not_resolved():
    v = decide("KD > scratch", [12, 9, 11, 8, 10], [10, 10, 10, 10, 10])
    assert v.verdict == "not resolved" and v.low < 0 < v.high


def test_interval_brackets_the_mean_and_is_deterministic():
    d = [0.3, -0.1, 0.5, 0.2, 0.0, 0.4]
    low, high = bootstrap_interval(d)
    assert low < sum(d) / len(d) < high
    assert (low, high) == bootstrap_interval(d)  # the same seed, the same interval
    assert min(d) <= low and high <= max(d)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_interval([1.0])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="same seeds"):
        decide("x", [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="direction"):
        decide("x", [1, 2], [0, 1], "bigger")


def test_decide_table_pairs_by_seed():
    rows = [("kd", s, 10 + s) for s in range(5)] + [("scratch", s, 8 + s) for s in reversed(range(5))]
    table = pd.DataFrame(rows, columns=["kind", "seed", "detectors"])
    v = decide_table(table, "KD > scratch", "detectors", "kd", "scratch")
    assert v.verdict == "shown" and v.mean == 2 and v.low == 2 and v.high == 2 and v.n == 5
    with pytest.raises(KeyError, match="ls"):
        decide_table(table, "LS < scratch", "detectors", "ls", "scratch", "less")


def test_equivalence_against_a_margin():
    online = [0.80, 0.72, 0.91, 0.66]
    assert decide_equivalent("same", [0.81, 0.71, 0.91, 0.67], online, 0.02).verdict == "shown"
    assert decide_equivalent("same", [0.90, 0.82, 1.0, 0.76], online, 0.02).verdict == "opposite"
    assert decide_equivalent("same", [0.83, 0.70, 0.95, 0.64], online, 0.02).verdict == "not resolved"
