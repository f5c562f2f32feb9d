"""The records that prove the compiled fast path gives pipeline.predict's numbers."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...core.schema import CATEGORY, FIELD_NAMES, FIELDS, INTEGER

# Largest accepted |fast - pipeline| / |pipeline| on any record.
TOLERANCE = 1e-9
# Records checked at start-up: every corner of the schema's box plus random ones (~20 ms).
STARTUP_SAMPLE = 256


def _limits(f, ranges: Mapping[str, Mapping] | None) -> tuple:
    span = (ranges or {}).get(f.name, {"min": f.minimum, "max": f.maximum})
    kind = int if f.kind == INTEGER else float
    return kind(span["min"]), kind(span["max"])


def corner_records(ranges: Mapping[str, Mapping] | None = None) -> list[dict[str, Any]]:
    """Every combination of each number's limits with every category: the schema's corners."""
    options = [f.choices if f.kind == CATEGORY else _limits(f, ranges) for f in FIELDS]
    return [dict(zip(FIELD_NAMES, combo, strict=True)) for combo in itertools.product(*options)]


def random_records(
    count: int, seed: int = 0, ranges: Mapping[str, Mapping] | None = None
) -> list[dict[str, Any]]:
    """``count`` uniformly random schema-valid records (numbers within ``ranges`` if given)."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(count):
        record: dict[str, Any] = {}
        for f in FIELDS:
            if f.kind == CATEGORY:
                record[f.name] = f.choices[rng.integers(len(f.choices))]
            elif f.kind == INTEGER:
                low, high = _limits(f, ranges)
                record[f.name] = int(rng.integers(low, high + 1))
            else:
                record[f.name] = float(rng.uniform(*_limits(f, ranges)))
        records.append(record)
    return records


def relative_differences(got, want) -> np.ndarray:
    """|got - want| / |want| per prediction (0 where both are exactly equal)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(got - want) / np.abs(want)
    return np.where(got == want, 0.0, rel)


def startup_sample(count: int = STARTUP_SAMPLE) -> list[dict[str, Any]]:
    """The records checked at start-up: every corner of the schema's box, then random ones."""
    corners = corner_records()[:count]
    return corners + random_records(count - len(corners))
