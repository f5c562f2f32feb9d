"""The fast path: a fitted PyCaret pipeline compiled to numpy, proven equal before it serves.

``build(pipeline)`` is the one entry point: it compiles the pipeline (``compiler``), runs the
compiled twin and the pipeline itself on the start-up sample (``parity``) and returns the twin
only if every prediction agrees within ``parity.TOLERANCE``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...core.schema import FIELD_NAMES
from .compiler import compile_pipeline
from .parity import STARTUP_SAMPLE, TOLERANCE, relative_differences, startup_sample
from .predictor import ROWS_BELOW, FastPredictor, inputs
from .steps import Unsupported

__all__ = ["FastPredictor", "Unsupported", "build"]


def build(pipeline, sample: int = STARTUP_SAMPLE) -> tuple[FastPredictor | None, str]:
    """Compile and verify the fast path; return it (or None) and the one line to log."""
    records = startup_sample(sample)
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
    except Exception as exc:  # noqa: BLE001 - an unforeseen pipeline must not stop start-up
        return None, off + f"compiling failed ({type(exc).__name__}: {exc})"
    want = pipeline.predict(frame)
    worst = float(np.max(relative_differences(got, want)))
    if not worst <= TOLERANCE:
        return None, off + (
            f"it differs from pipeline.predict by up to {worst:.1e} relative "
            f"(limit {TOLERANCE:.0e}) on {sample} records"
        )
    estimator = type(pipeline.steps[-1][1]).__name__
    fast, rows = _with_rows_proven(fast, records)
    return fast, (
        f"fast path on: {len(fast.steps)} preprocessing steps + {estimator}, "
        f"max relative difference {worst:.1e} vs pipeline.predict on {sample} records; "
        f"{rows}"
    )


def _with_rows_proven(fast: FastPredictor, records: list) -> tuple[FastPredictor, str]:
    """Keep record-by-record encoding only where it gives the column path's exact matrix."""
    if not fast.rows:
        return fast, "a few records are encoded column by column (a step has no per-record twin)"
    try:
        same = np.array_equal(
            fast.encode_rows(records), fast.encode(inputs(records)), equal_nan=True
        )
        why = "record by record differs"
    except Exception as exc:  # noqa: BLE001 - an unforeseen step must not stop start-up
        same, why = False, f"record by record failed: {type(exc).__name__}: {exc}"
    if not same:
        return (
            FastPredictor(fast.steps, fast.estimator, fast.features, rows=False),
            f"a few records are encoded column by column ({why})",
        )
    return fast, f"fewer than {ROWS_BELOW} records are encoded record by record, proven equal"
