"""A chunk of table rows (CSV text cells, Parquet typed cells) checked, estimated, written.

Every row the column-at-a-time check (``tables.columns``) does not certainly accept is judged by
the core, once per distinct value of each field (``checked_cells``); with the fast path off,
every row goes through the core's ``validate_each`` as a record (the reference the tests
compare against). Each bad cell is one problem, pointed at as ``/<line>/<field>``; a rejected
row is one rejects line with all of its problems, and a run of identical rows one after the
other is judged once and written as one line naming its first and last line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..core.schema import CATEGORY, FIELD_NAMES, FIELDS
from ..tables import columns as column_check
from .cells import cut_table, cut_text
from .chunk_output import encode_output
from .formats import JSONL, LAST_LINE, LINE, PROBLEMS, RUN_ROWS
from .problems import (
    ChunkRejects,
    Found,
    Problem,
    Rejected,
    counts,
    merged,
    problem_objects,
    reject_columns,
    worded_lines,
)
from .row_estimates import capture, estimate, with_estimates
from .scored import Plan, Result
from .validating import validate_all


def score_table(
    model,
    plan: Plan,
    table: pa.Table,
    lines: np.ndarray,
    unreadable: list[Rejected],
    worded: int,
) -> Result:
    """Score a chunk's ``table``, its rows from ``lines``, with the text that was no row; the
    rejects lines starting within its first ``worded`` rejected rows may get their messages.

    A run of identical rows one after the other is judged once, by its first row: each row's
    problems are those of its cells, so the run's rows share them (a file of one bad line
    repeated costs its parsing, not its problems).
    """
    n = table.num_rows
    heads = np.flatnonzero(~_repeated(table, lines, sorted(u.line for u in unreadable)))
    runs = np.diff(np.append(heads, n))  # the rows in each run
    judged = table if len(heads) == n else table.take(pa.array(heads))
    arrays = [judged.column(plan.fields[f.name]) for f in FIELDS]
    if plan.fast:
        columns, valid, found = _checked_columns(arrays, lines[heads])
    else:
        columns, valid, found = _checked_records(arrays, lines[heads])
    if len(heads) < n:  # each row as its run's first row
        run_of = np.repeat(np.arange(len(heads)), runs)
        valid = valid[run_of]
        columns = {name: col[run_of] for name, col in columns.items()}
    chosen = np.flatnonzero(valid)
    chosen_lines = lines[chosen]
    estimates = estimate(model, {name: col[chosen] for name, col in columns.items()}, chosen_lines)
    problems = np.bincount(found.row, minlength=len(heads))  # each run's first row's
    refused = int(runs[problems > 0].sum())
    result = counts(n, refused, int((problems * runs).sum()), unreadable, estimates)
    capture(model, plan, estimates, result)
    out = table.take(pa.array(chosen)) if len(chosen) < n else table
    out = with_estimates(out, estimates, plan.run_id)
    result.output = encode_output(out, plan.output_format, plan.inert)
    if len(found) or unreadable:
        result.rejects = _table_rejects(
            plan,
            judged,
            lines[heads],
            lines[heads + runs - 1],
            runs,
            problems,
            found,
            merged(unreadable),
            worded,
        )
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
    rows, fields, said = [], [], []
    messages: list[str] = []
    for k, (f, array) in enumerate(zip(FIELDS, arrays, strict=True)):
        certain, values = column_check.fast_values(f, array)
        doubt = np.flatnonzero(~certain)
        if len(doubt):
            doubted = array if len(doubt) == n else array.take(pa.array(doubt))
            ok, coerced, message_at, words = column_check.checked_cells(
                f, doubted, column_check.is_text(array.type)
            )
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
    return (
        columns,
        valid,
        Found(
            lines[row],
            np.concatenate(fields),
            row,
            np.concatenate(said),
            pa.array(messages, pa.string()),
        ),
    )


def _checked_records(arrays: list, lines: np.ndarray) -> tuple[dict, np.ndarray, Found]:
    """The reference: every row as a record through the core's ``validate_each``."""
    n = len(lines)
    texts = [column_check.is_text(a.type) for a in arrays]
    columns = {
        f.name: np.zeros(n, dtype=object if f.kind == CATEGORY else np.float64) for f in FIELDS
    }
    valid = np.zeros(n, dtype=bool)
    cells = [array.to_pylist() for array in arrays]
    records = [
        column_check.reference_record(FIELDS, [c[j] for c in cells], texts) for j in range(n)
    ]
    problems: list[Problem] = []
    for row, (record, errors) in enumerate(validate_all(records, lines)):
        if record is None:  # None exactly when the record has errors
            problems.extend(Problem(int(lines[row]), e.field, e.message, row) for e in errors)
            continue
        valid[row] = True
        for f in FIELDS:
            columns[f.name][row] = record[f.name]
    return columns, valid, Found.of(problems)


_FIELD_NAMES = pa.array(FIELD_NAMES, pa.string())
_LISTED = pa.list_(pa.string())


