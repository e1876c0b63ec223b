"""Exact per-unit quantiles of activations, streaming: step 1 of network dissection.

Taught in notebook 03. A unit's threshold T_k leaves a fraction `quantile` (0.005) of its
activations, over all spatial positions of all images, above it. NetDissect-Lite estimates it
with a streaming sketch; here it is exact (numpy's linear-interpolation quantile, bit for bit)
and still streaming: `TopQuantile` keeps only the k largest values per unit, k ≈ quantile × n.
"""

from __future__ import annotations

import math

import torch


def _quantile_position(n: int, quantile: float) -> tuple[int, int, float]:
    """numpy's linear quantile at 1 - quantile: the two ascending ranks and the weight."""
    pos = (1.0 - quantile) * (n - 1)
    lo = int(math.floor(pos))
    return lo, min(lo + 1, n - 1), pos - lo


def _lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    # numpy's _lerp, operation for operation, so thresholds match np.quantile bit for bit
    a, b = a.double(), b.double()
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def quantile_threshold(acts: torch.Tensor, quantile: float = 0.005) -> torch.Tensor:
    """T_k with a fraction `quantile` of unit k's activations above it, from all maps at once.

    acts: (N, units, h, w). Equals np.quantile(a_k, 1 - quantile) per unit. For small data
    (notebook 03's walk-through); `TopQuantile` gives the same numbers streaming.
    """
    flat = acts.transpose(0, 1).reshape(acts.shape[1], -1).float()
    tq = TopQuantile([quantile], flat.shape[1])
    tq.update(flat)
    return tq.thresholds()[0]


class TopQuantile:
    """Exact streaming per-unit quantiles: keeps the k largest values seen per unit.

    quantiles: the top fractions wanted (a list; the largest one's k serves them all).
    n: total number of values each unit will see. The threshold needs the order statistics
    at ascending ranks lo and lo+1 of n, which lie among the top n - lo values, so keeping
    k = n - lo values (≈ quantile·n) per unit is exact. Memory: units × k floats.
    """

    def __init__(self, quantiles: list[float], n: int):
        if not quantiles:
            raise ValueError("give at least one quantile")
        for q in quantiles:
            if not 0 < q < 1:
                raise ValueError(f"quantile must be in (0, 1), got {q}")
        self.n, self.seen = n, 0
        self.positions = [_quantile_position(n, q) for q in quantiles]
        self.k = max(n - lo for lo, _, _ in self.positions)
        self.top: torch.Tensor | None = None

    def update(self, values: torch.Tensor) -> None:
        """values: (units, m) new activations of every unit."""
        self.seen += values.shape[1]
        if self.seen > self.n:
            raise ValueError(f"TopQuantile was told to expect {self.n} values per unit, got {self.seen}")
        pool = values if self.top is None else torch.cat([self.top, values], dim=1)
        k = min(self.k, pool.shape[1])
        self.top = pool.topk(k, dim=1, sorted=False).values

    def thresholds(self) -> torch.Tensor:
        """(quantiles, units) thresholds, float32."""
        if self.seen != self.n:
            raise ValueError(f"expected {self.n} values per unit, saw {self.seen}")
        # On the CPU: the interpolation is done in float64, which Apple's MPS lacks.
        top = self.top.cpu().sort(dim=1, descending=True).values  # top[:, j]: ascending rank n-1-j
        return torch.stack([_lerp(top[:, self.n - 1 - lo], top[:, self.n - 1 - hi], t).float()
                            for lo, hi, t in self.positions])
