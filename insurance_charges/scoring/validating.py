"""The core's reference validation of a chunk's records, every problem listed by line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from ..core.schema import FieldError
from ..core.validation import Locate, validate_each, validate_records

ALL = sys.maxsize  # validate_each lists every problem of a chunk, not only the first 100


def line_of(error: FieldError) -> int:
    """The line a problem's pointer ``/<line>/<field>`` names."""
    return int(error.pointer.split("/", 2)[1])


def locate(lines: Sequence[int] | np.ndarray) -> Locate:
    """Pointer prefix of record ``i``: its line."""
    return lambda i: f"/{lines[i]}"


def validate_all(records: list, lines: np.ndarray) -> list[tuple[dict | None, list[FieldError]]]:
    """Each record's coerced values or problems, as the core's reference path says."""
    _, errors = validate_each(records, locate(lines), listed=ALL)
    by_line: dict[int, list[FieldError]] = {}
    for error in errors:
        by_line.setdefault(line_of(error), []).append(error)
    good = [j for j in range(len(records)) if int(lines[j]) not in by_line]
    coerced = {}
    if good:
        valid, refused = validate_records([records[j] for j in good], locate(lines[good]))
        assert valid is not None, "validate_each and validate_records disagree"
        coerced = dict(zip(good, valid, strict=True))
    return [(coerced.get(j), by_line.get(int(lines[j]), [])) for j in range(len(records))]
