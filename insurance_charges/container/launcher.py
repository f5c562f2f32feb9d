"""The image's PID 1: nginx on $HOST:$PORT before gunicorn on a unix socket; both stop together.

Started with ``serve`` (SageMaker), nginx listens on SageMaker's port instead, and the model
and stop timing follow SageMaker's contract (``modes.py``). Started with ``kafka ...``, it
becomes the Kafka consumer (``python -m insurance_charges.events kafka ...``, docs/events.md);
with ``retrain STEP ...``, one step of the weekly retraining (docs/retraining.md).

No gunicorn worker ever waits on a client's network (docs/reliability.md#slow-and-hostile-clients):
nginx reads each
request whole, and takes each answer at once, before or after a worker is involved. On SIGTERM
nginx stops accepting and finishes what it holds (at most ``NGINX_GRACE_S``), then gunicorn
stops, so `docker stop` ends inside its 10 s with 0 (6.6 s measured with 50 slow clients open);
under ``serve`` the drain is longer and the stop still ends inside SageMaker's 30 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import cli_runner
from ..errors import UserError
from ..paths import PROJECT_ROOT
from ..settings import MAX_CONTENT_LENGTH, MAX_PAYLOAD_MB, from_environ
from ..startup import gunicorn_environ
from ..startup.address import bind_address, check_address
from ..web.errors import PROBLEMS, problem_type
from ..web.security import HEADERS
from .modes import DRAIN_S, KAFKA, RETRAIN, mode_for
from .training_run import TRAIN

HERE = Path(__file__).resolve().parent


def _temp_root() -> Path:
    """TMPDIR, else /tmp; named even when unwritable, so that main() can say so in one line."""
    try:
        return Path(tempfile.gettempdir())
    except FileNotFoundError:  # gettempdir found no writable directory at all
        return Path(os.environ.get("TMPDIR") or "/tmp")  # nosec B108 (the path only named)


# Everything the container writes lives under /tmp: the root filesystem is read-only.
RUN_DIR = _temp_root() / "insurance-charges"
SOCKET = RUN_DIR / "gunicorn.sock"
# The port nginx listens on, for the image's HEALTHCHECK (which cannot see how it was started).
PORT_FILE = RUN_DIR / "port"
STARTUP_S = 120  # model load and parity proof take 2-4 s; a very slow host gets a wide margin
# nginx's own worker_shutdown_timeout (4 s) cannot close a connection it is still writing to (a
# client that stopped reading is only dropped by send_timeout, 10 s after its last read), so
# after this long a graceful nginx is stopped outright: `docker stop` gives 10 s in all.
GRACE_AFTER_DRAIN_S = 1
NGINX_GRACE_S = DRAIN_S + GRACE_AFTER_DRAIN_S
# nginx waits this much longer than gunicorn's worker timeout for an answer, so it never
# abandons a request gunicorn would still finish (or answer with its own 504 once past it).
PROXY_OUTWAITS_S = 5
# nginx statuses it may answer itself; 494 (header too large) reaches the client as 400.
NGINX_STATUSES = (400, 408, 413, 414, 494, 502, 503, 504)


def _problem(status: int) -> dict:
    shown = 400 if status == 494 else status
    kind = PROBLEMS[shown]
    return {
        "type": problem_type(shown),
        "title": kind.title,
        "status": shown,
        "detail": kind.explanation,
    }


def _html(status: int) -> str:
    problem = _problem(status)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Error: {problem['title']}</title>"
        '<link rel="stylesheet" href="/static/style.css"></head><body><main>'
        f"<h1>{problem['title']}</h1><p>{problem['detail']}</p>"
        '<p><a href="/">Back to the form</a></p></main></body></html>\n'
    )


def listen(host: str, port: int) -> str:
    """nginx's ``listen`` address for HOST and the port, as gunicorn would bind them."""
    # "::" is every IPv6 and IPv4 interface to gunicorn (Linux's default); nginx, unless told,
    # would take IPv6 clients only, and the image's health check probes 127.0.0.1.
    return bind_address(host, port) + (" ipv6only=off" if host == "::" else "")


