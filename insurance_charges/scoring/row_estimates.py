"""Valid rows of a chunk estimated together by the core, each row's warnings joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.estimates import estimate_valid
from ..core.schema import FIELDS
from ..core.validation import ValidRecords
from ..tables.columns import ColumnRecords
from .formats import OUTPUT_COLUMNS, WARNING_SEPARATOR
from .validating import line_of, locate


@dataclass
class Estimated:
    """Valid rows' estimates, likely ranges and joined warnings, in row order."""

    count: int
    amounts: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    warnings: np.ndarray
    warning_count: int = 0
    records: Any = None


def estimate(
    model, columns: dict[str, np.ndarray], lines: np.ndarray, records: Sequence[dict] | None = None
) -> Estimated:
    """The estimates of valid rows given as ``columns`` (or as ``records``), on ``lines``."""
    count = len(lines)
    if count == 0:
        empty = np.empty(0)
        return Estimated(0, empty, None, None, np.empty(0, dtype=object))
    if records is None:
        if getattr(model, "fast", None) is None and hasattr(model, "pipeline"):
            # pipeline.predict reads real records: build them (the fast path reads columns)
            view = ColumnRecords(FIELDS, columns, count)
            records = ValidRecords([dict(view[i]) for i in range(count)], columns)
        else:
            records = ColumnRecords(FIELDS, columns, count)
    got = estimate_valid(model, records, locate=locate(lines))
    joined = np.full(count, "", dtype=object)
    if got.warnings:  # the core lists them by record, in order: join each record's run
        rows = np.searchsorted(lines, [line_of(w) for w in got.warnings])
        starts = np.flatnonzero(np.diff(rows, prepend=-1))
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)], strict=True):
            joined[rows[start]] = WARNING_SEPARATOR.join(w.message for w in got.warnings[start:end])
    return Estimated(
        count, got.amounts, got.lower, got.upper, joined, len(got.warnings), got.records
    )


def _estimate_arrays(estimates: Estimated) -> list[pa.Array]:
    count = estimates.count
    bounds = [
        pa.array(b, pa.float64()) if b is not None else pa.nulls(count, pa.float64())
        for b in (estimates.lower, estimates.upper)
    ]
    return [
        pa.array(estimates.amounts, pa.float64()),
        *bounds,
        pa.array(estimates.warnings, pa.string()),
    ]


def with_estimates(table: pa.Table, estimates: Estimated) -> pa.Table:
    """``table`` with the four columns each output row gets (formats.OUTPUT_COLUMNS)."""
    for name, array in zip(OUTPUT_COLUMNS, _estimate_arrays(estimates), strict=True):
        table = table.append_column(name, array)
    return table
