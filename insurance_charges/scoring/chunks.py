"""One chunk scored: parsed, validated, estimated, and written out as bytes or an Arrow table.

This runs in the worker processes (or in the parent with ``--jobs 1``). The model and the
run's ``Plan`` are module globals set by ``install`` before the pool forks, so each worker
inherits them and nothing large crosses a pipe but the chunks and their results.

Validation and estimates are the core's: text cells typed as the form types them
(``typed_from_text``), JSON lines parsed as strictly as the API parses a body, every row the
fast path does not certainly accept validated by ``core.validation.validate_each``, valid rows
estimated together by ``core.estimates.estimate_valid`` with pointers ``/<line>/<field>``.

Every line is accounted for: a row is scored or rejected, and text that is not a row (a line of
another width, a quote left open that swallowed the lines after it) is a rejected row for each
line it spans, with one problem naming the lines. A rejected row is one rejects line holding
all of its problems (``Rejected``), and identical rejected rows one after the other (nothing but
blank lines between them) are one line naming their first and last line, as are identical
lines that are no row: the cost of a bad input is its distinct rows, not its problems. A row
has a bounded number of problems (keys that are not columns, or that are repeated, are one
problem each, however many), and a rejects file echoes text cut as ``cells`` cuts it, so no
input multiplies into its rejects.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..core.estimates import Estimator, estimate_valid
from ..core.schema import (
    BY_NAME,
    CATEGORY,
    FIELD_NAMES,
    FIELDS,
    INTEGER,
    FieldError,
    RepeatedKeys,
    _shown_key,
    check_value,
)
from ..core.validation import Locate, Refusal, ValidRecords, validate_each, validate_records
from . import columns as fastpath
from .cells import ECHO_LIMIT, cut_table, cut_text, inert_table
from .formats import (
    CSV,
    ESTIMATE,
    FIELD,
    JSONL,
    LAST_LINE,
    LINE,
    LOWER,
    MESSAGE,
    OUTPUT_COLUMNS,
    PARQUET,
    PROBLEM_FIELDS,
    PROBLEM_MESSAGES,
    PROBLEM_SEPARATOR,
    PROBLEMS,
    RUN_ROWS,
    UPPER,
    WARNING_SEPARATOR,
    WARNINGS,
)
from .reading import BatchChunk, TextChunk, line_count, lines_of

# Set by install() before the pool forks (unset before it: a NameError, never a None to test).
MODEL: Estimator
PLAN: Plan
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
    inert: bool = True  # CSV text cells a spreadsheet would evaluate are quoted (cells.py)


@dataclass
class Result:
    """A scored chunk: counts, the output rows and the rejects, ready to write."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    problems: int = 0
    warnings: int = 0
    unreadable: int = 0  # rejected rows counted from text that is not a row, line by line
    first_unreadable: int | None = None  # where the first such text starts
    output: Any = None  # bytes (CSV, JSON lines) or a pyarrow.Table (Parquet)
    rejects: Any = None


@dataclass(slots=True)  # a chunk of bad rows makes hundreds of thousands
class Problem:
    """One problem of one row of a table, as the reference path lists them one by one."""

    line: int
    field: str | None
    message: str
    row: int  # the row's index in the chunk's table


@dataclass(slots=True)
class Rejected:
    """One line of a rejects file: a rejected row with all of its problems, a run of identical
    rows one after the other, or text that is no row (``row`` is None)."""

    line: int
    last_line: int
    problems: list  # (field or None for the whole row, message), in the core's order
    row: int | None = None  # the (first) row's index in the chunk's table or lines
    text: str | None = None  # the raw line(s): a JSON-lines record, or text that is no row
    rows: int = 1  # rejected rows it counts for: a run's rows, or text's lines that are not blank
    repeats: int = 1  # identical rejects it stands for, each with all of ``problems``


def install(model: Estimator, plan: Plan) -> None:
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


def _locate(lines: Sequence[int] | np.ndarray) -> Locate:
    return lambda i: f"/{lines[i]}"


# CSV ------------------------------------------------------------------------------------------

