"""One chunk scored: parsed, validated, estimated, and written out as bytes or an Arrow table.

This runs in the worker processes (or in the parent with ``--jobs 1``). The model and the
run's ``Plan`` are module globals set by ``install`` before the pool forks, so each worker
inherits them and nothing large crosses a pipe but the chunks and their results.

Validation and estimates are the core's: text cells typed as the form types them
(``typed_from_text``), JSON lines parsed as strictly as the API parses a body, every row the
fast path does not certainly accept validated by ``core.validation.validate_each``, valid rows
estimated together by ``core.estimates.estimate_valid`` with pointers ``/<line>/<field>``.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field as dc_field
from typing import Any, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..core.estimates import estimate_valid
from ..core.schema import BY_NAME, CATEGORY, FIELD_NAMES, FIELDS, INTEGER, FieldError, \
    RepeatedKeys
from ..core.validation import ValidRecords, validate_each, validate_records
from . import columns as fastpath
from .formats import CSV, ESTIMATE, FIELD, JSONL, LINE, LOWER, MESSAGE, OUTPUT_COLUMNS, \
    PARQUET, UPPER, WARNING_SEPARATOR, WARNINGS
from .reading import BatchChunk, TextChunk, line_count, lines_of

MODEL = None
PLAN: "Plan | None" = None
ALL = sys.maxsize  # validate_each lists every problem of a chunk, not only the first 100


@dataclass(frozen=True)
class Plan:
    """What every chunk of one run needs to know."""

    input_format: str
    output_format: str
    rejects_format: str
    # CSV/Parquet input: its columns. JSON lines: the columns a CSV or Parquet output gets.
    columns: tuple[str, ...]
    fields: dict[str, str] = dc_field(default_factory=dict)  # field -> input column
    fast: bool = True  # the column-at-a-time fast path (tests turn it off to compare)


@dataclass
class Result:
    """A scored chunk: counts, the output rows and the rejects, ready to write."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    problems: int = 0
    warnings: int = 0
    output: Any = None  # bytes (CSV, JSON lines) or a pyarrow.Table (Parquet)
    rejects: Any = None


@dataclass
class Problem:
    """One problem of one row: its line, the field (None for the whole row), the message."""

    line: int
    field: str | None
    message: str
    row: int | None = None  # the row's index in the chunk's table or items
    text: str | None = None  # the raw line, when it could not be parsed into a row


def install(model, plan: Plan) -> None:
    """Set the model and plan this process scores with (before the pool forks)."""
    global MODEL, PLAN
    MODEL, PLAN = model, plan


def score(chunk) -> Result:
    """Score one chunk with the installed model and plan."""
    if isinstance(chunk, BatchChunk):
        table = pa.Table.from_batches([chunk.batch])
        lines = chunk.first_line + np.arange(table.num_rows, dtype=np.int64)
        return _score_table(table, lines, [])
    if PLAN.input_format == CSV:
        return _score_table(*parse_csv(chunk))
    return _score_json_lines(chunk)


def _line_of(error: FieldError) -> int:
    return int(error.pointer.split("/", 2)[1])


def _locate(lines: Sequence[int]):
    return lambda i: f"/{lines[i]}"


# CSV ------------------------------------------------------------------------------------------

def parse_csv(chunk: TextChunk) -> tuple[pa.Table, np.ndarray, list[Problem]]:
    """The chunk's rows as a table of text, each row's line number, and unparsable lines.

    Arrow parses the whole chunk; when its rows do not line up one to one with the chunk's lines
    (a quoted value holding a line break, text that is not UTF-8), Python's csv module parses
    it instead, which knows where each row starts. A row is numbered by its first line; a line
    that is not a row of the header's width becomes a problem.
    """
    data, columns = chunk.data, PLAN.columns
    count = line_count(data)
    invalid: list = []

    def skip(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=list(columns), use_threads=False,
                                            block_size=len(data) + 1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False,
                                              invalid_row_handler=skip),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _parse_csv_rows(chunk)
    if table.num_rows + len(invalid) != count or any(r.number is None for r in invalid):
        return _parse_csv_rows(chunk)
    lines = chunk.first_line + np.arange(count, dtype=np.int64)
    problems = [Problem(chunk.first_line + r.number - 1, None, _width_message(r.actual_columns),
                        text=r.text) for r in invalid]
    if invalid:
        lines = np.delete(lines, [r.number - 1 for r in invalid])
    blank = _blank_lines(data, count)[lines - chunk.first_line]
    if blank.any():  # a blank line is no row: left out, not counted
        table = table.filter(pa.array(~blank))
        lines = lines[~blank]
    return table, lines, problems


