"""Metrics under worker recycling: file count, disk use and scrape time stay bounded.

Usage: ``python -m bench.metrics_soak [--seconds 120] [--max-requests 300]``. Starts the
service as deployed (gunicorn.conf.py, 2 workers) with METRICS_PORT set and each worker
recycled after about ``--max-requests`` requests, drives it with wrk for ``--seconds``, and
every 5 s counts the files in the metrics directory and times a scrape. At the end it builds
what the directory would hold had dead workers' files been left in place (as prometheus_client
alone leaves them) and times reading that too. Prints a table; writes
bench/results/metrics-soak.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from devtools import host
from devtools.gunicorn_server import free_port
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.monitoring import files

from . import tables
from .load import wrk
from .run import compact
from .servers import BenchError, Service

SAMPLE_S = 5
RESULTS = Path(__file__).resolve().parent / "results" / "metrics-soak.json"


def scrape(port: int) -> tuple[float, float]:
    """One scrape: (milliseconds, insurance_charges_estimates_total)."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    took = 1000 * (time.perf_counter() - started)
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("insurance_charges_estimates_total{")
    )
    return took, total


def sample(directory: Path, port: int, server: Service) -> dict:
    """The directory's files and a scrape, now."""
    with files.locked(directory):  # no worker's files are folded away while we look
        paths = files.metric_files(directory)
        disk = sum(p.stat().st_blocks * 512 for p in paths)
    took, total = scrape(port)
    return {
        "t": round(time.monotonic(), 1),
        "files": len(paths),
        "disk_kb": disk // 1024,
        "scrape_ms": round(took, 2),
        "estimates_total": total,
        "workers_booted": server.output().count("Booting worker"),
    }


def read_ms(directory: Path) -> float:
    """Median time to read and merge every metric file in ``directory`` (5 reads)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        files.read_merged(directory)
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 1)


def unarchived_read_ms(directory: Path, dead_workers: int) -> tuple[int, float]:
    """Files, and the time to read them, had every dead worker left its files in place."""
    live = [
        p
        for p in files.metric_files(directory)
        if files.owner(p) not in ("archive",) and not p.name.startswith("drift_")
    ]
    worker = {p.name.split("_")[-1] for p in live if p.name.startswith("gauge_livesum_")}
    pid = sorted(worker)[0].removesuffix(".db")
    templates = [p for p in live if p.name.endswith(f"_{pid}.db")]
    copy = Path(tempfile.mkdtemp(prefix="unarchived-"))
    try:
        for n in range(dead_workers):
            for path in templates:
                shutil.copy(path, copy / path.name.replace(f"_{pid}.db", f"_{10_000_000 + n}.db"))
        return len(list(copy.iterdir())), read_ms(copy)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def soak(seconds: float, max_requests: int) -> dict:
    """Run the soak; always stops the server."""
    directory = Path(tempfile.mkdtemp(prefix="metrics-soak-"))
    port = free_port()
    server = Service(
        METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        GUNICORN_CMD_ARGS=f"--max-requests {max_requests} "
        f"--max-requests-jitter {max_requests // 10}",
    )
    loads: list = []
    try:
        server.wait_healthy()
        body = compact(EXAMPLE_RECORD)
        driver = threading.Thread(
            target=lambda: loads.append(wrk(server.url("/api/v1/predict"), body, seconds, 8)),
            daemon=True,
        )
        driver.start()
        samples = [sample(directory, port, server)]
        while driver.is_alive():
            driver.join(SAMPLE_S)
            samples.append(sample(directory, port, server))
        if not loads:
            raise BenchError("wrk did not report")
        time.sleep(1)  # the last recycled worker's files folded
        samples.append(sample(directory, port, server))
        recycled = samples[-1]["workers_booted"] - 2
        totals = [s["estimates_total"] for s in samples]
        archived_ms = read_ms(directory)  # the load is over: both read on a quiet service
        unarchived_files, unarchived_ms = unarchived_read_ms(directory, recycled)
        if server.stop() != 0:
            raise BenchError("the service did not exit 0 on SIGTERM")
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
    scrape_ms = [s["scrape_ms"] for s in samples]
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": host.machine(),
        "seconds": seconds,
        "max_requests": max_requests,
        "requests": loads[0]["requests"],
        "requests_per_s": loads[0]["requests_per_s"],
        "workers_recycled": recycled,
        "files": {
            "min": min(s["files"] for s in samples),
            "max": max(s["files"] for s in samples),
            "last": samples[-1]["files"],
        },
        "disk_kb_max": max(s["disk_kb"] for s in samples),
        "scrape_ms": {
            "first": scrape_ms[0],
            "median": statistics.median(scrape_ms),
            "max": max(scrape_ms),
            "last": scrape_ms[-1],
        },
        "estimates_total": {"last": totals[-1], "never_backwards": totals == sorted(totals)},
        "with_archive": {"files": samples[-1]["files"], "read_ms": archived_ms},
        "without_archive": {"files": unarchived_files, "read_ms": unarchived_ms},
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    """Soak, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--max-requests", type=int, default=300)
    args = parser.parse_args(argv)
    try:
        result = soak(args.seconds, args.max_requests)
    except BenchError as exc:
        print(f"metrics soak failed: {exc}", file=sys.stderr)
        return 1
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(tables.metrics_soak(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
