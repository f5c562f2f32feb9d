"""What a CSV or JSON-lines body decodes into, and how its refusals are worded.

A body is all or nothing, as a JSON batch is to the API: lines that are not records raise
``Unreadable`` (answered 400), records with bad values raise the core's ``InvalidRecords``
(422), each problem located by a pointer ``/<line>/<field>`` with 1-based line numbers.
``csv_body`` and ``jsonlines_body`` read the two formats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.estimates import InvalidRecords
from ...core.schema import FIELD_NAMES, FieldError
from ...core.validation import LISTED, Refusal, ValidRecords, how_many

RECORD = ", ".join(FIELD_NAMES)
EMPTY = f"the body is empty; send one record per line ({RECORD})"


class Unreadable(ValueError):
    """Lines that are not records; ``errors`` lists the first of them, ``total`` counts all."""

    def __init__(self, detail: str, errors: Refusal | None = None):
        super().__init__(detail)
        self.detail, self.errors = detail, errors if errors is not None else Refusal()


@dataclass(frozen=True)
class Decoded:
    """Valid records in body order and the line each came from (ascending, from 1)."""

    records: ValidRecords
    lines: np.ndarray


def locate(lines: np.ndarray):
    """Pointer prefix of record ``i``: its line."""
    return lambda i: f"/{int(lines[i])}"


def _first_line(problems: Refusal, what: str) -> str:
    first = problems[0].pointer.split("/")[1]
    return (
        f"{how_many(problems.total, problems.complete)} {what}, the first on line {first}; "
        "see errors"
    )


def unreadable(found: list[tuple[int, str]]) -> Unreadable:
    """The refusal of lines that are not records: (line, message) pairs, in line order.

    Readers stop looking at the first such line beyond ``LISTED`` (``full``): more than that
    many found means at least that many.
    """
    problems = Refusal(
        [FieldError(f"/{line}", message) for line, message in found[:LISTED]],
        len(found),
        complete=not full(found),
    )
    return Unreadable(_first_line(problems, "line(s) that are not records"), problems)


def full(found: list) -> bool:
    """True once one problem more than an answer lists has been found: stop looking."""
    return len(found) > LISTED


def add(found: Refusal, more: Refusal) -> None:
    """Add one more chunk's invalid values to those found in the chunks before it."""
    found.extend(more)
    found.total += more.total
    found.complete = more.complete  # a chunk is validated only while the earlier ones were


def invalid(refused: Refusal) -> InvalidRecords:
    """The core's refusal of records located by line, its detail naming the first line."""
    return InvalidRecords(
        refused,
        _first_line(refused, "invalid value(s)"),
        total=refused.total,
        complete=refused.complete,
    )
