"""Estimators called the way their own predict() ends, without its per-call checks.

For one record, scikit-learn's GradientBoostingRegressor.predict spends about 100 µs in input
validation and fitted-state checks and a few in its trees. The compiled path already hands it a
checked matrix, so ``direct(estimator)`` returns the same computation, in the same order and
dtypes: the init estimator's constant, then ``predict_stages`` (scikit-learn's own Cython loop)
adding every tree. Anything it does not know is served by the estimator's own predict; the
start-up parity proof compares both ways before either serves.
"""

from __future__ import annotations

import numpy as np

try:  # the Cython loop GradientBoostingRegressor._raw_predict itself calls
    from sklearn.ensemble._gradient_boosting import predict_stages
except ImportError:  # pragma: no cover - another scikit-learn layout: use predict()
    predict_stages = None


class GradientBoosting:
    """GradientBoostingRegressor.predict without the per-call checks (identity link only)."""

    def __init__(self, estimator):
        self.stages = estimator.estimators_
        self.learning_rate = estimator.learning_rate
        self.start = float(np.asarray(estimator.init_.constant_, dtype=np.float64).ravel()[0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The sum of the trees' predictions on top of the init estimator's constant."""
        X = np.ascontiguousarray(X, dtype=np.float32)  # as predict() converts it (DTYPE)
        raw = np.full((X.shape[0], 1), self.start, dtype=np.float64)
        predict_stages(self.stages, X, self.learning_rate, raw)
        return raw.ravel()


def direct(estimator):
    """A faster stand-in for ``estimator`` where one is known to give the same numbers."""
    init = getattr(estimator, "init_", None)
    if (
        predict_stages is not None
        and type(estimator).__name__ == "GradientBoostingRegressor"
        and type(init).__name__ == "DummyRegressor"
        and np.asarray(init.constant_).size == 1
        and type(estimator._loss.link).__name__ == "IdentityLink"
        and getattr(estimator, "n_trees_per_iteration_", 1) == 1
    ):
        return GradientBoosting(estimator)
    return estimator
