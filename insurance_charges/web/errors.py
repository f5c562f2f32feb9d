"""Errors: RFC 9457 problem+json under the API, a plain HTML page elsewhere, never a trace."""
from __future__ import annotations

import logging

from flask import Flask, Response, json, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIXES = ("/api/", "/predict_api", "/openapi.json")

# Problem type URIs are references into the app's own /docs page, where each is explained.
PROBLEMS = {
    400: ("malformed-json", "Malformed request body"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-values", "Invalid values"),
    500: ("internal-error", "Internal server error"),
}


def problem_type(status: int) -> str:
    """The type URI for a status's problem."""
    slug = PROBLEMS.get(status, ("http-error", ""))[0]
    return f"/docs#problem-{slug}"


class Problem(Exception):
    """An API error to answer as problem+json; ``extra`` adds extension members."""

    def __init__(self, status: int, detail: str, errors: list | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.extra = extra or {}


def _as_dict(error) -> dict:
    return error.as_dict() if hasattr(error, "as_dict") else error


def listed_within(errors: list, budget: int) -> list:
    """The leading errors whose JSON fits in ``budget`` bytes (always at least one)."""
    listed, used = [], 0
    for error in errors:
        used += len(json.dumps(_as_dict(error))) + 2  # ", " between items
        if listed and used > budget:
            break
        listed.append(error)
    return listed


def problem_response(status: int, detail: str, errors: list | None = None,
                     headers: dict | None = None, extra: dict | None = None) -> Response:
    """Build an ``application/problem+json`` response."""
    body = {"type": problem_type(status),
            "title": PROBLEMS.get(status, (None, "HTTP error"))[1],
            "status": status, "detail": detail}
    if errors:
        body["errors"] = [_as_dict(e) for e in errors]
    body.update(extra or {})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def wants_problem_json() -> bool:
    """True for API paths, whose clients expect machine-readable errors."""
    return request.path.startswith(API_PREFIXES)


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(Problem)
    def handle_problem(exc: Problem):
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers, exc.extra)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        status = exc.code or 500
        # Keep headers such as Allow (405); drop the HTML content type.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        if wants_problem_json():
            return problem_response(status, exc.description or exc.name, headers=headers)
        page = render_template("error.html", status=status, title=exc.name,
                               detail=exc.description)
        return page, status, headers

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return handle_http(InternalServerError(
            "The server could not complete the request; it has been logged."))
