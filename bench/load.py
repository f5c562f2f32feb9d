"""Drive a loopback URL with wrk (bounded in time) and read its results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .servers import BenchError

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"


def require_wrk() -> str:
    """The wrk executable, or a clear error saying how to get it."""
    found = shutil.which("wrk")
    if not found:
        raise BenchError(
            "wrk is not installed: run `apt-get install wrk` (or `make bench` as "
            "root, which installs it)"
        )
    return found


def wrk(url: str, body: bytes, seconds: float, connections: int, threads: int = 2) -> dict:
    """POST ``body`` to ``url`` for ``seconds``; requests/s, latency percentiles (ms), errors."""
    if not url.startswith("http://127.0.0.1:"):
        raise BenchError(f"load tests only target this machine; refusing {url}")
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        command = [
            require_wrk(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            url,
        ]
        try:
            run = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                env={**os.environ, "BENCH_BODY_FILE": body_file.name},
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"wrk did not finish within {seconds + 30:.0f} s") from None
    lines = [line for line in run.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if run.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({run.returncode}): {run.stderr.strip() or run.stdout}")
    raw = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    failed = sum(raw["errors"].values())
    if failed or not raw["requests"]:
        raise BenchError(
            f"{failed} of {raw['requests']} requests to {url} failed or were not "
            f"2xx/3xx: {raw['errors']}"
        )
    seconds_run = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "requests_per_s": round(raw["requests"] / seconds_run, 1),
        **{f"p{q}_ms": round(raw[f"p{q}_us"] / 1000, 2) for q in (50, 90, 99)},
        "max_ms": round(raw["max_us"] / 1000, 2),
    }
