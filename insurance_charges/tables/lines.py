"""Lines of a file or body: where they start, which are blank, and chunks of whole lines.

Only ``\\n`` ends a line, as SageMaker splits them and the file scorer cuts them; an
unterminated last line is a line. A body of millions of short lines is measured with numpy
here instead of a Python step per line, so its cost follows its bytes, not its line count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

NEWLINE = ord("\n")


def line_count(data: bytes) -> int:
    """Lines in a chunk: its line ends, plus an unterminated last line."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a chunk, each with its line end (only \\n ends a line)."""
    parts = data.split(b"\n")
    last = parts.pop()
    lines = [part + b"\n" for part in parts]
    if last:
        lines.append(last)
    return lines


def line_starts(data: bytes) -> np.ndarray:
    """The offset of each line's first byte, one per line (``line_count``)."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    starts = np.concatenate((np.zeros(1, dtype=np.intp), ends + 1))
    return starts if starts[-1] < len(data) else starts[:-1]


def blank_lines(data: bytes, space: bytes, starts: np.ndarray | None = None) -> np.ndarray:
    """Per line, True when it holds nothing but bytes of ``space`` (its line end included);
    ``starts`` are the lines' starts when already known."""
    starts = line_starts(data) if starts is None else starts
    if not len(starts):
        return np.zeros(0, dtype=bool)
    content = np.ones(256, dtype=bool)
    content[list(space)] = False
    # Every line holds at least one byte (its \n, or the last line's text), so no segment
    # is empty, where reduceat would not give the identity.
    return ~np.logical_or.reduceat(content[np.frombuffer(data, dtype=np.uint8)], starts)


def line_chunks(
    data: bytes, begin: int, first: int, max_lines: int, max_bytes: int
) -> Iterator[tuple[int, bytes]]:
    """Whole lines of ``data`` from offset ``begin`` (line ``first``), a chunk at a time: (the
    number of its first line, its bytes), at most ``max_lines`` lines and ``max_bytes`` bytes
    each, or one line when that line alone is longer."""
    while begin < len(data):
        end = min(begin + max_bytes, len(data))
        if end < len(data):  # back to a line end, or on to the end of a line that long
            cut = data.rfind(b"\n", begin, end)
            cut = cut if cut >= 0 else data.find(b"\n", end)
            end = cut + 1 if cut >= 0 else len(data)
        window = data[begin:end]
        ends = np.flatnonzero(np.frombuffer(window, dtype=np.uint8) == NEWLINE)
        # The window's lines max_lines at a time: each newline is found once, however short
        # the lines (a window of 2-byte lines holds 4 million).
        cuts = (ends[max_lines - 1 :: max_lines] + 1).tolist()
        for start, stop in zip([0] + cuts, cuts + [len(window)], strict=True):
            if start < stop:
                yield first, window[start:stop]
                first += window.count(b"\n", start, stop)
        begin = end


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a stream: the number of the first, their bytes, and the numbers of the
    lines that were too long to keep (each left in ``data`` as a bare line end, so every line
    after it keeps its number)."""

    first: int
    data: bytes
    overlong: list[int]


def line_blocks(stream: BinaryIO, longest: int, block: int) -> Iterator[LineBlock]:
    """``stream`` as blocks of whole lines, about ``block`` bytes read at a time. A line longer
    than ``longest`` bytes (its line end included) is never held whole: its number is listed,
    its bytes skipped, so a hostile file costs at most ``longest`` + ``block`` bytes."""
    first, pending, skipping = 1, bytearray(), False
    while True:
        data = stream.read(block)
        ended = not data
        if skipping and not ended:  # still inside a line too long to keep: on to its end
            end = data.find(b"\n")
            if end < 0:
                continue
            data, skipping = data[end + 1 :], False
        pending += data
        cut = len(pending) if ended else pending.rfind(b"\n") + 1
        whole = bytes(pending[:cut])
        del pending[:cut]
        overlong: list[int] = []
        if len(pending) > longest:  # an unfinished line already too long: skip the rest of it
            overlong.append(first + whole.count(b"\n"))
            whole += b"\n"
            pending.clear()
            skipping = True
        if whole:
            whole, found = _without_overlong(whole, first, longest)
            yield LineBlock(first, whole, sorted(found + overlong))
            first += whole.count(b"\n")
        if ended:
            return


def _without_overlong(data: bytes, first: int, longest: int) -> tuple[bytes, list[int]]:
    """``data`` with each line longer than ``longest`` bytes made a bare line end, and those
    lines' numbers (``data``'s first line being ``first``)."""
    starts = line_starts(data)
    lengths = np.diff(np.append(starts, len(data)))
    over = np.flatnonzero(lengths > longest).tolist()
    if not over:
        return data, []
    parts, begin = [], 0
    for i in over:
        parts.append(data[begin : int(starts[i])])
        parts.append(b"\n")
        begin = int(starts[i] + lengths[i])
    parts.append(data[begin:])
    return b"".join(parts), [first + i for i in over]
