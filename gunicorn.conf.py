"""Gunicorn settings shared by `make run` and the container (one file, one behaviour).

Both start gunicorn through ``python -m insurance_charges.startup``, which checks what gunicorn
reads itself, and the address, before gunicorn is imported; this file checks the service's
settings again for whoever runs ``gunicorn --config gunicorn.conf.py application:application``.
"""

import logging
import os
import sys

# gunicorn reads this file before it puts the working directory on sys.path: make the
# package beside this file importable, wherever gunicorn is started from.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from insurance_charges.monitoring import master as monitoring
from insurance_charges.settings import SettingsError, from_environ
from insurance_charges.startup.address import bind_address
from insurance_charges.startup.gunicorn_environ import REQUEST_TIMEOUT_S

try:  # every environment variable, checked once: a bad one is one line and exit 1
    settings = from_environ(os.environ)
except SettingsError as exc:
    sys.stderr.write(f"Error: {exc}\n")
    sys.exit(1)

# HOST: this machine only unless set (the image sets 0.0.0.0; its launcher binds gunicorn to a
# unix socket behind nginx instead, with --bind, which takes precedence over this).
bind = bind_address(settings.host, settings.port)
# One sync worker per core by default: a prediction is CPU-bound work that holds the GIL, so
# threads would not add throughput. WEB_CONCURRENCY is the conventional override (EB sets it).
workers = settings.workers
worker_class = "sync"
# Load the model once in the master; workers share its memory copy-on-write.
preload_app = True
# A worker silent this long is hung, not busy, and is killed and replaced (30 s: the reason is
# beside REQUEST_TIMEOUT_S; GUNICORN_CMD_ARGS=--timeout raises it, in an EB worker environment).
timeout = REQUEST_TIMEOUT_S
# On SIGTERM (a deploy or scale-in) workers finish in-flight requests first; 30 s covers the
# slowest request many times over.
graceful_timeout = 30
# Recycle each worker after about 5,000 requests to bound slow leaks in the numeric stack.
# The model is preloaded in the master, so a replacement worker is forked ready in
# milliseconds; the jitter keeps the workers from recycling at the same moment.
max_requests = 5000
max_requests_jitter = 500
keepalive = 5
# gunicorn 27's control socket (gunicornc) is not used here; in the container its default
# path is not writable and every start and respawn logged "Control server error".
control_socket_disable = True

loglevel = settings.log_level
logger_class = "insurance_charges.web.logs.GunicornJsonLogger"
accesslog = "-"  # JSON access lines on stdout
errorlog = "-"  # gunicorn's own messages on stderr; the app logs JSON to stdout

# Metrics and drift counts: every process writes its own files in one directory under the
# temp dir (the image's writable /tmp), which prometheus_client sums at each scrape. gunicorn
# sets it in the master just before it loads the app, and so before prometheus_client is
# imported; nothing is set in whatever process merely reads this file.
raw_env = monitoring.environment(settings)


def when_ready(server):
    """Listeners bound: empty the metrics directory of earlier runs; start /metrics."""
    # Not guarded: a metrics port or directory that cannot be used stops start-up with one
    # line, before anything is served.
    monitoring.when_ready(server, settings)


# Every hook below runs while the service serves; gunicorn ends the master (and so the whole
# service) on any exception from one, or halts it when post_fork fails in a worker. Guarded:
# logged once, and the service goes on.
@monitoring.guarded
def post_fork(server, worker):
    """A new worker lets go of the master's metrics socket."""
    monitoring.post_fork(server, worker)


@monitoring.guarded
def child_exit(server, worker):
    """A worker gone (recycled, killed): fold its counters into the archive, delete its files."""
    monitoring.child_exit(server, worker)


@monitoring.guarded
def on_exit(server):
    """The master stopping: stop /metrics, remove the default metrics directory."""
    monitoring.on_exit(server)


def worker_abort(worker):
    """A worker past its timeout: its request ends in the app's 504, not gunicorn's HTML 500."""
    # gunicorn calls this in the worker's SIGABRT handler and then exits it, answering the
    # request in flight with its own HTML page. Raised here instead, the exception surfaces in
    # the request's code, whose error handler answers problem+json (or the site's own page);
    # the worker is already marked to stop, so it exits once that answer is sent. Outside a
    # request there is nothing to answer: gunicorn goes on as it would. Not guarded: it runs
    # in the worker, not the master, and raising is its whole point.
    from flask import has_request_context

    from insurance_charges.web.errors import Overran

    if has_request_context():
        raise Overran()


@monitoring.guarded
def worker_exit(server, worker):
    """Ship the worker's captures; end a cleanly finished worker at once, skipping the
    interpreter's teardown."""
    # Tearing down a worker's interpreter frees the ~150 MB of objects it shares with the
    # master, copying every page it touches: 0.7-1.3 s measured here, and the master forks
    # the replacement only once the process is gone. When both workers recycle
    # (max_requests) within that second, every connection waits: one-record p99 of
    # 0.9-1.1 s in 2 of 4 five-second wrk rounds. Exiting here, the slowest request across
    # a recycle fell from 0.67-1.32 s to under 50 ms (bench/README.md). Only clean exits
    # (recycling, SIGTERM) take this path; a worker that failed to boot keeps its exit
    # status, which the master acts on.
    exc = sys.exc_info()[1]
    # First, whatever the exit: ship this worker's captures (docs/outcomes.md#capture), which
    # the os._exit below would otherwise lose with the interpreter's atexit handlers.
    from insurance_charges.web.capturing import close_capture

    close_capture(server.app.wsgi())
    if worker.booted and isinstance(exc, SystemExit) and exc.code in (0, None):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
