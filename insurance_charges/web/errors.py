"""Errors: RFC 9457 problem+json under the API, a plain HTML page elsewhere, never a trace."""
from __future__ import annotations

import logging
from typing import NamedTuple

from flask import Flask, Response, json, render_template, request
from werkzeug.exceptions import GatewayTimeout, HTTPException, InternalServerError

log = logging.getLogger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Machine-facing too: SageMaker's paths (web/sagemaker.py), the EB worker's (web/worker.py).
API_PREFIXES = ("/api/", "/predict_api", "/openapi.json", "/invocations", "/ping",
                "/execution-parameters", "/worker/")

class ProblemType(NamedTuple):
    """One kind of problem: its slug on /docs, its title and what it means for a client."""

    slug: str
    title: str
    explanation: str


# Problem type URIs are references into the app's own /docs page, where each is explained.
# 408, 414 and 502-504 come from the nginx in front of gunicorn in the image (see
# insurance_charges/container), which answers them with these same documents.
PROBLEMS = {
    400: ProblemType("malformed-json", "Malformed request body", "The body is not valid JSON, "
                     "not UTF-8, empty, nested too deeply, or holds NaN, Infinity or a number "
                     "out of range (for /invocations: a CSV or JSON-lines line is not a record; "
                     "errors lists them); or the HTTP request itself is malformed."),
    401: ProblemType("unauthorized", "Unauthorized",
                     "An API key is required and was missing or wrong."),
    404: ProblemType("not-found", "Not found", "No such resource."),
    405: ProblemType("method-not-allowed", "Method not allowed",
                     "The path exists but not for this method; see the Allow header."),
    406: ProblemType("not-acceptable", "Not acceptable", "None of the media types in Accept "
                     "can be answered; /invocations answers application/json, text/csv or "
                     "application/jsonlines."),
    408: ProblemType("timeout", "Request timeout", "The request's headers or body stopped "
                     "arriving for 10 seconds; send it again at a steady pace."),
    413: ProblemType("too-large", "Request too large",
                     "The body is over the size limit or the batch holds too many records."),
    414: ProblemType("uri-too-long", "URI too long",
                     "The path and query are over 8 KiB; send data in the body."),
    415: ProblemType("unsupported-media-type", "Unsupported media type", "The body is not "
                     "sent as application/json (/invocations also reads text/csv and "
                     "application/jsonlines), is compressed, or is not UTF-8."),
    422: ProblemType("invalid-values", "Invalid values", "The body is well-formed but a value "
                     "is missing, unknown, repeated, of the wrong type or out of range; see "
                     "errors (errors_total counts them when not all are listed: at least that "
                     "many when errors_total_is_lower_bound is true)."),
    500: ProblemType("internal-error", "Internal server error", "The server failed; the "
                     "request id in X-Request-ID finds it in the logs."),
    502: ProblemType("unavailable", "Service unavailable", "The service is starting or "
                     "restarting; try again in a few seconds."),
    503: ProblemType("unavailable", "Service unavailable", "The service is starting or "
                     "restarting; try again in a few seconds."),
    504: ProblemType("gateway-timeout", "Gateway timeout", "The service did not answer in time; "
                     "try again, with a smaller batch."),
}


def problem_type(status: int) -> str:
    """The type URI for a status's problem."""
    slug = PROBLEMS[status].slug if status in PROBLEMS else "http-error"
    return f"/docs#problem-{slug}"


class Overran(Exception):
    """The request outlived gunicorn's worker timeout; raised into it by gunicorn.conf.py's
    ``worker_abort``, so that it ends in the app's own 504 instead of gunicorn's HTML 500."""


class HttpProblem(Exception):
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
    listed: list = []
    used = 0
    for error in errors:
        used += len(json.dumps(_as_dict(error))) + 2  # ", " between items
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


def problem_document(problem: HttpProblem) -> dict:
    """The problem+json document of ``problem``, as a dict."""
    body = {"type": problem_type(problem.status),
            "title": PROBLEMS[problem.status].title if problem.status in PROBLEMS
            else "HTTP error", "status": problem.status, "detail": problem.detail}
    if problem.errors:
        body["errors"] = [_as_dict(e) for e in problem.errors]
    body.update(problem.extra)
    return body


def problem_response(status: int, detail: str, errors: list | None = None,
                     headers: dict | None = None, extra: dict | None = None) -> Response:
    """Build an ``application/problem+json`` response."""
    body = problem_document(HttpProblem(status, detail, errors, extra=extra))
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def wants_problem_json() -> bool:
    """True for API paths, whose clients expect machine-readable errors."""
    return request.path.startswith(API_PREFIXES)


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(HttpProblem)
    def handle_problem(exc: HttpProblem):
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

    @app.errorhandler(Overran)
    def handle_overran(exc: Overran):
        log.error("%s %s outlived the worker timeout; answered 504", request.method,
                  request.path)
        return handle_http(GatewayTimeout(
            "The request took longer than the service allows; send fewer records at a time."))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return handle_http(InternalServerError(
            "The server could not complete the request; it has been logged."))
