"""CSV bodies: one record per line, the six fields in schema order, a header row optional.

Batch Transform splits a file on line breaks (``SplitType=Line``) and sends the parts without
the file's header, so the fields come in schema order, a header must name them in that order,
and a value may not hold a line break. The body is read as the file scoring command reads a
file: Arrow parses it as text columns, the command's column-at-a-time check
(``scoring.columns``) accepts the plain valid cells at once, and every other row goes through
the core's own validation, which writes the messages.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ...core.schema import FIELD_NAMES, FIELDS
from ...core.validation import ValidRecords, validate_each
from ...scoring.columns import ColumnRecords, fast_values, reference_record
from ...scoring.reading import line_count
from .decoding import EMPTY, RECORD, Decoded, Unreadable, full, invalid, locate, unreadable
from .line_spans import blank_lines

BOM = b"\xef\xbb\xbf"
SPANNING = ("the record does not end on this line (a quoted value holding a line break, a quote "
            "left open, or a lone carriage return); SageMaker splits CSV on line breaks, so "
            "each record must be one whole line")


def read_csv(data: bytes) -> Decoded:
    """The records of a CSV body: the six fields in schema order, an optional header row."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = (line, "the line is not UTF-8 text; send the body as UTF-8")
        raise unreadable([problem]) from None
    if not data.strip():
        raise Unreadable(EMPTY)
    first = 1
    end = data.find(b"\n")
    if _is_header(data[:end] if end >= 0 else data):
        data, first = (data[end + 1:] if end >= 0 else b""), 2
    if not data.strip(b"\r\n"):
        return Decoded(ValidRecords(), np.empty(0, dtype=np.int64))  # a header alone
    table, lines = _table(data, first)
    return Decoded(_valid(table, lines), lines)


def _is_header(line: bytes) -> bool:
    try:
        cells = [c.strip() for c in next(csv.reader([line.decode("utf-8").rstrip("\r")]))]
    except (csv.Error, StopIteration):
        return False
    if cells == list(FIELD_NAMES):
        return True
    if sorted(cells) == sorted(FIELD_NAMES):
        raise Unreadable(f"the header on line 1 names the fields in another order; SageMaker "
                         f"sends the rest of a file without its header, so send the columns "
                         f"in this order: {RECORD}")
    return False


def _table(data: bytes, first: int) -> tuple[pa.Table, np.ndarray]:
    """Every line as a row of six text cells, and its line number; blank lines left out."""
    count = line_count(data)
    wrong_width: list = []

    def skip(row) -> str:
        wrong_width.append(row)
        return "error" if full(wrong_width) else "skip"  # "error" stops Arrow's parse here

    try:
        table = pa_csv.read_csv(
            # Ended by a line break: a quote left open on the last line then swallows that
            # break, which shows in its cell, instead of ending the body unnoticed.
            pa.py_buffer(data if data.endswith(b"\n") else data + b"\n"),
            read_options=pa_csv.ReadOptions(column_names=list(FIELD_NAMES), use_threads=False,
                                            block_size=len(data) + 2),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False,
                                              invalid_row_handler=skip),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in FIELD_NAMES},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        if not full(wrong_width):
            raise
        table = None  # more lines of the wrong width than an answer lists: enough looking
    if any(r.number is None for r in wrong_width) or (table is not None and (
            table.num_rows + len(wrong_width) != count or _holds_line_break(table))):
        raise unreadable([(_spanning_row(data) + first - 1, SPANNING)])
    if wrong_width:
        raise unreadable(
            [(first + r.number - 1, f"the line has {r.actual_columns} value(s) where a "
                                    f"record has 6: {RECORD}") for r in wrong_width])
    lines = first + np.arange(count, dtype=np.int64)
    empty = pc.equal(table.column(FIELD_NAMES[0]), "")  # a blank line: six empty cells
    for name in FIELD_NAMES[1:]:
        empty = pc.and_(empty, pc.equal(table.column(name), ""))
    empty = empty.to_numpy()
    if empty.any():  # ",,,,," is a record missing every field; a blank line is no record
        keep = ~(empty & blank_lines(data, b"\r\n"))
        if not keep.all():
            table, lines = table.filter(pa.array(keep)), lines[keep]
    return table, lines


def _holds_line_break(table: pa.Table) -> bool:
    """True when a cell holds a line break: a quoted value ran on past its line's end."""
    return any(pc.any(pc.match_substring(table.column(name), "\n")).as_py()
               for name in FIELD_NAMES)


def _spanning_row(data: bytes) -> int:
    """The line (from 1) on which the first row spanning several lines starts."""
    ended = data if data.endswith(b"\n") else data + b"\n"
    reader = csv.reader(io.StringIO(ended.decode("utf-8"), newline="\n"))  # only \n ends a line
    start, row = 1, []
    try:
        for row in reader:
            if reader.line_num > start:
                return start
            start += 1
    except csv.Error:
        return start
    # A quote left open on the last line runs to the end: its cell keeps the line break.
    return start - 1 if any("\n" in cell for cell in row) else start


# Rows the column check did not pass are turned into the core's records this many at a time:
# enough that Arrow's per-call cost vanishes, few enough that a body refused on its first
# rows converts little more than those (validation stops once an answer's list is full).
SLOW_ROWS_AT_ONCE = 1024


def _slow_records(table: pa.Table, rows: np.ndarray) -> Iterator[dict]:
    """The core's record for each of ``rows``, built only as validation asks for them."""
    texts = [True] * len(FIELDS)
    for start in range(0, len(rows), SLOW_ROWS_AT_ONCE):
        taken = pa.array(rows[start:start + SLOW_ROWS_AT_ONCE])
        cells = [table.column(f.name).take(taken).to_pylist() for f in FIELDS]
        for row in zip(*cells):
            yield reference_record(FIELDS, list(row), texts)


def _valid(table: pa.Table, lines: np.ndarray) -> ColumnRecords:
    """The table's records, checked a column at a time, the uncertain rows by the core."""
    ok = np.ones(table.num_rows, dtype=bool)
    columns = {}
    for field in FIELDS:
        certain, columns[field.name] = fast_values(field, table.column(field.name))
        ok &= certain
    slow = np.flatnonzero(~ok)
    if len(slow):
        checked, refused = validate_each(_slow_records(table, slow), locate(lines[slow]))
        if refused.total:
            raise invalid(refused)
        for row, record in zip(slow.tolist(), checked):
            for field in FIELDS:
                columns[field.name][row] = record[field.name]
    return ColumnRecords(FIELDS, columns, table.num_rows)
