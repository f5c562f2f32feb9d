"""JSON-lines bodies: one JSON object per line, each read as strictly as the API reads one.

Each line's value is exactly what the API's parser (``core.strict_json.parse_json``) gives for
that line alone, but the lines are read in bulk, at C speed: by orjson, or by the stdlib json
decoder parse_json would fall back to for a line orjson may read differently (a run of 19
digits, an escaped surrogate). A line either refuses goes through ``parse_json`` itself, which
says why; looking for such lines stops once an answer's list of them is full. A body of
millions of short lines so costs what its bytes cost, not a Python step and an exception each,
and it is read a chunk of lines at a time, so its memory follows its records, not its lines.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import compress
from typing import NamedTuple

import numpy as np
import orjson

from ...core.schema import FIELDS
from ...core.validation import CODES, LISTED, Refusal, ValidRecords, validate_each, validate_records
from .decoding import EMPTY, Decoded, Unreadable, add, full, invalid, locate, unreadable
from .line_spans import blank_lines, line_chunks, line_starts

SPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of nothing else is blank
COLON = ord(":")


# Lines read, checked and let go of at a time: a body's memory then follows its records, not
# its line count (6 MiB of "{}" lines held 2 million dicts at once, 319 MB, where 6 MiB of
# valid lines hold 57 MB); as many lines as the chunks /invocations estimates (body_estimates.py).
CHUNK_LINES = 50_000
CHUNK_BYTES = 8 * 1024 * 1024


def read_jsonlines(data: bytes) -> Decoded:
    """The records of a JSON-lines body: one JSON object per line, read as the API reads one."""
    if not data or data.isspace():  # bytes.isspace() knows the SPACE bytes
        raise Unreadable(EMPTY)
    not_json: list[tuple[int, str]] = []
    refused = Refusal()  # the invalid values found, over the chunks read so far
    parts: list[tuple[ValidRecords, np.ndarray]] = []
    for first, chunk in line_chunks(data, 0, 1, CHUNK_LINES, CHUNK_BYTES):
        problems, checked = _read_chunk(chunk, first, validate=refused.complete and not not_json,
                                        listed=LISTED - len(refused))
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
    return Decoded(_joined([records for records, _ in parts]),
                   np.concatenate([lines for _, lines in parts]))


class Checked(NamedTuple):
    """A chunk's records (None if refused), its refusal, and the lines its records came from."""

    records: ValidRecords | None
    refused: Refusal
    lines: np.ndarray


def _read_chunk(chunk: bytes, first: int, validate: bool,
                listed: int) -> tuple[list[tuple[int, str]], Checked | None]:
    """The whole lines ``chunk``, the first of them line ``first``: its lines that are not JSON
    ((line, message), the first up to a full list), and when asked and there are none, its
    records validated with up to ``listed`` problems listed; else None."""
    from ...core.strict_json import paused_gc  # the API's strict parser

    starts = line_starts(chunk)
    kept = ~blank_lines(chunk, SPACE, starts)
    numbers = np.flatnonzero(kept)  # the chunk's lines that are not blank, from 0
    if not len(numbers):
        return [], None
    texts = _kept_lines(chunk, kept)
    by_json = _read_by_json(chunk, starts, numbers)
    with paused_gc():
        values, problems = _parsed(texts, by_json)
    lines = numbers.astype(np.int64) + first
    if problems or not validate:
        return [(int(lines[i]), message) for i, message in problems], None
    again = _more_colons_than_keys(chunk, starts, numbers, values) & ~by_json
    if again.any():  # never a valid record: validation reads it again, if it gets that far
        records, refused = validate_each(_values_again(texts, values, again), locate(lines),
                                         listed)
    else:
        records, refused = validate_records(values, locate(lines), listed)
    return [], Checked(records, refused, lines)


def _joined(parts: list[ValidRecords]) -> ValidRecords:
    """The chunks' records as one, in order, each field's column and codes joined."""
    if len(parts) == 1:
        return parts[0]
    columns = {f.name: np.concatenate([p.column(f.name) for p in parts]) for f in FIELDS}
    codes = {name: np.concatenate([p.codes(name) for p in parts]) for name in CODES}
    return ValidRecords([record for p in parts for record in p], columns, codes)


def _kept_lines(data: bytes, kept: np.ndarray) -> list[bytes]:
    """The lines not blank, without their line ends, each step at C speed over all of them."""
    parts = data.split(b"\n")
    if len(parts) > len(kept):  # the empty "line" after a final line break
        parts.pop()
    if not kept.all():
        parts = list(compress(parts, kept.tolist()))
    # orjson and json skip spaces, tabs and CRs around a value, not the vertical tab or form
    # feed that bytes.strip() also removes (the one-line-at-a-time reader stripped each line).
    if b"\x0b" in data or b"\x0c" in data:
        parts = list(map(bytes.strip, parts))
    return parts


