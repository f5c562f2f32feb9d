"""The metrics port can never take the service down: a deadline on every connection, a bound on
connections and threads, and gunicorn hooks whose failures stop nothing."""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import runpy
import select
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from devtools.gunicorn_server import ROOT
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.monitoring import files
from insurance_charges.monitoring.master import guarded
from insurance_charges.monitoring.server import CONNECTION_SECONDS, CONNECTIONS, MetricsServer

# In-process servers here give each connection this long, so a stalled client is seen dropped
# quickly; the real service keeps CONNECTION_SECONDS.
SHORT_SECONDS = 1.0
# How long a test waits for something that should happen well within its deadline.
PATIENCE = 30.0


def small_app(environ, start_response):
    """A WSGI app answering a few bytes, as a scrape would."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up 1\n"]


def huge_app(environ, start_response):
    """64 MiB of answer: more than loopback's socket buffers hold (4 MiB each here), so a
    client that does not read stalls the writer."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    chunk = b"x" * (1 << 20)
    return (chunk for _ in range(64))


@pytest.fixture
def serve():
    """Start an in-process MetricsServer on a free loopback port; stopped afterwards."""
    servers = []

    def start(app=small_app, connections=1, seconds=SHORT_SECONDS) -> MetricsServer:
        server = MetricsServer("127.0.0.1", 0, app, connections=connections, seconds=seconds)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def connect(port: int) -> socket.socket:
    """A client connected to ``port`` on loopback."""
    return socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)


def dropped(client: socket.socket, timeout: float = PATIENCE) -> bool:
    """Whether the server closed ``client`` within ``timeout`` (whatever it sent first)."""
    deadline = time.monotonic() + timeout
    client.settimeout(timeout)
    try:
        while time.monotonic() < deadline:
            if not client.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def trickled_until_dropped(
    client: socket.socket, text: bytes, every: float = 0.1, timeout: float = PATIENCE
) -> bool:
    """Send ``text`` one byte every ``every`` seconds, each well inside any per-read timeout;
    whether the server closed the connection meanwhile."""
    deadline = time.monotonic() + timeout
    position = 0
    while time.monotonic() < deadline:
        try:
            client.send(text[position % len(text) : position % len(text) + 1])
        except (BrokenPipeError, ConnectionResetError):
            return True
        position += 1
        if select.select([client], [], [], every)[0]:
            try:
                if not client.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def get(port: int, timeout: float = PATIENCE) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
        answer.read()
        return answer.status


# --- The server alone ------------------------------------------------------------------

STALLS = {
    "silent": b"",
    "half a request line": b"GET /metr",
    "headers never ended": b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    "request line, headers never sent": b"GET /metrics HTTP/1.1\r\n",
}


@pytest.mark.parametrize("sent", STALLS.values(), ids=STALLS.keys())
def test_a_client_that_stalls_is_dropped_at_its_deadline_and_its_thread_serves_the_next(
    serve, sent
):
    server = serve(connections=1)
    stalled = connect(server.server_port)
    stalled.sendall(sent)
    assert dropped(stalled)
    assert get(server.server_port) == 200  # the one thread is free again
    stalled.close()


@pytest.mark.parametrize(
    "text", [b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 1000, b"GET /" + b"m" * 1000]
)
def test_a_client_trickling_bytes_is_dropped_at_its_deadline_however_steady(serve, text):
    server = serve(connections=1)
    with connect(server.server_port) as slow:
        assert trickled_until_dropped(slow, text)


def test_a_client_that_never_reads_its_answer_is_dropped_at_its_deadline(serve):
    server = serve(huge_app, connections=1)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that stalls
    reader.connect(("127.0.0.1", server.server_port))
    reader.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    try:  # the one thread is writing to the stalled reader until its deadline ends it
        with socket.create_connection(
            ("127.0.0.1", server.server_port), timeout=PATIENCE
        ) as next_client:
            next_client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert next_client.recv(12) == b"HTTP/1.0 200"
    finally:
        reader.close()