def write_config(
    port: int,
    run_dir: Path = RUN_DIR,
    drain_s: int = DRAIN_S,
    max_payload_mb: int = MAX_PAYLOAD_MB,
    host: str = "0.0.0.0",  # nosec B104
    request_timeout_s: int = gunicorn_environ.REQUEST_TIMEOUT_S,
) -> Path:
    """Render nginx's configuration and error pages into ``run_dir``; return the config path."""
    (run_dir / "_errors").mkdir(parents=True, exist_ok=True)
    for status in NGINX_STATUSES:
        (run_dir / "_errors" / f"{status}.json").write_text(json.dumps(_problem(status)))
        (run_dir / "_errors" / f"{status}.html").write_text(_html(status))
    headers = "\n".join(
        f'            add_header {name} "{value}" always;' for name, value in HEADERS.items()
    )
    fill = {
        "@RUN_DIR@": str(run_dir),
        "@SOCKET@": str(run_dir / SOCKET.name),
        "@LISTEN@": listen(host, port),
        "@MAX_BODY@": f"{MAX_CONTENT_LENGTH // 1024}k",
        "@MAX_PAYLOAD@": f"{max_payload_mb}m",  # nginx's m is SageMaker's MB (MiB)
        "@DRAIN@": f"{drain_s}s",
        "@SECURITY_HEADERS@": headers,
        "@PROXY_TIMEOUT@": f"{request_timeout_s + PROXY_OUTWAITS_S}s",
    }
    for name in ("nginx.conf", "proxy.conf"):
        text = (HERE / f"{name}.template").read_text()
        for marker, value in fill.items():
            text = text.replace(marker, value)
        (run_dir / name).write_text(text)
    return run_dir / "nginx.conf"


class Stack:
    """gunicorn and nginx as child processes, started and stopped in order."""

    def __init__(
        self,
        port: int,
        drain_s: int = DRAIN_S,
        max_payload_mb: int = MAX_PAYLOAD_MB,
        environ: dict | None = None,
        host: str = "0.0.0.0",  # nosec B104 - every interface of the container's own namespace
    ):
        self.host, self.port = host, port
        self.gunicorn: subprocess.Popen[bytes] | None = None
        self.nginx: subprocess.Popen[bytes] | None = None
        self.drain_s, self.max_payload_mb, self.environ = drain_s, max_payload_mb, environ
        self.stopping = self.failed = False
        self._quit_sent = self._term_sent = False
        self._quit_at = 0.0

    def start(self) -> subprocess.Popen[bytes]:
        """gunicorn first (it loads the model); nginx once gunicorn is listening. gunicorn."""
        config = write_config(
            self.port,
            drain_s=self.drain_s,
            max_payload_mb=self.max_payload_mb,
            host=self.host,
            request_timeout_s=gunicorn_environ.request_timeout(
                os.environ if self.environ is None else self.environ
            ),
        )
        SOCKET.unlink(missing_ok=True)
        # Started as `make run` starts it: what gunicorn reads itself is checked first.
        gunicorn = self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "insurance_charges.startup", "--unix-socket", str(SOCKET)],
            cwd=PROJECT_ROOT,
            env=self.environ,
        )
        deadline = time.monotonic() + STARTUP_S
        while not SOCKET.exists():
            if gunicorn.poll() is not None or time.monotonic() > deadline or self.stopping:
                return gunicorn  # it said why (one "Error:" line), or a stop came before
            time.sleep(0.05)
        self.nginx = subprocess.Popen(
            ["nginx", "-c", str(config), "-e", "stderr", "-g", "daemon off;"]
        )
        PORT_FILE.write_text(f"{self.port}\n")
        return gunicorn

    def request_stop(self, *_signal) -> None:
        """The signal handler: only note it; ``wait`` does the stopping, in order."""
        self.stopping = True

    def _step(self, gunicorn: subprocess.Popen[bytes], nginx: subprocess.Popen[bytes]) -> None:
        nginx_alive = nginx.poll() is None
        if self.stopping and nginx_alive and not self._quit_sent:
            nginx.send_signal(signal.SIGQUIT)  # graceful: stop accepting, finish requests
            self._quit_sent, self._quit_at = True, time.monotonic()
        elif (
            nginx_alive
            and self._quit_sent
            and time.monotonic() - self._quit_at > self.drain_s + GRACE_AFTER_DRAIN_S
        ):
            nginx.terminate()  # fast: close what is left
            self._quit_at = float("inf")
        if self.stopping and not nginx_alive and not self._term_sent:
            # Every request nginx held has been answered or given up on: nothing is left in
            # flight, so gunicorn may stop at once (SIGQUIT) instead of waiting 1-3 s (SIGTERM).
            gunicorn.send_signal(signal.SIGQUIT)
            self._term_sent = True

    def wait(self) -> int:
        """Serve until told to stop or until either exits; return gunicorn's exit status."""
        gunicorn, nginx = self.gunicorn, self.nginx
        if gunicorn is None or nginx is None:
            raise RuntimeError("wait() serves what start() started: both gunicorn and nginx")
        while gunicorn.poll() is None or nginx.poll() is None:
            if not self.stopping and (gunicorn.poll() is not None or nginx.poll() is not None):
                self.failed = self.stopping = True  # half a service must not go on serving
                if gunicorn.poll() is not None:
                    nginx.terminate()  # nothing left to finish: no graceful wait
            self._step(gunicorn, nginx)
            time.sleep(0.05)
        return gunicorn.returncode


