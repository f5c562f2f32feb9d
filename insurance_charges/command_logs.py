"""How the project's commands log on stderr: plain lines for a person at a terminal, one JSON
object per line (``time``, ``level``, ``logger``, ``message`` and any ``fields``, the service's
log shape) for a scheduler's task log, a pipe or a log collector."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def utc(seconds: float) -> str:
    """A Unix time as the logs write it: UTC, to the millisecond."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int(seconds % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object; subclasses add to ``entry``."""

    def entry(self, record: logging.LogRecord) -> dict:
        """The record's fields: when it happened, level, logger, message and any ``fields``."""
        body = {
            "time": utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update(getattr(record, "fields", {}))
        return body

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.entry(record), ensure_ascii=False, default=str)


def handler_for(stream: IO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr): plain on a terminal, JSON lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s") if stream.isatty() else JsonFormatter())
    return handler


def log_to(logger: logging.Logger, stream: IO | None = None) -> None:
    """Send ``logger``'s INFO and above to ``stream`` alone, once per run."""
    logger.handlers[:] = [handler_for(stream)]  # even when main() runs twice in one process
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextmanager
def step(logger: logging.Logger, number: int, total: int, what: str) -> Iterator[None]:
    """Log a long step's start and, when it ends, how long it took (``step``, ``seconds``)."""
    started = time.perf_counter()
    logger.info(
        "step %d/%d: %s...",
        number,
        total,
        what,
        extra={"fields": {"step": number, "of": total, "what": what}},
    )
    yield
    seconds = round(time.perf_counter() - started, 1)
    logger.info(
        "step %d/%d: %s done in %.1f s",
        number,
        total,
        what,
        seconds,
        extra={"fields": {"step": number, "of": total, "what": what, "seconds": seconds}},
    )
