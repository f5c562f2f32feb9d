"""A chunk's problems and rejects: one by one (``Problem``), as columns (``Found``), a rejects
line each (``Rejected``), their counts, the columns a tabular rejects file starts with, and
the chunk's rejects lines as the command words them (``ChunkRejects``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.schema import FIELD_NAMES
from ..tables.csv_text import NotARow
from .cells import cut_text
from .formats import (
    FIELD,
    LAST_LINE,
    LINE,
    MESSAGE,
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


def worded_lines(rows: np.ndarray, worded: int) -> tuple[np.ndarray, int]:
    """For rejects lines in line order, each counting ``rows`` rejected rows: the rejected rows
    before each line, and how many lines start within the first ``worded`` rows."""
    before = np.cumsum(rows, dtype=np.int64) - rows
    return before, int(np.searchsorted(before, worded, side="left"))


class Unencoded(Protocol):
    """Rejects lines in line order, not yet written in the rejects file's format."""

    def without_words(self, late: np.ndarray) -> Unencoded:
        """The lines with the messages of those where ``late`` is True left out."""
        ...

    def encoded(self) -> Any:
        """The lines as the rejects file's format writes them (bytes, or an Arrow table)."""
        ...

    def sliced(self, start: int, stop: int) -> Unencoded:
        """Lines ``start`` to ``stop``."""
        ...


@dataclass
class ChunkRejects:
    """A chunk's rejects lines, their messages given for the first of them only.

    The worker scoring a chunk does not know how many rows the chunks before it rejected, only
    an upper bound on how many of this chunk's may still be worded (``budget``): the lines
    starting within it (``head`` of them) are encoded with their messages and also kept
    unencoded, and the rest are encoded without the messages of the ``plain`` ones. Once the
    command knows the exact number (``allowance``, at most ``budget``), ``finished`` gives the
    lines as the file holds them, the same whatever the chunks and the workers were.
    """

    line: np.ndarray  # each rejects line's first line number
    before: np.ndarray  # the chunk's rejected rows before each line
    plain: np.ndarray  # True for a line whose every problem names a field: it may go unworded
    budget: int
    head: int
    worded: Any  # lines [0, head) encoded with their messages (None when there are none)
    rest: Any  # lines [head, end) encoded, the plain ones without messages (None: none)
    unencoded: Unencoded | None  # lines [0, head) before encoding, to word fewer of them

    @classmethod
    def split(
        cls,
        line: np.ndarray,
        before: np.ndarray,
        plain: np.ndarray,
        budget: int,
        head: int,
        lines: Unencoded,
    ) -> ChunkRejects:
        """The chunk's ``lines`` encoded in two parts, the ``head`` ones that may keep their
        messages kept unencoded as well."""
        n = len(line)
        return cls(
            line,
            before,
            plain,
            budget,
            head,
            lines.sliced(0, head).encoded() if head else None,
            lines.sliced(head, n).encoded() if head < n else None,
            lines.sliced(0, head) if head else None,
        )

    def late(self, allowance: int) -> np.ndarray:
        """For each line, True when it goes without messages given ``allowance`` rejected
        rows still worded: a plain line starting after them."""
        if allowance > self.budget:
            raise ValueError(f"{allowance} rejected rows to word, over the budget {self.budget}")
        return self.plain & (self.before >= allowance)

    def first_unworded(self, allowance: int) -> int | None:
        """The index of the first line without messages, or None."""
        late = np.flatnonzero(self.late(allowance))
        return int(late[0]) if len(late) else None

    def finished(self, allowance: int) -> Any:
        """The lines as the rejects file holds them, the first ``allowance`` rejected rows of
        the chunk worded: bytes, an Arrow table, or None."""
        late = self.late(allowance)[: self.head]
        first = self.worded
        if late.any() and self.unencoded is not None:
            first = self.unencoded.without_words(late).encoded()
        parts = [part for part in (first, self.rest) if part is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        if isinstance(parts[0], pa.Table):
            return pa.concat_tables(parts)
        return parts[0] + parts[1]


def problem_objects(fields: list, messages: list | None) -> list[dict]:
    """A JSON-lines rejects line's problems: ``{"field", "message"}`` each, or ``{"field"}``
    alone when the line goes without messages (``messages`` None)."""
    if messages is None:
        return [{FIELD: f} for f in fields]
    return [{FIELD: f, MESSAGE: m} for f, m in zip(fields, messages, strict=True)]


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
    lengths = pc.fill_null(pc.list_value_length(lists), 0)  # a null list: a line not worded
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = pc.fill_null(pc.list_flatten(lists), "")
    if pc.any(pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))).as_py():
        values = pc.replace_substring(pc.replace_substring(values, "\r", "\\r"), "\n", "\\n")
    mask = pc.is_null(lists) if lists.null_count else None
    return pc.binary_join(
        pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask), PROBLEM_SEPARATOR
    )
