"""A chunk of table rows (CSV text cells, Parquet typed cells) checked, estimated, written.

Every row the column-at-a-time check (``tables.columns``) does not certainly accept is judged by
the core, once per distinct value of each field (``checked_cells``); with the fast path off,
every row goes through the core's ``validate_each`` as a record (the reference the tests
compare against). Each bad cell is one problem, pointed at as ``/<line>/<field>``; a rejected
row is one rejects line with all of its problems, and a run of identical rows one after the
other is judged once and written as one line naming its first and last line.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..core.schema import CATEGORY, FIELD_NAMES, FIELDS
from ..tables import columns as column_check
from .cells import cut_table, cut_text
from .chunk_output import encode_output
from .formats import FIELD, JSONL, LAST_LINE, LINE, MESSAGE, PROBLEMS, RUN_ROWS
from .problems import Found, Problem, Rejected, counts, merged, reject_columns
from .row_estimates import capture, estimate, with_estimates
from .scored import Plan, Result
from .validating import validate_all


def score_table(
    model, plan: Plan, table: pa.Table, lines: np.ndarray, unreadable: list[Rejected]
) -> Result:
    """Score a chunk's ``table``, its rows from ``lines``, with the text that was no row.

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


def _table_rejects(
    plan: Plan,
    judged: pa.Table,
    first_lines: np.ndarray,
    last_lines: np.ndarray,
    runs: np.ndarray,
    problems: np.ndarray,
    found: Found,
    unreadable: list[Rejected],
):
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
    text_problems = pa.array(
        [[f for f, _ in u.problems] for u in unreadable], pa.list_(pa.string())
    )
    fields = pa.concat_arrays([fields, text_problems])
    messages = pa.concat_arrays(
        [
            messages,
            pa.array([[m for _, m in u.problems] for u in unreadable], pa.list_(pa.string())),
        ]
    )
    by_line = np.argsort(line, kind="stable")
    line, last_line, rows, echoed = (
        a[by_line].astype(np.int64) for a in (line, last_line, rows, echoed)
    )
    fields, messages = fields.take(pa.array(by_line)), messages.take(pa.array(by_line))
    cells = cut_table(judged.take(pa.array(echoed, mask=echoed < 0)))
    if plan.rejects_format == JSONL:
        texts_at = {u.line: u.text for u in unreadable}
        out = []
        for j, (names, words, row_cells) in enumerate(
            zip(fields.to_pylist(), messages.to_pylist(), cells.to_pylist(), strict=True)
        ):
            item = {
                LINE: int(line[j]),
                LAST_LINE: int(last_line[j]),
                RUN_ROWS: int(rows[j]),
                PROBLEMS: [{FIELD: f, MESSAGE: m} for f, m in zip(names, words, strict=True)],
            }
            if echoed[j] >= 0:
                item["row"] = row_cells
            else:
                item["text"] = cut_text(texts_at[int(line[j])])
            out.append(orjson.dumps(item, default=str, option=orjson.OPT_APPEND_NEWLINE))
        return b"".join(out)
    rejects = pa.table(reject_columns(plan.rejects_format, line, last_line, rows, fields, messages))
    for name in cells.column_names:
        rejects = rejects.append_column(name, cells.column(name))
    return encode_output(rejects, plan.rejects_format, plan.inert)
