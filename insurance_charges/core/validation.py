"""Validate and flag every record of a request at once; the rules themselves are schema.py's.

A 10,000-record batch holds 60,000 values: checked a column at a time they cost a few
milliseconds, where the per-record path (which writes the error messages) costs tens.
Results are identical to ``validate_record`` on each record. ``locate(i)`` gives the JSON
Pointer prefix of record ``i`` ("/3" in a batch, "" for a lone record), so callers decide
once how records are addressed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .schema import (
    BY_NAME,
    CATEGORY,
    FIELDS,
    INTEGER,
    NUMBER,
    FieldError,
    extrapolation_warning,
    record_problems,
)

Locate = Callable[[int], str]
# Below this many records, one at a time is as fast (measured with `python -m bench.micro`).
COLUMNS_FROM = 8


def in_batch(i: int) -> str:
    """Pointer prefix of record ``i`` of a JSON array."""
    return f"/{i}"


def alone(i: int) -> str:
    """Pointer prefix of the one record that is the whole body."""
    return ""


# Each category field's choices by position: a category column is also held as these codes,
# so encoding, counting and grouping compare small integers instead of strings.
CODES: dict[str, dict[str, int]] = {
    f.name: {choice: i for i, choice in enumerate(f.choices)} for f in FIELDS if f.kind == CATEGORY
}
_CHOICES = {name: np.array(list(codes), dtype=object) for name, codes in CODES.items()}


class ValidRecords(list):
    """Validated records in input order, with each field's column built at most once.

    The model, the training-range check and the likely range all read columns; a plain list
    of records works everywhere too (its columns are built when asked for).
    """

    def __init__(
        self,
        records=(),
        columns: dict[str, np.ndarray] | None = None,
        codes: dict[str, np.ndarray] | None = None,
    ):
        super().__init__(records)
        self._columns = dict(columns or {})
        self._codes = dict(codes or {})

    def column(self, name: str) -> np.ndarray:
        """The field's values: float64 for numbers, objects for categories."""
        if name not in self._columns:
            self._columns[name] = (
                _CHOICES[name][self._codes[name]]
                if name in self._codes
                else _column(BY_NAME[name], [r[name] for r in self])
            )
        return self._columns[name]

    def codes(self, name: str) -> np.ndarray:
        """A category field's values as positions in its choices (intp)."""
        if name not in self._codes:  # from the column when built: records may be made on demand
            values = self._columns[name] if name in self._columns else [r[name] for r in self]
            self._codes[name] = _codes(name, values)
        return self._codes[name]


def _codes(name: str, values: Sequence | np.ndarray) -> np.ndarray:
    """Positions of ``values`` in the field's choices; KeyError or TypeError if one is not."""
    return np.fromiter(map(CODES[name].__getitem__, values), np.intp, len(values))


def _column(field, values: list) -> np.ndarray:
    return np.array(values, dtype=object if field.kind == CATEGORY else np.float64)


def column_of(records: Sequence[dict], name: str) -> np.ndarray:
    """One field's column of validated records (kept with them when they are ValidRecords)."""
    return (records if isinstance(records, ValidRecords) else ValidRecords(records)).column(name)


def codes_of(records: Sequence[dict], name: str) -> np.ndarray:
    """One category field's codes of validated records (kept with them when ValidRecords)."""
    return (records if isinstance(records, ValidRecords) else ValidRecords(records)).codes(name)


def columns_of(records: Sequence[dict]) -> dict[str, np.ndarray]:
    """Every schema field's column of validated records."""
    valid = records if isinstance(records, ValidRecords) else ValidRecords(records)
    return {f.name: valid.column(f.name) for f in FIELDS}


