"""JSON-lines bodies: one JSON object per line, each read as strictly as the API reads one.

The lines are read by ``tables.json_lines``: each line's value exactly what the API's parser
gives for that line alone, read in bulk at C speed, looking for lines that are not JSON only
until an answer's list of them is full. A body of millions of short lines so costs what its
bytes cost, not a Python step and an exception each, and it is read a chunk of lines at a
time, so its memory follows its records, not its lines.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...core.schema import FIELDS
from ...core.validation import CODES, LISTED, Refusal, ValidRecords, validate_each, validate_records
from ...tables.json_lines import read_json_lines
from ...tables.lines import line_chunks
from .decoding import EMPTY, Decoded, Unreadable, add, full, invalid, locate, unreadable

NOT_UTF8_FIX = "send the body as UTF-8"


# Lines read, checked and let go of at a time: a body's memory then follows its records, not
# its line count (6 MiB of "{}" lines held 2 million dicts at once, 319 MB, where 6 MiB of
# valid lines hold 57 MB); as many lines as the chunks /invocations estimates (body_estimates.py).
CHUNK_LINES = 50_000
CHUNK_BYTES = 8 * 1024 * 1024


def read_jsonlines(data: bytes) -> Decoded:
    """The records of a JSON-lines body: one JSON object per line, read as the API reads one."""
    if not data or data.isspace():  # bytes.isspace() knows the bytes a blank line holds
        raise Unreadable(EMPTY)
    not_json: list[tuple[int, str]] = []
    refused = Refusal()  # the invalid values found, over the chunks read so far
    parts: list[tuple[ValidRecords, np.ndarray]] = []
    for first, chunk in line_chunks(data, 0, 1, CHUNK_LINES, CHUNK_BYTES):
        problems, checked = _read_chunk(
            chunk, first, validate=refused.complete and not not_json, listed=LISTED - len(refused)
        )
        not_json += problems
        if full(not_json):
            break  # enough lines that are not records to list
        if checked is None:
            continue  # refused already: only lines that are not JSON matter now
        if checked.records is None:  # None exactly when the chunk has refused values
            add(refused, checked.refused)
        elif not refused.total:
            parts.append((checked.records, checked.lines))
    if not_json:
        raise unreadable(not_json)
    if refused.total:
        raise invalid(refused)
    return Decoded(
        _joined([records for records, _ in parts]), np.concatenate([lines for _, lines in parts])
    )


class Checked(NamedTuple):
    """A chunk's records (None if refused), its refusal, and the lines its records came from."""

    records: ValidRecords | None
    refused: Refusal
    lines: np.ndarray


def _read_chunk(
    chunk: bytes, first: int, validate: bool, listed: int
) -> tuple[list[tuple[int, str]], Checked | None]:
    """The whole lines ``chunk``, the first of them line ``first``: its lines that are not JSON
    ((line, message), the first up to a full list), and when asked and there are none, its
    records validated with up to ``listed`` problems listed; else None."""
    got = read_json_lines(chunk, first, LISTED, NOT_UTF8_FIX)
    if not len(got.lines):
        return [], None
    if got.problems or not validate:
        return [(int(got.lines[i]), message) for i, message in got.problems], None
    again = got.again()
    if again.any():  # never a valid record: validation reads it again, if it gets that far
        records, refused = validate_each(got.exact_values(again), locate(got.lines), listed)
    else:
        records, refused = validate_records(got.values, locate(got.lines), listed)
    return [], Checked(records, refused, got.lines)


def _joined(parts: list[ValidRecords]) -> ValidRecords:
    """The chunks' records as one, in order, each field's column and codes joined."""
    if len(parts) == 1:
        return parts[0]
    columns = {f.name: np.concatenate([p.column(f.name) for p in parts]) for f in FIELDS}
    codes = {name: np.concatenate([p.codes(name) for p in parts]) for name in CODES}
    return ValidRecords([record for p in parts for record in p], columns, codes)
