"""What capture costs: the service with CAPTURE_URI at 100% against itself without capture.

`make bench` (bench/run.py) calls ``measure`` with the service as deployed (metrics on) and the
same service with ``CAPTURE_URI`` set to a fresh directory under the temp dir (capture at 100%,
the default). Alternating rounds of the one-record load (wrk, 8 connections) and of the
10,000-record batch (wrk, 1 connection); the share of throughput kept is taken per round, then
the median (target: at least 0.95 of each). After the rounds the capturing service is stopped
with SIGTERM and its files are counted, so the figure is for captures that were all written.

``python -m bench.capture_cost [--rounds N]`` runs only this part (two services of its own) and
writes bench/results/capture.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from .servers import BenchError, Service

TARGET = 0.95  # the goal: capture at 100% keeps 95% of one-record and batch throughput
BATCH_S = 6  # as run.py's batch round


def capturing_service(directory: Path, **env) -> Service:
    """The service as deployed, capturing every estimate to ``directory``."""
    return Service(CAPTURE_URI=str(directory), **env)


def captured_records(directory: Path) -> tuple[int, int]:
    """(lines, bytes) in every capture file under ``directory``."""
    lines = size = 0
    for path in directory.rglob("*.jsonl"):
        data = path.read_bytes()
        lines, size = lines + data.count(b"\n"), size + len(data)
    return lines, size


def _kept(on: list[dict], off: list[dict]) -> dict:
    ratios = [c["requests_per_s"] / p["requests_per_s"] for c, p in zip(on, off, strict=True)]
    kept = round(statistics.median(ratios), 3)
    # The same share in CPU: requests per CPU-second with capture over without, per round. A
    # busy machine moves it less than requests/s, and it counts the capture's work wherever it
    # is done (after the response, the shipping thread), which wall-clock throughput with an
    # idle core would not see.
    cpu = [p["cpu_ms_per_request"] / c["cpu_ms_per_request"] for c, p in zip(on, off, strict=True)]
    cpu_kept = round(statistics.median(cpu), 3)
    return {
        "with_capture_rps": round(statistics.median(r["requests_per_s"] for r in on), 1),
        "without_rps": round(statistics.median(r["requests_per_s"] for r in off), 1),
        "with_capture_cpu_ms": round(statistics.median(r["cpu_ms_per_request"] for r in on), 3),
        "without_cpu_ms": round(statistics.median(r["cpu_ms_per_request"] for r in off), 3),
        "throughput_kept": kept,
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "cpu_kept": cpu_kept,
        "cpu_ratio_min": round(min(cpu), 3),
        "cpu_ratio_max": round(max(cpu), 3),
        "target": TARGET,
        "met": kept >= TARGET,
        "cpu_met": cpu_kept >= TARGET,
    }


def measure(
    load,
    plain: Service,
    capturing: Service,
    directory: Path,
    path: str,
    one_body: bytes,
    batch_body: bytes,
    batch_rows: int,
    rounds: int,
    seconds: float,
    connections: int,
) -> dict:
    """Alternating rounds; ``load`` is bench.run.load. Stops ``capturing`` (SIGTERM)."""
    load(capturing, path, one_body, 2, connections)  # warm-up: first requests, page faults
    one_on, one_off, batch_on, batch_off = [], [], [], []
    answered = 0
    for _ in range(rounds):
        one_off.append(load(plain, path, one_body, seconds, connections))
        one_on.append(load(capturing, path, one_body, seconds, connections))
        batch_off.append(load(plain, path, batch_body, BATCH_S, 1))
        batch_on.append(load(capturing, path, batch_body, BATCH_S, 1))
        answered += one_on[-1]["requests"] + batch_rows * batch_on[-1]["requests"]
    if capturing.stop() != 0:
        raise BenchError("the capturing service did not exit 0 on SIGTERM")
    lines, size = captured_records(directory)
    if lines < answered:
        raise BenchError(f"{answered:,} records answered with capture on, {lines:,} captured")
    batch = _kept(batch_on, batch_off)
    for figure in ("with_capture_rps", "without_rps"):
        batch[figure.replace("rps", "rows_per_s")] = round(batch.pop(figure) * batch_rows)
    return {
        "one_record": _kept(one_on, one_off),
        "batch": batch,
        "captured_records": lines,
        "answered_records_counted_by_wrk": answered,
        "bytes_per_record": round(size / max(lines, 1), 1),
        "percent": 100,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    """Only this measurement, with services of its own: bench/results/capture.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.capture_cost", description=__doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        choices=range(1, 21),
        metavar="1..20",
        help="alternating rounds of each load (default: make bench's)",
    )
    args = parser.parse_args(argv)
    from devtools import host
    from devtools.gunicorn_server import free_port
    from devtools.records import valid_records
    from insurance_charges.core.schema import EXAMPLE_RECORD

    from . import report
    from .load import require_wrk
    from .run import BATCH_ROWS, CONNECTIONS, PREDICT_PATH, ROUND_S, ROUNDS, compact, load

    directory = Path(tempfile.mkdtemp(prefix="insurance-charges-capture-"))
    started: list[Service] = []
    try:
        require_wrk()
        plain = Service(METRICS_PORT=str(free_port()))
        started.append(plain)
        capturing = capturing_service(directory, METRICS_PORT=str(free_port()))
        started.append(capturing)
        plain.wait_healthy()
        capturing.wait_healthy()
        batch_body = compact(valid_records(BATCH_ROWS, seed=42, ranges=plain.training_ranges()))
        result = {
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": host.machine(),
            "capture_cost": measure(
                load,
                plain,
                capturing,
                directory,
                PREDICT_PATH,
                compact(EXAMPLE_RECORD),
                batch_body,
                BATCH_ROWS,
                args.rounds or ROUNDS,
                ROUND_S,
                CONNECTIONS,
            ),
        }
    except BenchError as exc:
        print(f"bench.capture_cost failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in started:
            server.kill()
        shutil.rmtree(directory, ignore_errors=True)
    out = report.ROOT / "bench" / "results" / "capture.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["capture_cost"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
