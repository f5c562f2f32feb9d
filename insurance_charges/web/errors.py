"""Errors: RFC 9457 problem+json under the API, a plain HTML page elsewhere, never a trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, json, render_template, request
from werkzeug.exceptions import GatewayTimeout, HTTPException, InternalServerError

# The API's problem types live in the core: the Kafka consumer publishes the same documents.
from ..core.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEMS,
    listed_within,
    problem_body,
    problem_type,
    totals,
)

__all__ = [
    "PROBLEMS",
    "PROBLEM_MEDIA_TYPE",
    "HttpProblem",
    "Overran",
    "init_app",
    "listed_within",
    "problem_document",
    "problem_response",
    "problem_type",
    "totals",
    "wants_problem_json",
]

log = logging.getLogger(__name__)
# Machine-facing too: SageMaker's paths (web/sagemaker.py), the EB worker's (web/worker.py).
API_PREFIXES = (
    "/api/",
    "/predict_api",
    "/openapi.json",
    "/invocations",
    "/ping",
    "/execution-parameters",
    "/worker/",
)


class Overran(Exception):
    """The request outlived gunicorn's worker timeout; raised into it by gunicorn.conf.py's
    ``worker_abort``, so that it ends in the app's own 504 instead of gunicorn's HTML 500."""


class HttpProblem(Exception):
    """An API error to answer as problem+json; ``extra`` adds extension members."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.extra = extra or {}


def problem_document(problem: HttpProblem) -> dict:
    """The problem+json document of ``problem``, as a dict."""
    return problem_body(problem.status, problem.detail, problem.errors, problem.extra)


def problem_response(
    status: int,
    detail: str,
    errors: list | None = None,
    headers: dict | None = None,
    extra: dict | None = None,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body = problem_body(status, detail, errors, extra)
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
        page = render_template("error.html", status=status, title=exc.name, detail=exc.description)
        return page, status, headers

    @app.errorhandler(Overran)
    def handle_overran(exc: Overran):
        log.error("%s %s outlived the worker timeout; answered 504", request.method, request.path)
        return handle_http(
            GatewayTimeout(
                "The request took longer than the service allows; send fewer records at a time."
            )
        )

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return handle_http(
            InternalServerError("The server could not complete the request; it has been logged.")
        )