def _width_message(values: int) -> str:
    return (f"the line has {values} value{'s' if values != 1 else ''} where the header has "
            f"{len(PLAN.columns)} columns")


def _blank_lines(data: bytes, count: int) -> np.ndarray:
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


def _parse_csv_rows(chunk: TextChunk) -> tuple[pa.Table, np.ndarray, list[Problem]]:
    """The careful parse: Python's csv module, each row numbered by the line it starts on."""
    rows, lines, problems = [], [], []
    width = len(PLAN.columns)
    broken: dict[int, str] = {}  # lines that are not UTF-8 text

    def physical():
        for offset, raw in enumerate(lines_of(chunk.data)):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = chunk.first_line + offset
                broken[line] = (f"the line is not UTF-8 text (byte {exc.start + 1}); save the "
                                "file as UTF-8")
                yield "\n"  # stands in for the line, which is reported instead

    reader = csv.reader(physical(), strict=True)
    while True:
        first = chunk.first_line + reader.line_num
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(first, None, f"the line is not a CSV row ({exc})"))
            continue
        if first in broken:
            problems.append(Problem(first, None, broken[first]))
            continue
        if not values:
            continue  # a blank line is no row
        if len(values) != width:
            problems.append(Problem(first, None, _width_message(len(values))))
            continue
        rows.append(values)
        lines.append(first)
    table = pa.table({c: pa.array([r[j] for r in rows], pa.string())
                      for j, c in enumerate(PLAN.columns)})
    return table, np.array(lines, dtype=np.int64), problems


# Tables (CSV, Parquet) -----------------------------------------------------------------------

def _score_table(table: pa.Table, lines: np.ndarray, problems: list[Problem]) -> Result:
    n = table.num_rows
    unparsed = len({p.line for p in problems})  # lines that are not rows of the header's width
    arrays = [table.column(PLAN.fields[f.name]) for f in FIELDS]
    texts = [fastpath.is_text(a.type) for a in arrays]
    ok = np.ones(n, dtype=bool) if PLAN.fast else np.zeros(n, dtype=bool)
    columns = {}
    for f, array in zip(FIELDS, arrays):
        if PLAN.fast:
            certain, values = fastpath.fast_values(f, array)
            ok &= certain
        else:
            values = np.zeros(n, dtype=object if f.kind == CATEGORY else np.float64)
        columns[f.name] = values
    valid = ok.copy()
    slow = np.flatnonzero(~ok)
    if len(slow):
        taken = pa.array(slow)
        cells = [array.take(taken).to_pylist() for array in arrays]
        records = [fastpath.reference_record(FIELDS, [c[j] for c in cells], texts)
                   for j in range(len(slow))]
        checked = _validate(records, lines[slow])
        for j, (record, errors) in enumerate(checked):
            row = int(slow[j])
            if errors:
                problems.extend(Problem(int(lines[row]), e.field, e.message, row)
                                for e in errors)
                continue
            valid[row] = True
            for f in FIELDS:
                columns[f.name][row] = record[f.name]
    chosen = np.flatnonzero(valid)
    chosen_lines = lines[chosen]
    estimates = _estimate({name: col[chosen] for name, col in columns.items()}, chosen_lines)
    result = _counts(n + unparsed, problems, estimates)
    out = table.take(pa.array(chosen)) if len(chosen) < n else table
    out = _with_estimates(out, estimates)
    result.output = _encode_output(out, PLAN.output_format)
    result.rejects = _table_rejects(table, problems) if problems else None
    return result


def _validate(records: list, lines: np.ndarray) -> list[tuple[dict | None, list[FieldError]]]:
    """Each record's coerced values or problems, as the core's reference path says."""
    _, errors = validate_each(records, _locate(lines), listed=ALL)
    by_line: dict[int, list[FieldError]] = {}
    for error in errors:
        by_line.setdefault(_line_of(error), []).append(error)
    good = [j for j in range(len(records)) if int(lines[j]) not in by_line]
    coerced = {}
    if good:
        valid, refused = validate_records([records[j] for j in good], _locate(lines[good]))
        assert not refused.total, "validate_each and validate_records disagree"
        coerced = dict(zip(good, valid))
    return [(coerced.get(j), by_line.get(int(lines[j]), [])) for j in range(len(records))]


@dataclass
class Estimated:
    """Valid rows' estimates, likely ranges and joined warnings, in row order."""

    count: int
    amounts: np.ndarray = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    warnings: np.ndarray = None
    warning_count: int = 0
    records: Any = None


