"""Retraining with another estimator or other preprocessing keeps serving: fast, or the slow way.

Each case fits a small PyCaret experiment on the shared data (no cross-validation, one core,
a couple of seconds) and checks the fast path against pipeline.predict, or checks that it
falls back with one clear reason and the model still predicts exactly as the pipeline does.
"""

import contextlib
import io
import os
import warnings

import pandas as pd
import pytest

from devtools.records import valid_records
from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.serving import fastpath
from insurance_charges.serving.fastpath import parity
from insurance_charges.serving.model import Model

pytestmark = pytest.mark.slow
os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)

FAST = [
    ("lr", {"normalize": True, "polynomial_features": True}),  # the tutorials' model
    ("rf", {"bin_numeric_features": ["age", "bmi"]}),
    ("lightgbm", {"normalize": True, "normalize_method": "minmax"}),
    ("dt", {"normalize": True, "normalize_method": "robust"}),
    ("knn", {"normalize": True, "normalize_method": "maxabs"}),
    (
        "ridge",
        {"remove_outliers": True, "remove_multicollinearity": True, "low_variance_threshold": 0.0},
    ),
    (
        "en",
        {
            "numeric_imputation": "median",
            "polynomial_features": True,
            "polynomial_degree": 3,
            "normalize": True,
        },
    ),
    ("lr", {"feature_selection": True, "n_features_to_select": 0.5}),
]
FALLBACK = [
    ("lr", {"pca": True}, "step 'pca' (PCA) has no fast equivalent"),
    (
        "lr",
        {"transformation": True},
        "step 'transformation' (PowerTransformer) has no fast equivalent",
    ),
    (
        "lr",
        {"transform_target": True, "transform_target_method": "quantile"},
        "step 'target_transformation' transforms the target",
    ),
]


def fit(data: pd.DataFrame, estimator: str, options: dict, session_id: int):
    """A finalized PyCaret pipeline, fitted quickly."""
    from pycaret.regression import RegressionExperiment

    exp = RegressionExperiment()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        # Fitting these small experiments warns about scikit-learn's defaults (binning's future
        # subsample, quantiles > rows); that is PyCaret's setup talking, not what is tested.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        exp.setup(
            data,
            target="charges",
            session_id=session_id,
            fold=2,
            verbose=False,
            html=False,
            system_log=False,
            n_jobs=1,
            **options,
        )
        model = exp.create_model(estimator, cross_validation=False, verbose=False)
        return exp.finalize_model(model)


@pytest.fixture(scope="module")
def data(data_path):
    return pd.read_csv(data_path)


def reference(pipeline, records):
    return pipeline.predict(pd.DataFrame.from_records(records, columns=list(FIELD_NAMES)))


@pytest.mark.parametrize("estimator, options", FAST, ids=[f"{e}-{'-'.join(o)}" for e, o in FAST])
def test_retrained_pipeline_is_compiled_and_equals_pipeline_predict(data, estimator, options):
    # Another seed than the committed model's: PyCaret then orders the one-hot columns
    # differently, which the fast path must read from the fitted steps.
    pipeline = fit(data, estimator, options, session_id=7)
    fast, note = fastpath.build(pipeline)
    assert fast is not None, note
    assert note.startswith("fast path on:")
    records = data[list(FIELD_NAMES)].to_dict("records") + valid_records(10_000, seed=9)
    got = fast.predict(records)
    assert parity.relative_differences(got, reference(pipeline, records)).max() <= parity.TOLERANCE
    # Record by record against record by record: an ill-conditioned model (the tutorials'
    # one has collinear squared indicators) gives slightly other numbers for a row alone
    # than inside a batch, in PyCaret as in the fast path.
    singles = records[::500]
    got = [fast.predict([r])[0] for r in singles]
    want = [reference(pipeline, [r])[0] for r in singles]
    assert parity.relative_differences(got, want).max() <= parity.TOLERANCE


@pytest.mark.parametrize(
    "estimator, options, reason", FALLBACK, ids=[f"{e}-{'-'.join(o)}" for e, o, _ in FALLBACK]
)
def test_retrained_pipeline_with_an_unknown_step_falls_back_cleanly(
    data, estimator, options, reason
):
    pipeline = fit(data, estimator, options, session_id=7)
    fast, note = fastpath.build(pipeline)
    assert fast is None
    assert note == f"fast path off, serving through pipeline.predict: {reason}"
    model = Model(pipeline=pipeline, card={}, path=None, fast=fast)
    records = valid_records(500, seed=4)
    assert model.predict(records).tolist() == reference(pipeline, records).tolist()
