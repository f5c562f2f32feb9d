"""The compiled pipeline at work: records in, the estimator's matrix and predictions out.

``compiler.compile_pipeline`` builds a ``FastPredictor`` from fitted steps; this module is what
runs on every request: a batch is encoded a column at a time (categories as ``Coded`` positions
in the schema's choices), a few records one record at a time, and the estimator takes the matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...core.schema import CATEGORY, FIELDS
from ...core.validation import ValidRecords
from .steps import Coded, Compiled

# Below this many records, encoding record by record in plain Python beats numpy column by
# column: one record 0.015 ms against 0.058, three 0.024 against 0.032, about equal at four
# (python -m bench.micro); the estimator still takes them in one call.
ROWS_BELOW = 4


class Step:
    """One compiled wrapper: apply to its included columns, then lay out the columns in order."""

    def __init__(self, name: str, include: list[str], compiled: Compiled, order: list[str]):
        self.name, self.include, self.order = name, include, order
        self.apply, self.produced, self.apply_row = compiled

    def __call__(self, columns: dict) -> dict:
        """Transform the column dict the way the PyCaret wrapper does."""
        return self._lay_out(self.apply([columns[n] for n in self.include]), columns)

    def row(self, values: dict) -> dict:
        """Transform one record's values the same way (only if ``apply_row`` exists)."""
        if self.apply_row is None:  # FastPredictor goes record by record only if every step can
            raise TypeError(f"step {self.name!r} has no record-by-record form")
        return self._lay_out(self.apply_row([values[n] for n in self.include]), values)

    def _lay_out(self, produced: list, given: dict) -> dict:
        out = dict(zip(self.produced, produced, strict=True))
        return {name: out[name] if name in out else given[name] for name in self.order}


class FastPredictor:
    """The compiled pipeline: numpy preprocessing, then the fitted estimator."""

    def __init__(self, compiled: list[Step], estimator, features: list[str], rows: bool = True):
        self.steps, self.estimator, self.features = compiled, estimator, features
        # A few records go record by record when every step can (build() proves them equal).
        self.rows = rows and all(step.apply_row is not None for step in compiled)

    def encode(self, columns: dict) -> np.ndarray:
        """Preprocess raw columns into the estimator's float matrix."""
        for step in self.steps:
            columns = step(columns)
        # Column-major, as pandas hands a frame to scikit-learn: with ill-conditioned linear
        # models the summation order in BLAS, and so the last bits, depend on the layout.
        return np.array([columns[n] for n in self.features], dtype=np.float64).T

    def encode_rows(self, records: Sequence[dict]) -> np.ndarray:
        """Preprocess records one at a time into the same matrix as ``encode``."""
        matrix = []
        for values in records:
            for step in self.steps:
                values = step.row(values)
            matrix.append([values[n] for n in self.features])
        return np.array(matrix, dtype=np.float64, order="F")

    def predict(self, records: Sequence[dict]) -> np.ndarray:
        """Predict schema-valid records: a few record by record, a batch column by column."""
        if self.rows and len(records) < ROWS_BELOW:
            return self.estimator.predict(self.encode_rows(records))
        return self.estimator.predict(self.encode(inputs(records)))


def inputs(records: Sequence[dict]) -> dict:
    """Valid records as the compiled steps take them: numbers as float64, categories Coded."""
    valid = records if isinstance(records, ValidRecords) else ValidRecords(records)
    return {
        f.name: _category(valid, f) if f.kind == CATEGORY else valid.column(f.name) for f in FIELDS
    }


def _category(valid: ValidRecords, field) -> Coded | np.ndarray:
    try:
        return Coded(valid.codes(field.name), field.choices)
    except (KeyError, TypeError):  # a gap (NaN) or an unknown value: the steps take it as is
        return valid.column(field.name)
