"""CSV bodies: one record per line, the six fields in schema order, a header row optional.

Batch Transform splits a file on line breaks (``SplitType=Line``) and sends the parts without
the file's header, so the fields come in schema order, a header must name them in that order,
and a value may not hold a line break. The body is read as the file scorer reads a file,
through ``tables``: Arrow parses it as text columns (``tables.csv_text``), the
column-at-a-time check (``tables.columns``) accepts the plain valid cells at once, and every
other row goes through the core's own validation, which writes the messages.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...core.schema import FIELD_NAMES, FIELDS
from ...core.validation import LISTED, Refusal, ValidRecords, validate_each
from ...tables.columns import ColumnRecords, fast_values, reference_record
from ...tables.csv_text import SkippedRows, spans_lines, text_table
from ...tables.lines import blank_lines, line_chunks, line_count
from .decoding import EMPTY, RECORD, Decoded, Unreadable, add, full, invalid, locate, unreadable

BOM = b"\xef\xbb\xbf"
LONE_CR = re.compile(rb"\r(?!\n)")  # a carriage return that does not end a line with its \n
SPANNING = (
    "the record does not end on this line (a quoted value holding a line break, a quote "
    "left open, or a lone carriage return); SageMaker splits CSV on line breaks, so "
    "each record must be one whole line"
)


# A body is parsed, checked and let go of this many lines (or bytes) at a time, each cut at a
# line end: a request's memory follows its valid rows, whatever its line count (6 MiB of ",,,,,"
# are a million rows; at once they held 154 MB where 6 MiB of valid rows hold 62 MB).
CHUNK_LINES = 200_000  # about a 6 MB mini-batch of valid rows
CHUNK_BYTES = 8 * 1024 * 1024


def read_csv(data: bytes) -> Decoded:
    """The records of a CSV body: the six fields in schema order, an optional header row."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = (line, "the line is not UTF-8 text; send the body as UTF-8")
        raise unreadable([problem]) from None
    if not data or data.isspace():
        raise Unreadable(EMPTY)
    first, begin = 1, 0
    end = data.find(b"\n")
    if _is_header(data[:end] if end >= 0 else data):
        first, begin = 2, (end + 1 if end >= 0 else len(data))
    not_records: list[tuple[int, str]] = []
    refused = Refusal()  # the invalid values found, over the chunks read so far
    parts: list[tuple[ColumnRecords, np.ndarray]] = []
    for line, chunk in line_chunks(data, begin, first, CHUNK_LINES, CHUNK_BYTES):
        table, lines, wrong_width = _table(chunk, line, LISTED - len(not_records))
        not_records += wrong_width
        if full(not_records):
            break  # enough lines that are not records to list
        if not_records or not refused.complete:
            continue  # refused already: only lines that are not records matter now
        records, problems = _valid(table, lines, LISTED - len(refused))
        if records is None:  # None exactly when the chunk has refused values
            add(refused, problems)
        elif not refused.total:
            parts.append((records, lines))
    if not_records:
        raise unreadable(not_records)
    if refused.total:
        raise invalid(refused)
    return _joined(parts)


def _joined(parts: list[tuple[ColumnRecords, np.ndarray]]) -> Decoded:
    """The chunks' records and their lines as one body's, in order."""
    if not parts:  # a header alone
        return Decoded(ValidRecords(), np.empty(0, dtype=np.int64))
    if len(parts) == 1:
        return Decoded(*parts[0])
    count = sum(len(records) for records, _ in parts)
    columns = {
        f.name: np.concatenate([records.column(f.name) for records, _ in parts]) for f in FIELDS
    }
    return Decoded(
        ColumnRecords(FIELDS, columns, count), np.concatenate([lines for _, lines in parts])
    )


def _is_header(line: bytes) -> bool:
    try:
        cells = [c.strip() for c in next(csv.reader([line.decode("utf-8").rstrip("\r")]))]
    except (csv.Error, StopIteration):
        return False
    if cells == list(FIELD_NAMES):
        return True
    if sorted(cells) == sorted(FIELD_NAMES):
        raise Unreadable(
            f"the header on line 1 names the fields in another order; SageMaker "
            f"sends the rest of a file without its header, so send the columns "
            f"in this order: {RECORD}"
        )
    return False