def _estimate(columns: dict[str, np.ndarray], lines: np.ndarray,
              records: Sequence[dict] | None = None) -> Estimated:
    count = len(lines)
    if count == 0:
        empty = np.empty(0)
        return Estimated(0, empty, None, None, np.empty(0, dtype=object))
    if records is None:
        if getattr(MODEL, "fast", None) is None and hasattr(MODEL, "pipeline"):
            # pipeline.predict reads real records: build them (the fast path reads columns)
            view = fastpath.ColumnRecords(FIELDS, columns, count)
            records = ValidRecords([dict(view[i]) for i in range(count)], columns)
        else:
            records = fastpath.ColumnRecords(FIELDS, columns, count)
    got = estimate_valid(MODEL, records, locate=_locate(lines))
    joined = np.full(count, "", dtype=object)
    if got.warnings:  # the core lists them by record, in order: join each record's run
        rows = np.searchsorted(lines, [_line_of(w) for w in got.warnings])
        starts = np.flatnonzero(np.diff(rows, prepend=-1))
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)]):
            joined[rows[start]] = WARNING_SEPARATOR.join(
                w.message for w in got.warnings[start:end])
    return Estimated(count, got.amounts, got.lower, got.upper, joined, len(got.warnings),
                     got.records)


def _counts(rows: int, problems: list[Problem], estimates: Estimated) -> Result:
    return Result(rows=rows, scored=estimates.count,
                  rejected=len({p.line for p in problems}), problems=len(problems),
                  warnings=estimates.warning_count)


def _estimate_arrays(estimates: Estimated) -> list[pa.Array]:
    count = estimates.count
    bounds = [pa.array(b, pa.float64()) if b is not None else pa.nulls(count, pa.float64())
              for b in (estimates.lower, estimates.upper)]
    return [pa.array(estimates.amounts, pa.float64()), *bounds,
            pa.array(estimates.warnings, pa.string())]


def _with_estimates(table: pa.Table, estimates: Estimated) -> pa.Table:
    for name, array in zip(OUTPUT_COLUMNS, _estimate_arrays(estimates)):
        table = table.append_column(name, array)
    return table


def _encode_output(table: pa.Table, fmt: str):
    if fmt == PARQUET:
        return table
    if fmt == CSV:
        sink = io.BytesIO()
        if table.num_rows:
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue()
    return b"".join(orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
                    for row in table.to_pylist())


def _problem_columns(problems: list[Problem]) -> dict[str, pa.Array]:
    return {LINE: pa.array([p.line for p in problems], pa.int64()),
            FIELD: pa.array([p.field for p in problems], pa.string()),
            MESSAGE: pa.array([p.message for p in problems], pa.string())}


def _table_rejects(table: pa.Table, problems: list[Problem]):
    problems = sorted(problems, key=lambda p: p.line)  # stable: a row's problems stay in order
    rows = table.take(pa.array([p.row for p in problems], pa.int64()))
    if PLAN.rejects_format == JSONL:
        out = []
        for problem, row in zip(problems, rows.to_pylist()):
            item = {LINE: problem.line, FIELD: problem.field, MESSAGE: problem.message}
            if problem.row is not None:
                item["row"] = row
            else:
                item["text"] = problem.text
            out.append(orjson.dumps(item, default=str, option=orjson.OPT_APPEND_NEWLINE))
        return b"".join(out)
    rejects = pa.table(_problem_columns(problems))
    for name in rows.column_names:
        rejects = rejects.append_column(name, rows.column(name))
    return _encode_output(rejects, PLAN.rejects_format)


# JSON lines ----------------------------------------------------------------------------------

