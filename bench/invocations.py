"""Measure the image's SageMaker /invocations: CSV rows/s per instance and 6 MB latency.

Usage: ``.venv/bin/python -m bench.invocations [--image insurance-charges] [--seconds 20]
[--out results.json]``, with an image built from this checkout (``docker build -t
insurance-charges .``).

Starts the image as SageMaker does (``docker run IMAGE serve``, every core of this machine: the
"instance"), asks ``/execution-parameters`` for the payload and concurrency it advises, and
generates one full mini-batch: CSV of the six fields, values within the ranges seen in training
(no warnings, as in ``bench.score``), cut on a line end at MaxPayloadInMB. Then:

- **latency**: that mini-batch sent alone, ``--repeat`` times: seconds per request, end to end
  on 127.0.0.1 (upload, nginx, parse, validate, estimate, answer one estimate per line);
- **throughput**: MaxConcurrentTransforms clients sending it back to back for ``--seconds``, as
  Batch Transform does: rows/s per instance, from requests completed in that time, and rows
  per CPU-second of the container's processes (steadier than rows/s on a shared machine, and
  comparable with the file scoring command's rows/s per core);
- **refusals**: bodies of the same size refused whole (empty CSV rows, lines of one value,
  ``{}`` lines), each timed right after a valid body of its type (``bench.refusals``): a refused
  body must cost at most twice a valid one.

Every answer must be 200 with one line per row, or the run stops with one line and exit 1.
The figures of a machine shared with other work vary between runs (bench/README.md, "Noise").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.csv as pa_csv

from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.settings import MB

from . import refusals
from .score import TRAINING, generate

ROWS_GENERATED = 400_000  # more than one 6 MB mini-batch holds (about 150,000 rows)


class BenchError(Exception):
    """The run cannot go on; the message is the one line to print."""


def docker(*args: str) -> str:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if run.returncode:
        raise BenchError(f"docker {' '.join(args[:2])} failed: {run.stderr.strip()[-300:]}")
    return run.stdout


def start(image: str, name: str) -> str:
    """The image started with `serve`; its base URL once /ping answers."""
    docker("run", "-d", "--name", name, "-p", "127.0.0.1::8080", image, "serve")
    url = "http://127.0.0.1:" + docker("port", name, "8080/tcp").split(":")[-1].strip()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as response:
                if response.status == 200:
                    return url
        except OSError:
            time.sleep(0.5)
    raise BenchError("/ping never answered 200: " + docker("logs", name)[-300:])


def mini_batch(limit: int) -> bytes:
    """Six-field CSV rows (no header), as many whole lines as fit in ``limit`` bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        generate(path, ROWS_GENERATED, TRAINING)
        table = pa_csv.read_csv(str(path)).select(list(FIELD_NAMES))
        out = Path(tmp) / "six.csv"
        pa_csv.write_csv(
            table, str(out), pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )
        data = out.read_bytes()
    if len(data) <= limit:
        raise BenchError(f"{ROWS_GENERATED:,} rows make only {len(data):,} bytes")
    return data[: data.rfind(b"\n", 0, limit) + 1]


def invoke(url: str, body: bytes, rows: int) -> float:
    """Seconds for one /invocations of ``body``; its answer checked."""
    request = urllib.request.Request(
        url + "/invocations", data=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = response.read()
    took = time.perf_counter() - began
    lines = answer.count(b"\n")
    if response.status != 200 or lines != rows:
        raise BenchError(
            f"/invocations answered {response.status} with {lines} lines for {rows} rows"
        )
    return took


# The CPU seconds (user + system) of every process in the container, read from /proc inside it.
CPU_SECONDS = (
    "import os; t = 0\nfor p in os.listdir('/proc'):\n if p.isdigit():\n  try: "
    "f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split(); t += int(f[11]) + "
    "int(f[12])\n  except OSError: pass\nprint(t / os.sysconf('SC_CLK_TCK'))"
)


def cpu_seconds(name: str) -> float:
    return float(docker("exec", name, "python", "-c", CPU_SECONDS))


def throughput(url: str, body: bytes, rows: int, clients: int, seconds: float, name: str) -> dict:
    """Clients sending ``body`` back to back; rows/s over the requests completed in time."""
    done, stop = [], threading.Event()

    def client() -> None:
        while not stop.is_set():
            done.append(invoke(url, body, rows))

    cpu, began = cpu_seconds(name), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client) for _ in range(clients)]
        time.sleep(seconds)
        stop.set()
        for future in futures:
            future.result()  # a failed answer ends the run here
    elapsed, cpu = time.perf_counter() - began, cpu_seconds(name) - cpu
    return {
        "clients": clients,
        "requests": len(done),
        "seconds": round(elapsed, 2),
        "rows_per_second": round(rows * len(done) / elapsed),
        "rows_per_cpu_second": round(rows * len(done) / cpu),
    }


def measure(image: str, seconds: float, repeat: int) -> dict:
    name = f"bench-invocations-{os.getpid()}"
    try:
        url = start(image, name)
        with urllib.request.urlopen(url + "/execution-parameters", timeout=10) as response:
            parameters = json.loads(response.read())
        body = mini_batch(parameters["MaxPayloadInMB"] * MB)
        rows = body.count(b"\n")
        invoke(url, body, rows)  # warm-up: first requests fault in the workers' pages
        latencies = [invoke(url, body, rows) for _ in range(repeat)]
        return {
            "image": image,
            "cpus": os.cpu_count(),
            "execution_parameters": parameters,
            "payload_bytes": len(body),
            "payload_rows": rows,
            "latency_seconds": {
                "median": round(statistics.median(latencies), 3),
                "max": round(max(latencies), 3),
            },
            "throughput": throughput(
                url, body, rows, parameters["MaxConcurrentTransforms"], seconds, name
            ),
            "refusals": refusals.measure(url, body, repeat),
            "load_average_at_start": os.getloadavg()[0],
        }
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="insurance-charges")
    parser.add_argument("--seconds", type=float, default=20, help="throughput run length")
    parser.add_argument("--repeat", type=int, default=5, help="latency samples")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    try:
        result = measure(args.image, args.seconds, args.repeat)
    except (BenchError, refusals.BenchError, OSError) as exc:
        print(f"bench.invocations failed: {exc}", file=sys.stderr)
        return 1
    t, lat = result["throughput"], result["latency_seconds"]
    print(
        f"{result['cpus']} CPUs; {result['payload_rows']:,} rows per "
        f"{result['payload_bytes'] / MB:.2f} MB mini-batch; execution parameters "
        f"{json.dumps(result['execution_parameters'])}"
    )
    print(f"latency of one mini-batch: median {lat['median']} s, max {lat['max']} s")
    print(
        f"throughput: {t['rows_per_second']:,} rows/s per instance ({t['requests']} requests "
        f"by {t['clients']} clients in {t['seconds']} s); {t['rows_per_cpu_second']:,} rows "
        "per CPU-second of the container"
    )
    print("\n".join(refusals.lines(result["refusals"])))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
