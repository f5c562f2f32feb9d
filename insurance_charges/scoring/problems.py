"""A chunk's problems and rejects: one by one (``Problem``), as columns (``Found``), a rejects
line each (``Rejected``), their counts, and the columns a tabular rejects file starts with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.schema import FIELD_NAMES
from ..tables.csv_text import NotARow
from .cells import cut_text
from .formats import (
    LAST_LINE,
    LINE,
    PARQUET,
    PROBLEM_FIELDS,
    PROBLEM_MESSAGES,
    PROBLEM_SEPARATOR,
    RUN_ROWS,
)
from .row_estimates import Estimated
from .scored import Result


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

    @classmethod
    def not_a_row(cls, found: NotARow) -> Rejected:
        """Text the reader found to be no row, its echo cut (cells.ECHO_LIMIT)."""
        return cls(
            found.line,
            found.last_line,
            [(None, found.message)],
            text=cut_text(found.text),
            rows=found.rows,
        )


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
        return cls(
            np.array([p.line for p in problems], dtype=np.int64),
            np.array([FIELD_NAMES.index(p.field) for p in problems], dtype=np.int64),
            np.array([p.row for p in problems], dtype=np.int64),
            np.arange(len(problems), dtype=np.int64),
            pa.array([p.message for p in problems], pa.string()),
        )


def counts(
    rows: int, refused: int, problems: int, unreadable: list[Rejected], estimates: Estimated
) -> Result:
    """Counts of a chunk: ``rows`` parsed rows (``refused`` of them rejected, with ``problems``
    problems in all), plus a rejected row per line of text that was none."""
    lost = sum(u.rows for u in unreadable)
    return Result(
        rows=rows + lost,
        scored=estimates.count,
        rejected=refused + lost,
        problems=problems + sum(u.repeats * len(u.problems) for u in unreadable),
        warnings=estimates.warning_count,
        unreadable=lost,
        first_unreadable=min((u.line for u in unreadable), default=None),
    )


def merged(rejects: list[Rejected]) -> list[Rejected]:
    """Rejects of text that is no row in line order, each run of identical ones on lines one
    after the other made one (10 MB of one line of the wrong width is one reject)."""
    out: list[Rejected] = []
    for reject in sorted(rejects, key=lambda r: r.line):
        last = out[-1] if out else None
        if (
            last is not None
            and reject.line == last.last_line + 1
            and reject.text == last.text
            and reject.problems == last.problems
        ):
            last.last_line = reject.last_line
            last.rows += reject.rows
            last.repeats += reject.repeats
        else:
            out.append(
                Rejected(
                    reject.line,
                    reject.last_line,
                    reject.problems,
                    reject.row,
                    reject.text,
                    reject.rows,
                    reject.repeats,
                )
            )
    return out


def reject_columns(
    fmt: str, line, last_line, rows, fields: pa.Array, messages: pa.Array
) -> dict[str, pa.Array]:
    """The columns a tabular rejects file of format ``fmt`` starts with: Parquet keeps each
    row's fields and messages as lists; CSV joins each list with ``PROBLEM_SEPARATOR`` (a field
    that is None, the whole row's problem, as an empty string; no field at all as an empty
    cell)."""
    head = {
        LINE: pa.array(line, pa.int64()),
        LAST_LINE: pa.array(last_line, pa.int64()),
        RUN_ROWS: pa.array(rows, pa.int64()),
    }
    if fmt == PARQUET:
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
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), PROBLEM_SEPARATOR)