def parse_csv(chunk: TextChunk) -> tuple[pa.Table, np.ndarray, list[Rejected]]:
    """The chunk's rows as a table of text, each row's line number, and unparsable lines.

    Arrow parses the whole chunk; when its rows do not line up one to one with the chunk's lines
    (a quoted value holding a line break, text that is not UTF-8), Python's csv module parses
    it instead, which knows where each row starts. A row is numbered by its first line; a line
    that is not a row of the header's width becomes a reject of text that is no row.
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
    problems = [Rejected(line, line, [(None, _width_message(r.actual_columns))],
                         text=cut_text(r.text))
                for line, r in ((chunk.first_line + r.number - 1, r) for r in invalid)]
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


def _parse_csv_rows(chunk: TextChunk) -> tuple[pa.Table, np.ndarray, list[Rejected]]:
    """The careful parse: Python's csv module, each row numbered by the line it starts on.

    Text that is not a row of the header's width (and a row holding a line that is not UTF-8)
    is one problem naming every line it spans, and counts as a rejected row for each of them
    that is not blank: a quote left open swallows the lines after it into one value (up to the
    csv module's field size limit, or the chunk's end), and those lines must not vanish.
    """
    rows, lines, problems = [], [], []
    width = len(PLAN.columns)
    raw = lines_of(chunk.data)
    broken: dict[int, str] = {}  # lines that are not UTF-8 text

    def physical():
        for offset, line_bytes in enumerate(raw):
            try:
                yield line_bytes.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = chunk.first_line + offset
                broken[line] = (f"the line is not UTF-8 text (byte {exc.start + 1}); save the "
                                "file as UTF-8")
                yield "\n"  # stands in for the line, which is reported instead

    def spanned(first: int, last: int, message: str) -> Rejected:
        span = raw[first - chunk.first_line:last - chunk.first_line + 1]
        text = b"".join(span).decode("utf-8", "replace")
        count = sum(1 for part in span if part.strip(b"\r\n"))
        return Rejected(first, last, [(None, message)], text=cut_text(text), rows=max(count, 1))

    reader = csv.reader(physical(), strict=True)
    while True:
        first = chunk.first_line + reader.line_num
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            last = max(first, chunk.first_line + reader.line_num - 1)
            problems.append(spanned(first, last, _not_a_row(first, last, exc)))
            continue
        last = chunk.first_line + reader.line_num - 1
        bad = next((n for n in range(first, last + 1) if n in broken), None)
        if bad is not None:
            where = "" if first == last else f"lines {first}-{last}: line {bad}: "
            problems.append(spanned(first, last, where + broken[bad]))
            continue
        if not values:
            continue  # a blank line is no row
        if len(values) != width:
            message = _width_message(len(values)) if first == last else (
                f"lines {first}-{last}: the row has {len(values)} values where the header has "
                f"{width} columns, and a quoted value in it holds line breaks (is a quote left "
                "open?)")
            problems.append(spanned(first, last, message))
            continue
        rows.append(values)
        lines.append(first)
    table = pa.table({c: pa.array([r[j] for r in rows], pa.string())
                      for j, c in enumerate(PLAN.columns)})
    return table, np.array(lines, dtype=np.int64), problems


def _not_a_row(first: int, last: int, exc: csv.Error) -> str:
    """What is wrong with text the csv module could not read as a row, and how to fix it."""
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    reason = str(exc)
    fix = ('close the quote (a quote inside a quoted value is written twice: ""), then score '
           "these lines again")
    if reason.startswith("field larger than field limit"):
        return (f"{where}: a quote opened in the row that starts on line {first} is never "
                f"closed within {csv.field_size_limit():,} characters, so these lines were "
                f"read as one value; {fix}")
    if reason.startswith("unexpected end of data"):
        return (f"{where}: a quote opened in the row that starts on line {first} is never "
                f"closed, so the lines up to {last} were read as one value; {fix}")
    if reason.startswith("',' expected after"):
        return (f"{where}: a quoted value is followed by more text before the next comma; "
                'quote the whole value and write each quote inside it twice ("5\'10""")')
    if reason.startswith("new-line character seen in unquoted field"):
        return (f"{where}: a value that is not quoted holds a carriage return (\\r); quote "
                "the value, or end lines with \\n or \\r\\n only")
    return f"{where}: the text is not a CSV row ({reason})"