def _table(data: bytes, first: int, room: int) -> tuple[pa.Table | None, np.ndarray, list]:
    """Every line as a row of six text cells, and its line number, blank lines left out; and
    the (line, message) of the lines of the wrong width, up to one more than ``room``.

    A row that spans lines is refused at once: it is the one line then named.
    """
    count = line_count(data)
    skipped = SkippedRows(room)  # past room, Arrow stops here
    # Ended by a line break and one blank line more: a quote left open on the last line (of
    # the body, or of a chunk cut inside a quoted value) swallows that blank line, so the rows
    # come one short, instead of ending where the text ends, unnoticed.
    parsed = (data if data.endswith(b"\n") else data + b"\n") + b"\n"
    try:
        table = text_table(parsed, FIELD_NAMES, skipped)
    except pa.ArrowInvalid:
        if len(skipped.rows) <= room:
            raise
        table = None  # more lines of the wrong width than an answer lists: enough looking
    wrong_width = skipped.rows
    # Arrow ends a row at a lone CR too, which would even out the count of a row spanning
    # lines: a lone CR is refused itself. Then every row is one line or more, and there are
    # as many rows as lines (and the blank one added) only when none spans lines.
    lone_cr = LONE_CR.search(data)
    if lone_cr or spans_lines(None if table is None else table.num_rows, skipped, count + 1):
        line = _spanning_row(data)
        if lone_cr:
            line = min(line, data.count(b"\n", 0, lone_cr.start()) + 1)
        raise unreadable([(line + first - 1, SPANNING)])
    lines = first + np.arange(count, dtype=np.int64)
    widths = [
        (
            first + r.number - 1,
            f"the line has {r.actual_columns} value(s) where a record has 6: {RECORD}",
        )
        for r in wrong_width
    ]
    if table is None or wrong_width:
        return table, lines, widths
    table = table.slice(0, count)  # without the blank line added
    empty = pc.equal(table.column(FIELD_NAMES[0]), "")  # a blank line: six empty cells
    for name in FIELD_NAMES[1:]:
        empty = pc.and_(empty, pc.equal(table.column(name), ""))
    empty = empty.to_numpy()
    if empty.any():  # ",,,,," is a record missing every field; a blank line is no record
        keep = ~(empty & blank_lines(data, b"\r\n"))
        if not keep.all():
            table, lines = table.filter(pa.array(keep)), lines[keep]
    return table, lines, []


def _spanning_row(data: bytes) -> int:
    """The line (from 1) on which the first row spanning several lines starts."""
    ended = data if data.endswith(b"\n") else data + b"\n"
    reader = csv.reader(io.StringIO(ended.decode("utf-8"), newline="\n"))  # only \n ends a line
    start, row = 1, []
    try:
        for row in reader:  # noqa: B007 - the last row read is looked at after the loop
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
        taken = pa.array(rows[start : start + SLOW_ROWS_AT_ONCE])
        cells = [table.column(f.name).take(taken).to_pylist() for f in FIELDS]
        for row in zip(*cells, strict=True):
            yield reference_record(FIELDS, list(row), texts)


def _valid(table: pa.Table, lines: np.ndarray, listed: int) -> tuple[ColumnRecords | None, Refusal]:
    """The table's records, checked a column at a time, the uncertain rows by the core; or the
    first ``listed`` problems and how many were found."""
    ok = np.ones(table.num_rows, dtype=bool)
    columns = {}
    for field in FIELDS:
        certain, columns[field.name] = fast_values(field, table.column(field.name))
        ok &= certain
    slow = np.flatnonzero(~ok)
    if len(slow):
        checked, refused = validate_each(_slow_records(table, slow), locate(lines[slow]), listed)
        if checked is None:  # None exactly when there are refused values
            return None, refused
        for row, record in zip(slow.tolist(), checked, strict=True):
            for field in FIELDS:
                columns[field.name][row] = record[field.name]
    return ColumnRecords(FIELDS, columns, table.num_rows), Refusal()