def _all_valid(items: list) -> ValidRecords | None:
    """The records, if every one is an exact, valid record (column at a time); else None."""
    if not all(type(item) is dict and len(item) == len(FIELDS) for item in items):
        return None
    coerced: list[str] = []
    columns, codes = {}, {}
    for field in FIELDS:
        # A missing key reads as None, which no field accepts: that record goes the slow way.
        values = [item.get(field.name) for item in items]
        if field.kind == CATEGORY:
            try:  # one lookup per value both checks the choice and codes it
                codes[field.name] = _codes(field.name, values)
            except (KeyError, TypeError):  # not a choice (a missing key, a number, a list...)
                return None
        else:
            types = set(map(type, values))  # exact: bool, a missing key or 30.0 go the slow way
            if not types <= ({int} if field.kind == INTEGER else {int, float}):
                return None
            try:
                column = _column(field, values)
            except OverflowError:  # an integer beyond float: refused, with its message, below
                return None
            # NaN fails both comparisons; a float64 holds every in-range value exactly.
            if not ((column >= field.minimum) & (column <= field.maximum)).all():
                return None
            if field.kind == NUMBER and int in types:
                coerced.append(field.name)
            columns[field.name] = column
    if not coerced:
        return ValidRecords(items, columns, codes)
    rows = [dict(item) for item in items]
    for name in coerced:
        for row in rows:
            row[name] = float(row[name])
    return ValidRecords(rows, columns, codes)


class Refusal(list):
    """The first problems of a request (a list) and ``total``, how many were found.

    Looking stops at the first problem beyond those that can be listed: what more there is
    would cost time to find and nobody would read it. ``complete`` is then False and ``total``
    a lower bound ("at least").
    """

    def __init__(self, listed=(), total: int = 0, complete: bool = True):
        super().__init__(listed)
        self.total, self.complete = total, complete


def how_many(total: int, complete: bool = True) -> str:
    """A count of problems as a person reads it: "6", or "at least 101" for a lower bound."""
    return str(total) if complete else f"at least {total}"


# Problems listed in one answer: enough to fix a typical mistake in every field of many
# records, small enough that 200,000 unknown keys cost a 422 of a few kilobytes, not 23 MB.
LISTED = 100


def validate_records(
    items: list, locate: Locate, listed: int = LISTED
) -> tuple[ValidRecords | None, Refusal]:
    """``validate_record`` on each item, the first ``listed`` problems kept; fast when all are
    valid."""
    records = _all_valid(items) if len(items) >= COLUMNS_FROM else None
    if records is not None:
        return records, Refusal()
    return validate_each(items, locate, listed)


def validate_each(
    items: Iterable, locate: Locate, listed: int = LISTED
) -> tuple[ValidRecords | None, Refusal]:
    """The reference path: each item's problems in order, the first ``listed`` kept.

    It stops at problem ``listed + 1``: an all-invalid body then costs what its first few
    records cost, not a message for each of its millions of values (the total is then a lower
    bound). Items may come from an iterator, which is read no further than that.
    """
    checked, errors = [], Refusal()
    for i, item in enumerate(items):
        record: dict = {}
        for problem in record_problems(item, locate(i), record):
            if len(errors) == listed:  # one more than can be listed: there are more, stop
                errors.total, errors.complete = listed + 1, False
                return None, errors
            errors.append(problem)
        checked.append(record)
    errors.total = len(errors)
    return (None, errors) if errors else (ValidRecords(checked), errors)


def range_warnings(
    records: Sequence[dict], ranges: Mapping[str, Any], locate: Locate
) -> list[FieldError]:
    """Each valid value outside the range seen in training, by record, then in card order."""
    flagged: dict[int, list[FieldError]] = {}
    for name, span in ranges.items():
        low, high = span["min"], span["max"]
        if len(records) < COLUMNS_FROM:  # a few records: numpy's per-call cost is the larger
            outside = [i for i, r in enumerate(records) if not low <= r[name] <= high]
        else:
            values = column_of(records, name)
            outside = np.flatnonzero((values < low) | (values > high)).tolist()
        for i in outside:  # the message quotes the value as it was sent
            flagged.setdefault(i, []).append(
                extrapolation_warning(name, records[i][name], low, high, locate(i))
            )
    return [warning for i in sorted(flagged) for warning in flagged[i]]
