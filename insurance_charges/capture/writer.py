"""The capture writer: a buffer per process, one file per hour shipped every minute and at exit.

A request only appends its answer to a queue (0.7 us here, timed with timeit). The answers
are turned into lines (lines.py) by ``drain``, which the web layer calls once each response
has been sent (so no request waits for it, and while one worker formats, the other takes the
next request), and which the shipping thread also calls before it ships. The thread never
formats while a request is being read: a thread holding the GIL makes each of the request's
socket reads wait up to the interpreter's switch interval (5 ms) to get it back, and a
10,000-record body is read in many. The thread ships what is held every
``SHIP_SECONDS``, or sooner once ``FILE_BYTES`` are held: one file per hour partition,
``YYYY/MM/DD/HH/<host>-<pid>-<token>-<sequence>.jsonl``, so no two processes, machines or
restarts write the same name. A file's answers are handed to the destination as they were
made, never joined into one copy first (a directory writes them one after the other).

What can be lost, and how it is told (docs/outcomes.md#capture):

- **Graceful stop** (SIGTERM, a worker recycled): ``close`` formats and ships everything before
  the process exits (gunicorn.conf.py's ``worker_exit``; ``atexit`` elsewhere). Nothing is lost
  unless the destination fails then, and what it refuses is counted as dropped.
- **SIGKILL or a crash:** what was not yet shipped, at most the last ``SHIP_SECONDS``.
- **A failing destination:** requests never wait for it. Each failure is counted
  (``counts.failed``), logged at most once a minute, and the file is retried at the next
  interval. Unshipped files are kept up to ``BACKLOG_BYTES``; past it the oldest are dropped
  and their records counted (``counts.dropped``) and logged, never silently.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Protocol

from ..core.captures import is_sampled
from .destinations import Destination, DestinationError
from .lines import batch_lines, one_line

log = logging.getLogger(__name__)

SHIP_SECONDS = 60.0  # the interval: at most a minute of captures lost to a SIGKILL
# A file is shipped early once this big: a minute of full batches (make bench answers 250,000
# records a second, 306 bytes of capture each) would otherwise hold gigabytes; 16 MiB is one
# PutObject in well under a second and about 55,000 records.
FILE_BYTES = 16 * 2**20
# Unshipped files kept for retry while the destination fails: 4 full files (64 MiB of a
# worker's memory, about 220,000 records); beyond it the oldest are dropped, and counted.
BACKLOG_BYTES = 4 * FILE_BYTES
# Queued answers not yet turned into lines; past this, lines are not being made (the web
# layer makes them after each response) and new answers are dropped, and counted.
QUEUE_ANSWERS = 50_000
# The thread checks this often whether a file is due (a minute passed, or FILE_BYTES held).
WAKE_SECONDS = 0.5
# Failures are logged at most this often (a dead destination would log every interval).
LOG_SECONDS = 60.0
# At exit, shipping stops after this long (gunicorn's graceful_timeout is 30 s, after which
# the worker is killed); what is left is counted as dropped.
CLOSE_SECONDS = 20.0
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


class CaptureCounts(Protocol):
    """Where the writer counts what happened to records (the service's Prometheus metrics)."""

    def capture_shipped(self, records: int) -> None: ...
    def capture_failed(self) -> None: ...
    def capture_dropped(self, records: int) -> None: ...


class Uncounted:
    """Counts nothing (monitoring is off)."""

    def capture_shipped(self, records: int) -> None:
        """Nothing."""

    def capture_failed(self) -> None:
        """Nothing."""

    def capture_dropped(self, records: int) -> None:
        """Nothing."""


class CaptureTally:
    """Counts what happened to records, for a command that reports them itself (the Kafka
    consumer's closing line, the scorer's summary) rather than through Prometheus."""

    def __init__(self) -> None:
        self.shipped = self.failed = self.dropped = 0

    def capture_shipped(self, records: int) -> None:
        """Records shipped in files."""
        self.shipped += records

    def capture_failed(self) -> None:
        """One failed attempt to ship a file."""
        self.failed += 1

    def capture_dropped(self, records: int) -> None:
        """Records given up on (and logged)."""
        self.dropped += records


class CaptureWriter:
    """Captures for one app; each process that serves gets its own queue, thread and files.

    With ``background`` off (a command's single loop: the Kafka consumer, the scorer) there is
    no thread: the caller hands over finished lines with ``hold`` and ships with
    ``ship_if_due``, so that it knows which of its work is in files before it acts on it (the
    consumer commits offsets only after).
    """

    def __init__(
        self,
        destination: Destination,
        percent: float,
        counts: CaptureCounts | None = None,
        ship_seconds: float = SHIP_SECONDS,
        background: bool = True,
    ):
        self.destination, self.percent = destination, percent
        self.counts = counts or Uncounted()
        self.ship_seconds = ship_seconds
        self.background = background
        self._pid: int | None = None  # the process whose queue and thread these are

    def add(self, request_id: str, path: str, estimates) -> None:
        """Queue one answer's estimates (the request's only cost)."""
        if self._pid != os.getpid():
            self._start()
        if len(self._queue) >= QUEUE_ANSWERS:
            self.counts.capture_dropped(len(estimates.amounts))
            self._warn("capture queue full; answers dropped (counted) until it drains")
            return
        self._queue.append((time.time(), request_id, path, estimates))

    def _start(self) -> None:
        """In a new process (a gunicorn worker after its fork): a fresh queue, files, thread."""
        self._pid = os.getpid()
        self._name = (
            f"{_UNSAFE.sub('-', socket.gethostname())[:60] or 'host'}-{self._pid}-"
            f"{secrets.token_hex(4)}"
        )
        self._sequence = 0
        self._queue: deque = deque()
        # hour partition -> lines (bytes or a view of Arrow's buffer), not yet in a file
        self._held: dict[str, list[bytes | memoryview]] = {}
        self._held_records: dict[str, int] = {}
        self._held_bytes = 0
        # files to ship, oldest first: key, parts, bytes, records
        self._backlog: deque[tuple[str, list[bytes | memoryview], int, int]] = deque()
        self._backlog_bytes = 0
        self._holding = threading.Lock()  # held lines: taken briefly, never during shipping
        self._shipping = threading.Lock()  # the thread and close() never ship at once
        self._stop = threading.Event()
        self._warned_at = -LOG_SECONDS
        self._closed = False
        self._due = time.monotonic() + self.ship_seconds  # without the thread: ship_if_due's
        if self.background:
            self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self._thread.start()
        atexit.register(self.close)  # where no gunicorn hook calls close (flask run, tests)

    def _run(self) -> None:
        due = time.monotonic() + self.ship_seconds
        while not self._stop.wait(WAKE_SECONDS):
            if time.monotonic() < due and self._held_bytes < FILE_BYTES:
                continue
            try:
                with self._shipping:
                    self.drain()  # answers no response has drained (none, behind the app)
                    self._ship()
            except Exception:  # the thread must outlive anything; the next round retries
                log.exception("capture: unexpected failure; retrying next interval")
            due = time.monotonic() + self.ship_seconds

    def drain(self) -> None:
        """Turn every queued answer into lines, held by hour (after a response is sent)."""
        if self._pid != os.getpid():
            return  # nothing queued in this process
        while self._queue:
            try:
                moment, request_id, path, estimates = self._queue.popleft()
            except IndexError:  # the other thread took the last one
                return
            when = datetime.fromtimestamp(moment, UTC)
            data, records = self._lines(when, request_id, path, estimates)
            self._hold(when, data, records)

    def hold(self, moment: datetime, data: bytes, records: int) -> None:
        """Hold ``records`` capture lines already made (``data``), in ``moment``'s hour file."""
        if self._pid != os.getpid():
            self._start()
        self._hold(moment, data, records)

    def _hold(self, moment: datetime, data: bytes | memoryview, records: int) -> None:
        if records:
            hour = moment.strftime("%Y/%m/%d/%H")
            with self._holding:
                self._held.setdefault(hour, []).append(data)
                self._held_records[hour] = self._held_records.get(hour, 0) + records
                self._held_bytes += len(data)

    def ship_if_due(self) -> bool:
        """Without the thread: ship when a file is due (``ship_seconds`` passed since the last
        time, or ``FILE_BYTES`` held); True when it tried (what failed waits in the backlog,
        retried next time, counted)."""
        if self._pid != os.getpid() or self._closed:
            return False
        if time.monotonic() < self._due and self._held_bytes < FILE_BYTES:
            return False
        with self._shipping:
            self._ship()
        self._due = time.monotonic() + self.ship_seconds
        return True

    def _lines(self, moment: datetime, request_id: str, path: str, estimates):
        everyone = self.percent >= 100
        if not estimates.batch:
            if not (everyone or is_sampled(request_id, self.percent)):
                return b"", 0
            return one_line(
                request_id,
                moment,
                estimates.model_version,
                path,
                estimates.records[0],
                float(estimates.amounts[0]),
                None if estimates.lower is None else float(estimates.lower[0]),
                None if estimates.upper is None else float(estimates.upper[0]),
            ), 1
        count = len(estimates.amounts)
        positions = (
            None
            if everyone
            else [i for i in range(count) if is_sampled(f"{request_id}-{i}", self.percent)]
        )
        return batch_lines(
            request_id,
            moment,
            estimates.model_version,
            path,
            estimates.records,
            estimates.amounts,
            estimates.lower,
            estimates.upper,
            positions,
        ), count if positions is None else len(positions)

    def _ship(self, deadline: float | None = None) -> None:
        """Close the held lines into files, then ship the backlog, oldest first."""
        with self._holding:
            held, counted = self._held, self._held_records
            self._held, self._held_records, self._held_bytes = {}, {}, 0
        for hour in sorted(held):
            self._sequence += 1
            parts = held[hour]  # written one after the other: no copy of the whole file
            size = sum(map(len, parts))
            self._backlog.append(
                (f"{hour}/{self._name}-{self._sequence:06d}.jsonl", parts, size, counted[hour])
            )
            self._backlog_bytes += size
        while self._backlog and (deadline is None or time.monotonic() < deadline):
            key, parts, size, records = self._backlog[0]
            try:
                self.destination.put(key, parts)
            except DestinationError as exc:
                self.counts.capture_failed()
                self._warn(
                    f"capture: {len(self._backlog)} file(s) not shipped to "
                    f"{self.destination} ({exc}); retrying every "
                    f"{self.ship_seconds:g} s"
                )
                break
            self._backlog.popleft()
            self._backlog_bytes -= size
            self.counts.capture_shipped(records)
        while self._backlog_bytes > BACKLOG_BYTES:
            self._drop_oldest("the backlog of unshipped files is full")

    def _drop_oldest(self, why: str) -> None:
        key, _, size, records = self._backlog.popleft()
        self._backlog_bytes -= size
        self.counts.capture_dropped(records)
        log.error(
            "capture: %s; dropped %s (%d records, counted in "
            'insurance_charges_capture_records_total{outcome="dropped"})',
            why,
            key,
            records,
        )

    def _warn(self, message: str) -> None:
        if time.monotonic() - self._warned_at >= LOG_SECONDS:
            self._warned_at = time.monotonic()
            log.error(message)

    def close(self) -> None:
        """Ship everything this process holds, within CLOSE_SECONDS (at exit; idempotent)."""
        if self._pid != os.getpid() or self._closed:
            return  # nothing captured in this process, or already closed
        self._closed = True
        self._stop.set()
        deadline = time.monotonic() + CLOSE_SECONDS
        if not self._shipping.acquire(timeout=CLOSE_SECONDS / 2):  # the thread may be shipping
            log.error("capture: still shipping at exit; what it holds is lost")
            return
        try:
            self.drain()
            self._ship(deadline)
            self._warned_at = -LOG_SECONDS  # the last word is always logged
            while self._backlog:
                self._drop_oldest(f"{self.destination} failed at exit")
        finally:
            self._shipping.release()