def main(args: list[str] | None = None) -> int:
    """Check the settings and arguments, start both, wait, and exit with gunicorn's status."""
    args = sys.argv[1:] if args is None else args
    if args[:1] == [KAFKA]:
        # `docker run IMAGE kafka ...` (an ECS service): the consumer replaces this process as
        # PID 1, so ECS's SIGTERM reaches it directly; it needs neither nginx nor gunicorn.
        os.execv(sys.executable, [sys.executable, "-m", "insurance_charges.events", *args])
    if args[:1] == [RETRAIN]:
        # `docker run IMAGE retrain STEP ...` (the weekly DAG's ECS task or DockerOperator): the
        # step replaces this process, so a stop's SIGTERM reaches it; no server is started.
        step = [sys.executable, "-m", "insurance_charges.retraining", *args[1:]]
        os.execv(sys.executable, step)
    return cli_runner.run(lambda: _serve(args))


def _serve(args: list[str]) -> int:
    if args == [TRAIN]:  # SageMaker's training start: no server, no serving settings
        from . import training_run

        return training_run.run()
    settings = from_environ(os.environ)  # an unusable setting: 1, an unknown argument: 2
    gunicorn_environ.check(os.environ)  # before its --timeout is read for nginx
    mode = mode_for(args, settings, os.environ)
    check_address(settings.host, mode.port, mode.port_name)  # nginx's, before the model
    # 755: when started as root (a developer's machine), nginx's workers run as "nobody".
    try:
        RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        (RUN_DIR / ".writable").touch()
    except OSError as exc:  # e.g. ECS's bind mount owned by root, or no tmpfs on a read-only root
        raise UserError(
            f"{RUN_DIR} cannot be written ({exc.strerror}); give the container a "
            "writable /tmp owned by (or open to) its user 10001, e.g. `--tmpfs "
            "/tmp` or a volume with mode 1777"
        ) from None
    stack = Stack(mode.port, mode.drain_s, settings.max_payload_mb, mode.environ, settings.host)
    signal.signal(signal.SIGTERM, stack.request_stop)
    signal.signal(signal.SIGINT, stack.request_stop)
    gunicorn = stack.start()
    if stack.nginx is None:  # gunicorn never came up, or a stop came first
        if gunicorn.poll() is None:
            gunicorn.terminate()  # still loading: it ends silently (SIGTERM's default)
        status = gunicorn.wait()
        return 0 if stack.stopping else (status or 1)  # asked to stop: nothing failed
    status = stack.wait()
    return (status or 1) if stack.failed else status  # a lost half is a failure, even at 0
