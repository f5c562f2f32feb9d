"""Where a body's lines start and which are blank, found for the whole body at once.

Only ``\\n`` ends a line, as SageMaker splits them and ``scoring.reading.lines_of`` cuts them;
an unterminated last line is a line. A body of millions of short lines is measured with numpy
here instead of a Python step per line, so its cost follows its bytes, not its line count.
"""
from __future__ import annotations

import numpy as np

NEWLINE = ord("\n")


def line_starts(data: bytes) -> np.ndarray:
    """The offset of each line's first byte, one per line (``scoring.reading.line_count``)."""
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