# Tables (CSV, Parquet) -----------------------------------------------------------------------

@dataclass
class Found:
    """The problems of a chunk's rows, as columns: each one's line, its field's position in
    the schema, the row's index in the chunk's table, and the core's message as a position in
    ``words``, where each distinct message is once (a column of one bad value makes one
    string, and only the messages a rejects file shows are ever copied)."""

    line: np.ndarray
    field: np.ndarray
    row: np.ndarray
    said: np.ndarray
    words: pa.Array

    def __len__(self) -> int:
        return len(self.line)

    @classmethod
    def of(cls, problems: list[Problem]) -> Found:
        """Problems listed one by one (the reference path), as columns."""
        return cls(np.array([p.line for p in problems], dtype=np.int64),
                   np.array([FIELD_NAMES.index(p.field) for p in problems], dtype=np.int64),
                   np.array([p.row for p in problems], dtype=np.int64),
                   np.arange(len(problems), dtype=np.int64),
                   pa.array([p.message for p in problems], pa.string()))


def _score_table(table: pa.Table, lines: np.ndarray, unreadable: list[Rejected]) -> Result:
    """Score a table's rows. A run of identical rows one after the other is judged once, by
    its first row: each row's problems are those of its cells, so the run's rows share them
    (a file of one bad line repeated costs its parsing, not its problems)."""
    n = table.num_rows
    heads = np.flatnonzero(~_repeated(table, lines, sorted(u.line for u in unreadable)))
    runs = np.diff(np.append(heads, n))  # the rows in each run
    judged = table if len(heads) == n else table.take(pa.array(heads))
    arrays = [judged.column(PLAN.fields[f.name]) for f in FIELDS]
    if PLAN.fast:
        columns, valid, found = _checked_columns(arrays, lines[heads])
    else:
        columns, valid, found = _checked_records(arrays, lines[heads])
    if len(heads) < n:  # each row as its run's first row
        run_of = np.repeat(np.arange(len(heads)), runs)
        valid = valid[run_of]
        columns = {name: col[run_of] for name, col in columns.items()}
    chosen = np.flatnonzero(valid)
    chosen_lines = lines[chosen]
    estimates = _estimate({name: col[chosen] for name, col in columns.items()}, chosen_lines)
    problems = np.bincount(found.row, minlength=len(heads))  # each run's first row's
    refused = int(runs[problems > 0].sum())
    result = _counts(n, refused, int((problems * runs).sum()), unreadable, estimates)
    out = table.take(pa.array(chosen)) if len(chosen) < n else table
    out = _with_estimates(out, estimates)
    result.output = _encode_output(out, PLAN.output_format)
    if len(found) or unreadable:
        result.rejects = _table_rejects(judged, lines[heads], lines[heads + runs - 1], runs,
                                        problems, found, _merged(unreadable))
    return result


def _repeated(table: pa.Table, lines: np.ndarray, texts: list[int]) -> np.ndarray:
    """For each row, True when it is the row before it again: no text that is no row between
    them (blank lines may be) and the same value in every column. Compared a column at a time,
    stopping when no row is left: rows with distinct ids cost one comparison."""
    n = table.num_rows
    same = np.zeros(n, dtype=bool)
    if n < 2:
        return same
    same[1:] = True
    if texts:  # text that is no row between two rows keeps them apart
        between = np.searchsorted(np.asarray(texts), lines)
        same[1:] = between[1:] == between[:-1]
    for column in table.columns:
        if not same.any():
            break
        later, earlier = column.slice(1), column.slice(0, n - 1)
        try:
            equal = pc.fill_null(pc.equal(later, earlier), False)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            return np.zeros(n, dtype=bool)  # a nested column: rows are not compared
        both_null = pc.and_(pc.is_null(later), pc.is_null(earlier))
        same[1:] &= np.asarray(pc.or_(equal, both_null), dtype=bool)
    return same


