"""CSV text as rows of text cells, each numbered by the line it starts on.

Arrow parses a run of whole lines at C speed as text columns (no type guessed, no cell read as
null: the core types text as the form types it). When its rows do not line up one to one with
the lines (a quoted value holding a line break, text that is not UTF-8), the file scorer reads
the lines again with Python's csv module, which knows where each row starts
(``read_csv_chunk``); SageMaker's bodies refuse such a row instead (``platforms.sagemaker``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from .lines import line_count, lines_of


class SkippedRows:
    """Arrow's handler for rows of another width: each is kept here and skipped, until more
    than ``room`` of them stop the parse (None: never)."""

    def __init__(self, room: int | None = None):
        self.rows: list = []  # pyarrow.csv.InvalidRow, in text order
        self.room = room

    def __call__(self, row) -> str:
        self.rows.append(row)
        return "error" if self.room is not None and len(self.rows) > self.room else "skip"


def text_table(
    data: bytes, columns: Sequence[str], skipped: SkippedRows, newlines_in_values: bool = False
) -> pa.Table:
    """Every row of ``data`` as text cells named ``columns``; rows of another width go to
    ``skipped``. A blank line is a row of empty cells (it is no row: callers leave it out).

    One block and one thread: the text is already a chunk, and a worker's core is its own.
    """
    return pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(
            column_names=list(columns), use_threads=False, block_size=len(data) + 1
        ),
        parse_options=pa_csv.ParseOptions(
            newlines_in_values=newlines_in_values,
            ignore_empty_lines=False,
            invalid_row_handler=skipped,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def spans_lines(rows: int | None, skipped: SkippedRows, lines: int) -> bool:
    """True unless Arrow's ``rows`` (None: not counted) and skipped rows are the ``lines``
    lines one to one: a row then spans lines, or Arrow lost track of where one starts."""
    if any(r.number is None for r in skipped.rows):
        return True
    return rows is not None and rows + len(skipped.rows) != lines


@dataclass(slots=True)  # a chunk of broken text makes one per line
class NotARow:
    """Text that is not a row: the lines it starts and ends on, what is wrong, the text
    (whole), and the rows it counts for (its lines that are not blank)."""

    line: int
    last_line: int
    message: str
    text: str
    rows: int = 1


def read_csv_chunk(
    data: bytes, first_line: int, columns: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray, list[NotARow]]:
    """A chunk's rows as a table of text, each row's line number, and the text that is no row.

    Arrow parses the whole chunk; when its rows do not line up one to one with the chunk's lines
    (a quoted value holding a line break, text that is not UTF-8), Python's csv module parses
    it instead, which knows where each row starts. A row is numbered by its first line; a line
    that is not a row of the header's width is a ``NotARow``; a blank line is left out.
    """
    count = line_count(data)
    skipped = SkippedRows()
    try:
        table = text_table(data, columns, skipped, newlines_in_values=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _read_csv_rows(data, first_line, columns)
    if spans_lines(table.num_rows, skipped, count):
        return _read_csv_rows(data, first_line, columns)
    lines = first_line + np.arange(count, dtype=np.int64)
    problems = [
        NotARow(line, line, width_message(r.actual_columns, len(columns)), r.text)
        for line, r in ((first_line + r.number - 1, r) for r in skipped.rows)
    ]
    if skipped.rows:
        lines = np.delete(lines, [r.number - 1 for r in skipped.rows])
    blank = _blank_lines(data, count)[lines - first_line]
    if blank.any():  # a blank line is no row: left out, not counted
        table = table.filter(pa.array(~blank))
        lines = lines[~blank]
    return table, lines, problems


def width_message(values: int, columns: int) -> str:
    """A line of ``values`` values in a file whose header has ``columns`` columns."""
    return (
        f"the line has {values} value{'s' if values != 1 else ''} where the header has "
        f"{columns} columns"
    )


def _blank_lines(data: bytes, count: int) -> np.ndarray:
    """Per line, True when it is empty or a lone carriage return (a CRLF file's blank line)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    if len(ends) < count:
        ends = np.append(ends, len(raw))
    starts = np.concatenate(([0], ends[:-1] + 1))
    width = ends - starts
    carriage = np.zeros(count, dtype=bool)
    one = width == 1
    carriage[one] = raw[starts[one]] == 13
    return (width == 0) | carriage


def _read_csv_rows(
    data: bytes, first_line: int, columns: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray, list[NotARow]]:
    """The careful parse: Python's csv module, each row numbered by the line it starts on.

    Text that is not a row of the header's width (and a row holding a line that is not UTF-8)
    is one problem naming every line it spans, and counts as a rejected row for each of them
    that is not blank: a quote left open swallows the lines after it into one value (up to the
    csv module's field size limit, or the chunk's end), and those lines must not vanish.
    """
    rows, lines, problems = [], [], []
    width = len(columns)
    raw = lines_of(data)
    broken: dict[int, str] = {}  # lines that are not UTF-8 text

    def physical():
        for offset, line_bytes in enumerate(raw):
            try:
                yield line_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = first_line + offset
                broken[line] = (
                    f"the line is not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8"
                )
                yield "\n"  # stands in for the line, which is reported instead

    def spanned(first: int, last: int, message: str) -> NotARow:
        span = raw[first - first_line : last - first_line + 1]
        text = b"".join(span).decode("utf-8", "replace")
        count = sum(1 for part in span if part.strip(b"\r\n"))
        return NotARow(first, last, message, text, max(count, 1))

    reader = csv.reader(physical(), strict=True)
    while True:
        first = first_line + reader.line_num
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            last = max(first, first_line + reader.line_num - 1)
            problems.append(spanned(first, last, _not_a_row(first, last, exc)))
            continue
        last = first_line + reader.line_num - 1
        bad = next((n for n in range(first, last + 1) if n in broken), None)
        if bad is not None:
            where = "" if first == last else f"lines {first}-{last}: line {bad}: "
            problems.append(spanned(first, last, where + broken[bad]))
            continue
        if not values:
            continue  # a blank line is no row
        if len(values) != width:
            message = (
                width_message(len(values), width)
                if first == last
                else (
                    f"lines {first}-{last}: the row has {len(values)} values where the header has "
                    f"{width} columns, and a quoted value in it holds line breaks (is a quote left "
                    "open?)"
                )
            )
            problems.append(spanned(first, last, message))
            continue
        rows.append(values)
        lines.append(first)
    table = pa.table(
        {c: pa.array([r[j] for r in rows], pa.string()) for j, c in enumerate(columns)}
    )
    return table, np.array(lines, dtype=np.int64), problems


def _not_a_row(first: int, last: int, exc: csv.Error) -> str:
    """What is wrong with text the csv module could not read as a row, and how to fix it."""
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    reason = str(exc)
    fix = (
        'close the quote (a quote inside a quoted value is written twice: ""), then score '
        "these lines again"
    )
    if reason.startswith("field larger than field limit"):
        return (
            f"{where}: a quote opened in the row that starts on line {first} is never "
            f"closed within {csv.field_size_limit():,} characters, so these lines were "
            f"read as one value; {fix}"
        )
    if reason.startswith("unexpected end of data"):
        return (
            f"{where}: a quote opened in the row that starts on line {first} is never "
            f"closed, so the lines up to {last} were read as one value; {fix}"
        )
    if reason.startswith("',' expected after"):
        return (
            f"{where}: a quoted value is followed by more text before the next comma; "
            'quote the whole value and write each quote inside it twice ("5\'10""")'
        )
    if reason.startswith("new-line character seen in unquoted field"):
        return (
            f"{where}: a value that is not quoted holds a carriage return (\\r); quote "
            "the value, or end lines with \\n or \\r\\n only"
        )
    return f"{where}: the text is not a CSV row ({reason})"
