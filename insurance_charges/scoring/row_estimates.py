"""Valid rows of a chunk estimated together by the core, each row's warnings joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..capture.lines import id_lines
from ..core.captures import is_sampled
from ..core.estimates import estimate_valid
from ..core.schema import FIELD_NAMES, FIELDS, INTEGER
from ..core.validation import ValidRecords
from ..tables.columns import ColumnRecords
from .formats import OUTPUT_COLUMNS, WARNING_SEPARATOR, inference_id
from .scored import Plan, Result
from .validating import line_of, locate


@dataclass
class Estimated:
    """Valid rows' estimates, likely ranges and joined warnings, in row order, with the rows'
    lines (their inference ids are ``<run id>-<line>``, formats.inference_id)."""

    count: int
    lines: np.ndarray
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
        return Estimated(0, lines, empty, None, None, np.empty(0, dtype=object))
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
        count, lines, got.amounts, got.lower, got.upper, joined, len(got.warnings), got.records
    )


CAPTURE_PATH = "/scoring"  # the capture record's path for an estimate the scorer made


def capture(model, plan: Plan, estimates: Estimated, result: Result) -> None:
    """With capture on, the scored rows' capture lines (those ``Plan.capture_percent`` samples)
    made here, in the worker, for the command to ship: ids as in the output."""
    if plan.capture_percent <= 0 or not estimates.count:
        return
    moment = datetime.now(UTC)
    ids = [inference_id(plan.run_id, line) for line in estimates.lines.tolist()]
    positions = (
        list(range(len(ids)))
        if plan.capture_percent >= 100
        else [k for k, name in enumerate(ids) if is_sampled(name, plan.capture_percent)]
    )
    records = estimates.records
    values = [
        records.column(f.name).astype(np.int64).tolist()
        if f.kind == INTEGER
        else records.column(f.name).tolist()
        for f in FIELDS
    ]
    rows = [dict(zip(FIELD_NAMES, row, strict=True)) for row in zip(*values, strict=True)]
    result.captured = id_lines(
        [ids[k] for k in positions],
        moment,
        model.version,
        CAPTURE_PATH,
        rows,
        estimates.amounts.tolist(),
        None if estimates.lower is None else estimates.lower.tolist(),
        None if estimates.upper is None else estimates.upper.tolist(),
        positions,
    )
    result.captured_records, result.captured_at = len(positions), moment


def id_array(run_id: str, lines: np.ndarray) -> pa.Array:
    """Each row's inference id (formats.inference_id), built by Arrow a column at a time."""
    numbers = pc.cast(pa.array(lines, pa.int64()), pa.string())
    return pc.binary_join_element_wise(pa.scalar(run_id + "-"), numbers, "")


def _estimate_arrays(estimates: Estimated, run_id: str) -> list[pa.Array]:
    count = estimates.count
    bounds = [
        pa.array(b, pa.float64()) if b is not None else pa.nulls(count, pa.float64())
        for b in (estimates.lower, estimates.upper)
    ]
    return [
        pa.array(estimates.amounts, pa.float64()),
        *bounds,
        pa.array(estimates.warnings, pa.string()),
        id_array(run_id, estimates.lines),
    ]


def with_estimates(table: pa.Table, estimates: Estimated, run_id: str) -> pa.Table:
    """``table`` with the columns each output row gets (formats.OUTPUT_COLUMNS), its inference
    id (``run_id``-line) last."""
    for name, array in zip(OUTPUT_COLUMNS, _estimate_arrays(estimates, run_id), strict=True):
        table = table.append_column(name, array)
    return table
