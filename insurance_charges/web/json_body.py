"""Request bodies read as strict JSON: UTF-8, no NaN or Infinity, no repeated keys, no surprises.

Every refusal is an HttpProblem with the status a client can act on: 415 for a body the API does
not read as sent (another media type, a Content-Encoding, a charset other than UTF-8), 413 over
the size limit, 400 for anything that is not one strict JSON document.
"""

from __future__ import annotations

from flask import current_app, request

from ..core.strict_json import parse_json, paused_gc
from .errors import HttpProblem

JSON_TYPES = ("application/json",)
UTF8 = ("utf-8", "utf8")


def _check_framing() -> None:
    if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
        raise HttpProblem(
            415,
            "send the body as JSON with Content-Type: application/json; "
            f"got {request.mimetype or 'no content type'}",
        )
    check_encoding()


def check_encoding() -> None:
    """Refuse (415) a body the service would have to decode: a charset other than UTF-8, or
    any Content-Encoding."""
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in UTF8:
        raise HttpProblem(
            415, f"send the body as UTF-8 (charset=utf-8); got charset {charset[:40]}"
        )
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise HttpProblem(
            415,
            f"the API does not decode Content-Encoding {encoding[:40]}; send the body uncompressed",
        )


def read_json():
    """The request body as strict JSON, and its size in bytes; or raise an HttpProblem."""
    _check_framing()
    raw = request.get_data(cache=False)  # a Content-Length over the limit raises 413 here
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(raw) >= limit:
        # A chunked body is cut off at the limit instead of refused: refuse it here.
        raise HttpProblem(413, f"the body is over the {limit // 1024} KiB limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpProblem(400, f"the body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise HttpProblem(400, "the body is empty; send a JSON object or an array of objects")
    try:
        with paused_gc():
            return parse_json(raw, text), len(raw)
    except RecursionError:
        raise HttpProblem(400, "the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad constants, huge numbers
        raise HttpProblem(400, f"the body is not valid JSON: {exc}") from None