def held_connections(port: int) -> int:
    """Connections to ``port`` this process holds a descriptor for on the server's side."""
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.raddr and c.status == psutil.CONN_ESTABLISHED
    )


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` clients connecting one after another and sending nothing. Each is given a
    moment to be accepted, as a server that takes every connection would; one the server
    leaves in the kernel's queue (or beyond it, retrying) is kept as it is."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.settimeout(0.05)  # 50 ms: a loopback connect completes in microseconds
        try:
            client.connect(("127.0.0.1", port))
        except TimeoutError:
            pass
        clients.append(client)
    return clients


def wait_until(condition, timeout: float = PATIENCE, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def test_however_many_clients_connect_the_server_holds_a_fixed_few_descriptors_and_threads(serve):
    server = serve(connections=2, seconds=PATIENCE)
    threads = threading.active_count()
    clients = open_idle(server.server_port, 50)
    try:
        assert wait_until(lambda: len(server.answering) >= 2)
        time.sleep(0.5)  # time for any further accept, were there one
        assert held_connections(server.server_port) == 2
        assert threading.active_count() == threads
    finally:
        for client in clients:
            client.close()
    assert get(server.server_port) == 200  # the closed clients are let go at once


@pytest.mark.slow
def test_a_connection_answered_when_a_worker_forks_is_still_closed_at_its_deadline(serve):
    server = serve(connections=1)
    stalled = connect(server.server_port)
    assert wait_until(lambda: len(server.answering) == 1)
    child = os.fork()
    if child == 0:  # a worker that, forked at the wrong moment, keeps a copy of everything
        time.sleep(2 * PATIENCE)  # outlives the wait below; killed after it
        os._exit(0)
    try:
        assert dropped(stalled)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        stalled.close()


@pytest.mark.slow
def test_a_new_worker_keeps_no_copy_of_the_metrics_sockets(serve):
    server = serve(connections=1, seconds=PATIENCE)
    stalled = connect(server.server_port)
    assert wait_until(lambda: len(server.answering) == 1)
    child = os.fork()
    if child == 0:  # gunicorn's post_fork hook does this in every new worker
        server.after_fork()
        kept = [
            c
            for c in psutil.Process().net_connections("tcp")
            if c.laddr and c.laddr.port == server.server_port
        ]
        os._exit(len(kept))
    try:
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    finally:
        stalled.close()


class Counted(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.slow
def test_out_of_descriptors_the_server_warns_once_and_answers_once_some_are_free():
    server = MetricsServer("127.0.0.1", 0, small_app, connections=2)
    answered, told = os.pipe()  # made before the fork: the child needs no new descriptor
    child = os.fork()
    if child == 0:  # the server in a process of its own, whose descriptors run out
        warnings = Counted()
        try:
            logger = logging.getLogger("insurance_charges.monitoring.server")
            logger.addHandler(warnings)
            logger.propagate = False
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            lowest_free = os.dup(0)
            os.close(lowest_free)
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # none left
            server.start()
            time.sleep(8 * 0.5)  # eight of the server's polls, every accept() failing
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            os.read(answered, 1)  # until the client has its answer
        finally:
            os._exit(min(len(warnings.records), 100))
    try:
        with connect(server.server_port) as client:
            client.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            assert client.recv(12) == b"HTTP/1.0 200"
    finally:
        os.write(told, b"x")
        warned = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        server.server_close()
        os.close(answered)  # the pipe's two ends are plain descriptors: no collector closes them
        os.close(told)
    assert warned == 1


@pytest.mark.parametrize(
    "raised",
    [
        OSError(errno.EMFILE, "Too many open files"),
        IsADirectoryError(21, "Is a directory"),
        RuntimeError("Read beyond file size detected, file is corrupted."),
        TypeError("memoryview: length is not a multiple of itemsize"),
        KeyError("sequence"),
    ],
)
def test_a_guarded_hook_logs_what_it_raised_once_and_returns(caplog, raised):
    def child_exit(server, worker):
        raise raised

    with caplog.at_level(logging.ERROR, logger="insurance_charges.monitoring.master"):
        assert guarded(child_exit)(None, None) is None
    assert [(r.levelname, r.getMessage(), r.exc_info[1]) for r in caplog.records] == [
        (
            "ERROR",
            f"gunicorn hook child_exit failed; the service goes on: "
            f"{type(raised).__name__}: {raised}",
            raised,
        )
    ]


@pytest.mark.parametrize("hook", ["post_fork", "child_exit", "worker_exit", "on_exit"])
def test_every_hook_that_runs_while_the_service_serves_is_guarded(monkeypatch, hook):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file puts the project first on it
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf[hook].__code__ is guarded(lambda: None).__code__  # the guard's wrapper
    assert conf[hook].__wrapped__.__name__ == hook


# --- The real service under gunicorn ------------------------------------------------------


def master_connections(server, port: int) -> int:
    """Connections to the metrics port that gunicorn's master holds a descriptor for."""
    return sum(
        1
        for c in psutil.Process(server.master_pid()).net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def replaced(server, killed: int, workers: int) -> bool:
    """Whether the master is alive with ``workers`` workers, ``killed`` not among them."""

    def done():
        pids = server.worker_pids()
        return (
            len(pids) == workers
            and killed not in pids
            and all(psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
        )

    return wait_until(done, timeout=60) and server.proc.poll() is None


def answers(server) -> bool:
    return (
        server.request("/health")[0] == 200
        and server.request("/api/v1/predict", EXAMPLE_RECORD)[0] == 200
    )


# Descriptors left to the master above those it has open once serving: room for its own work
# (a new worker's temp file, the lock and the files it folds when a worker dies, a scrape's
# reads) and the metrics server's CONNECTIONS, but far fewer than the idle clients below.
SPARE_DESCRIPTORS = 16
IDLE_CLIENTS = 4 * SPARE_DESCRIPTORS


@pytest.mark.slow
def test_idle_connections_to_the_metrics_port_under_a_low_ulimit_cannot_stop_the_master(metered):
    server, port = metered()
    master = server.master_pid()
    highest = max(int(fd) for fd in os.listdir(f"/proc/{master}/fd"))
    limit = highest + 1 + SPARE_DESCRIPTORS
    resource.prlimit(master, resource.RLIMIT_NOFILE, (limit, limit))  # `ulimit -n` on it
    threads = psutil.Process(master).num_threads()
    clients = open_idle(port, IDLE_CLIENTS)
    try:
        assert wait_until(lambda: master_connections(server, port) >= CONNECTIONS)
        time.sleep(0.5)  # time for any further accept, were there one
        assert master_connections(server, port) <= CONNECTIONS
        assert psutil.Process(master).num_threads() == threads
        killed = server.worker_pids()[0]
        os.kill(killed, signal.SIGKILL)
        assert replaced(server, killed, workers=2), server.tail(30)
        assert answers(server)
    finally:
        for client in clients:
            client.close()
    assert get(port) == 200  # metrics too, once the idle clients are gone
    assert "Unhandled exception in main loop" not in server.output()
    assert server.stop() == 0


@pytest.mark.slow
def test_idle_and_trickling_clients_of_the_metrics_port_are_dropped_after_the_timeout(metered):
    server, port = metered(workers=1)
    stalled = [connect(port) for _ in STALLS]
    for client, sent in zip(stalled, STALLS.values(), strict=True):
        client.sendall(sent)
    with connect(port) as slow:  # waits for a thread; then trickles past the deadline
        assert trickled_until_dropped(
            slow,
            b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9999,
            every=1.0,
            timeout=3 * CONNECTION_SECONDS + PATIENCE,
        )
    assert all(dropped(client, timeout=1) for client in stalled)
    for client in stalled:
        client.close()
    assert get(port) == 200
    assert server.stop() == 0


def own_file(directory: Path, pattern: str, pid: int) -> Path:
    path = directory / pattern.format(pid=pid)
    assert path.exists(), sorted(p.name for p in directory.iterdir())
    return path


def lock_is_a_directory(directory: Path, pid: int) -> None:
    (directory / files.LOCK).unlink()
    (directory / files.LOCK).mkdir()


def drift_counts_cut_short(directory: Path, pid: int) -> None:
    own_file(directory, "drift_{pid}.counts", pid).write_bytes(b"abc")


def counter_file_corrupt(directory: Path, pid: int) -> None:
    """The used size says 64 bytes; the first entry claims 1,000."""
    with own_file(directory, "counter_{pid}.db", pid).open("r+b") as f:
        f.write((64).to_bytes(4, "little") + bytes(4) + (1000).to_bytes(4, "little"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault", [lock_is_a_directory, drift_counts_cut_short, counter_file_corrupt]
)
def test_a_dead_worker_whose_files_cannot_be_folded_is_logged_once_and_replaced(
    metered, tmp_path, fault
):
    server, port = metered(workers=1)
    assert answers(server)  # the worker has written its metric files
    killed = server.worker_pids()[0]
    fault(tmp_path, killed)
    os.kill(killed, signal.SIGKILL)
    assert replaced(server, killed, workers=1), server.tail(30)
    assert answers(server)
    time.sleep(0.3)  # the last lines of output are read by a thread
    failed = [line for line in server.lines if "gunicorn hook child_exit failed" in line]
    assert len(failed) == 1, server.tail(30)
    assert json.loads(failed[0])["level"] == "ERROR"  # one record, traceback inside it
    assert "Unhandled exception in main loop" not in server.output()
    assert server.stop() == 0
