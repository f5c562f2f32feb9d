"""The tutorials' model, linear regression on polynomial features, fitted the same on every CPU.

Its design matrix is rank-deficient by construction: squares of 0/1 columns repeat them,
products of two regions are zero, and the regions add up to the intercept. On the training
split 36 of its 54 columns are independent, with singular values down to 2.8e-2 of the largest
(a condition number of 35); the other 18 singular values are rounding noise, at most 3e-16 of
the largest.
scikit-learn's ``LinearRegression`` asks SciPy's ``lstsq`` to cut at machine epsilon
(2.2e-16), inside that noise, so it kept two noise directions with weights near 1e16 and its
figures moved with the BLAS kernel and thread count: over six OpenBLAS kernels and one or two
threads its CV MAE ranged from 3,126.83 to 3,133.16 and its holdout MAE from 2,583.76 to
2,619.04. Cutting at numpy's rank tolerance instead solves the same least squares problem
without the noise: the same figures on all of them, to 1e-15.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin

# numpy's rank tolerance (numpy.linalg.matrix_rank, numpy.linalg.lstsq's default): a singular
# value below max(rows, columns) · machine epsilon · the largest is treated as zero. Here that is
# 2.4e-13 of the largest: nearly 1,000 times the rounding noise and 1e11 times below the
# smallest real singular value, so rounding on any CPU stays far from it.
FIT = (
    "least squares on centred columns by SVD (SciPy's lstsq, LAPACK gelsd), the intercept "
    "from the means; singular values below max(rows, columns) × machine epsilon × the "
    "largest are treated as zero (numpy's rank tolerance)"
)


class LeastSquares(RegressorMixin, BaseEstimator):
    """Ordinary least squares with an intercept and numpy's rank tolerance: the minimum-norm fit."""

    def fit(self, X, y) -> LeastSquares:
        """Fit to ``X`` (rows × columns) and ``y``; ``rank_`` is the columns found independent."""
        features = np.asarray(X, dtype=np.float64)
        target = np.asarray(y, dtype=np.float64)
        means, target_mean = features.mean(axis=0), target.mean()
        cutoff = max(features.shape) * np.finfo(np.float64).eps
        self.coef_, _, self.rank_, _ = linalg.lstsq(
            features - means, target - target_mean, cond=cutoff
        )
        self.intercept_ = float(target_mean - means @ self.coef_)
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """The fitted line's value for each row of ``X``."""
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_
