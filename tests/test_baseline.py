"""The tutorials' model is fitted so that no CPU's rounding moves its figures."""

import numpy as np
import pandas as pd
import pytest
from scipy import linalg
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

from insurance_charges.training.baseline import LeastSquares
from insurance_charges.training.data import TARGET

# Far above what a well-conditioned fit moves by (about 1e-15), far below what a kept noise
# direction moves it by (dollars on an estimate of thousands).
SAME = 1e-9


@pytest.fixture(scope="module")
def design(data_path):
    """The baseline's design as PyCaret builds it: 0/1 sex and smoker, the regions one-hot,
    degree-2 polynomial features, then standardized: 54 columns, 36 of them independent."""
    frame = pd.read_csv(data_path)
    columns = pd.concat(
        [
            frame[["age", "bmi", "children"]],
            (frame["sex"] == "male").astype(float).rename("sex"),
            (frame["smoker"] == "yes").astype(float).rename("smoker"),
            pd.get_dummies(frame["region"], dtype=float),
        ],
        axis=1,
    )
    square = PolynomialFeatures(degree=2, include_bias=False).fit_transform(columns)
    return StandardScaler().fit_transform(square), frame[TARGET].to_numpy(dtype=np.float64)


def fitted(features, target):
    return LeastSquares().fit(features, target)


def test_the_tutorials_design_has_36_independent_columns_of_54(design):
    model = fitted(*design)
    assert (model.rank_, model.n_features_in_) == (36, 54)


def reordered_columns(features, target, rng):
    order = rng.permutation(features.shape[1])
    return fitted(features[:, order], target), features[:, order]


def reordered_rows(features, target, rng):
    order = rng.permutation(len(features))
    return fitted(features[order], target[order]), features


def rounded_differently(features, target, rng):
    # What another kernel's arithmetic does to the same numbers: a few units in the last place.
    jitter = 1 + 4 * np.finfo(np.float64).eps * rng.standard_normal(features.shape)
    return fitted(features * jitter, target), features


def on_one_blas_thread(features, target, rng):
    with threadpool_limits(limits=1, user_api="blas"):
        return fitted(features, target), features


@pytest.mark.parametrize(
    "change, seed",
    [
        pytest.param(reordered_columns, 0, id="columns in another order"),
        pytest.param(reordered_columns, 1, id="columns in a third order"),
        pytest.param(reordered_rows, 0, id="rows in another order"),
        pytest.param(reordered_rows, 1, id="rows in a third order"),
        pytest.param(rounded_differently, 0, id="rounded a few ulps apart"),
        pytest.param(rounded_differently, 1, id="rounded a few other ulps apart"),
        pytest.param(on_one_blas_thread, 0, id="on one BLAS thread"),
    ],
)
def test_a_fit_on_the_same_numbers_computed_another_way_gives_the_same_estimates(
    design, change, seed
):
    features, target = design
    reference = fitted(features, target).predict(features)
    model, seen_as = change(features, target, np.random.default_rng(seed))
    assert model.predict(seen_as) == pytest.approx(reference, rel=SAME)


def test_the_fit_is_the_plain_least_squares_fit_on_the_independent_columns(design):
    features, target = design
    # Pivoted QR finds 36 columns that span the rest; on them least squares is well-posed, so
    # any solver gives the one answer.
    r, order = linalg.qr(features - features.mean(axis=0), mode="r", pivoting=True)
    strong = np.abs(np.diag(r)) > 1e-8 * np.abs(r[0, 0])  # the gap is 1e-2 to 1e-16
    assert strong.sum() == 36
    independent = np.c_[features[:, order[strong]], np.ones(len(features))]
    plain = np.linalg.lstsq(independent, target, rcond=None)[0]
    assert fitted(features, target).predict(features) == pytest.approx(
        independent @ plain, rel=SAME
    )
