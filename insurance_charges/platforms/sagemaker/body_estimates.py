"""Records of a CSV or JSON-lines body estimated through the core, a chunk at a time.

A 6 MB CSV body holds about 200,000 records, twenty times the API's batch; each chunk goes
through ``core.estimates.estimate_valid`` (the model, the likely range, the training-range
warnings) so the memory of one request stays bounded whatever SAGEMAKER_MAX_PAYLOAD_IN_MB
allows. Warnings point at ``/<line>/<field>``.
"""

from __future__ import annotations

import numpy as np

from ...core.estimates import Estimates, Estimator, estimate_valid
from ...core.schema import FIELDS
from ...core.validation import Locate, ValidRecords, columns_of
from ...tables.columns import ColumnRecords
from .decoding import Decoded

# The file scorer's chunk (its page in docs/, "How it works and how fast"): 50,000 rows cost
# a core about 0.1 s and a few tens of MB, so a request's memory stays flat however large its
# payload.
CHUNK_ROWS = 50_000


def _chunk(
    model: Estimator, records: ValidRecords, columns: dict, start: int, end: int
) -> ValidRecords:
    part = {name: values[start:end] for name, values in columns.items()}
    if not isinstance(records, ColumnRecords):
        return ValidRecords(records[start:end], part)
    chunk = ColumnRecords(FIELDS, part, len(part[FIELDS[0].name]))  # records built on demand
    if getattr(model, "fast", True) is None:
        # Served through pipeline.predict, which reads whole records, not columns.
        return ValidRecords([dict(record) for record in chunk], part)
    return chunk


def estimate_lines(model: Estimator, decoded: Decoded, chunk_rows: int = CHUNK_ROWS) -> Estimates:
    """One batch answer for every record of a body, in body order."""
    records, lines = decoded.records, decoded.lines
    spec, columns = model.likely_range, columns_of(records)

    def located_from(offset: int) -> Locate:
        return lambda i: f"/{int(lines[offset + i])}"

    parts = [
        estimate_valid(
            model,
            _chunk(model, records, columns, start, start + chunk_rows),
            locate=located_from(start),
        )
        for start in range(0, len(records), chunk_rows)
    ]
    joined = (
        (lambda name: np.concatenate([getattr(p, name) for p in parts]))
        if parts
        else (lambda name: np.empty(0))
    )
    return Estimates(
        batch=True,
        records=records,
        amounts=joined("amounts"),
        lower=joined("lower") if spec is not None else None,
        upper=joined("upper") if spec is not None else None,
        level=spec["level"] if spec is not None else None,
        warnings=[w for p in parts for w in p.warnings],
        model_version=model.version,
    )
