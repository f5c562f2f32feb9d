"""gunicorn's master: /metrics on METRICS_PORT, drift gauges at each scrape, dead workers' files.

gunicorn.conf.py calls these hooks. The shared directory is chosen before the app is loaded
(``environment``: gunicorn sets it in the master just before it imports the app, so
prometheus_client sees it at import), emptied of other processes' files once the service
holds its port (``when_ready``), and each dead worker's files are folded into the archives
(``child_exit``). The metrics server and the drift snapshots are threads of the master, which
answers no requests: scrapes never wait for a busy worker.

The master must outlive anything monitoring does: gunicorn ends it on any exception a hook
raises, and with it every worker and the app's port. So every hook that runs once the service
serves is wrapped in ``guarded``, and the metrics server holds a bounded number of
descriptors and threads (server.py).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from . import files, state
from .exposition import ServiceCollector, metrics_app
from .recorder import MonitoringError
from .server import MetricsServer

log = logging.getLogger(__name__)
EXTENSION = "insurance_charges.monitoring"  # the app's Watch, in app.extensions


def environment(settings) -> list[str]:
    """gunicorn's ``raw_env``: the shared directory, set in the master before the app loads."""
    directory = settings.metrics_dir or files.default_directory(settings.port)
    return [f"{files.ENV}={directory}"]


def guarded(hook: Callable) -> Callable:
    """The gunicorn hook, but any exception it raises is logged once and goes no further."""

    @functools.wraps(hook)  # gunicorn checks a hook's arity through the wrapper
    def run(*args) -> None:
        try:
            hook(*args)
        except Exception as exc:
            log.error(
                "gunicorn hook %s failed; the service goes on: %s: %s",
                hook.__name__,
                type(exc).__name__,
                exc,
                exc_info=True,
            )

    return run


class Master:
    """The master's monitoring threads: snapshots always, the metrics server with a port."""

    def __init__(self, watch, port: int | None, host: str):
        self.watch, self.port, self.host = watch, port, host
        self.window = state.Window()
        self.httpd: MetricsServer | None = None
        self.stopped = threading.Event()

    def start(self) -> None:
        """Take the first snapshot, then start the threads."""
        from prometheus_client import CollectorRegistry

        if self.port is not None:
            registry = CollectorRegistry()
            registry.register(ServiceCollector(self.watch, self.window))
            self.httpd = self._listen(self.port, metrics_app(registry))
            self.httpd.start()
            shown = f"[{self.host}]" if ":" in self.host else self.host
            log.info("metrics at http://%s:%d/metrics (%s)", shown, self.port, self.watch.directory)
        if self.watch.reference is not None:
            self.snapshot()
            threading.Thread(target=self._snapshots, name="drift-window", daemon=True).start()

    def _listen(self, port: int, app) -> MetricsServer:
        """The metrics server on METRICS_HOST:METRICS_PORT; one line naming the fix if not."""
        try:
            return MetricsServer(self.host, port, app)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
                raise MonitoringError(
                    f"METRICS_HOST={self.host!r}: cannot listen ({reason}); set METRICS_HOST "
                    "to an address of this machine: 127.0.0.1 (this machine only) or 0.0.0.0 "
                    "(every interface)"
                ) from None
            raise MonitoringError(
                f"METRICS_PORT={port}: cannot listen ({reason}); set METRICS_PORT to a free port"
            ) from None

    def snapshot(self) -> None:
        """Add the counts now to the window; write it for the workers."""
        self.window.add(state.read_counts(self.watch))
        self.window.write(self.watch.directory)

    def _snapshots(self) -> None:
        while not self.stopped.wait(state.SNAPSHOT_SECONDS):
            try:
                self.snapshot()
            except Exception:  # a full disk must not end the master; the next minute retries
                log.exception("drift window snapshot failed")

    def after_fork(self) -> None:
        """In a new worker: let go of the master's metrics socket and connections."""
        if self.httpd is not None:
            self.httpd.after_fork()

    def stop(self) -> None:
        """Stop the threads (the master is exiting)."""
        self.stopped.set()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


_running: dict = {}  # the master's state survives gunicorn re-reading its config (SIGHUP)


def when_ready(server, settings) -> None:
    """In the master, listeners bound: empty the directory of others' files, start the threads."""
    directory = Path(os.environ[files.ENV])
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = files.wipe_others(directory, os.getpid())
    except OSError as exc:
        raise MonitoringError(
            f"{files.ENV}={str(directory)!r}: cannot be used ({exc.strerror}); "
            f"set {files.ENV} to a writable directory of this service's own, "
            "or unset it for one under the temp dir"
        ) from None
    if removed:
        log.info("removed %d metric files of earlier processes from %s", removed, directory)
    _running["default"] = settings.metrics_dir is None
    watch = getattr(server.app.wsgi(), "extensions", {}).get(EXTENSION)
    if watch is None:  # an app without monitoring (the benchmark's baseline)
        return
    master = Master(watch, settings.metrics_port, settings.metrics_host)
    master.start()
    _running["master"] = master


def post_fork(server, worker) -> None:
    """In the new worker."""
    if "master" in _running:
        _running["master"].after_fork()


def child_exit(server, worker) -> None:
    """In the master, a worker gone: fold its files into the archives."""
    directory = os.environ.get(files.ENV)
    if directory:
        files.archive_dead(Path(directory), worker.pid)


def on_exit(server) -> None:
    """In the master, last: stop the threads; remove the directory if it is the default one."""
    master = _running.pop("master", None)
    if master is not None:
        master.stop()
    directory = os.environ.get(files.ENV)
    if directory and _running.get("default"):
        shutil.rmtree(directory, ignore_errors=True)
