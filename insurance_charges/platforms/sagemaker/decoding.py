"""CSV and JSON-lines bodies read into valid records, each with its 1-based line number.

A body is all or nothing, as a JSON batch is to the API: lines that are not records raise
``Unreadable`` (answered 400), records with bad values raise the core's ``InvalidRecords``
(422), each problem located by a pointer ``/<line>/<field>``. Batch Transform splits a file on
line breaks (``SplitType=Line``) and sends the parts without the file's header, so CSV carries
the six fields in schema order, a header row is optional, and a value may not hold a line break.

CSV is read as the file scoring command reads it: Arrow parses the body as text columns, the
command's column-at-a-time check (``scoring.columns``) accepts the plain valid cells at once,
and every other row goes through the core's own validation, which writes the messages.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ...core.estimates import InvalidRecords
from ...core.schema import FIELD_NAMES, FIELDS, FieldError
from ...core.validation import LISTED, Refusal, ValidRecords, validate_each, validate_records
from ...scoring.columns import ColumnRecords, fast_values, reference_record
from ...scoring.reading import line_count, lines_of

BOM = b"\xef\xbb\xbf"
RECORD = ", ".join(FIELD_NAMES)
EMPTY = f"the body is empty; send one record per line ({RECORD})"
SPANNING = ("the record does not end on this line (a quoted value holding a line break, a quote "
            "left open, or a lone carriage return); SageMaker splits CSV on line breaks, so "
            "each record must be one whole line")


class Unreadable(ValueError):
    """Lines that are not records; ``errors`` lists the first of them, ``total`` counts all."""

    def __init__(self, detail: str, errors: Refusal | None = None):
        super().__init__(detail)
        self.detail, self.errors = detail, errors if errors is not None else Refusal()


@dataclass(frozen=True)
class Decoded:
    """Valid records in body order and the line each came from (ascending, from 1)."""

    records: ValidRecords
    lines: np.ndarray


def _locate(lines: np.ndarray):
    return lambda i: f"/{int(lines[i])}"


def _refused(problems: Refusal, what: str) -> str:
    first = problems[0].pointer.split("/")[1]
    return f"{problems.total} {what}, the first on line {first}; see errors"


def _unreadable(problems: Refusal) -> Unreadable:
    return Unreadable(_refused(problems, "line(s) that are not records"), problems)


def _invalid(refused: Refusal) -> InvalidRecords:
    return InvalidRecords(refused, _refused(refused, "invalid value(s)"), total=refused.total)


def _line_problems(found: list[tuple[int, str]]) -> Refusal:
    return Refusal([FieldError(f"/{line}", message) for line, message in found[:LISTED]],
                   len(found))


# CSV -----------------------------------------------------------------------------------------

def read_csv(data: bytes) -> Decoded:
    """The records of a CSV body: the six fields in schema order, an optional header row."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _unreadable(_line_problems([(line, "the line is not UTF-8 text; send the body "
                                                 "as UTF-8")])) from None
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
    invalid: list = []

    def skip(row) -> str:
        invalid.append(row)
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=list(FIELD_NAMES), use_threads=False,
                                        block_size=len(data) + 1),
        parse_options=pa_csv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=skip),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in FIELD_NAMES},
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    if table.num_rows + len(invalid) != count or any(r.number is None for r in invalid):
        raise _unreadable(_line_problems([(_spanning_row(data) + first - 1, SPANNING)]))
    if invalid:
        raise _unreadable(_line_problems(
            [(first + r.number - 1, f"the line has {r.actual_columns} value(s) where a "
                                    f"record has 6: {RECORD}") for r in invalid]))
    lines = first + np.arange(count, dtype=np.int64)
    empty = pc.equal(table.column(FIELD_NAMES[0]), "")  # a blank line: six empty cells
    for name in FIELD_NAMES[1:]:
        empty = pc.and_(empty, pc.equal(table.column(name), ""))
    empty = empty.to_numpy()
    if empty.any():  # ",,,,," is a record missing every field; a blank line is no record
        text = lines_of(data)
        blank = np.array([i for i in np.flatnonzero(empty) if not text[i].strip(b"\r\n")],
                         dtype=np.int64)
        if len(blank):
            keep = np.ones(count, dtype=bool)
            keep[blank] = False
            table, lines = table.filter(pa.array(keep)), lines[keep]
    return table, lines


def _spanning_row(data: bytes) -> int:
    """The line (from 1) on which the first row spanning several lines starts."""
    reader = csv.reader((line.decode("utf-8") for line in lines_of(data)))
    start = 1
    while True:
        try:
            next(reader)
        except (StopIteration, csv.Error):
            return start
        if reader.line_num > start:
            return start
        start = reader.line_num + 1


def _valid(table: pa.Table, lines: np.ndarray) -> ColumnRecords:
    """The table's records, checked a column at a time, the uncertain rows by the core."""
    ok = np.ones(table.num_rows, dtype=bool)
    columns = {}
    for field in FIELDS:
        certain, columns[field.name] = fast_values(field, table.column(field.name))
        ok &= certain
    slow = np.flatnonzero(~ok)
    if len(slow):
        taken = pa.array(slow)
        cells = [table.column(f.name).take(taken).to_pylist() for f in FIELDS]
        texts = [True] * len(FIELDS)
        records = [reference_record(FIELDS, [c[j] for c in cells], texts)
                   for j in range(len(slow))]
        checked, refused = validate_each(records, _locate(lines[slow]))
        if refused.total:
            raise _invalid(refused)
        for row, record in zip(slow.tolist(), checked):
            for field in FIELDS:
                columns[field.name][row] = record[field.name]
    return ColumnRecords(FIELDS, columns, table.num_rows)


# JSON lines ----------------------------------------------------------------------------------

def read_jsonlines(data: bytes) -> Decoded:
    """The records of a JSON-lines body: one JSON object per line, read as the API reads one."""
    from ...web.json_body import parse_json  # the API's strict parser (Flask is not used)

    items, found, unreadable = [], [], []
    for number, raw in enumerate(lines_of(data), 1):
        body = raw.strip()
        if not body:
            continue  # a blank line is no record
        try:
            text = body.decode("utf-8")
            items.append(parse_json(body, text))
        except UnicodeDecodeError as exc:
            unreadable.append((number, f"the line is not UTF-8 text (byte {exc.start + 1}); "
                                       "send the body as UTF-8"))
            continue
        except RecursionError:
            unreadable.append((number, "the line's JSON is nested too deeply"))
            continue
        except ValueError as exc:  # JSONDecodeError, NaN or Infinity, huge numbers
            unreadable.append((number, f"the line is not valid JSON: {exc}"))
            continue
        found.append(number)
    if unreadable:
        raise _unreadable(_line_problems(unreadable))
    if not found and not data.strip():
        raise Unreadable(EMPTY)
    lines = np.array(found, dtype=np.int64)
    records, refused = validate_records(items, _locate(lines))
    if refused.total:
        raise _invalid(refused)
    return Decoded(records if records is not None else ValidRecords(), lines)