def _checked_columns(arrays: list, lines: np.ndarray) -> tuple[dict, np.ndarray, Found]:
    """Each field's values, which rows are valid, and the problems, a column at a time: the
    fast path takes the cells it is sure of, the core judges each distinct other value once
    (``columns.checked_cells``), and each bad cell is one problem."""
    n = len(lines)
    columns, valid = {}, np.ones(n, dtype=bool)
    rows: list[np.ndarray] = []
    fields: list[np.ndarray] = []
    said: list[np.ndarray] = []
    messages: list[str] = []
    for k, (f, array) in enumerate(zip(FIELDS, arrays, strict=True)):
        certain, values = fastpath.fast_values(f, array)
        doubt = np.flatnonzero(~certain)
        if len(doubt):
            doubted = array if len(doubt) == n else array.take(pa.array(doubt))
            ok, coerced, message_at, words = fastpath.checked_cells(
                f, doubted, fastpath.is_text(array.type))
            values[doubt[ok]] = coerced[ok]
            bad = doubt[~ok]
            valid[bad] = False
            rows.append(bad)
            fields.append(np.full(len(bad), k, dtype=np.int64))
            said.append(message_at[~ok] + len(messages))
            messages.extend(words)
        columns[f.name] = values
    if not rows:
        empty = np.empty(0, dtype=np.int64)
        return columns, valid, Found(empty, empty, empty, empty, pa.array([], pa.string()))
    row = np.concatenate(rows)
    return columns, valid, Found(lines[row], np.concatenate(fields), row, np.concatenate(said),
                                 pa.array(messages, pa.string()))


def _checked_records(arrays: list, lines: np.ndarray) -> tuple[dict, np.ndarray, Found]:
    """The reference: every row as a record through the core's ``validate_each``."""
    n = len(lines)
    texts = [fastpath.is_text(a.type) for a in arrays]
    columns = {f.name: np.zeros(n, dtype=object if f.kind == CATEGORY else np.float64)
               for f in FIELDS}
    valid = np.zeros(n, dtype=bool)
    cells = [array.to_pylist() for array in arrays]
    records = [fastpath.reference_record(FIELDS, [c[j] for c in cells], texts)
               for j in range(n)]
    problems: list[Problem] = []
    for row, (record, errors) in enumerate(_validate(records, lines)):
        if record is None:  # None exactly when the record has errors
            problems.extend(Problem(int(lines[row]), e.field, e.message, row) for e in errors)
            continue
        valid[row] = True
        for f in FIELDS:
            columns[f.name][row] = record[f.name]
    return columns, valid, Found.of(problems)


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
        assert valid is not None, "validate_each and validate_records disagree"
        coerced = dict(zip(good, valid, strict=True))
    return [(coerced.get(j), by_line.get(int(lines[j]), [])) for j in range(len(records))]


@dataclass
class Estimated:
    """Valid rows' estimates, likely ranges and joined warnings, in row order."""

    count: int
    amounts: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    warnings: np.ndarray
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
        for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(rows)], strict=True):
            joined[rows[start]] = WARNING_SEPARATOR.join(
                w.message for w in got.warnings[start:end])
    return Estimated(count, got.amounts, got.lower, got.upper, joined, len(got.warnings),
                     got.records)


def _counts(rows: int, refused: int, problems: int, unreadable: list[Rejected],
            estimates: Estimated) -> Result:
    """Counts of a chunk: ``rows`` parsed rows (``refused`` of them rejected, with ``problems``
    problems in all), plus a rejected row per line of text that was none."""
    lost = sum(u.rows for u in unreadable)
    return Result(rows=rows + lost, scored=estimates.count, rejected=refused + lost,
                  problems=problems + sum(u.repeats * len(u.problems) for u in unreadable),
                  warnings=estimates.warning_count, unreadable=lost,
                  first_unreadable=min((u.line for u in unreadable), default=None))


def _estimate_arrays(estimates: Estimated) -> list[pa.Array]:
    count = estimates.count
    bounds = [pa.array(b, pa.float64()) if b is not None else pa.nulls(count, pa.float64())
              for b in (estimates.lower, estimates.upper)]
    return [pa.array(estimates.amounts, pa.float64()), *bounds,
            pa.array(estimates.warnings, pa.string())]


def _with_estimates(table: pa.Table, estimates: Estimated) -> pa.Table:
    for name, array in zip(OUTPUT_COLUMNS, _estimate_arrays(estimates), strict=True):
        table = table.append_column(name, array)
    return table


