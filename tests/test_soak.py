"""Soak: sustained load at ~70% of measured capacity, no errors, flat worker memory.

60 s in `make test`; `make soak` runs it for 30 minutes (SOAK_SECONDS=1800).
"""

import json
import os

import psutil
import pytest

from devtools.gunicorn_server import GunicornServer
from insurance_charges.core.schema import EXAMPLE_RECORD

from .conftest import ROOT
from .load import run_load

pytestmark = pytest.mark.slow
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
BODY = json.dumps(EXAMPLE_RECORD).encode()


def worker_rss(server: GunicornServer) -> dict[int, int]:
    """Resident memory of each worker, in bytes."""
    return {pid: psutil.Process(pid).memory_info().rss for pid in server.worker_pids()}


def test_sustained_load_at_70_percent_of_capacity_has_no_errors_and_flat_memory():
    # Worker recycling is off here: it would hide the very growth this test looks for.
    server = GunicornServer(via_make=True, workers=2, GUNICORN_CMD_ARGS="--max-requests 0")
    try:
        server.wait_healthy()
        capacity = run_load(server.port, "/api/v1/predict", BODY, seconds=5, concurrency=4)
        assert not capacity.errors
        before = worker_rss(server)
        target = 0.7 * capacity.rate
        soak = run_load(
            server.port, "/api/v1/predict", BODY, seconds=SOAK_SECONDS, concurrency=8, rate=target
        )
        after = worker_rss(server)
    finally:
        server.kill()
    growth = {pid: after[pid] / before[pid] - 1 for pid in before}
    report = {
        "seconds": SOAK_SECONDS,
        "capacity_rps": round(capacity.rate, 1),
        "target_rps": round(target, 1),
        "achieved_rps": round(soak.rate, 1),
        "requests": soak.ok,
        "errors": len(soak.errors),
        "p99_ms": round(sorted(soak.latencies)[int(0.99 * len(soak.latencies))] * 1000, 2),
        "worker_rss_mb_before": [round(v / 2**20, 1) for v in before.values()],
        "worker_rss_mb_after": [round(v / 2**20, 1) for v in after.values()],
        "worker_growth_percent": [round(g * 100, 2) for g in growth.values()],
    }
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "soak.json").write_text(json.dumps(report, indent=2))
    assert soak.errors == [], report
    assert set(after) == set(before), "a worker died or was replaced during the soak"
    # A sanity check that load was really applied, not a speed target: capacity drifts when
    # the machine is shared, so only a gross shortfall fails.
    assert soak.rate >= 0.5 * target, report
    assert max(growth.values()) < 0.10, report
