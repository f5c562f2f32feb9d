"""Strict JSON: UTF-8 text parsed as json.loads would, refusing NaN, Infinity, overflow and
repeated keys.

No Flask here: the API, /invocations' JSON lines and the file scorer all parse with it, so a
value means the same wherever it arrives.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import orjson

from .schema import RepeatedKeys


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _object(pairs: list) -> dict:
    """A JSON object; one that repeats a key is marked, not silently reduced to its last value."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    # A dict keeps the repeated keys in order as a list would, but finds one in constant time:
    # with a list, 100,000 keys each sent twice took minutes.
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for key, _ in pairs:
        if key in seen:
            repeated[key] = None
        seen.add(key)
    marked = RepeatedKeys(obj)
    marked.repeated = tuple(repeated)
    return marked


def _no_repeated_keys(raw: bytes, value) -> bool:
    """True when the body cannot hold a repeated key: as many colons as keys were parsed.

    Each member of an object carries exactly one colon outside strings, so colons >= members
    >= keys kept, with equality only when no key repeats (and no string holds a colon, nor any
    nested object a member): then orjson's answer is exact. Anything else takes json's
    pair-by-pair path, which finds the repeated keys.
    """
    return raw.count(b":") == keys_parsed(value)


def keys_parsed(value) -> int:
    """The keys of a parsed body that a repeated key would have reduced: its objects' sizes."""
    if type(value) is dict:
        return len(value)
    if type(value) is list:
        return sum(len(item) for item in value if type(item) is dict)
    return 0


# orjson parses a full batch about three times faster than json. It turns integers beyond
# 64 bits into floats and refuses a few inputs json accepts (lone surrogates, deep nesting),
# so a body with a 19-digit run, or one orjson refuses, goes to json: every body gets
# json's exact answer.
# (Digits are mapped to "0" and searched as a run: a regular expression costs 10 ms a batch.)
DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
LONG_DIGIT_RUN = b"0" * 19


# The parser parse_json falls back to, for a body that parses in stdlib json's C scanner
# without orjson's try (JSON lines with many such lines: one decoder, not one per line).
STRICT = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_object
)
# An escaped UTF-16 surrogate ("\ud800"): orjson refuses a lone one, which json reads.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cycle collector paused while a body is parsed.

    Parsed JSON holds no reference cycles, but each container it makes counts towards the
    collector's next pass, which walks every container made so far: 2 MiB of ``[],`` cost
    1.5 s instead of 0.2 s. What the collector would have found is nothing.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse_json(raw: bytes, text: str):
    """Parse a UTF-8 body strictly, as json.loads with NaN, Infinity and overflow refused."""
    if LONG_DIGIT_RUN not in raw.translate(DIGITS_TO_ZERO):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json gives the answer (and the message) below
        else:
            if _no_repeated_keys(raw, value):
                return value
    return json.loads(
        text, parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_object
    )


def orjson_exact(raws: Sequence[bytes], values: Sequence) -> bool:
    """True when ``values``, orjson's reading of ``raws`` (one each), are what parse_json gives
    for each: parse_json's two checks (no run of 19 digits, as many colons as keys) over all the
    bodies at once, at C speed.

    Every body has at least as many colons as keys (``_no_repeated_keys``), so the totals are
    equal only when each body's are; a space between bodies keeps a run of digits from
    spanning two.
    """
    joined = b" ".join(raws)
    return LONG_DIGIT_RUN not in joined.translate(DIGITS_TO_ZERO) and joined.count(b":") == sum(
        map(keys_parsed, values)
    )