def _table_rejects(
    plan: Plan,
    judged: pa.Table,
    first_lines: np.ndarray,
    last_lines: np.ndarray,
    runs: np.ndarray,
    problems: np.ndarray,
    found: Found,
    unreadable: list[Rejected],
    worded: int,
) -> ChunkRejects:
    """The rejects of a table's chunk in line order: a line per rejected run of identical rows
    (``judged`` holds each run's first row; a row alone is a run of one) with its problems in
    schema order, and a line per text that is no row (no field, an empty row). Only the runs
    starting within the chunk's first ``worded`` rejected rows get messages; text that is no
    row always keeps its one message, the only thing that says what is wrong with it."""
    refused = np.flatnonzero(problems)  # rejected runs, as rows of ``judged``
    order = np.lexsort((found.field, found.row))
    offsets = np.concatenate([[0], np.cumsum(problems[refused])]).astype(np.int32)
    fields = pa.ListArray.from_arrays(
        pa.array(offsets), _FIELD_NAMES.take(pa.array(found.field[order]))
    )
    line = np.concatenate([first_lines[refused], [u.line for u in unreadable]])
    last_line = np.concatenate([last_lines[refused], [u.last_line for u in unreadable]])
    rows = np.concatenate([runs[refused], [u.rows for u in unreadable]])
    echoed = np.concatenate([refused, np.full(len(unreadable), -1)]).astype(np.int64)
    by_line = np.argsort(line, kind="stable")
    line, last_line, rows, echoed = (
        a[by_line].astype(np.int64) for a in (line, last_line, rows, echoed)
    )
    before, head = worded_lines(rows, worded)
    # The runs in line order are the first ones of ``refused``: the words of those starting
    # within the head are taken, the others' never are.
    spoken = int((by_line[:head] < len(refused)).sum())
    messages = pa.concat_arrays(
        [
            pa.ListArray.from_arrays(
                pa.array(offsets[: spoken + 1]),
                found.words.take(pa.array(found.said[order[: offsets[spoken]]])),
            ),
            pa.nulls(len(refused) - spoken, _LISTED),
            pa.array([[m for _, m in u.problems] for u in unreadable], _LISTED),
        ]
    )
    fields = pa.concat_arrays(
        [fields, pa.array([[f for f, _ in u.problems] for u in unreadable], _LISTED)]
    )
    # Without text that is no row the lines are in order already, and when every row was
    # refused the echo is the whole table: a chunk of bad rows is not copied again.
    if unreadable:
        messages, fields = messages.take(pa.array(by_line)), fields.take(pa.array(by_line))
    echoes = (
        judged
        if len(refused) == judged.num_rows and not unreadable
        else judged.take(pa.array(echoed, mask=echoed < 0))
    )
    lines = TableRejects(
        plan.rejects_format,
        plan.inert,
        line,
        last_line,
        rows,
        echoed,
        fields,
        messages,
        cut_table(echoes),
        {u.line: u.text for u in unreadable},
    )
    return ChunkRejects.split(line, before, echoed >= 0, worded, head, lines)


@dataclass
class TableRejects:
    """Rejects lines of a table's chunk in line order, before they are encoded: a line's
    ``messages`` are null when it goes without them."""

    fmt: str
    inert: bool
    line: np.ndarray
    last_line: np.ndarray
    rows: np.ndarray
    echoed: np.ndarray  # the row of ``cells`` each line echoes, -1 for text that is no row
    fields: pa.Array
    messages: pa.Array
    cells: pa.Table
    texts: dict[int, str | None]  # each text that is no row, by its line

    def sliced(self, start: int, stop: int) -> TableRejects:
        """Lines ``start`` to ``stop``."""
        return TableRejects(
            self.fmt,
            self.inert,
            self.line[start:stop],
            self.last_line[start:stop],
            self.rows[start:stop],
            self.echoed[start:stop],
            self.fields.slice(start, stop - start),
            self.messages.slice(start, stop - start),
            self.cells.slice(start, stop - start),
            self.texts,
        )

    def without_words(self, late: np.ndarray) -> TableRejects:
        """The lines, those where ``late`` is True without messages."""
        messages = pc.if_else(pa.array(late), pa.nulls(len(late), _LISTED), self.messages)
        return dataclasses.replace(self, messages=messages)

    def encoded(self) -> Any:
        """The lines as the rejects file's format writes them."""
        if self.fmt == JSONL:
            out = []
            for j, (names, words, row_cells) in enumerate(
                zip(
                    self.fields.to_pylist(),
                    self.messages.to_pylist(),
                    self.cells.to_pylist(),
                    strict=True,
                )
            ):
                item = {
                    LINE: int(self.line[j]),
                    LAST_LINE: int(self.last_line[j]),
                    RUN_ROWS: int(self.rows[j]),
                    PROBLEMS: problem_objects(names, words),
                }
                if self.echoed[j] >= 0:
                    item["row"] = row_cells
                else:
                    item["text"] = cut_text(self.texts[int(self.line[j])])
                out.append(orjson.dumps(item, default=str, option=orjson.OPT_APPEND_NEWLINE))
            return b"".join(out)
        rejects = pa.table(
            reject_columns(
                self.fmt, self.line, self.last_line, self.rows, self.fields, self.messages
            )
        )
        for name in self.cells.column_names:
            rejects = rejects.append_column(name, self.cells.column(name))
        return encode_output(rejects, self.fmt, self.inert)
