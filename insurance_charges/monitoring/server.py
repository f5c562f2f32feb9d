"""The HTTP server behind METRICS_PORT: a fixed few threads, and a deadline on every connection.

It runs inside gunicorn's master, which must never run out of descriptors or threads: the
master forks every replacement worker and folds dead workers' files (master.py), and both
need descriptors. So the server answers at most ``CONNECTIONS`` clients at once, each on one
of as many threads started once; further clients wait in the kernel's accept queue (which
holds no descriptor of this process) or are refused by the kernel once it is full. Every
connection has ``CONNECTION_SECONDS`` in all to send its request and take its answer; then it
is closed, however slowly it trickles bytes.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import IO, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)

# Clients answered at once: a pair of Prometheus servers scraping together (the usual
# highly-available setup), a person's curl and one to spare. A scrape takes 7 to 63 ms here
# (docs/monitoring.md#prometheus-metrics), so a client waits for a thread briefly, if at all.
CONNECTIONS = 4
# A connection's whole life, request read and answer written. Prometheus gives up on a scrape
# after its scrape_timeout, 10 s by default, so nothing still waited for is cut; a scrape
# under full load took at most 63 ms here.
CONNECTION_SECONDS = 10.0
# Connections the kernel keeps waiting for a free thread: a burst from every Prometheus at once
# and more. It costs kernel memory only; beyond it the kernel drops the SYN and the client
# retries later.
BACKLOG = 16
# How often an idle thread looks up from accept() to see whether the server is stopping, and
# how long it waits before accepting again when the process is out of descriptors (EMFILE),
# rather than spinning.
POLL_SECONDS = 0.5


class DeadlineSocket(socket.socket):
    """An accepted connection whose every read and write must end before one deadline."""

    deadline = 0.0  # time.monotonic() after which the connection is given up

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the connection's time is up")
        self.settimeout(left)

    def recv_into(self, *args, **kwargs) -> int:
        """socket.recv_into, within the deadline."""
        self._arm()
        return super().recv_into(*args, **kwargs)

    def recv(self, *args, **kwargs) -> bytes:
        """socket.recv, within the deadline."""
        self._arm()
        return super().recv(*args, **kwargs)

    def send(self, *args, **kwargs) -> int:
        """socket.send, within the deadline."""
        self._arm()
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs) -> None:
        """socket.sendall, within the deadline (one timeout for the whole buffer)."""
        self._arm()
        return super().sendall(*args, **kwargs)


class Responder(ServerHandler):
    """wsgiref's response writer, logging a failed scrape as one record instead of a
    traceback on stderr."""

    request_handler: WSGIRequestHandler  # wsgiref's own back-pointer, for its log line

    def log_exception(self, exc_info) -> None:
        """A client that went away or ran out of time is not an error of the service."""
        if not isinstance(exc_info[1], (TimeoutError, ConnectionError)):
            log.error("metrics scrape failed: %s", exc_info[1], exc_info=exc_info)


class QuietHandler(WSGIRequestHandler):
    """Answers one scrape, without an access line."""

    def log_message(self, *args) -> None:
        """Scrapes are not logged: one every few seconds would drown the access log."""

    def handle(self) -> None:
        """WSGIRequestHandler.handle, with the Responder."""
        self.raw_requestline = self.rfile.readline(65537)  # http.server's own line limit
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # the error answer is sent
            return
        responder = Responder(
            self.rfile,
            cast(IO[bytes], self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        responder.request_handler = self
        responder.run(cast("MetricsServer", self.server).app)


def address_of(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    """The socket family and address to listen on for ``host`` (an IP address or a name)."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


class MetricsServer(WSGIServer):
    """``app`` on ``host``:``port``, answered by ``connections`` threads, each connection
    closed after ``seconds``."""

    request_queue_size = BACKLOG

    def __init__(
        self,
        host: str,
        port: int,
        app: Callable,
        connections: int = CONNECTIONS,
        seconds: float = CONNECTION_SECONDS,
    ):
        self.address_family, address = address_of(host, port)
        super().__init__(address, QuietHandler)
        self.app = app
        self.seconds = seconds
        self.socket.settimeout(POLL_SECONDS)  # accept() wakes up to see a stop
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.answering: set[socket.socket] = set()
        self.accept_failing = False
        self.threads = [
            threading.Thread(
                target=self._serve, name=f"metrics-http-{i}", daemon=True
            )  # a stuck client never holds an exit
            for i in range(connections)
        ]

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the address (it can stall start-up)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()

    def start(self) -> None:
        """Start answering."""
        for thread in self.threads:
            thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, peer = self.socket.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # out of descriptors, or the socket closed at a stop
                if self.stopped.is_set():
                    return
                if not self.accept_failing:  # once per run of failures, not per attempt
                    log.warning(
                        "metrics port cannot accept a connection (%s); retrying",
                        exc.strerror or exc,
                    )
                self.accept_failing = True
                self.stopped.wait(POLL_SECONDS)
                continue
            self.accept_failing = False
            self._answer(connection, peer)

    def _answer(self, connection: socket.socket, peer) -> None:
        """Answer one connection within its deadline, then close it whatever happened."""
        client = DeadlineSocket(
            connection.family, connection.type, connection.proto, fileno=connection.detach()
        )
        client.deadline = time.monotonic() + self.seconds
        with self.lock:
            self.answering.add(client)
        try:
            self.finish_request(client, peer)
        except OSError:  # timed out, reset or gone: the client's loss, nothing to report
            pass
        except Exception:  # a bug must cost one scrape, never the thread
            log.exception("metrics request failed")
        finally:
            with self.lock:
                self.answering.discard(client)
            try:  # shutdown, not only close: a worker forked meanwhile may hold a copy
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    def after_fork(self) -> None:
        """In a new worker: close the copies of the listening socket and of the connections
        being answered at the fork (no lock: the threads that hold it are not in this process)."""
        self.socket.close()
        for client in list(self.answering):
            # Detached first: the handler's open reader would keep close() from closing it,
            # and the descriptor must not be closed again once its number is reused.
            os.close(client.detach())

    def shutdown(self) -> None:
        """Stop accepting; give the threads one poll to leave accept() (one still answering
        is a daemon and ends with the process)."""
        self.stopped.set()
        until = time.monotonic() + POLL_SECONDS * 2
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(until - time.monotonic(), 0))
