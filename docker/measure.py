"""Measure the built image the way EB runs it: the figures behind .ebextensions' numbers.

    docker build -t insurance-charges . && .venv/bin/python docker/measure.py insurance-charges

Prints start-up time (docker run to the first 200 from /health), memory per gunicorn worker
(cgroup usage and proportional set size, 1 worker against 3), CPU time per one-record
request and per 10,000-record batch, and throughput with 2 workers. Every request goes to
127.0.0.1 and every loop is bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from insurance_charges.core.schema import EXAMPLE_RECORD, FIELDS, INTEGER  # noqa: E402

PORT = 18431
TICKS = 100  # clock ticks per second for /proc/<pid>/stat on Linux


def records(n: int) -> list[dict]:
    """n valid, varied records derived from the schema."""
    out = []
    for i in range(n):
        rec = {}
        for k, f in enumerate(FIELDS):
            if f.choices:  # a different stride per field, so the combinations vary
                rec[f.name] = f.choices[(i // (k + 1)) % len(f.choices)]
            elif f.kind == INTEGER:
                rec[f.name] = int(f.minimum + i % min(40, f.maximum - f.minimum + 1))
            else:
                rec[f.name] = round(f.minimum + (i * 0.37) % (f.maximum - f.minimum), 2)
        out.append(rec)
    return out


def post(path: str, body, timeout: float = 60) -> tuple[int, float]:
    """POST JSON; return status and seconds taken."""
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()
        return resp.status, time.perf_counter() - start


def pids(name: str) -> list[int]:
    """Host pids of the container's processes (master first)."""
    out = subprocess.run(["docker", "top", name, "-eo", "pid"], capture_output=True, text=True,
                         check=True).stdout.split()[1:]
    return sorted(int(p) for p in out)


def cpu_seconds(pid_list) -> float:
    """User + system CPU seconds used so far by these processes."""
    total = 0
    for pid in pid_list:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages are split between the processes sharing them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for {pid}")


def cgroup_mib(name: str) -> float:
    """The container's memory as docker stats reports it (cache excluded)."""
    usage = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", name],
                           capture_output=True, text=True, check=True).stdout.split("/")[0].strip()
    number, unit = float(usage.rstrip("KMGiB")), usage.lstrip("0123456789.")
    return number * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def start(image: str, workers: int) -> tuple[str, float]:
    """Run the image as EB would (read-only root, tmpfs /tmp); seconds until /health is 200."""
    name = f"insurance-charges-measure-{workers}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    began = time.perf_counter()
    subprocess.run(["docker", "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp",
                    "-p", f"127.0.0.1:{PORT}:8000", "-e", f"WEB_CONCURRENCY={workers}", image],
                   check=True, capture_output=True)
    while time.perf_counter() - began < 120:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1).read()
            return name, time.perf_counter() - began
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("no healthy container within 120 s")


def memory(image: str, workers: int, batch: list) -> tuple[float, float, float]:
    """Cgroup MiB, master PSS and mean worker PSS after every worker served a full batch."""
    name, _ = start(image, workers)
    try:
        for _ in range(workers * 3):  # sync workers take turns; a few rounds reach each one
            post("/api/v1/predict", batch)
        procs = pids(name)
        workers_pss = [pss_mib(p) for p in procs[1:]]
        return cgroup_mib(name), pss_mib(procs[0]), sum(workers_pss) / len(workers_pss)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    image = parser.parse_args().image
    batch = records(10_000)
    print(f"10,000-record body: {len(json.dumps(batch).encode()) / 1024:.0f} KiB")

    name, startup = start(image, 2)
    try:
        print(f"start-up (docker run to /health 200), 2 workers: {startup:.2f} s")
        post("/api/v1/predict", EXAMPLE_RECORD)
        procs = pids(name)
        before, began = cpu_seconds(procs), time.perf_counter()
        for _ in range(300):
            post("/api/v1/predict", EXAMPLE_RECORD)
        cpu, wall = cpu_seconds(procs) - before, time.perf_counter() - began
        print(f"one record: {1000 * cpu / 300:.1f} ms CPU, {1000 * wall / 300:.1f} ms wall "
              "per request (300 sequential)")
        times, before = [], cpu_seconds(procs)
        for _ in range(5):
            times.append(post("/api/v1/predict", batch)[1])
        print(f"10,000 records: {(cpu_seconds(procs) - before) / 5:.2f} s CPU per batch, "
              f"wall mean {sum(times) / 5:.2f} s, slowest {max(times):.2f} s (5 batches)")
        done, stop = [0], time.perf_counter() + 10
        def client():
            while time.perf_counter() < stop:
                post("/api/v1/predict", EXAMPLE_RECORD)
                done[0] += 1
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"throughput, 2 workers, 4 clients, 10 s: {done[0] / 10:.0f} requests/s")
        busy = [threading.Thread(target=lambda: [post("/api/v1/predict", batch) for _ in range(4)])
                for _ in range(2)]
        for t in busy:
            t.start()
        waits = []
        while any(t.is_alive() for t in busy) and len(waits) < 50:
            began = time.perf_counter()
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=10).read()
            waits.append(time.perf_counter() - began)
        for t in busy:
            t.join()
        print(f"/health while both workers run full batches: slowest {max(waits):.2f} s "
              f"of {len(waits)} probes")
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        access = [line for line in logs.splitlines() if '"access"' in line]
        print(f"access log: {sum(map(len, access)) / len(access):.0f} bytes per line")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)

    one, three = memory(image, 1, batch), memory(image, 3, batch)
    print(f"memory, 1 worker: cgroup {one[0]:.0f} MiB; PSS master {one[1]:.0f} MiB, "
          f"worker {one[2]:.0f} MiB")
    print(f"memory, 3 workers: cgroup {three[0]:.0f} MiB; PSS master {three[1]:.0f} MiB, "
          f"worker {three[2]:.0f} MiB each")
    print(f"memory per added worker (cgroup): {(three[0] - one[0]) / 2:.0f} MiB")


if __name__ == "__main__":
    main()
