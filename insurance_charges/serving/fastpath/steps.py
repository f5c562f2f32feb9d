"""Imputers and encoders, re-expressed on plain numpy columns (numeric steps: numeric.py).

A compiler reads a fitted transformer's parameters and returns ``Compiled(apply, names, row)``:
``apply`` maps the transformer's input columns (1-D arrays, or ``Coded`` categories, in its input
order) to its output columns, ``names`` are the output column names, and ``row``, where there is
one, maps one record's values the same way. The arithmetic mirrors scikit-learn 1.4 and
category_encoders 2.7 operation for operation, so the floats come out bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class Unsupported(Exception):
    """The pipeline holds something the fast path does not reproduce; serve the slow way."""


class Compiled(NamedTuple):
    """A compiled transformer: ``apply`` maps its input columns to output columns ``names``;
    ``row``, where given, does the same to one record's values (plain scalars)."""

    apply: Callable
    names: list
    row: Callable | None = None


class Coded(NamedTuple):
    """A category column of valid records as positions in its field's ``choices``.

    Encoders map the few choices once and gather by position: a 10,000-record batch costs
    microseconds instead of a dictionary lookup per value. It never holds a missing value.
    """

    codes: np.ndarray
    choices: tuple[str, ...]


def _by_choice(choices: tuple[str, ...], lookup) -> np.ndarray:
    """``lookup(choice)`` for each choice, in order: the table a Coded column gathers from."""
    return np.array([lookup(choice) for choice in choices])


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def simple_imputer(t, include):
    """SimpleImputer: fill NaN with the fitted statistics (valid records have no gaps)."""
    if t.add_indicator or not _is_nan(t.missing_values):
        raise Unsupported("SimpleImputer with add_indicator or non-NaN missing_values")
    stats = list(t.statistics_)
    if len(stats) != len(include) or any(s is None or _is_nan(s) for s in stats):
        raise Unsupported("SimpleImputer that drops empty columns")

    def fill(column, stat):
        if isinstance(column, Coded):  # valid choices: nothing to fill
            return column
        if column.dtype != object:
            column = column.astype(np.float64, copy=False)
        # Only NaN differs from itself: like scikit-learn, None is not missing here.
        missing = np.isnan(column) if column.dtype != object else column != column
        if not missing.any():  # the usual case: a valid record has no gaps
            return column
        column = column.copy()
        column[missing] = stat
        return column

    def fill_row(values):  # NaN is the one value that differs from itself
        return [
            stat if value != value else value for value, stat in zip(values, stats, strict=True)
        ]

    return Compiled(
        lambda columns: [fill(c, s) for c, s in zip(columns, stats, strict=True)],
        list(include),
        fill_row,
    )


def _ordinal_tables(encoder) -> dict:
    """Per encoded column: category -> code, and the code for an unseen category."""
    unknown = {"value": -1.0, "return_nan": np.nan}.get(encoder.handle_unknown)
    if unknown is None:
        raise Unsupported(f"OrdinalEncoder with handle_unknown={encoder.handle_unknown!r}")
    tables = {}
    for switch in encoder.mapping:
        codes = {
            k: float(v) for k, v in switch["mapping"].items() if k is not None and not _is_nan(k)
        }
        tables[switch["col"]] = (codes, unknown)
    return tables


def _check_category_encoder(encoder) -> None:
    if getattr(encoder, "drop_invariant", False) or not getattr(encoder, "return_df", True):
        raise Unsupported(f"{type(encoder).__name__} with drop_invariant or return_df=False")


def ordinal_encoder(t, include):
    """category_encoders.OrdinalEncoder: each category to its fitted integer code."""
    _check_category_encoder(t)
    tables = _ordinal_tables(t)

    def encode(name, column):
        if name not in tables:
            return column
        codes, unknown = tables[name]
        if isinstance(column, Coded):
            table = _by_choice(column.choices, lambda choice: codes.get(choice, unknown))
            return table.astype(np.float64)[column.codes]
        return np.array([codes.get(v, unknown) for v in column], dtype=np.float64)

    def encode_row(values):
        return [
            tables[n][0].get(v, tables[n][1]) if n in tables else v
            for n, v in zip(include, values, strict=True)
        ]

    return Compiled(
        lambda columns: [encode(n, c) for n, c in zip(include, columns, strict=True)],
        list(include),
        encode_row,
    )


def one_hot_encoder(t, include):
    """category_encoders.OneHotEncoder: ordinal code, then that code's row of indicators."""
    _check_category_encoder(t)
    if t.handle_unknown == "error":
        raise Unsupported("OneHotEncoder with handle_unknown='error'")
    tables = _ordinal_tables(t.ordinal_encoder)
    rows, names = {}, []
    for switch in t.mapping:
        frame = switch["mapping"]
        width = frame.shape[1]
        by_code = {float(code): frame.loc[code].to_numpy(np.float64) for code in frame.index}
        codes, unknown = tables[switch["col"]]
        missing_row = np.full(width, np.nan)  # reindex on an absent code gives NaNs
        # One matrix of indicator rows, the unknown category's last: a column is encoded by
        # gathering rows by index (the same floats, without building 10,000 small arrays).
        known = list(codes)
        matrix = np.stack(
            [by_code.get(codes[k], missing_row) for k in known]
            + [by_code.get(unknown, missing_row)]
        ).reshape(len(known) + 1, width)
        rows[switch["col"]] = _Indicators(
            {k: i for i, k in enumerate(known)}, matrix, list(frame.columns), matrix.tolist()
        )
    for name in include:
        names.extend(rows[name].names if name in rows else [name])

    def each(values, expand):  # columns or one record's values; what is not encoded passes
        out = []
        for name, value in zip(include, values, strict=True):
            if name in rows:
                out.extend(expand(rows[name], value))
            else:
                out.append(value)
        return out

    def column_rows(table, column):
        unknown = len(table.matrix) - 1
        if isinstance(column, Coded):
            by_code = _by_choice(column.choices, lambda choice: table.row_of.get(choice, unknown))
            return table.matrix[by_code[column.codes]].T
        return table.matrix[
            np.fromiter((table.row_of.get(v, unknown) for v in column), np.intp, len(column))
        ].T

    def value_row(table, value):
        return table.lists[table.row_of.get(value, len(table.lists) - 1)]

    return Compiled(
        lambda columns: each(columns, column_rows), names, lambda values: each(values, value_row)
    )


class _Indicators(NamedTuple):
    """One encoded column: category -> row, the rows (unknown last), their names, as lists."""

    row_of: dict  # not "index": that would shadow tuple.index
    matrix: np.ndarray
    names: list
    lists: list
