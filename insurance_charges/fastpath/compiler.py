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
from .steps import Coded, Unsupported
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


class Step:
    """One compiled wrapper: apply to its included columns, then lay out the columns in order."""

    def __init__(self, name: str, include: list[str], apply: Callable, produced: list[str],
                 order: list[str]):
        self.name, self.include, self.apply, self.order = name, include, apply, order
        self.produced = produced

    def __call__(self, columns: dict) -> dict:
        """Transform the column dict the way the PyCaret wrapper does."""
        out = dict(zip(self.produced, self.apply([columns[n] for n in self.include])))
        return {name: out[name] if name in out else columns[name] for name in self.order}


class FastPredictor:
    """The compiled pipeline: numpy preprocessing, then the fitted estimator."""

    def __init__(self, compiled: list[Step], estimator, features: list[str]):
        self.steps, self.estimator, self.features = compiled, estimator, features

    def encode(self, columns: dict) -> np.ndarray:
        """Preprocess raw columns into the estimator's float matrix."""
        for step in self.steps:
            columns = step(columns)
        # Column-major, as pandas hands a frame to scikit-learn: with ill-conditioned linear
        # models the summation order in BLAS, and so the last bits, depend on the layout.
        return np.array([columns[n] for n in self.features], dtype=np.float64).T

    def predict(self, records: Sequence[dict]) -> np.ndarray:
        """Predict schema-valid records (one or a batch), vectorized over their columns."""
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
        return Step(name, [], lambda columns: [], [], list(probe.columns)), probe
    apply, produced = COMPILERS[kind](transformer, include)
    expected = wrapper.transform(probe.copy())
    order = list(expected.columns)
    passthrough = [c for c in probe.columns if c not in include]
    if sorted(order) != sorted(set(produced) | set(passthrough)):
        raise Unsupported(f"step {name!r} ({kind}) lays out columns the fast path cannot place")
    step = Step(name, include, apply, list(produced), order)
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
