"""Inputs cut into chunks: CSV and JSON lines as runs of whole lines, Parquet as record batches.

CSV and JSON lines are cut on line ends without parsing (a value may not hold a line break), so
the parent only moves bytes and counts lines, and the workers parse in parallel. Each chunk
carries the number of its first line: line numbers are the file's own (a CSV header is line 1).
A chunk holds at most ``rows`` lines and, whatever the lines' width, about ``max_bytes``.
Each is read by ``tables`` in a worker; the parent also reads a CSV header here and matches
its columns to the schema's fields.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..core.schema import FIELD_NAMES
from ..errors import UsageError
from ..tables.parquet import numbered_batches
from .formats import OUTPUT_COLUMNS

BLOCK = 1024 * 1024  # bytes read from the input at a time
MAX_CHUNK_BYTES = 64 * 1024 * 1024
LONGEST_LINE = 16 * 1024 * 1024


@dataclass(frozen=True)
class TextChunk:
    """Whole lines of a CSV or JSON-lines file; ``first_line`` is the first one's number."""

    first_line: int
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class BatchChunk:
    """Rows of a Parquet file; ``first_line`` is the first one's row number (from 1)."""

    first_line: int
    batch: object  # pyarrow.RecordBatch
    size: int = 0


def _newlines(data) -> np.ndarray:
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)


def text_chunks(
    stream: BinaryIO,
    rows: int,
    first_line: int = 1,
    prefix: bytes = b"",
    max_bytes: int = MAX_CHUNK_BYTES,
    name: str = "the input",
    quoted: bool = False,
) -> Iterator[TextChunk]:
    """Cut a stream into chunks of about ``rows`` whole lines (and at most about ``max_bytes``).

    With ``quoted`` (CSV), a chunk never ends inside a quoted value: a line break inside
    quotes (an odd number of quote characters before it) is not a place to cut.
    """
    buffer, line, eof = bytearray(prefix), first_line, False
    lines = buffer.count(b"\n")
    more = False
    read = getattr(stream, "read1", stream.read)  # a pipe: what has arrived, not a full block
    while True:
        while not eof and (more or (lines < rows and len(buffer) < max_bytes)):
            block = read(BLOCK)
            if not block:
                eof = True
                break
            buffer += block
            lines += block.count(b"\n")
            more = False
        if not buffer:
            return
        cut = _cut(buffer, rows, max_bytes, eof, quoted)
        if cut is None:
            if len(buffer) > max_bytes + LONGEST_LINE:
                raise UsageError(
                    f"line {line} of {name} is longer than "
                    f"{LONGEST_LINE // 2**20} MiB; is it really CSV or JSON lines?"
                )
            more = True
            continue
        end, count = cut
        chunk = bytes(buffer[:end])
        del buffer[:end]
        yield TextChunk(line, chunk)
        line += count
        lines -= count


def _cut(
    buffer: bytearray, rows: int, max_bytes: int, eof: bool, quoted: bool
) -> tuple[int, int] | None:
    """Where the next chunk ends (just after a line break) and its line breaks; None to read
    more first."""
    ends = _newlines(buffer)
    if len(ends) >= rows:
        i = rows - 1
    elif eof:
        return len(buffer), len(ends)
    elif len(buffer) >= max_bytes and len(ends):
        i = len(ends) - 1
    else:
        return None
    if quoted and _odd_quotes(buffer, ends, i):
        # A line with an odd number of quotes: a quoted value holds a line break (or an
        # unquoted value holds a stray quote, 5'10"). Python's csv module says where the rows
        # really end: cut at the first row end at or after the planned line.
        ends_at = _row_end(buffer, i + 1, len(ends), eof)
        if ends_at is None:
            return None
        if ends_at > len(ends):
            return len(buffer), len(ends)
        i = ends_at - 1
    return int(ends[i]) + 1, i + 1


def _odd_quotes(buffer: bytearray, ends: np.ndarray, last: int) -> bool:
    """True when one of the lines up to line ``last`` holds an odd number of quotes."""
    end = int(ends[last]) + 1
    if not buffer.count(b'"', 0, end):
        return False
    quotes = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8, count=end) == 34)
    return bool((np.bincount(np.searchsorted(ends, quotes)) % 2).any())


def _row_end(buffer: bytearray, planned: int, complete: int, eof: bool) -> int | None:
    """The number of lines up to the first row end at or after line ``planned``.

    None when that row does not end in ``buffer`` (read more); ``complete`` + 1 when it runs
    to the end of the input.
    """
    text = buffer.decode("latin-1")  # only the ASCII structure matters here
    reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
    broken = False
    while reader.line_num < planned:
        try:
            next(reader)
            broken = False
        except StopIteration:
            break
        except csv.Error:
            broken = True
    if reader.line_num > complete or (broken and reader.line_num >= complete):
        return complete + 1 if eof else None  # a row still open at the end of what was read
    return reader.line_num


def first_line(stream: BinaryIO, name: str) -> tuple[bytes, bytes]:
    """The first line of a stream (without its line end) and the bytes read after it."""
    buffered = b""
    read = getattr(stream, "read1", stream.read)
    while True:
        block = read(64 * 1024)
        if not block:
            return buffered, b""
        buffered += block
        end = buffered.find(b"\n")
        if end >= 0:
            return buffered[:end], buffered[end + 1 :]
        if len(buffered) > LONGEST_LINE:
            raise UsageError(
                f"the first line of {name} is longer than "
                f"{LONGEST_LINE // 2**20} MiB; is it really CSV?"
            )


def csv_header(line: bytes, name: str) -> tuple[str, ...]:
    """Column names from a CSV header line."""
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise UsageError(
            f"cannot read {name}: its header is not UTF-8 text; save the file as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise UsageError(
            f"{name} is empty or starts with a blank line; a CSV file needs a "
            "header row naming its columns: " + ", ".join(FIELD_NAMES)
        )
    try:
        names = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise UsageError(f"cannot read the header of {name}: {exc}") from None
    return tuple(names)


def field_columns(
    columns: tuple[str, ...], name: str, reserved: tuple[str, ...] = OUTPUT_COLUMNS
) -> dict[str, str]:
    """Each schema field's input column (matched by name, spaces around it ignored)."""
    seen: dict[str, str] = {}
    for column in columns:
        key = column.strip()
        if key in seen:
            raise UsageError(f"{name} has the column {key!r} twice; name each column once")
        seen[key] = column
    missing = [f for f in FIELD_NAMES if f not in seen]
    if missing:
        shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise UsageError(
            f"{name} has no column "
            + ", ".join(missing)
            + "; it needs "
            + ", ".join(FIELD_NAMES)
            + f" (its columns: {shown or 'none'})"
        )
    clashes = [c for c in reserved if c in seen]
    if clashes:
        raise UsageError(
            f"{name} already has a column " + ", ".join(clashes) + ", which "
            "this command adds; rename it in the input"
        )
    return {f: seen[f] for f in FIELD_NAMES}


def parquet_chunks(parquet_file, rows: int) -> Iterator[BatchChunk]:
    """Record batches of at most ``rows`` rows; row numbers count from 1."""
    for line, batch in numbered_batches(parquet_file, rows):
        yield BatchChunk(line, batch, batch.nbytes)