def _encode_output(table: pa.Table, fmt: str):
    if fmt == PARQUET:
        return table
    if fmt == CSV:
        sink = io.BytesIO()
        if table.num_rows:
            table = inert_table(table) if PLAN.inert else _plain_strings(table)
            pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
        return sink.getvalue()
    return b"".join(orjson.dumps(row, default=str, option=orjson.OPT_APPEND_NEWLINE)
                    for row in table.to_pylist())


def _plain_strings(table: pa.Table) -> pa.Table:
    """View strings as plain strings (Arrow's CSV writer takes no views)."""
    for i, column in enumerate(table.columns):
        if pa.types.is_string_view(column.type):
            table = table.set_column(i, table.column_names[i], column.cast(pa.string()))
    return table


def _merged(rejects: list[Rejected]) -> list[Rejected]:
    """Rejects of text that is no row in line order, each run of identical ones on lines one
    after the other made one (10 MB of one line of the wrong width is one reject)."""
    out: list[Rejected] = []
    for reject in sorted(rejects, key=lambda r: r.line):
        last = out[-1] if out else None
        if last is not None and reject.line == last.last_line + 1 and \
                reject.text == last.text and reject.problems == last.problems:
            last.last_line = reject.last_line
            last.rows += reject.rows
            last.repeats += reject.repeats
        else:
            out.append(Rejected(reject.line, reject.last_line, reject.problems, reject.row,
                                reject.text, reject.rows, reject.repeats))
    return out


_FIELD_NAMES = pa.array(FIELD_NAMES, pa.string())


def _table_rejects(judged: pa.Table, first_lines: np.ndarray, last_lines: np.ndarray,
                   runs: np.ndarray, problems: np.ndarray, found: Found,
                   unreadable: list[Rejected]):
    """The rejects of a table's chunk in line order: a line per rejected run of identical rows
    (``judged`` holds each run's first row; a row alone is a run of one) with its problems in
    schema order, and a line per text that is no row (no field, an empty row)."""
    refused = np.flatnonzero(problems)  # rejected runs, as rows of ``judged``
    order = np.lexsort((found.field, found.row))
    offsets = pa.array(np.concatenate([[0], np.cumsum(problems[refused])]), pa.int32())
    fields = pa.ListArray.from_arrays(offsets, _FIELD_NAMES.take(pa.array(found.field[order])))
    messages = pa.ListArray.from_arrays(offsets, found.words.take(pa.array(found.said[order])))
    line = np.concatenate([first_lines[refused], [u.line for u in unreadable]])
    last_line = np.concatenate([last_lines[refused], [u.last_line for u in unreadable]])
    rows = np.concatenate([runs[refused], [u.rows for u in unreadable]])
    echoed = np.concatenate([refused, np.full(len(unreadable), -1)]).astype(np.int64)
    text_problems = pa.array([[f for f, _ in u.problems] for u in unreadable],
                             pa.list_(pa.string()))
    fields = pa.concat_arrays([fields, text_problems])
    messages = pa.concat_arrays([messages, pa.array(
        [[m for _, m in u.problems] for u in unreadable], pa.list_(pa.string()))])
    by_line = np.argsort(line, kind="stable")
    line, last_line, rows, echoed = (a[by_line].astype(np.int64)
                                     for a in (line, last_line, rows, echoed))
    fields, messages = fields.take(pa.array(by_line)), messages.take(pa.array(by_line))
    cells = cut_table(judged.take(pa.array(echoed, mask=echoed < 0)))
    if PLAN.rejects_format == JSONL:
        texts_at = {u.line: u.text for u in unreadable}
        out = []
        for j, (names, words, row_cells) in enumerate(zip(
                fields.to_pylist(), messages.to_pylist(), cells.to_pylist(), strict=True)):
            item = {LINE: int(line[j]), LAST_LINE: int(last_line[j]), RUN_ROWS: int(rows[j]),
                    PROBLEMS: [{FIELD: f, MESSAGE: m}
                               for f, m in zip(names, words, strict=True)]}
            if echoed[j] >= 0:
                item["row"] = row_cells
            else:
                item["text"] = cut_text(texts_at[int(line[j])])
            out.append(orjson.dumps(item, default=str, option=orjson.OPT_APPEND_NEWLINE))
        return b"".join(out)
    rejects = pa.table(_reject_columns(line, last_line, rows, fields, messages))
    for name in cells.column_names:
        rejects = rejects.append_column(name, cells.column(name))
    return _encode_output(rejects, PLAN.rejects_format)


