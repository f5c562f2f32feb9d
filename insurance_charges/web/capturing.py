"""Capture hooks: each answer's estimates handed to the capture writer, with their ids.

The adapters (API, form, EB worker) call ``capture_estimates`` beside ``record_estimates``;
what is written, where and when is insurance_charges.capture's. Off unless CAPTURE_URI is set.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from werkzeug.wsgi import ClosingIterator

from ..capture.destinations import DestinationError
from ..capture.writer import CaptureWriter
from ..settings import SettingsError
from .observe import watch_of

_WRITER = "insurance_charges.capture"


def init_app(app: Flask) -> None:
    """Capture to CAPTURE (a checked destination), if set and CAPTURE_PERCENT is above 0."""
    destination = app.config.get("CAPTURE")
    percent = app.config.get("CAPTURE_PERCENT", 100.0)
    if destination is None or percent <= 0:
        return
    try:
        destination.prepare()
    except DestinationError as exc:
        raise SettingsError(f"CAPTURE_URI={str(destination)!r}: {exc}") from None
    watch = watch_of(app)
    writer = CaptureWriter(destination, percent, watch.recorder if watch is not None else None)
    app.extensions[_WRITER] = writer
    # Flask's documented way to wrap its WSGI app in middleware; mypy sees only a method.
    app.wsgi_app = DrainAfterResponse(app.wsgi_app, writer)  # type: ignore[method-assign]


class DrainAfterResponse:
    """WSGI middleware: once the server has sent a response, the queued captures become lines.

    The server closes the response after its last byte is sent, before this worker takes its
    next request: formatting there delays no answer (capture/writer.py says why not a thread).
    """

    def __init__(self, wsgi_app, writer: CaptureWriter):
        self.wsgi_app, self.writer = wsgi_app, writer

    def __call__(self, environ, start_response):
        return ClosingIterator(self.wsgi_app(environ, start_response), self.writer.drain)


def capture_estimates(estimates) -> None:
    """Queue this answer's estimates, under this request's id, for capture (if on)."""
    writer = current_app.extensions.get(_WRITER)
    if writer is not None:
        rule = request.url_rule
        writer.add(g.request_id, rule.rule if rule is not None else request.path, estimates)


def close_capture(app: Flask) -> None:
    """Ship what this process captured (gunicorn.conf.py's worker_exit; atexit elsewhere)."""
    writer = getattr(app, "extensions", {}).get(_WRITER)
    if writer is not None:
        writer.close()
