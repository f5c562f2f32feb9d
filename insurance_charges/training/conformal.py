"""Split-conformal fitting and coverage, at training time: offsets per group from residuals.

Serving only adds the fitted offsets (``core/interval.py``); everything here runs in training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.interval import ALL, LEVEL, bounds


def conformal_quantile(values: Sequence[float], level: float) -> float:
    """The ceil((n + 1) * level)-th smallest value: split conformal's finite-sample quantile."""
    ordered = sorted(values)
    rank = min(math.ceil((len(ordered) + 1) * level), len(ordered))
    return float(ordered[rank - 1])


def _to_scale(truth: float, prediction: float, scale: str) -> float:
    # On the log scale a residual is a ratio, so the interval grows with the estimate.
    return math.log(truth / max(prediction, 1.0)) if scale == "log" else truth - prediction


def fit(
    truths: Sequence[float],
    predictions: Sequence[float],
    groups: Sequence[str],
    *,
    level: float = LEVEL,
    group_by: str | None = None,
    symmetric: bool = False,
    scale: str = "dollars",
    floor: float = 0.0,
) -> dict:
    """Interval spec from out-of-sample truths and predictions, one pair of offsets per group."""
    residuals: dict[str, list[float]] = {}
    for truth, prediction, group in zip(truths, predictions, groups, strict=True):
        key = group if group_by else ALL
        residuals.setdefault(key, []).append(_to_scale(truth, prediction, scale))
    offsets = {}
    for key, values in sorted(residuals.items()):
        if symmetric:
            half = conformal_quantile([abs(v) for v in values], level)
            low, high = -half, half
        else:  # each tail holds (1 - level) / 2, so skewed errors give a lopsided interval
            tail = (1 + level) / 2
            low = -conformal_quantile([-v for v in values], tail)
            high = conformal_quantile(values, tail)
        offsets[key] = {"lower": low, "upper": high, "n": len(values)}
    return {
        "level": level,
        "group_by": group_by,
        "symmetric": symmetric,
        "scale": scale,
        "floor": floor,
        "offsets": offsets,
    }


def coverage(
    spec: Mapping[str, Any],
    records: Sequence[dict],
    predictions: Sequence[float],
    truths: Sequence[float],
    by: str,
) -> dict:
    """Share of truths inside their interval, overall and per value of field ``by``."""
    return coverage_of(*bounds(spec, records, predictions), records, truths, by)


def coverage_of(
    lower: Sequence[float] | np.ndarray,
    upper: Sequence[float] | np.ndarray,
    records: Sequence[Mapping[str, Any]],
    truths: Sequence[float],
    by: str,
) -> dict:
    """Share of truths inside the given bounds, overall and per value of field ``by``."""
    hits: dict[str, list[bool]] = {}
    widths = []
    for record, truth, low, high in zip(records, truths, lower, upper, strict=True):
        inside = bool(low <= truth <= high)
        for key in (ALL, f"{by}={record[by]}"):
            hits.setdefault(key, []).append(inside)
        widths.append(float(high - low))
    share = {key: sum(values) / len(values) for key, values in sorted(hits.items())}
    return {
        "coverage": share.pop(ALL),
        "by_group": share,
        "rows": len(widths),
        "mean_width": sum(widths) / len(widths),
    }
