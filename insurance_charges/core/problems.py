"""Problem documents (RFC 9457): the shape every machine-facing refusal takes, with no Flask.

The web layer answers them as ``application/problem+json``; the Kafka consumer
(``insurance_charges.events``) publishes the same documents on its rejects topic, so a
mistake reads the same wherever it was sent.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .estimates import InvalidRecords
from .validation import how_many

PROBLEM_MEDIA_TYPE = "application/problem+json"
# An error answer lists problems up to this many bytes, or the request's own size if larger:
# a small mistake is always shown whole, and bad input never costs more than it weighs.
ERROR_BYTES_FLOOR = 4096


class ProblemType(NamedTuple):
    """One kind of problem: its slug on /docs, its title and what it means for a client."""

    slug: str
    title: str
    explanation: str


# Problem type URIs are references into the app's own /docs page, where each is explained.
# 408, 414 and 502-504 come from the nginx in front of gunicorn in the image (see
# insurance_charges/container), which answers them with these same documents.
PROBLEMS = {
    400: ProblemType(
        "malformed-json",
        "Malformed request body",
        "The body is not valid JSON, "
        "not UTF-8, empty, nested too deeply, or holds NaN, Infinity or a number "
        "out of range (for /invocations: a CSV or JSON-lines line is not a record; "
        "errors lists them); or the HTTP request itself is malformed.",
    ),
    401: ProblemType(
        "unauthorized", "Unauthorized", "An API key is required and was missing or wrong."
    ),
    404: ProblemType("not-found", "Not found", "No such resource."),
    405: ProblemType(
        "method-not-allowed",
        "Method not allowed",
        "The path exists but not for this method; see the Allow header.",
    ),
    406: ProblemType(
        "not-acceptable",
        "Not acceptable",
        "None of the media types in Accept "
        "can be answered; /invocations answers application/json, text/csv or "
        "application/jsonlines.",
    ),
    408: ProblemType(
        "timeout",
        "Request timeout",
        "The request's headers or body stopped "
        "arriving for 10 seconds; send it again at a steady pace.",
    ),
    413: ProblemType(
        "too-large",
        "Request too large",
        "The body is over the size limit or the batch holds too many records.",
    ),
    414: ProblemType(
        "uri-too-long", "URI too long", "The path and query are over 8 KiB; send data in the body."
    ),
    415: ProblemType(
        "unsupported-media-type",
        "Unsupported media type",
        "The body is not "
        "sent as application/json (/invocations also reads text/csv and "
        "application/jsonlines), is compressed, or is not UTF-8.",
    ),
    422: ProblemType(
        "invalid-values",
        "Invalid values",
        "The body is well-formed but a value "
        "is missing, unknown, repeated, of the wrong type or out of range; see "
        "errors (errors_total counts them when not all are listed: at least that "
        "many when errors_total_is_lower_bound is true).",
    ),
    500: ProblemType(
        "internal-error",
        "Internal server error",
        "The server failed; the request id in X-Request-ID finds it in the logs.",
    ),
    502: ProblemType(
        "unavailable",
        "Service unavailable",
        "The service is starting or restarting; try again in a few seconds.",
    ),
    503: ProblemType(
        "unavailable",
        "Service unavailable",
        "The service is starting or restarting; try again in a few seconds.",
    ),
    504: ProblemType(
        "gateway-timeout",
        "Gateway timeout",
        "The service did not answer in time; try again, with a smaller batch.",
    ),
}


def problem_type(status: int) -> str:
    """The type URI for a status's problem."""
    slug = PROBLEMS[status].slug if status in PROBLEMS else "http-error"
    return f"/docs#problem-{slug}"


def as_dict(error) -> dict:
    """A listed problem as a plain dict (a core FieldError, or a dict already)."""
    return error.as_dict() if hasattr(error, "as_dict") else error


def problem_body(
    status: int, detail: str, errors: list | None = None, extra: dict | None = None
) -> dict:
    """The problem+json body for ``status``: type, title, status, detail, errors, extensions."""
    body = {
        "type": problem_type(status),
        "title": PROBLEMS[status].title if status in PROBLEMS else "HTTP error",
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [as_dict(e) for e in errors]
    body.update(extra or {})
    return body


def listed_within(errors: list, budget: int) -> list:
    """The leading errors whose JSON fits in ``budget`` bytes (always at least one)."""
    listed: list = []
    used = 0
    for error in errors:
        used += len(json.dumps(as_dict(error))) + 2  # ", " between items
        if listed and used > budget:
            break
        listed.append(error)
    return listed


def totals(total: int, complete: bool) -> dict:
    """The extension members of an answer that lists only some of its problems.

    ``errors_total`` counts the problems found; the service stops looking one past those it
    can list, so the count is then a lower bound, and says so.
    """
    return {"errors_total": total, "errors_total_is_lower_bound": not complete}


def refusal_parts(exc: InvalidRecords, size: int) -> tuple[str, list, dict]:
    """The 422's detail, listed problems and extensions for the core's refusal of a body of
    ``size`` bytes."""
    listed = listed_within(exc.errors, max(size, ERROR_BYTES_FLOOR))
    if len(listed) == exc.total and exc.complete:
        return exc.detail, listed, {}
    detail = (
        f"{how_many(exc.total, exc.complete)} invalid value(s); the first {len(listed)} "
        "are listed in errors: fix them and send again to see the rest"
    )
    return detail, listed, totals(exc.total, exc.complete)
