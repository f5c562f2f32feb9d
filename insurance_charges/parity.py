"""Prove the compiled fast path gives pipeline.predict's numbers before serving with it."""
from __future__ import annotations

import itertools
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .fastpath import FastPredictor, Unsupported, compile_pipeline
from .schema import CATEGORY, FIELD_NAMES, FIELDS, INTEGER

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
    return [dict(zip(FIELD_NAMES, combo)) for combo in itertools.product(*options)]


def valid_records(count: int, seed: int = 0,
                  ranges: Mapping[str, Mapping] | None = None) -> list[dict[str, Any]]:
    """``count`` schema-valid records: the corners first, then uniform random ones.

    Numbers span the schema's limits, or ``ranges`` (e.g. the card's training ranges).
    """
    rng = np.random.default_rng(seed)
    records = corner_records(ranges)[:count]
    for _ in range(count - len(records)):
        record = {}
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


def build(pipeline, sample: int = STARTUP_SAMPLE) -> tuple[FastPredictor | None, str]:
    """Compile and verify the fast path; return it (or None) and the one line to log."""
    records = valid_records(sample)
    frame = pd.DataFrame.from_records(records, columns=list(FIELD_NAMES))
    off = "fast path off, serving through pipeline.predict: "
    try:
        fast = compile_pipeline(pipeline, frame)
        with warnings.catch_warnings():
            # A warning here (e.g. about feature names) would be raised on every request.
            warnings.simplefilter("error")
            got = fast.predict(records)
    except Unsupported as exc:
        return None, off + str(exc)
    except Exception as exc:  # an unforeseen pipeline must not stop start-up
        return None, off + f"compiling failed ({type(exc).__name__}: {exc})"
    want = pipeline.predict(frame)
    worst = float(np.max(relative_differences(got, want)))
    if not worst <= TOLERANCE:
        return None, off + (f"it differs from pipeline.predict by up to {worst:.1e} relative "
                            f"(limit {TOLERANCE:.0e}) on {sample} records")
    estimator = type(pipeline.steps[-1][1]).__name__
    return fast, (f"fast path on: {len(fast.steps)} preprocessing steps + {estimator}, "
                  f"max relative difference {worst:.1e} vs pipeline.predict on {sample} records")
