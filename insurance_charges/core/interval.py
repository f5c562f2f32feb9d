"""The likely range of an estimate: a split-conformal prediction interval (no Flask here).

Training (``training/conformal.py``) turns out-of-sample residuals into per-group offsets and
records them in the model card's ``interval`` section; serving adds them to every prediction
of a batch at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .schema import BY_NAME
from .validation import codes_of

# 8 in 10: wide enough to plan with, narrow enough to mean something to a person.
LEVEL = 0.8
ALL = "all"  # the one group of an interval that is not split by a field


def bounds(
    spec: Mapping[str, Any], records: Sequence[dict], predictions: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds at the spec's level for each prediction, over the whole batch."""
    predictions = np.asarray(predictions, dtype=np.float64)
    offsets, group_by = spec["offsets"], spec["group_by"]
    if group_by:  # each record's offsets gathered by its group's code, not compared per group
        # The card check at load guarantees an offset for every choice of the group's field.
        choices = BY_NAME[group_by].choices
        codes = codes_of(records, group_by)
        low = np.array([offsets[c]["lower"] for c in choices])[codes]
        high = np.array([offsets[c]["upper"] for c in choices])[codes]
    else:
        low = np.full_like(predictions, offsets[ALL]["lower"])
        high = np.full_like(predictions, offsets[ALL]["upper"])
    if spec["scale"] == "log":
        low, high = predictions * np.exp(low), predictions * np.exp(high)
    else:
        low, high = predictions + low, predictions + high
    # Charges are never below the smallest bill seen in training; keep the range sane.
    return np.maximum(low, spec["floor"]), np.maximum(high, spec["floor"])