def _reject_columns(line, last_line, rows, fields: pa.Array,
                    messages: pa.Array) -> dict[str, pa.Array]:
    """The columns a tabular rejects file starts with: Parquet keeps each row's fields and
    messages as lists; CSV joins each list with ``PROBLEM_SEPARATOR`` (a field that is None,
    the whole row's problem, as an empty string; no field at all as an empty cell)."""
    head = {LINE: pa.array(line, pa.int64()), LAST_LINE: pa.array(last_line, pa.int64()),
            RUN_ROWS: pa.array(rows, pa.int64())}
    if PLAN.rejects_format == PARQUET:
        return {**head, PROBLEM_FIELDS: fields, PROBLEM_MESSAGES: messages}
    joined = _joined(fields)
    joined = pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
    return {**head, PROBLEM_FIELDS: joined, PROBLEM_MESSAGES: _joined(messages)}


def _joined(lists: pa.Array) -> pa.Array:
    """Each list of texts as one, joined with ``PROBLEM_SEPARATOR``: a None as an empty
    string, and a line break inside a text (only a key's name can hold one) written ``\\n``
    so that the separator alone splits the cell again."""
    offsets = np.concatenate([[0], np.cumsum(pc.list_value_length(lists))]).astype(np.int32)
    values = pc.fill_null(pc.list_flatten(lists), "")
    if pc.any(pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))).as_py():
        values = pc.replace_substring(pc.replace_substring(values, "\r", "\\r"), "\n", "\\n")
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values),
                          PROBLEM_SEPARATOR)


# JSON lines ----------------------------------------------------------------------------------

def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


@dataclass(slots=True)
class _JsonLine:
    """What a distinct line of a JSON-lines chunk holds; identical lines share one, so a
    line repeated a million times is parsed and judged once."""

    text: str  # the line as text (its bytes decoded, or replaced where they are not UTF-8)
    record: Any = None  # what the core judges: the fields of an object, or the value itself
    value: Any = None  # the parsed value (a tabular output carries its other keys)
    own: list = dc_field(default_factory=list)  # this command's problems (field, message)
    problems: list | None = None  # all of its problems once judged ([] when it is valid)
    is_row: bool = True  # False for text that is no JSON value (its problem is in problems)


def _read_json_line(body: bytes, raw: bytes, line: int, tabular: bool,
                    allowed: set) -> _JsonLine:
    """One non-blank line parsed as the API parses a body, with this command's own problems."""
    from ..core.strict_json import parse_json  # the API's strict parser (docs/api.md#the-record)

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _JsonLine(raw.decode("utf-8", "replace"), is_row=False, problems=[
            (None, f"the line is not UTF-8 text (byte {exc.start + 1})")])
    try:
        value = parse_json(body, text)
    except RecursionError:
        return _JsonLine(text, is_row=False,
                         problems=[(None, "the line's JSON is nested too deeply")])
    except ValueError as exc:
        return _JsonLine(text, is_row=False,
                         problems=[(None, f"the line is not valid JSON: {exc}")])
    own: list[FieldError] = []
    if isinstance(value, dict):
        record = {k: value[k] for k in FIELD_NAMES if k in value}
        if isinstance(value, RepeatedKeys):  # the core refuses a repeated field by name
            record = RepeatedKeys(record)
            record.repeated = tuple(k for k in value.repeated if k in BY_NAME)
            others = [k for k in value.repeated if k not in BY_NAME]
            if others:
                own.append(_keys_problem(line, others, "appears", "appear",
                                         "more than once in the object; give each key once"))
        for key in value:
            if key in OUTPUT_COLUMNS:
                own.append(FieldError(f"/{line}/{key}", f"{key!r} is a column this command "
                                      "adds to each row; rename it in the input", key))
        if tabular:
            strange = [k for k in value if k not in allowed and k not in OUTPUT_COLUMNS]
            if strange:
                own.append(_keys_problem(
                    line, strange, "is not a column", "are not columns",
                    f"of the {PLAN.output_format} output, whose columns are the first "
                    "record's keys; write JSON lines, or give every record the same keys"))
    else:
        record = value  # the core says what a record must be
    return _JsonLine(text, record, value, [(e.field, e.message) for e in own])


