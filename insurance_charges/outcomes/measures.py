"""How right estimates were: error measures and the likely range's coverage (numpy only).

Coverage's confidence interval is Wilson's score interval: closed form (no SciPy), and its
actual coverage stays close to the nominal 95% for proportions near 80% even with a few dozen
records, where Clopper-Pearson's exact interval is wider than it needs to be (it guarantees at
least 95%, so it would be slower to say that a range has stopped holding). docs/outcomes.md
says more.
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
# The standard normal's 97.5th percentile: the z of a two-sided 95% interval.
Z = 1.959963984540054


def wilson(covered: int, records: int, z: float = Z) -> tuple[float, float]:
    """Wilson's score interval for ``covered`` successes in ``records`` trials."""
    if records <= 0:
        raise ValueError("a proportion of no records has no interval")
    p = covered / records
    spread = z * z / records
    centre = (p + spread / 2) / (1 + spread)
    half = z * math.sqrt(p * (1 - p) / records + spread / (4 * records)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def measures(estimate: np.ndarray, charges: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    """Records, MAE, RMSE, R², mean error and coverage (with its interval) of one group.

    ``low`` and ``high`` are NaN for records without a likely range; coverage counts only
    records with one (``ranged``). The mean error is estimate minus bill: above 0, the
    estimates were too high on average.
    """
    error = estimate - charges
    records = len(error)
    if not records:
        raise ValueError("no records to measure")
    squares = float(np.sum(error * error))
    spread = float(np.sum((charges - charges.mean()) ** 2))
    ranged = ~np.isnan(low)
    covered = int(np.sum((low[ranged] <= charges[ranged]) & (charges[ranged] <= high[ranged])))
    count = int(ranged.sum())
    return {
        "records": records,
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(squares / records),
        # R² needs bills that differ: with one record, or all alike, it is undefined.
        "r2": 1 - squares / spread if records > 1 and spread > 0 else None,
        "bias": float(np.mean(error)),
        "ranged": count,
        "covered": covered,
        "coverage": covered / count if count else None,
        "coverage_interval": list(wilson(covered, count)) if count else None,
    }
