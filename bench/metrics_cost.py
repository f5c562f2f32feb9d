"""What metrics cost one-record requests: the service against itself with monitoring left out.

`make bench` (bench/run.py) calls ``measure``: alternating rounds of the same wrk load against
the service as deployed with METRICS_PORT set and scraped every second (far more often than
Prometheus' default minute), and against ``bench/unmetered_app.py``, the same app built with
``MONITORING`` off. The share of throughput kept is taken per round, then the median.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request

from .servers import BenchError

SCRAPE_S = 1.0  # a scrape a second: Prometheus scrapes every 60 s by default, often every 15 s
TARGET = 0.95  # the goal: metrics cost at most 5% of one-record throughput


class Scraper:
    """Scrapes a metrics URL every SCRAPE_S in a thread; keeps each scrape's time and size."""

    def __init__(self, url: str):
        self.url, self.times_ms, self.sizes = url, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=10) as response:
                self.sizes.append(len(response.read()))
            self.times_ms.append(1000 * (time.perf_counter() - started))
            self._stop.wait(SCRAPE_S)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if not self.times_ms:
            raise BenchError(f"no scrape of {self.url} completed")


def measure(
    load,
    metered,
    unmetered,
    path: str,
    body: bytes,
    rounds: int,
    seconds: float,
    connections: int,
    metrics_port: int,
) -> dict:
    """Alternating rounds; ``load`` is bench.run.load. Returns medians, ratio and target."""
    load(unmetered, path, body, 2, connections)  # warm-up
    with_metrics, without = [], []
    with Scraper(f"http://127.0.0.1:{metrics_port}/metrics") as scraper:
        for _ in range(rounds):
            without.append(load(unmetered, path, body, seconds, connections))
            with_metrics.append(load(metered, path, body, seconds, connections))
    ratios = [
        m["requests_per_s"] / u["requests_per_s"]
        for m, u in zip(with_metrics, without, strict=True)
    ]
    kept = round(statistics.median(ratios), 3)
    return {
        "with_metrics_rps": round(statistics.median(r["requests_per_s"] for r in with_metrics)),
        "without_rps": round(statistics.median(r["requests_per_s"] for r in without)),
        "with_metrics_cpu_ms": round(
            statistics.median(r["cpu_ms_per_request"] for r in with_metrics), 3
        ),
        "without_cpu_ms": round(statistics.median(r["cpu_ms_per_request"] for r in without), 3),
        "throughput_kept": kept,
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "scrape_ms_median": round(statistics.median(scraper.times_ms), 2),
        "scrape_ms_max": round(max(scraper.times_ms), 2),
        "scrape_bytes": scraper.sizes[-1],
        "scrapes": len(scraper.times_ms),
        "target": TARGET,
        "met": kept >= TARGET,
    }
