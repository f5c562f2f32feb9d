"""gunicorn's master: /metrics on METRICS_PORT, drift gauges at each scrape, dead workers' files.

gunicorn.conf.py calls these hooks. The shared directory is chosen before the app is loaded
(``environment``: gunicorn sets it in the master just before it imports the app, so
prometheus_client sees it at import), emptied of other processes' files once the service
holds its port (``when_ready``), and each dead worker's files are folded into the archives
(``child_exit``). The metrics server and the drift snapshots are threads of the master, which
answers no requests: scrapes never wait for a busy worker.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import drift, files, state
from .recorder import MonitoringError

log = logging.getLogger(__name__)
EXTENSION = "insurance_charges.monitoring"  # the app's Watch, in app.extensions
SEVERITY = {name: i for i, name in enumerate(drift.SEVERITY)}  # ok 0, watch 1, drift 2


def environment(settings) -> list[str]:
    """gunicorn's ``raw_env``: the shared directory, set in the master before the app loads."""
    directory = settings.metrics_dir or files.default_directory(settings.port)
    return [f"{files.ENV}={directory}"]


class ServiceCollector:
    """Every process's metrics, merged, and the drift gauges computed from them."""

    def __init__(self, watch, window: state.Window):
        self.watch, self.window = watch, window

    def collect(self):
        """One scrape: the files read once, under the archive lock."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        watch = self.watch
        merged, values = files.read_merged(watch.directory,
                                           watch.layout.size if watch.layout else 0)
        yield from merged
        if watch.reference is None:
            return
        served = CounterMetricFamily("insurance_charges_drift_values", "Values served, by the "
                                     "training bin they fall in (the card's distribution).",
                                     labels=["field", "bin"])
        for name, bins in watch.reference.all_bins().items():
            for label, n in zip(bins.labels, values[watch.layout.slices[name]]):
                served.add_metric([name, label], n)
        yield served
        now = state.counts_from(values, watch.layout, merged)
        doc = state.report(self.watch.reference, now, self.window, self.watch.model_version)
        psi = GaugeMetricFamily("insurance_charges_drift_psi", "Population stability index of "
                                "what was served against the training data.",
                                labels=["field", "window"])
        level = GaugeMetricFamily("insurance_charges_drift_status", "Drift status: 0 ok, 1 "
                                  "watch, 2 drift (absent below the minimum of records).",
                                  labels=["field", "window"])
        records = GaugeMetricFamily("insurance_charges_drift_records", "Records compared.",
                                    labels=["window"])
        outside = GaugeMetricFamily("insurance_charges_drift_out_of_range_share", "Share of "
                                    "records with the field outside the training range.",
                                    labels=["field", "window"])
        for window in ("since_start", "recent"):
            part = doc[window]
            records.add_metric([window], part["records"])
            for name, item in {**part["fields"], drift.ESTIMATE: part["estimate"]}.items():
                if item["psi"] is not None:
                    psi.add_metric([name, window], item["psi"])
                if item["status"] in SEVERITY:
                    level.add_metric([name, window], SEVERITY[item["status"]])
            for name, item in part["out_of_range"]["fields"].items():
                if item["share"] is not None:
                    outside.add_metric([name, window], item["share"])
        yield from (psi, level, records, outside)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a stuck scrape never holds the master at exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        """Scrapes are not logged: one every few seconds would drown the access log."""


def metrics_app(registry):
    """The WSGI app: the Prometheus text at /metrics, 404 elsewhere."""
    from prometheus_client import make_wsgi_app

    exposition = make_wsgi_app(registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found: the metrics are at /metrics\n"]
        return exposition(environ, start_response)
    return app


class Master:
    """The master's monitoring threads: snapshots always, the metrics server with a port."""

    def __init__(self, watch, port: int | None):
        self.watch, self.port = watch, port
        self.window = state.Window()
        self.httpd = None
        self.stopped = threading.Event()

    def start(self) -> None:
        """Take the first snapshot, then start the threads."""
        from prometheus_client import CollectorRegistry

        if self.port is not None:
            registry = CollectorRegistry()
            registry.register(ServiceCollector(self.watch, self.window))
            try:  # every interface, as the app's own port: the scraper is on another host
                self.httpd = make_server("0.0.0.0", self.port,  # nosec B104
                                         metrics_app(registry), _Server, handler_class=_Quiet)
            except OSError as exc:
                raise MonitoringError(f"METRICS_PORT={self.port}: cannot listen ({exc.strerror});"
                                      " set METRICS_PORT to a free port") from None
            threading.Thread(target=self.httpd.serve_forever, name="metrics-http",
                             daemon=True).start()
            log.info("metrics at http://0.0.0.0:%d/metrics (%s)", self.port,
                     self.watch.directory)
        if self.watch.reference is not None:
            self.snapshot()
            threading.Thread(target=self._snapshots, name="drift-window", daemon=True).start()

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
        """In a new worker: let go of the master's listening metrics socket."""
        if self.httpd is not None:
            self.httpd.socket.close()

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
        raise MonitoringError(f"{files.ENV}={str(directory)!r}: cannot be used ({exc.strerror}); "
                              f"set {files.ENV} to a writable directory of this service's own, "
                              "or unset it for one under the temp dir") from None
    if removed:
        log.info("removed %d metric files of earlier processes from %s", removed, directory)
    _running["default"] = settings.metrics_dir is None
    watch = getattr(server.app.wsgi(), "extensions", {}).get(EXTENSION)
    if watch is None:  # an app without monitoring (the benchmark's baseline)
        return
    master = Master(watch, settings.metrics_port)
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
