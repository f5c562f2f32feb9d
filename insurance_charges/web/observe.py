"""Metrics hooks: each request timed by its route template, each answer's estimates counted.

The adapters (API, form) hand the core's ``Estimates`` to ``record_estimates``; everything
else (what is counted, where values live, drift) is insurance_charges.monitoring's.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, request

from ..monitoring.master import EXTENSION
from ..monitoring.recorder import method_label
from ..monitoring.watch import watch_model
from .errors import PROBLEMS

ROUTE_KEY = "insurance_charges.route"  # the matched route template, noted in the WSGI environ


class Timing:
    """WSGI middleware: requests in flight, and each request's duration by route and status."""

    def __init__(self, wsgi_app, recorder):
        self.wsgi_app, self.recorder = wsgi_app, recorder

    def __call__(self, environ, start_response):
        method = method_label(environ.get("REQUEST_METHOD", ""))
        statuses = []

        def keep_status(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        active = self.recorder.active(method)
        active.inc()
        started = time.perf_counter()
        try:
            return self.wsgi_app(environ, keep_status)
        finally:
            seconds = time.perf_counter() - started
            active.dec()
            code = int(statuses[-1][:3]) if statuses else 500
            self.recorder.request(method, environ.get(ROUTE_KEY, ""), code, seconds)
            if 400 <= code < 500:
                self.recorder.problem(
                    PROBLEMS[code].slug if code in PROBLEMS else "http-error", code
                )


def init_app(app: Flask, load_seconds: float) -> None:
    """Watch the served model; time every request (unless MONITORING is off)."""
    if not app.config.get("MONITORING", True):
        return
    from . import served_model

    watch = watch_model(served_model(app), app.config.get("METRICS_DIR"), load_seconds)
    app.extensions[EXTENSION] = watch
    # Flask's documented way to wrap its WSGI app in middleware; mypy sees only a method.
    app.wsgi_app = Timing(app.wsgi_app, watch.recorder)  # type: ignore[method-assign]

    @app.after_request
    def note_route(response):
        # The route template ("/api/v1/predict"), never the raw path: one series per route.
        rule = request.url_rule
        request.environ[ROUTE_KEY] = rule.rule if rule is not None else ""
        return response


def watch_of(app: Flask | None = None):
    """The app's Watch, or None when monitoring is off."""
    return (app or current_app).extensions.get(EXTENSION)


def record_estimates(estimates) -> None:
    """Count one answer's records, estimates and warnings (the adapters call this)."""
    watch = watch_of()
    if watch is not None:
        rule = request.url_rule
        watch.recorder.estimates(estimates, rule.rule if rule is not None else "")
