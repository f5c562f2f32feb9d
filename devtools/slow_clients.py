"""Slow and hostile clients against a loopback server, while probing that it still answers.

Three kinds of slow connection, each reconnecting when the server drops it: ``headers`` sends
its request header one byte a second (slowloris), ``body`` announces a 1 MB body and sends
10 bytes a second, ``noread`` posts a whole 10,000-record batch and never reads the answer.
Meanwhile /health and a one-record prediction are probed every half second, and one legitimate
client uploads a full batch at 25 KB/s. Everything is bounded in time and stops by itself.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from .records import valid_records

ONE = {
    "age": 19,
    "sex": "female",
    "bmi": 27.9,
    "children": 0,
    "smoker": "yes",
    "region": "southwest",
}
KINDS = ("headers", "body", "noread")
STAGGER = 0.05  # seconds between slow clients' arrivals: staggered, as real clients arrive
PROBE_INTERVAL = 0.5  # seconds: two probes a second show a stall of one second or more


@dataclass
class Report:
    """What the probes and the legitimate upload saw, and how the slow clients ended."""

    probes: list = field(default_factory=list)  # (kind, seconds, outcome)
    probes_sent: int = 0  # fixed by the schedule, so a lost probe shows as a shortfall
    dropped: dict = field(default_factory=lambda: {k: 0 for k in KINDS})
    legit: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def slowest(self, kind: str) -> float:
        """The longest time a probe of ``kind`` took to be answered."""
        return max((s for k, s, _ in self.probes if k == kind), default=float("inf"))

    def failures(self) -> list:
        """Probes that were not answered 200."""
        return [p for p in self.probes if p[2] != "ok"]


def _head(port: int, length: int) -> bytes:
    return (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
        f"application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def _answer(sock: socket.socket, deadline: float) -> tuple[int, bytes]:
    data = b""
    while True:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _slow_client(kind: str, port: int, batch: bytes, until: float, report: Report) -> None:
    """One slow client of ``kind``, reconnecting whenever the server drops it, until ``until``."""
    header = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: slow\r\n".encode()
    while time.monotonic() < until:
        sock = socket.socket()
        if kind == "noread":  # a tiny receive buffer: the kernel cannot absorb the answer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            if kind == "noread":
                sock.sendall(_head(port, len(batch)) + batch)
            elif kind == "body":
                sock.sendall(_head(port, 1_000_000) + b"[")
            i = 0
            while time.monotonic() < until:
                if select.select([sock], [], [], 1.0)[0]:  # an answer or a close: dropped
                    if kind != "noread" or not sock.recv(1, socket.MSG_PEEK):
                        with report.lock:
                            report.dropped[kind] += 1
                        break
                    if kind == "noread":
                        time.sleep(1.0)  # an answer is waiting; never read it
                        continue
                if kind == "headers":
                    sock.sendall(header[i % len(header) :][:1] if i < len(header) else b"X")
                elif kind == "body":
                    sock.sendall(b" " * 10)
                i += 1
        except OSError:
            with report.lock:
                report.dropped[kind] += 1
        finally:
            sock.close()
        time.sleep(0.2)


def _probe(kind: str, port: int, report: Report) -> None:
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if kind == "health":
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            else:
                body = json.dumps(ONE).encode()
                sock.sendall(_head(port, len(body)) + body)
            status, _ = _answer(sock, began + 10)
        outcome = "ok" if status == 200 else f"status {status}"
    except OSError as exc:
        outcome = type(exc).__name__
    with report.lock:
        report.probes.append((kind, time.monotonic() - began, outcome))


def _legit_upload(port: int, batch: bytes, rate: int, report: Report) -> None:
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_head(port, len(batch)))
            step = rate // 10  # a tenth of a second's worth at a time: steady, no bursts
            for n, start in enumerate(range(0, len(batch), step)):
                time.sleep(max(0.0, began + n / 10 - time.monotonic()))
                sock.sendall(batch[start : start + step])
            status, body = _answer(sock, time.monotonic() + 60)
        answered = len(json.loads(body)["predictions"]) if status == 200 else 0
        report.legit.update(status=status, predictions=answered)
    except (OSError, ValueError) as exc:
        report.legit.update(error=f"{type(exc).__name__}: {exc}")
    report.legit["seconds"] = round(time.monotonic() - began, 1)


def attack(
    port: int, seconds: float, connections: int = 50, warmup: float = 5.0, legit_rate: int = 25_000
) -> Report:
    """Run the slow clients for ``seconds``, probing from ``warmup`` on; return the report."""
    records = valid_records(
        10_000,
        seed=7,
        ranges={
            "age": {"min": 18, "max": 64},
            "bmi": {"min": 16, "max": 50},
            "children": {"min": 0, "max": 5},
        },
    )
    batch = json.dumps(records).encode()
    # A never-reading client posts 2,000 records: an answer of 140 KB, far past what socket
    # buffers absorb, without turning the test into a throughput test when it reconnects.
    unread = json.dumps(records[:2_000]).encode()
    report, until = Report(), time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=_slow_client,
            daemon=True,
            args=(KINDS[i % 3], port, unread if KINDS[i % 3] == "noread" else batch, until, report),
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
        time.sleep(STAGGER)
    time.sleep(warmup)
    upload = threading.Thread(
        target=_legit_upload, args=(port, batch, legit_rate, report), daemon=True
    )
    upload.start()
    # A fixed number of rounds on a fixed clock (every PROBE_INTERVAL from now): how many probes
    # are sent depends on the arguments alone, never on how slowly this host started the threads.
    rounds = max(1, int((seconds - warmup - connections * STAGGER) / PROBE_INTERVAL))
    began, probes = time.monotonic(), []
    for n in range(rounds):
        time.sleep(max(0.0, began + n * PROBE_INTERVAL - time.monotonic()))
        for kind in ("health", "predict"):
            probes.append(threading.Thread(target=_probe, args=(kind, port, report), daemon=True))
            probes[-1].start()
            report.probes_sent += 1
    for thread in [*probes, upload, *threads]:
        thread.join(timeout=max(0.1, until + 75 - time.monotonic()))
    return report