def _read_by_json(data: bytes, starts: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Per line kept, True when parse_json would not take orjson's value: a run of 19 digits
    (orjson may read a float) or an escaped surrogate (orjson refuses a lone one)."""
    from ...core.strict_json import DIGITS_TO_ZERO, LONG_DIGIT_RUN, SURROGATE_ESCAPE

    found = []
    digits = data.translate(DIGITS_TO_ZERO)
    if LONG_DIGIT_RUN in digits:  # the usual body has neither: one search each, at C speed
        found += [m.start() for m in re.finditer(b"0{%d,}" % len(LONG_DIGIT_RUN), digits)]
    found += [m.start() for m in SURROGATE_ESCAPE.finditer(data)]
    marked = np.zeros(len(numbers), dtype=bool)
    if found:  # each one's line among all lines, then among those kept (it is not blank)
        lines = np.searchsorted(starts, found, side="right") - 1
        marked[np.searchsorted(numbers, lines)] = True
    return marked


def _parsed(texts: list[bytes], by_json: np.ndarray) -> tuple[list, list[tuple[int, str]]]:
    """Each line's value, and the (index, message) of the first lines that are not JSON.

    orjson reads the lines not ``by_json``, the json decoder the others, each group in bulk;
    the lists of problems are full at one more than an answer lists. When a group stops
    there, only problems up to the line it stopped at are certainly all found.
    """
    from ...core.strict_json import STRICT

    def by_decoder(text: bytes):
        decoded = text.strip().decode("utf-8")  # raw_decode takes no space before the value
        value, end = STRICT.raw_decode(decoded)
        if end != len(decoded):  # more after the value: parse_json words the refusal
            raise ValueError("extra data")
        return value

    if not by_json.any():  # the usual body: one group, no merging
        return _read_group(texts, np.arange(len(texts)), orjson.loads)
    groups = [_read_group(texts, np.flatnonzero(chosen), parse)
              for chosen, parse in ((~by_json, orjson.loads), (by_json, by_decoder))]
    problems = sorted(p for _, found in groups for p in found)
    stopped = [found[-1][0] for _, found in groups if full(found)]
    if stopped:
        problems = [p for p in problems if p[0] <= min(stopped)]
        return [], problems
    values = np.empty(len(texts), dtype=object)
    for chosen, (got, _) in zip((~by_json, by_json), groups, strict=True):
        values[chosen] = np.fromiter(got, dtype=object, count=len(got))
    return values.tolist(), problems


def _read_group(texts: list[bytes], rows: np.ndarray,
                parse: Callable) -> tuple[list, list[tuple[int, str]]]:
    """``parse`` mapped over the lines ``rows``, each line it refuses read by parse_json:
    their values, and the (index, message) of those that are not JSON, until that list is full."""
    values: list = []
    problems: list[tuple[int, str]] = []
    rest = iter([texts[i] for i in rows.tolist()] if len(rows) != len(texts) else texts)
    while True:
        try:
            values.extend(map(parse, rest))
            return values, problems
        except (ValueError, RecursionError):  # the line at len(values): parse_json says why
            row = int(rows[len(values)])
            value, message = _exact(texts[row])
            values.append(value)
            if message is not None:
                problems.append((row, message))
                if full(problems):
                    return values, problems


def _exact(text: bytes) -> tuple[object, str | None]:
    """One line read exactly as the API reads a body: (its value, None) or (None, why not)."""
    from ...core.strict_json import parse_json

    body = text.strip()
    try:
        return parse_json(body, body.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, (f"the line is not UTF-8 text (byte {exc.start + 1}); send the body as "
                      "UTF-8")
    except RecursionError:
        return None, "the line's JSON is nested too deeply"
    except ValueError as exc:  # JSONDecodeError, NaN or Infinity, huge numbers
        return None, f"the line is not valid JSON: {exc}"


def _more_colons_than_keys(data: bytes, starts: np.ndarray, numbers: np.ndarray,
                           values: list) -> np.ndarray:
    """Per line kept, True when orjson's value may not be parse_json's: more colons than keys.

    A member holds one colon outside strings, so a line with as many colons as keys parsed
    repeats no key (``core.strict_json._no_repeated_keys``). A line with more is never a valid
    record either: a record's keys and values hold no colon, and it nests nothing.
    """
    from ...core.strict_json import keys_parsed

    at = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == COLON)
    if not len(at):  # no colon, no key: nothing to count
        return np.zeros(len(values), dtype=bool)
    before = np.searchsorted(at, starts)  # the colons before each line
    colons = np.diff(np.append(before, len(at)))[numbers]
    if set(map(type, values)) == {dict}:  # the usual body: counted at C speed
        keys = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    else:  # a line without a colon has no key
        keys = np.zeros(len(values), dtype=np.int64)
        with_colons = np.flatnonzero(colons).tolist()
        keys[with_colons] = [keys_parsed(values[i]) for i in with_colons]
    return colons != keys


def _values_again(texts: list[bytes], values: list, again: np.ndarray) -> Iterator:
    """The lines' values, each one marked in ``again`` read once more with parse_json."""
    for i, (value, reread) in enumerate(zip(values, again.tolist(), strict=True)):
        yield _exact(texts[i])[0] if reread else value
