"""The likely range of an estimate: a split-conformal prediction interval (no Flask here).

Training (``training/conformal.py``) turns out-of-sample residuals into per-group offsets and
records them in the model card's ``interval`` section; serving adds them to every prediction
of a batch at once.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .validation import column_of

# 8 in 10: wide enough to plan with, narrow enough to mean something to a person.
LEVEL = 0.8
ALL = "all"  # the one group of an interval that is not split by a field


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
