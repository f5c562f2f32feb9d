"""Request bodies read as strict JSON: UTF-8, no NaN or Infinity, no repeated keys, no surprises.

Every refusal is a Problem with the status a client can act on: 415 for a body the API does
not read as sent (another media type, a Content-Encoding, a charset other than UTF-8), 413 over
the size limit, 400 for anything that is not one strict JSON document.
"""
from __future__ import annotations

import gc
import json
import math
import re
from contextlib import contextmanager
from typing import Iterator

import orjson
from flask import current_app, request

from ..core.schema import RepeatedKeys
from .errors import Problem

JSON_TYPES = ("application/json",)
UTF8 = ("utf-8", "utf8")


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
    seen, repeated = set(), {}
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
STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_object)
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
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                      object_pairs_hook=_object)


def _check_framing() -> None:
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise Problem(415, "send the body as JSON with Content-Type: application/json; "
                           f"got {request.mimetype or 'no content type'}")
    check_encoding()


def check_encoding() -> None:
    """Refuse (415) a body the service would have to decode: a charset other than UTF-8, or
    any Content-Encoding."""
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in UTF8:
        raise Problem(415, f"send the body as UTF-8 (charset=utf-8); got charset {charset[:40]}")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise Problem(415, f"the API does not decode Content-Encoding {encoding[:40]}; send the "
                           "body uncompressed")


def read_json():
    """The request body as strict JSON, and its size in bytes; or raise a Problem."""
    _check_framing()
    raw = request.get_data(cache=False)  # a Content-Length over the limit raises 413 here
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(raw) >= limit:
        # A chunked body is cut off at the limit instead of refused: refuse it here.
        raise Problem(413, f"the body is over the {limit // 1024} KiB limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise Problem(400, "the body is empty; send a JSON object or an array of objects")
    try:
        with paused_gc():
            return parse_json(raw, text), len(raw)
    except RecursionError:
        raise Problem(400, "the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad constants, huge numbers
        raise Problem(400, f"the body is not valid JSON: {exc}") from None
