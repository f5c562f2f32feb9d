"""Structured logging: one JSON object per line, each request tagged with its request id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from urllib.parse import unquote_plus

from flask import Flask, g, has_request_context, request

from .. import command_logs

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only if it is short and inert, so it cannot forge log lines.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class RequestJsonFormatter(command_logs.JsonFormatter):
    """Format application log records as JSON lines, with the request's id."""

    def entry(self, record: logging.LogRecord) -> dict:
        """The command logs' fields, the request id, and the exception kept in the log
        (never in a response)."""
        entry = super().entry(record)
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return entry


def configure(level: str) -> None:
    """Send the package's log records to stdout as JSON lines, once per process."""
    logger = logging.getLogger("insurance_charges")
    logger.setLevel(level.upper())
    if not any(isinstance(h.formatter, RequestJsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(RequestJsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False


def init_app(app: Flask) -> None:
    """Give every request an id: the caller's ``X-Request-ID`` if sane, else a new one."""
    configure(app.config["LOG_LEVEL"])

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
        return response


# Query parameters whose values are credentials: a client that puts a key in the URL must not
# put it in the logs too (names compared case-insensitively, "-" and "_" alike).
_CREDENTIAL_PARAMETER = re.compile(
    r"(?i)^[\w.-]*(key|token|secret|password|passwd|pwd|auth|signature|credential|session)"
    r"[\w.-]*$"
)
REDACTED = "[redacted]"


def redact_query(query: str | None) -> str | None:
    """The query string with the value of every credential-like parameter replaced."""
    if not query:
        return None
    parts = []
    for pair in query.split("&"):
        name, sep, _ = pair.partition("=")
        parts.append(
            f"{name}={REDACTED}"
            if sep and _CREDENTIAL_PARAMETER.match(unquote_plus(name))
            else pair
        )
    return "&".join(parts)


def access_entry(atoms: dict) -> dict:
    """Build the access-log object from gunicorn's log atoms."""
    return {
        "time": command_logs.utc(time.time()),
        "type": "access",
        "request_id": atoms.get("{x-request-id}o"),
        "remote_addr": atoms.get("h"),
        # Behind the image's nginx (a unix socket) the client is in X-Forwarded-For.
        "forwarded_for": atoms.get("{x-forwarded-for}i") or None,
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "query": redact_query(atoms.get("q")),
        "status": int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s"),
        "bytes": atoms.get("B"),
        "duration_ms": round(atoms.get("D", 0) / 1000, 3),
        "user_agent": atoms.get("a"),
        "pid": atoms.get("p", "").strip("<>") or None,
    }


try:  # gunicorn is absent where only the package is imported (e.g. a notebook)
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = object


class GunicornJsonLogger(_GunicornLogger):
    """Gunicorn logger whose access lines are JSON objects on stdout."""

    def access(self, resp, req, environ, request_time):
        """Write one JSON access line per request."""
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(
                json.dumps(access_entry(self.atoms(resp, req, environ, request_time)))
            )
        except Exception:  # noqa: BLE001 - logging must never break a response
            self.exception("could not write the access log line")
