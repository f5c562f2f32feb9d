"""The column-at-a-time fast path: whole Arrow columns checked at once, exact to the core.

For each of the six fields, ``fast_values`` returns which rows certainly hold a valid value and
that value, computed on the whole column (a regular expression and a cast for text, range
checks on numbers). A cell is passed only when the core would accept it with the same value:
plain digits (no sign, spaces or exponent) inside the field's limits, an exact category, or an
Arrow number the core's JSON rules accept. Every other row, however it looks, goes through the
core itself (``reference_record`` then ``core.validation.validate_each``), which writes the
messages. tests/test_score.py proves the two agree cell by cell and file by file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.schema import CATEGORY, INTEGER, Field, check_value, record_problems, typed_from_text
from ..core.validation import ValidRecords

# Stricter than schema.typed_from_text's patterns (no sign, no leading dot, no trailing dot),
# so a match is always text the core types to the same number. Whole numbers are checked as
# ASCII digits (pyarrow's ascii_is_decimal, false for "") of at most 6 bytes: the same set.
DECIMAL_TEXT = r"^[0-9]{1,6}(?:\.[0-9]+)?$"
MISSING = object()  # a blank text cell: the field is left out of the record, as the form does


def is_text(kind: pa.DataType) -> bool:
    """True for Arrow string types (CSV cells, Parquet strings)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _plain(array) -> pa.Array:
    """One contiguous array; dictionary and large/view strings as plain strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if is_text(array.type) and not pa.types.is_string(array.type):
        array = array.cast(pa.string())
    return array


def _bools(array: pa.Array) -> np.ndarray:
    return array.fill_null(False).to_numpy(zero_copy_only=False)


def fast_values(field: Field, array) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose value is certainly valid, and the values (float64, or objects for categories).

    Values where the mask is False are meaningless.
    """
    array = _plain(array)
    n = len(array)
    kind = array.type
    if field.kind == CATEGORY:
        if not is_text(kind):
            return np.zeros(n, dtype=bool), np.empty(n, dtype=object)
        index = pc.index_in(array, value_set=pa.array(field.choices))
        choices = np.array(field.choices, dtype=object)
        return _bools(index.is_valid()), choices[index.fill_null(0).to_numpy()]
    if is_text(kind):
        if field.kind == INTEGER:  # ASCII digits only, at most 6 of them (no sign, no spaces)
            matched = pc.and_(pc.ascii_is_decimal(array), pc.less_equal(pc.binary_length(array), 6))
        else:
            matched = pc.match_substring_regex(array, DECIMAL_TEXT)
        ok = _bools(matched)
        target = pa.int64() if field.kind == INTEGER else pa.float64()
        numbers = pc.cast(array if ok.all() else pc.if_else(ok, array, "0"), target)
        values = numbers.to_numpy(zero_copy_only=False).astype(np.float64)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        # JSON's rules: an int or a float (finite; whole for an integer field), null refused.
        ok = _bools(array.is_valid())
        values = np.array(
            pc.cast(array, pa.float64(), safe=False).fill_null(0), dtype=np.float64
        )  # a huge integer becomes a huge float: out of range
        if pa.types.is_floating(kind):
            ok &= np.isfinite(values)
            if field.kind == INTEGER:
                ok &= np.floor(values) == values
    else:  # booleans, dates, decimals...: the core says what is wrong with them
        return np.zeros(n, dtype=bool), np.zeros(n)
    with np.errstate(invalid="ignore"):
        ok &= (values >= field.minimum) & (values <= field.maximum)
    return ok, values


def reference_value(field: Field, value: Any, text: bool) -> Any:
    """One cell as the core receives it: text typed as the form types it; others as they are."""
    if not text or value is None:
        return value  # an Arrow null is JSON's null
    stripped = value.strip()
    return typed_from_text(field, stripped) if stripped else MISSING


def reference_record(fields: tuple[Field, ...], cells: list, texts: list[bool]) -> dict:
    """The record the core validates for one row (blank text cells left out)."""
    record = {}
    for field, cell, text in zip(fields, cells, texts, strict=True):
        value = reference_value(field, cell, text)
        if value is not MISSING:
            record[field.name] = value
    return record


def required_message(field: Field) -> str:
    """The core's words for a field left out of a record."""
    return next(e.message for e in record_problems({}, "", {}) if e.field == field.name)


def checked_cells(
    field: Field, array, text: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The core's verdict on each cell the fast path was not sure of, reached once per distinct
    value: whether it is valid, its value as the core coerces it (where valid), and (where not)
    the position of the core's message in the returned list of messages.

    A record made of table cells holds only field keys, so the core's problems of a row are
    exactly those of its cells, field by field in schema order: a column of 50,000 copies of
    one bad value costs one check, not 50,000 records through ``validate_each``.
    """
    array = _plain(array)
    try:
        encoded = pc.dictionary_encode(array, null_encoding="encode")
        distinct = encoded.dictionary.to_pylist()
        where = encoded.indices.to_numpy(zero_copy_only=False)
    except pa.ArrowNotImplementedError:  # nested values (a list for an age): one at a time
        distinct, where = array.to_pylist(), np.arange(len(array))
    ok = np.zeros(len(distinct), dtype=bool)
    coerced = np.empty(len(distinct), dtype=object)
    said = np.full(len(distinct), -1, dtype=np.int64)
    messages: list[str] = []
    message: str | None
    for i, cell in enumerate(distinct):
        typed = reference_value(field, cell, text)
        if typed is MISSING:
            value, message = None, required_message(field)
        else:
            value, message = check_value(field, typed)
        if message is None:
            ok[i], coerced[i] = True, value
        else:
            said[i] = len(messages)
            messages.append(message)
    return ok[where], coerced[where], said[where], messages


def _python(field: Field, value):
    if field.kind == CATEGORY:
        return value
    return int(value) if field.kind == INTEGER else float(value)


class _Row(Mapping):
    """One valid record read from the columns, a value typed only when it is asked for."""

    __slots__ = ("_records", "_i")

    def __init__(self, records: ColumnRecords, i: int):
        self._records, self._i = records, i

    def __getitem__(self, name: str):
        return _python(self._records._by_name[name], self._records._columns[name][self._i])

    def __iter__(self):
        return (f.name for f in self._records._fields)

    def __len__(self) -> int:
        return len(self._records._fields)


class ColumnRecords(ValidRecords):
    """Valid records held as columns: the core reads the columns; a record is built only when
    the core asks for one (the value quoted in a range warning), typed as the core types it."""

    def __init__(self, fields: tuple[Field, ...], columns: dict[str, np.ndarray], count: int):
        super().__init__([None] * count, columns)
        self._fields = fields
        self._by_name = {f.name: f for f in fields}

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return _Row(self, i % len(self))

    def __iter__(self):
        return (self[i] for i in range(len(self)))
