"""A fitted PyCaret pipeline compiled to plain numpy: same numbers, none of the pandas cost.

``pipeline.predict`` on one row spends almost all its time in PyCaret's pandas wrappers around
each preprocessing step (see bench/README.md). ``compile_pipeline`` reads every step's fitted
parameters once and returns a ``FastPredictor`` (predictor.py) that applies them to numpy
columns and hands the encoded matrix to the pipeline's own estimator. Column names and their
order are taken from the fitted steps themselves (each wrapper is run once on a probe frame),
never assumed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pandas as pd

from . import estimators, numeric, steps
from .predictor import FastPredictor, Step
from .steps import Compiled, Unsupported

__all__ = ["compile_pipeline"]

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


def frame_to_columns(frame: pd.DataFrame) -> dict:
    """A frame's columns as the arrays the compiled steps expect."""
    return {
        name: frame[name].to_numpy(dtype=object if frame[name].dtype == object else np.float64)
        for name in frame.columns
    }


def _compile_wrapper(name: str, wrapper, probe: pd.DataFrame) -> tuple[Step, pd.DataFrame]:
    transformer = getattr(wrapper, "transformer", None)
    kind = type(wrapper if transformer is None else transformer).__name__
    if type(wrapper).__name__ != "TransformerWrapper" or kind not in COMPILERS:
        raise Unsupported(f"step {name!r} ({kind}) has no fast equivalent")
    include = list(
        wrapper._include
        if wrapper._include is not None
        else [c for c in probe.columns if c not in wrapper._exclude]
    )
    if not include:  # PyCaret's wrapper passes the frame through untouched

        def nothing(values: list) -> list:
            return []

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
        want = (
            expected[column].to_numpy(dtype=np.float64)
            if expected[column].dtype != object
            else expected[column].to_numpy()
        )
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
        raise Unsupported(
            f"the estimator was fitted on columns in another order: {list(fitted)} vs {features}"
        )
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
