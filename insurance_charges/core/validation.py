"""Validate and flag every record of a request at once; the rules themselves are schema.py's.

A 10,000-record batch holds 60,000 values: checked a column at a time they cost a few
milliseconds, where the per-record path (which writes the error messages) costs tens.
Results are identical to ``validate_record`` on each record. ``locate(i)`` gives the JSON
Pointer prefix of record ``i`` ("/3" in a batch, "" for a lone record), so callers decide
once how records are addressed.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .schema import CATEGORY, FIELDS, INTEGER, NUMBER, FieldError, extrapolation_warning, \
    validate_record

Locate = Callable[[int], str]
_MISSING = object()
# Below this many records, one at a time is as fast (measured with `python -m bench.micro`).
COLUMNS_FROM = 8


def in_batch(i: int) -> str:
    """Pointer prefix of record ``i`` of a JSON array."""
    return f"/{i}"


def alone(i: int) -> str:
    """Pointer prefix of the one record that is the whole body."""
    return ""


def _all_valid(items: list) -> list | None:
    """The records, if every one is an exact, valid record (column at a time); else None."""
    if not all(type(item) is dict and len(item) == len(FIELDS) for item in items):
        return None
    coerced = {}
    for field in FIELDS:
        values = [item.get(field.name, _MISSING) for item in items]
        types = set(map(type, values))  # exact types: bool, a missing key or 30.0 go the slow way
        if field.kind == CATEGORY:
            if types != {str} or not set(values) <= set(field.choices):
                return None
            continue
        if not types <= ({int} if field.kind == INTEGER else {int, float}):
            return None
        if not all(field.minimum <= v <= field.maximum for v in values):  # NaN fails too
            return None
        if field.kind == NUMBER and int in types:
            coerced[field.name] = [float(v) for v in values]
    if not coerced:
        return items
    rows = [dict(item) for item in items]
    for name, values in coerced.items():
        for row, value in zip(rows, values):
            row[name] = value
    return rows


def validate_records(items: list, locate: Locate) -> tuple[list | None, list[FieldError]]:
    """``validate_record`` on each item; fast when all are valid."""
    records = _all_valid(items) if len(items) >= COLUMNS_FROM else None
    if records is not None:
        return records, []
    return validate_each(items, locate)


def validate_each(items: list, locate: Locate) -> tuple[list | None, list[FieldError]]:
    """The reference path: ``validate_record`` on each item, collecting every error."""
    checked, errors = [], []
    for i, item in enumerate(items):
        record, problems = validate_record(item, locate(i))
        checked.append(record)
        errors.extend(problems)
    return (None, errors) if errors else (checked, [])


def range_warnings(records: list, ranges: Mapping[str, Any], locate: Locate) -> list[FieldError]:
    """Each valid value outside the range seen in training, by record, then in card order."""
    flagged: dict[int, list[FieldError]] = {}
    for name, span in ranges.items():
        low, high = span["min"], span["max"]
        for i, record in enumerate(records):
            if not low <= record[name] <= high:
                flagged.setdefault(i, []).append(
                    extrapolation_warning(name, record[name], low, high, locate(i)))
    return [warning for i in sorted(flagged) for warning in flagged[i]]