def _score_json_lines(chunk: TextChunk) -> Result:
    parts = chunk.data.split(b"\n")
    if chunk.data.endswith(b"\n"):
        parts.pop()
    tabular = PLAN.output_format != JSONL
    allowed = set(PLAN.columns)
    distinct: dict[bytes, int] = {}  # a line's bytes -> its index in ``read``
    read: list[_JsonLine] = []
    codes, code_lines = [], []  # each non-blank line's index in ``read``, and its number
    for offset, raw in enumerate(parts):
        body = raw.strip()
        if not body:
            continue  # a blank line is no row
        code = distinct.get(body)
        if code is None:
            code = distinct[body] = len(read)
            read.append(_read_json_line(body, raw, chunk.first_line + offset, tabular, allowed))
        codes.append(code)
        code_lines.append(chunk.first_line + offset)
    codes_at = np.array(codes, dtype=np.int64)
    all_lines = np.array(code_lines, dtype=np.int64)
    is_row = np.array([entry.is_row for entry in read], dtype=bool)
    row_at = np.flatnonzero(is_row[codes_at]) if len(codes) else np.empty(0, np.int64)
    items = [read[c].record for c in codes_at[row_at].tolist()]
    lines = all_lines[row_at]
    # The core's column-at-a-time check needs plain objects of the six fields; when some item
    # is not one, it would list every problem of the chunk only to refuse it: skip to ours.
    if PLAN.fast and not all(type(i) is dict and len(i) == len(FIELDS) for i in items):
        valid_records, refused = None, Refusal(total=1)
    else:
        valid_records, refused = validate_records(items, _locate(lines))
    rows = [entry for entry in read if entry.is_row]  # each distinct record once
    if not refused.total:
        checked: list[list[tuple[str | None, str]]] = [[] for _ in rows]
    elif PLAN.fast:
        checked = _checked_items([entry.record for entry in rows])
    else:
        first_line = {code: int(line) for code, line in
                      zip(codes_at[row_at][::-1].tolist(), lines[::-1].tolist(), strict=True)}
        codes_of_rows = [code for code, entry in enumerate(read) if entry.is_row]
        checked = [[(e.field, e.message) for e in errors] for _, errors in _validate(
            [entry.record for entry in rows],
            np.array([first_line[c] for c in codes_of_rows], dtype=np.int64))]
    for entry, errors in zip(rows, checked, strict=True):
        entry.problems = errors + entry.own
    rejected = np.array([bool(entry.problems) for entry in read], dtype=bool)
    bad = rejected[codes_at] if len(codes) else np.zeros(0, dtype=bool)
    keep = np.flatnonzero(~bad[row_at]) if len(row_at) else np.empty(0, np.int64)
    if len(keep) < len(items):
        valid_records, _ = validate_records([items[j] for j in keep], _locate(lines[keep]))
    chosen_lines = lines[keep]
    assert valid_records is not None, "validate_records refused records it had accepted"
    estimates = _estimate({}, chosen_lines, valid_records) if len(keep) \
        else _estimate({}, chosen_lines)
    rejects = _json_runs(read, codes_at, all_lines, bad)
    unreadable = [r for r in rejects if r.row is None]
    refused_rows = [r for r in rejects if r.row is not None]
    result = _counts(len(items), sum(r.rows for r in refused_rows),
                     sum(r.repeats * len(r.problems) for r in refused_rows), unreadable,
                     estimates)
    kept = codes_at[row_at][keep].tolist()
    result.output = _json_output([read[c].text for c in kept], [read[c].value for c in kept],
                                 valid_records, estimates)
    result.rejects = _json_rejects(rejects) if rejects else None
    return result


