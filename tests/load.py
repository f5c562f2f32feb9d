"""A small load generator for fault and soak tests: threads, bounded in time, loopback only."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What a load run saw: successes, failures by kind, and latencies in seconds."""

    ok: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0


def one_request(port: int, path: str, body: bytes, timeout: float = 10) -> int:
    """POST a JSON body to 127.0.0.1:port and return the status (the body is read fully)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def run_load(
    port: int,
    path: str,
    body: bytes,
    seconds: float,
    concurrency: int = 4,
    rate: float | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Send requests for ``seconds`` from ``concurrency`` threads, paced to ``rate`` if given."""
    outcome, lock = Outcome(), threading.Lock()
    start = time.monotonic()
    deadline, issued = start + seconds, [0]
    stop = stop or threading.Event()

    def worker():
        while not stop.is_set():
            with lock:
                slot = start + issued[0] / rate if rate else time.monotonic()
                issued[0] += 1
            if slot >= deadline:
                return
            time.sleep(max(0.0, slot - time.monotonic()))
            began = time.monotonic()
            try:
                status = one_request(port, path, body)
                failure = None if status == 200 else f"status {status}"
            except (OSError, http.client.HTTPException) as exc:
                failure = type(exc).__name__
            with lock:
                if failure:
                    outcome.errors.append(failure)
                else:
                    outcome.ok += 1
                    outcome.latencies.append(time.monotonic() - began)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    outcome.seconds = time.monotonic() - start
    return outcome
