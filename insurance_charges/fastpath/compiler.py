"""A fitted PyCaret pipeline compiled to plain numpy: same numbers, none of the pandas cost.

``pipeline.predict`` on one row spends almost all its time in PyCaret's pandas wrappers around
each preprocessing step (see bench/README.md). ``compile_pipeline`` reads every step's fitted
parameters once and returns a ``FastPredictor`` that applies them to numpy columns and hands the
encoded matrix to the pipeline's own estimator. Column names and their order are taken from the
fitted steps themselves (each wrapper is run once on a probe frame), never assumed.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import estimators, numeric, steps
from .steps import Coded, Compiled, Unsupported
from ..core.schema import CATEGORY, FIELDS
from ..core.validation import ValidRecords

__all__ = ["FastPredictor", "compile_pipeline"]

# Transformer class name -> compiler. Anything else makes the whole pipeline fall back.
COMPILERS: dict[str, Callable] = {
    "SimpleImputer": steps.simple_imputer,
    "OrdinalEncoder": steps.ordinal_encoder,
    "OneHotEncoder": steps.one_hot_encoder,
    "PolynomialFeatures": numeric.polynomial_features,
    "KBinsDiscretizer": numeric.k_bins_discretizer,
    "StandardScaler": numeric.standard_scaler,
    "MinMaxScaler": numeric.min_max_scaler,
    "MaxAbsScaler": numeric.max_abs_scaler,
    "RobustScaler": numeric.robust_scaler,
    "VarianceThreshold": numeric.selector,
    "SelectFromModel": numeric.selector,
    "SelectKBest": numeric.selector,
    "SequentialFeatureSelector": numeric.selector,
    "RemoveMulticollinearity": numeric.remove_multicollinearity,
}
# Where a compiled step's output may differ from PyCaret's on the probe (it should not at all).
STEP_TOLERANCE = 1e-12


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
        return self._lay_out(self.apply_row([values[n] for n in self.include]), values)

    def _lay_out(self, produced: list, given: dict) -> dict:
        out = dict(zip(self.produced, produced))
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
        """Predict schema-valid records (one or a batch), vectorized over their columns."""
        if self.rows and len(records) < ROWS_BELOW:
            return self.estimator.predict(self.encode_rows(records))
        return self.estimator.predict(self.encode(inputs(records)))


def inputs(records: Sequence[dict]) -> dict:
    """Valid records as the compiled steps take them: numbers as float64, categories Coded."""
    valid = records if isinstance(records, ValidRecords) else ValidRecords(records)
    return {f.name: _category(valid, f) if f.kind == CATEGORY else valid.column(f.name)
            for f in FIELDS}


def _category(valid: ValidRecords, field) -> Coded | np.ndarray:
    try:
        return Coded(valid.codes(field.name), field.choices)
    except (KeyError, TypeError):  # a gap (NaN) or an unknown value: the steps take it as is
        return valid.column(field.name)


def frame_to_columns(frame: pd.DataFrame) -> dict:
    """A frame's columns as the arrays the compiled steps expect."""
    return {name: frame[name].to_numpy(dtype=object if frame[name].dtype == object
                                       else np.float64) for name in frame.columns}


def _compile_wrapper(name: str, wrapper, probe: pd.DataFrame) -> tuple[Step, pd.DataFrame]:
    transformer = getattr(wrapper, "transformer", None)
    kind = type(wrapper if transformer is None else transformer).__name__
    if type(wrapper).__name__ != "TransformerWrapper" or kind not in COMPILERS:
        raise Unsupported(f"step {name!r} ({kind}) has no fast equivalent")
    include = list(wrapper._include if wrapper._include is not None else
                   [c for c in probe.columns if c not in wrapper._exclude])
    if not include:  # PyCaret's wrapper passes the frame through untouched
        nothing = (lambda values: [])
        return Step(name, [], Compiled(nothing, [], nothing), list(probe.columns)), probe
    compiled = COMPILERS[kind](transformer, include)
    produced = compiled.names
    expected = wrapper.transform(probe.copy())
    order = list(expected.columns)
    passthrough = [c for c in probe.columns if c not in include]
    if sorted(order) != sorted(set(produced) | set(passthrough)):
        raise Unsupported(f"step {name!r} ({kind}) lays out columns the fast path cannot place")
    step = Step(name, include, compiled, order)
    got = step(frame_to_columns(probe))
    for column in order:
        want = expected[column].to_numpy(dtype=np.float64) if expected[column].dtype != object \
            else expected[column].to_numpy()
        if want.dtype == object:
            same = list(got[column]) == list(want)
        else:
            same = np.allclose(got[column], want, rtol=STEP_TOLERANCE, atol=0, equal_nan=True)
        if not same:
            raise Unsupported(f"step {name!r} ({kind}) differs from PyCaret on column {column!r}")
    return step, expected


def _array_estimator(estimator, features: list[str]):
    """The estimator, ready for a bare array whose columns are ``features`` in order.

    scikit-learn checks feature names on every call when it was fitted on a frame; the compiled
    steps guarantee the order, so it is checked here once and the names dropped from a copy.
    """
    fitted = vars(estimator).get("feature_names_in_")
    if fitted is None:
        return estimator
    if list(fitted) != features:
        raise Unsupported("the estimator was fitted on columns in another order: "
                          f"{list(fitted)} vs {features}")
    bare = copy.copy(estimator)  # shallow: shares the fitted trees/coefficients
    del bare.feature_names_in_
    return bare


def compile_pipeline(pipeline, probe: pd.DataFrame) -> FastPredictor:
    """Compile a fitted PyCaret pipeline; raise Unsupported if any part has no exact twin."""
    if not getattr(pipeline, "steps", None):
        raise Unsupported(f"{type(pipeline).__name__} is not a pipeline")
    compiled, frame = [], probe
    for name, wrapper in pipeline.steps[:-1]:
        if wrapper is None or wrapper == "passthrough" or getattr(wrapper, "_train_only", False):
            continue  # PyCaret skips these (outlier removal, resampling) when predicting
        if hasattr(wrapper, "inverse_transform"):
            raise Unsupported(f"step {name!r} transforms the target")
        step, frame = _compile_wrapper(name, wrapper, frame)
        compiled.append(step)
    features = list(frame.columns)
    estimator = estimators.direct(_array_estimator(pipeline.steps[-1][1], features))
    return FastPredictor(compiled, estimator, features)
