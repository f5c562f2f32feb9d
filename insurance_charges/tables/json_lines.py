"""JSON lines: each line's value exactly as the API's strict parser gives it, read in bulk.

Each line's value is what ``core.strict_json.parse_json`` gives for that line alone, but the
lines are read in bulk, at C speed: by orjson, or by the stdlib json decoder parse_json would
fall back to for a line orjson may read differently (a run of 19 digits, an escaped
surrogate). A line either refuses goes through ``parse_json`` itself, which says why; a reader
that lists only the first problems stops looking once its list is full. A line whose value may
still differ (a repeated key, which orjson keeps the last of) is read again by ``parse_json``
when its value is asked for (``JsonLines.again``, ``JsonLines.exact_values``). A body of
millions of short lines so costs what its bytes cost, not a Python step and an exception each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import compress

import numpy as np
import orjson

from .lines import blank_lines, line_starts

SPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of nothing else is blank
COLON = ord(":")


class NotJsonLine(ValueError):
    """Why a line is not JSON, for a reader that words it its own way: ``kind`` is "utf8" (the
    first broken byte, from 1, is ``byte``), "deep" (nested too deeply for the parser) or
    "json" (the strict parser's own message is ``detail``)."""

    def __init__(self, kind: str, detail: str = "", byte: int = 0):
        super().__init__(kind, detail, byte)
        self.kind, self.detail, self.byte = kind, detail, byte


@dataclass
class JsonLines:
    """The lines of a chunk that are not blank, read as the API reads a body.

    ``values`` has one value per line read (None for a line that is not JSON), or is empty
    when the read stopped at a full list of problems; ``problems`` are (index, message) in
    line order, the index into ``lines`` and ``texts``.
    """

    data: bytes
    starts: np.ndarray  # every line's first byte in ``data``
    numbers: np.ndarray  # the lines not blank, counted from 0 in ``data``
    lines: np.ndarray  # their line numbers (int64)
    texts: list[bytes]  # their bytes, without the line end
    by_json: np.ndarray  # per line, read by the json decoder rather than orjson
    values: list
    problems: list[tuple[int, str]]

    def again(self) -> np.ndarray:
        """Per line, True when orjson's value may not be ``parse_json``'s (a repeated key,
        which orjson keeps the last of): read it again to be exact."""
        if not self.values:
            return np.zeros(len(self.texts), dtype=bool)
        again = (
            _more_colons_than_keys(self.data, self.starts, self.numbers, self.values)
            & ~self.by_json
        )
        for i, _ in self.problems:
            again[i] = False  # not JSON: no value to read again
        return again

    def exact_values(self, again: np.ndarray) -> Iterator:
        """Each line's value, those marked in ``again`` proven or read again by ``parse_json``
        as they are reached (a caller that stops early reads no more)."""
        for i, (value, reread) in enumerate(zip(self.values, again.tolist(), strict=True)):
            yield self._proven(i, value) if reread else value

    def _proven(self, i: int, value):
        """Line ``i``'s value: orjson's when its colons prove that no key repeats, else read
        again by ``parse_json``.

        A line with more colons than keys (a time or an id in a string, a nested object)
        repeats no key when its colons are exactly one per member of each of its objects plus
        those inside its keys and strings: a repeated key orjson dropped takes at least its
        member's colon with it. orjson writes a value back with exactly those colons (it
        escapes none), so their count costs one call at C speed. An escape could hide a colon
        (``\\u003a``): a line with a backslash is read again.
        """
        text = self.texts[i]
        if b"\\" not in text:
            try:
                if text.count(b":") == orjson.dumps(value).count(b":"):
                    return value
            except TypeError:  # orjson cannot write it back (nested too deeply): read again
                pass
        return self.exact(i)

    def exact(self, i: int):
        """Line ``i``'s value read again by ``parse_json`` itself."""
        return _exact(self.texts[i], "")[0]

    def why_not(self, i: int) -> NotJsonLine:
        """Why line ``i`` (one of ``problems``) is not JSON, for a reader that words it
        itself: the line read again, which costs only the lines refused."""
        try:
            line_value(self.texts[i])
        except NotJsonLine as why:
            return why
        raise ValueError(f"line {int(self.lines[i])} is JSON")

    def raw(self, i: int) -> bytes:
        """Line ``i`` as it was sent, without its line end."""
        start = int(self.starts[self.numbers[i]])
        end = self.data.find(b"\n", start)
        return self.data[start : end if end >= 0 else len(self.data)]

    def shown(self, i: int) -> str:
        """Line ``i`` as text to echo: without the spaces around it, or, when it is not UTF-8
        text, as sent with each broken byte replaced."""
        raw = self.raw(i)
        try:
            return raw.strip().decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")


def read_json_lines(
    data: bytes, first: int, limit: int | None = None, not_utf8_fix: str = ""
) -> JsonLines:
    """The whole lines ``data``, the first of them line ``first``: every value, and the lines
    that are not JSON, worded; with ``limit``, the read stops at the ``limit`` + 1st such line.
    ``not_utf8_fix`` ends the words for a line that is not UTF-8 text."""
    from ..core.strict_json import paused_gc

    starts = line_starts(data)
    kept = ~blank_lines(data, SPACE, starts)
    numbers = np.flatnonzero(kept)  # the lines that are not blank, from 0
    lines = numbers.astype(np.int64) + first
    if not len(numbers):
        return JsonLines(data, starts, numbers, lines, [], np.zeros(0, dtype=bool), [], [])
    texts = _kept_lines(data, kept)
    by_json = _read_by_json(data, starts, numbers)
    with paused_gc():
        values, problems = _parsed(texts, by_json, limit, not_utf8_fix)
    return JsonLines(data, starts, numbers, lines, texts, by_json, values, problems)


def first_object(data: bytes) -> dict | None:
    """The first line of ``data`` whose value is a JSON object, read as the API reads one;
    None when no line is one."""
    for raw in data.split(b"\n"):
        if raw.strip():
            value, _ = _exact(raw, "")
            if isinstance(value, dict):
                return value
    return None


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
    from ..core.strict_json import DIGITS_TO_ZERO, LONG_DIGIT_RUN, SURROGATE_ESCAPE

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


def _full(found: list, limit: int | None) -> bool:
    """True once one problem more than ``limit`` has been found: stop looking."""
    return limit is not None and len(found) > limit


def _parsed(
    texts: list[bytes], by_json: np.ndarray, limit: int | None, not_utf8_fix: str
) -> tuple[list, list[tuple[int, str]]]:
    """Each line's value, and the (index, message) of the lines that are not JSON.

    orjson reads the lines not ``by_json``, the json decoder the others, each group in bulk;
    the lists of problems are full at one more than ``limit``. When a group stops there, only
    problems up to the line it stopped at are certainly all found, and no value is returned.
    """
    from ..core.strict_json import STRICT

    def by_decoder(text: bytes):
        decoded = text.strip().decode("utf-8")  # raw_decode takes no space before the value
        value, end = STRICT.raw_decode(decoded)
        if end != len(decoded):  # more after the value: parse_json words the refusal
            raise ValueError("extra data")
        return value

    if not by_json.any():  # the usual body: one group, no merging
        return _read_group(texts, np.arange(len(texts)), orjson.loads, limit, not_utf8_fix)
    groups = [
        _read_group(texts, np.flatnonzero(chosen), parse, limit, not_utf8_fix)
        for chosen, parse in ((~by_json, orjson.loads), (by_json, by_decoder))
    ]
    problems = sorted(p for _, found in groups for p in found)
    stopped = [found[-1][0] for _, found in groups if _full(found, limit)]
    if stopped:
        problems = [p for p in problems if p[0] <= min(stopped)]
        return [], problems
    values = np.empty(len(texts), dtype=object)
    for chosen, (got, _) in zip((~by_json, by_json), groups, strict=True):
        values[chosen] = np.fromiter(got, dtype=object, count=len(got))
    return values.tolist(), problems


def _read_group(
    texts: list[bytes], rows: np.ndarray, parse: Callable, limit: int | None, not_utf8_fix: str
) -> tuple[list, list[tuple[int, str]]]:
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
            value, message = _exact(texts[row], not_utf8_fix)
            values.append(value)
            if message is not None:
                problems.append((row, message))
                if _full(problems, limit):
                    return values, problems


def line_value(text: bytes):
    """One line's value exactly as the API reads a body (spaces around it ignored), or
    NotJsonLine saying why it has none."""
    from ..core.strict_json import parse_json

    body = text.strip()
    try:
        return parse_json(body, body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise NotJsonLine("utf8", byte=exc.start + 1) from None
    except RecursionError:
        raise NotJsonLine("deep") from None
    except ValueError as exc:  # JSONDecodeError, NaN or Infinity, huge numbers
        raise NotJsonLine("json", str(exc)) from None


def _exact(text: bytes, not_utf8_fix: str) -> tuple[object, str | None]:
    """One line read exactly as the API reads a body: (its value, None) or (None, why not)."""
    try:
        return line_value(text), None
    except NotJsonLine as why:
        if why.kind == "utf8":
            fix = f"; {not_utf8_fix}" if not_utf8_fix else ""
            return None, f"the line is not UTF-8 text (byte {why.byte}){fix}"
        if why.kind == "deep":
            return None, "the line's JSON is nested too deeply"
        return None, f"the line is not valid JSON: {why.detail}"


def _more_colons_than_keys(
    data: bytes, starts: np.ndarray, numbers: np.ndarray, values: list
) -> np.ndarray:
    """Per line kept, True when orjson's value may not be parse_json's: more colons than keys.

    A member holds one colon outside strings, so a line with as many colons as keys parsed
    repeats no key (``core.strict_json._no_repeated_keys``). A line with more is never a valid
    record either: a record's keys and values hold no colon, and it nests nothing.
    """
    from ..core.strict_json import keys_parsed

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
