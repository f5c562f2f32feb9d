"""`make bench`: the deployed service against an HTTP floor, on this machine, in one run.

Usage: ``python -m bench.run``. Writes bench/results/latest.json and latest.png, from which the
docs site renders its table (docs/performance.md#the-benchmark). Exits 1 with one line if
anything fails.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime

from devtools import host
from devtools.gunicorn_server import free_port
from devtools.records import valid_records
from insurance_charges.core.schema import EXAMPLE_RECORD

from . import FLOOR_PATH, metrics_cost, report, summary, tables
from .load import require_wrk, wrk
from .servers import BenchError, Service

BUDGET_S = 300  # the whole run is stopped past this (a run takes about 2 minutes)
ROUNDS = 3  # alternating floor/predict rounds: medians, and the spread as noise
ROUND_S = 5
CONNECTIONS = 8
BATCH_ROWS = 10_000
BATCH_ROUND_S = 6  # about 150 batches a round at 40 ms each
COLD_STARTS = 3
PREDICT_PATH = "/api/v1/predict"


def load(service: Service, path: str, body: bytes, seconds: float, connections: int) -> dict:
    """wrk against one server, with the server's CPU time per request (robust to noise)."""
    before = service.cpu_seconds()
    result = wrk(service.url(path), body, seconds, connections, threads=2 if connections > 1 else 1)
    used = service.cpu_seconds() - before
    return {**result, "cpu_ms_per_request": round(1000 * used / result["requests"], 3)}


def check(service: Service, floor: Service, body: bytes) -> None:
    """Both servers answer the benchmark's requests correctly before any load."""
    status, _, answer = service.request(PREDICT_PATH, body)
    if status != 200 or "prediction" not in json.loads(answer):
        raise BenchError(f"POST {PREDICT_PATH} answered {status}: {answer[:200]!r}")
    status, _, answer = floor.request(FLOOR_PATH, body)
    if status != 200:
        raise BenchError(f"POST {FLOOR_PATH} answered {status}: {answer[:200]!r}")


def compact(value) -> bytes:
    """JSON as a client would send it."""
    return json.dumps(value, separators=(",", ":")).encode()


def measure() -> dict:
    """Run every measurement; servers are always cleaned up."""
    require_wrk()
    one_body = compact(EXAMPLE_RECORD)
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": host.machine(),
        "setup": {
            "config": "gunicorn.conf.py",
            "WEB_CONCURRENCY": 2,
            "load": "wrk",
            "connections": CONNECTIONS,
            "rounds": ROUNDS,
            "round_s": ROUND_S,
            "GUNICORN_CMD_ARGS": os.environ.get("GUNICORN_CMD_ARGS"),
        },
    }
    started: list[Service] = []
    try:
        metrics_port = free_port()  # as deployed with Prometheus: metrics on their own port
        service = Service(METRICS_PORT=str(metrics_port))
        started.append(service)
        cold = [service.wait_healthy()]
        floor = Service("bench.floor_app:application")
        started.append(floor)
        floor.wait_healthy()
        check(service, floor, one_body)
        # A realistic batch: values within the ranges seen in training, so no warnings.
        ranges = service.training_ranges()
        batch_body = compact(valid_records(BATCH_ROWS, seed=42, ranges=ranges))
        load(service, PREDICT_PATH, one_body, 2, CONNECTIONS)  # warm-up: first requests,
        load(floor, FLOOR_PATH, one_body, 2, CONNECTIONS)  # page faults
        floors, ones = [], []
        for _ in range(ROUNDS):
            floors.append(load(floor, FLOOR_PATH, one_body, ROUND_S, CONNECTIONS))
            ones.append(load(service, PREDICT_PATH, one_body, ROUND_S, CONNECTIONS))
        # Rounds, as for one record: one 6 s run read 231,000 and 253,000 rows/s on two quiet
        # days while CPU per batch, measured A/B against the older code, had not changed.
        batches = [
            load(service, PREDICT_PATH, batch_body, BATCH_ROUND_S, connections=1)
            for _ in range(ROUNDS)
        ]
        result["memory"] = service.memory()
        # As the image serves it: the same gunicorn behind its nginx (insurance_charges/container).
        fronted = Service(behind_nginx=True)
        started.append(fronted)
        fronted.wait_healthy()
        load(fronted, PREDICT_PATH, one_body, 2, CONNECTIONS)
        nginx_rounds, direct_rounds = [], []
        for _ in range(ROUNDS):
            nginx_rounds.append(load(fronted, PREDICT_PATH, one_body, ROUND_S, CONNECTIONS))
            direct_rounds.append(load(service, PREDICT_PATH, one_body, ROUND_S, CONNECTIONS))
        fronted.stop()
        floor.stop()
        # What metrics cost: the same app without them, rounds alternating, scraped each second.
        unmetered = Service("bench.unmetered_app:application")
        started.append(unmetered)
        unmetered.wait_healthy()
        result["metrics_cost"] = metrics_cost.measure(
            load,
            service,
            unmetered,
            PREDICT_PATH,
            one_body,
            ROUNDS,
            ROUND_S,
            CONNECTIONS,
            metrics_port,
        )
        unmetered.stop()
        # Before the fast path, for scale: the same service through pipeline.predict.
        before = Service("bench.pipeline_app:application")
        started.append(before)
        before.wait_healthy()
        load(before, PREDICT_PATH, one_body, 1, CONNECTIONS)
        result["pipeline_predict_path"] = load(before, PREDICT_PATH, one_body, ROUND_S, CONNECTIONS)
        before.stop()
        if service.stop() != 0:
            raise BenchError("the service did not exit 0 on SIGTERM")
        for _ in range(COLD_STARTS - 1):
            again = Service()
            started.append(again)
            cold.append(again.wait_healthy())
            again.stop()
    finally:
        for server in started:
            server.kill()
    summary.add(
        result,
        ones=ones,
        floors=floors,
        batches=batches,
        batch_rows=BATCH_ROWS,
        cold=cold,
        behind_nginx=(nginx_rounds, direct_rounds),
    )
    return result


def _out_of_time(signum, frame):
    raise BenchError(f"the benchmark ran over its {BUDGET_S} s budget")


def main() -> int:
    """Measure, write the results, print the table."""
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(BUDGET_S)
    began = time.perf_counter()
    try:
        result = measure()
    except BenchError as exc:
        print(f"make bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    result["bench_seconds"] = round(time.perf_counter() - began, 1)
    written = report.write(result)
    print(tables.bench(result))
    met = sum(t["met"] for t in result["targets"])
    print(
        f"\n{met}/{len(result['targets'])} targets met; wrote "
        + ", ".join(str(p.relative_to(report.ROOT)) for p in written)
        + f" in {result['bench_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