def _json_runs(read: list[_JsonLine], codes: np.ndarray, lines: np.ndarray,
               bad: np.ndarray) -> list[Rejected]:
    """A reject per rejected line, or per run of identical rejected lines one after the other
    (blank lines between them do not count), found with numpy rather than line by line."""
    if not bad.any():
        return []
    new = np.ones(len(codes), dtype=bool)
    new[1:] = codes[1:] != codes[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(codes)) - 1
    chosen = bad[starts]
    starts, ends = starts[chosen], ends[chosen]
    out = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        entry = read[int(codes[start])]
        count = end - start + 1
        # Judged by now, and rejected: its problems are a list that is not empty.
        out.append(Rejected(int(lines[start]), int(lines[end]), entry.problems or [],
                            start if entry.is_row else None, entry.text, count, count))
    return out


def _checked_items(items: list) -> list[list[tuple[str | None, str]]]:
    """Each item's problems (field, message), as the core's ``validate_each`` lists them.

    A plain record (an object with no repeated key, holding only field keys) has exactly the
    problems of its values, so each distinct value of a field is judged once; anything else
    (not an object, a repeated field) goes through the core whole.
    """
    judged: dict[tuple, str | None] = {}
    required = {f.name: fastpath.required_message(f) for f in FIELDS}
    out = []
    for item in items:
        if type(item) is not dict:  # only the messages are kept: no pointer is needed
            _, refusal = validate_each([item], lambda i: "", listed=ALL)
            out.append([(e.field, e.message) for e in refusal])
            continue
        errors = []
        for f in FIELDS:
            if f.name not in item:
                errors.append((f.name, required[f.name]))
                continue
            value = item[f.name]
            # By type and exact value: 1, 1.0 and True are equal keys in Python, 0.0 and -0.0
            # too, and each is worded differently; lists and objects are not kept.
            key = (f.name, type(value), repr(value) if type(value) is float else value) \
                if not isinstance(value, (list, dict)) else None
            if key is None or key not in judged:
                _, message = check_value(f, value)
                if key is None:
                    judged_message = message
                else:
                    judged_message = judged[key] = message
            else:
                judged_message = judged[key]
            if judged_message is not None:
                errors.append((f.name, judged_message))
        out.append(errors)
    return out


def _keys_problem(line: int, keys: list[str], one: str, many: str, rest: str) -> FieldError:
    """One problem for any number of keys (a row's problems stay few however many keys it
    has), naming the first three as the core names keys: "<keys> <one|many> <rest>"."""
    shown = ", ".join(_shown_key(str(k)) for k in keys[:3])
    more = f" and {len(keys) - 3:,} more" if len(keys) > 3 else ""
    verb = one if len(keys) == 1 else many
    return FieldError(f"/{line}/{keys[0]}", f"{shown}{more} {verb} {rest}",
                      cut_text(str(keys[0])))


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
            for text, a, lo, hi, w in zip(texts, amounts, lower, upper, warnings, strict=True)
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


def _json_rejects(rejects: list[Rejected]):
    """The rejects of a JSON-lines chunk: a record echoed exactly as sent (``"row"``) when it
    is within the echo limit, else cut, as ``"text"``, as is text that is no JSON."""
    if PLAN.rejects_format == JSONL:
        out = []
        for r in rejects:
            head = orjson.dumps({LINE: r.line, LAST_LINE: r.last_line, RUN_ROWS: r.rows,
                                 PROBLEMS: [{FIELD: f, MESSAGE: m} for f, m in r.problems]
                                 }).decode()
            # The record exactly as sent, when it is one (a row) and short enough.
            if r.row is not None and r.text is not None and len(r.text) <= ECHO_LIMIT:
                out.append(f'{head[:-1]},"row":{r.text}}}\n')
            else:  # text that is no JSON, or a record too long to echo whole: cut, as text
                out.append(f'{head[:-1]},"text":{_json_text(cut_text(r.text))}}}\n')
        return "".join(out).encode("utf-8")
    listed = pa.list_(pa.string())
    table = pa.table(_reject_columns(
        [r.line for r in rejects], [r.last_line for r in rejects], [r.rows for r in rejects],
        pa.array([[f for f, _ in r.problems] for r in rejects], listed),
        pa.array([[m for _, m in r.problems] for r in rejects], listed)))
    table = table.append_column("record", pa.array([cut_text(r.text) for r in rejects],
                                                   pa.string()))
    return _encode_output(table, PLAN.rejects_format)
