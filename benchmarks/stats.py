"""Order statistics shared by the benchmarks and the end-to-end health sampler."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of `values` by nearest rank; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