def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _score_json_lines(chunk: TextChunk) -> Result:
    from ..core.strict_json import parse_json  # the API's strict parser (docs/api.md#the-record)

    parts = chunk.data.split(b"\n")
    if chunk.data.endswith(b"\n"):
        parts.pop()
    tabular = PLAN.output_format != JSONL
    allowed = set(PLAN.columns)
    items, item_lines, texts, objects, extra = [], [], [], [], []
    problems: list[Problem] = []
    rows = 0
    for offset, raw in enumerate(parts):
        line = chunk.first_line + offset
        body = raw.strip()
        if not body:
            continue  # a blank line is no row
        rows += 1
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(line, None, f"the line is not UTF-8 text (byte "
                                    f"{exc.start + 1})", text=raw.decode("utf-8", "replace")))
            continue
        try:
            value = parse_json(body, text)
        except RecursionError:
            problems.append(Problem(line, None, "the line's JSON is nested too deeply",
                                    text=text))
            continue
        except ValueError as exc:
            problems.append(Problem(line, None, f"the line is not valid JSON: {exc}",
                                    text=text))
            continue
        own: list[FieldError] = []
        if isinstance(value, dict):
            record = {k: value[k] for k in FIELD_NAMES if k in value}
            if isinstance(value, RepeatedKeys):  # the core refuses a repeated key by name
                record = RepeatedKeys(record)
                record.repeated = value.repeated
            for key in value:
                if key in OUTPUT_COLUMNS:
                    own.append(FieldError(f"/{line}/{key}", f"{key!r} is a column this command "
                                          "adds to each row; rename it in the input", key))
                elif tabular and key not in allowed:
                    own.append(FieldError(f"/{line}/{key}", f"{key!r} is not a column of the "
                                          f"{PLAN.output_format} output, whose columns are the "
                                          "first record's keys; write JSON lines, or give "
                                          "every record the same keys", key))
        else:
            record = value  # the core says what a record must be
        items.append(record)
        item_lines.append(line)
        texts.append(text)
        objects.append(value)
        extra.append(own)
    lines = np.array(item_lines, dtype=np.int64)
    valid_records, refused = validate_records(items, _locate(lines))
    if refused.total or any(extra):
        checked = _validate(items, lines) if refused.total else \
            [(None, []) for _ in items]
        keep = []
        for j, (_, errors) in enumerate(checked):
            errors = errors + extra[j]
            if errors:
                problems.extend(Problem(int(lines[j]), e.field, e.message, j, texts[j])
                                for e in errors)
            else:
                keep.append(j)
        valid_records, _ = validate_records([items[j] for j in keep], _locate(lines[keep]))
    else:
        keep = list(range(len(items)))
    chosen_lines = lines[keep]
    estimates = _estimate({}, chosen_lines, valid_records) if keep else _estimate({}, chosen_lines)
    result = _counts(rows, problems, estimates)
    result.output = _json_output([texts[j] for j in keep], [objects[j] for j in keep],
                                 valid_records, estimates)
    result.rejects = _json_rejects(problems) if problems else None
    return result


def _number(value) -> str:
    return "null" if value is None else repr(float(value))


def _json_output(texts: list[str], objects: list[dict], records: Sequence[dict],
                 estimates: Estimated):
    fmt = PLAN.output_format
    amounts = estimates.amounts.tolist()
    lower = estimates.lower.tolist() if estimates.lower is not None else [None] * len(texts)
    upper = estimates.upper.tolist() if estimates.upper is not None else [None] * len(texts)
    warnings = estimates.warnings.tolist()
    if fmt == JSONL:  # the line as it was, with the four values spliced in before its last }
        return "".join(
            f'{text[:-1]},"{ESTIMATE}":{_number(a)},"{LOWER}":{_number(lo)},'
            f'"{UPPER}":{_number(hi)},"{WARNINGS}":{_json_text(w)}}}\n'
            for text, a, lo, hi, w in zip(texts, amounts, lower, upper, warnings)
        ).encode("utf-8")
    table = {}
    for name in PLAN.columns:
        if name in BY_NAME:  # the validated value, typed as the schema says
            values = [r[name] for r in records]
            kind = BY_NAME[name].kind
            typed = pa.string() if kind == CATEGORY else \
                pa.int64() if kind == INTEGER else pa.float64()
            if fmt == CSV:
                table[name] = pa.array([_cell(v) for v in values], pa.string())
            else:
                table[name] = pa.array(values, typed)
        else:
            values = [o.get(name) for o in objects]
            table[name] = pa.array([_cell(v) for v in values], pa.string()) if fmt == CSV \
                else _carried_array(values)
    out = pa.table(table) if table else pa.table({})
    return _encode_output(_with_estimates(out, estimates), fmt)


def _cell(value) -> str | None:
    """A JSON value as a CSV cell: strings as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return _json_text(value)


def _carried_array(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types: their JSON text
        return pa.array([_cell(v) for v in values], pa.string())


def _json_rejects(problems: list[Problem]):
    problems = sorted(problems, key=lambda p: p.line)
    if PLAN.rejects_format == JSONL:
        out = []
        for p in problems:
            head = orjson.dumps({LINE: p.line, FIELD: p.field, MESSAGE: p.message}).decode()
            if p.row is not None:  # the record exactly as it was sent
                out.append(f'{head[:-1]},"row":{p.text}}}\n')
            else:
                out.append(f'{head[:-1]},"text":{_json_text(p.text)}}}\n')
        return "".join(out).encode("utf-8")
    table = pa.table(_problem_columns(problems))
    table = table.append_column("record", pa.array([p.text for p in problems], pa.string()))
    return _encode_output(table, PLAN.rejects_format)
