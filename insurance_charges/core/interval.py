"""The likely range of an estimate: a split-conformal prediction interval (no Flask here).

Training (``training/calibrate.py``) turns out-of-sample residuals into per-group offsets and records
them in the model card's ``interval`` section; serving adds them to each prediction.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .validation import column_of

# 8 in 10: wide enough to plan with, narrow enough to mean something to a person.
LEVEL = 0.8
ALL = "all"  # the one group of an interval that is not split by a field


def conformal_quantile(values: Sequence[float], level: float) -> float:
    """The ceil((n + 1) * level)-th smallest value: split conformal's finite-sample quantile."""
    ordered = sorted(values)
    rank = min(math.ceil((len(ordered) + 1) * level), len(ordered))
    return float(ordered[rank - 1])


def _to_scale(truth: float, prediction: float, scale: str) -> float:
    # On the log scale a residual is a ratio, so the interval grows with the estimate.
    return math.log(truth / max(prediction, 1.0)) if scale == "log" else truth - prediction


def fit(truths: Sequence[float], predictions: Sequence[float], groups: Sequence[str], *,
        level: float = LEVEL, group_by: str | None = None, symmetric: bool = False,
        scale: str = "dollars", floor: float = 0.0) -> dict:
    """Interval spec from out-of-sample truths and predictions, one pair of offsets per group."""
    residuals: dict[str, list[float]] = {}
    for truth, prediction, group in zip(truths, predictions, groups):
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
    return {"level": level, "group_by": group_by, "symmetric": symmetric, "scale": scale,
            "floor": floor, "offsets": offsets}


def bounds(spec: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
           predictions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds at the spec's level for each prediction, over the whole batch."""
    predictions = np.asarray(predictions, dtype=np.float64)
    low, high = np.full_like(predictions, np.nan), np.full_like(predictions, np.nan)
    group_by = spec["group_by"]
    # One comparison per group, not per record; the card check at load guarantees an
    # offset for every value the group's field can take.
    groups = column_of(records, group_by) if group_by else None
    for key, offset in spec["offsets"].items():
        chosen = groups == key if group_by else slice(None)
        low[chosen], high[chosen] = offset["lower"], offset["upper"]
    if spec["scale"] == "log":
        low, high = predictions * np.exp(low), predictions * np.exp(high)
    else:
        low, high = predictions + low, predictions + high
    # Charges are never below the smallest bill seen in training; keep the range sane.
    return np.maximum(low, spec["floor"]), np.maximum(high, spec["floor"])


def coverage(spec: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
             predictions: Sequence[float], truths: Sequence[float], by: str) -> dict:
    """Share of truths inside their interval, overall and per value of field ``by``."""
    return coverage_of(*bounds(spec, records, predictions), records, truths, by)


def coverage_of(lower: Sequence[float], upper: Sequence[float],
                records: Sequence[Mapping[str, Any]], truths: Sequence[float], by: str) -> dict:
    """Share of truths inside the given bounds, overall and per value of field ``by``."""
    hits: dict[str, list[bool]] = {}
    widths = []
    for record, truth, low, high in zip(records, truths, lower, upper):
        inside = bool(low <= truth <= high)
        for key in (ALL, f"{by}={record[by]}"):
            hits.setdefault(key, []).append(inside)
        widths.append(float(high - low))
    share = {key: sum(values) / len(values) for key, values in sorted(hits.items())}
    return {"coverage": share.pop(ALL), "by_group": share, "rows": len(widths),
            "mean_width": sum(widths) / len(widths)}
