"""Numeric preprocessing steps re-expressed on plain numpy: polynomial features, binning,
scaling, feature selection. Same contract and exactness as steps.py (see there).
"""

from __future__ import annotations

import numpy as np

from .steps import Compiled, Unsupported


def _float_matrix(columns):
    return np.column_stack(columns).astype(np.float64, copy=False)


def _matrix_step(func, names):
    """Wrap a function of the (n, k) float matrix into a step on columns."""
    return Compiled(lambda columns: list(func(_float_matrix(columns)).T), list(names))


def polynomial_features(t, include):
    """PolynomialFeatures (dense): sklearn's block products, in sklearn's order."""
    if t._min_degree > 1:
        raise Unsupported("PolynomialFeatures with a minimum degree")
    n = len(include)

    def expand(X):
        blocks = [np.ones((len(X), 1))] if t.include_bias else []
        if t._max_degree >= 1:
            blocks.append(X)
        previous, index = X, list(range(n + 1))
        for _ in range(2, t._max_degree + 1):
            parts, new_index, size = [], [], 0
            for i in range(n):
                start = index[i] + (index[i + 1] - index[i] if t.interaction_only else 0)
                new_index.append(size)
                if start >= previous.shape[1]:
                    break
                parts.append(previous[:, start:] * X[:, i : i + 1])
                size += parts[-1].shape[1]
            new_index.append(size)
            previous, index = np.hstack(parts), new_index
            blocks.append(previous)
        return np.hstack(blocks)

    return _matrix_step(expand, t.get_feature_names_out())


def k_bins_discretizer(t, include):
    """KBinsDiscretizer(encode='ordinal'): the bin index from the fitted edges."""
    if t.encode != "ordinal" or t.dtype not in (None, np.float64):
        raise Unsupported("KBinsDiscretizer other than ordinal float64")
    inner = [edges[1:-1] for edges in t.bin_edges_]

    def bins(X):
        return np.column_stack(
            [
                np.searchsorted(e, X[:, j], side="right").astype(np.float64)
                for j, e in enumerate(inner)
            ]
        )

    return _matrix_step(bins, include)


def standard_scaler(t, include):
    """StandardScaler: subtract the mean, divide by the scale."""
    mean = t.mean_ if t.with_mean else None
    scale = t.scale_ if t.with_std else None
    return _matrix_step(lambda X: _shift_scale(X, mean, scale), include)


def robust_scaler(t, include):
    """RobustScaler: subtract the center, divide by the scale."""
    center = t.center_ if t.with_centering else None
    scale = t.scale_ if t.with_scaling else None
    return _matrix_step(lambda X: _shift_scale(X, center, scale), include)


def max_abs_scaler(t, include):
    """MaxAbsScaler: divide by the largest absolute training value."""
    return _matrix_step(lambda X: X / t.scale_, include)


def _shift_scale(X, shift, scale):
    if shift is not None:
        X = X - shift
    return X / scale if scale is not None else X


def min_max_scaler(t, include):
    """MinMaxScaler: multiply by scale, add min, clip if asked."""
    low, high = t.feature_range

    def scale(X):
        X = X * t.scale_ + t.min_
        return np.clip(X, low, high) if t.clip else X

    return _matrix_step(scale, include)


def selector(t, include):
    """Any fitted feature selector (VarianceThreshold, SelectFromModel...): keep its mask."""
    mask = list(t.get_support())

    def kept(values: list) -> list:  # columns or scalars
        return [v for v, keep in zip(values, mask, strict=True) if keep]

    return Compiled(kept, kept(include), kept)


def remove_multicollinearity(t, include):
    """PyCaret's RemoveMulticollinearity: drop the columns it chose at fit time."""
    keep = [name not in set(t.drop_) for name in include]

    def kept(values: list) -> list:  # columns or scalars
        return [v for v, k in zip(values, keep, strict=True) if k]

    return Compiled(kept, kept(include), kept)
