"""The service under gunicorn, started as deployed, for the tests and the benchmark alike."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The gunicorn of the environment running this code (the project's venv, wherever VENV put it).
GUNICORN = Path(sys.executable).parent / "gunicorn"
SERVICE = "application:application"


class ServerError(RuntimeError):
    """The server did not start, answer or stop as expected; the message says why."""


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GunicornServer:
    """gunicorn with gunicorn.conf.py on a free loopback port, its output kept line by line.

    ``via_make`` starts it exactly as a developer does (`make run`); ``behind_nginx`` as the
    image does (the container's launcher: nginx in front, needs Debian's nginx); otherwise
    gunicorn is run directly, which the benchmark needs to time start-up and serve other apps.
    """

    def __init__(
        self,
        app: str = SERVICE,
        workers: int = 2,
        via_make: bool = False,
        behind_nginx: bool = False,
        **env,
    ):
        self.app, self.port, self.lines = app, free_port(), []
        self.behind_nginx = behind_nginx
        environ = {
            **os.environ,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "PYTHONPATH": str(ROOT),
            **env,
        }
        if behind_nginx:  # its own run directory: nginx's config, temp files and the socket
            environ["TMPDIR"] = tempfile.mkdtemp(prefix="insurance-charges-")
            # Started as root (CI), nginx's workers run as "nobody" and must reach the socket.
            os.chmod(environ["TMPDIR"], 0o755)
        environ = {k: v for k, v in environ.items() if v is not None}  # None: unset it
        if (via_make or behind_nginx) and app != SERVICE:
            raise ValueError("`make run` and the launcher serve only the service itself")
        command = (
            ["make", "--no-print-directory", "run"]
            if via_make
            else [str(GUNICORN.parent / "python"), "-m", "insurance_charges.container"]
            if behind_nginx
            else [str(GUNICORN), "--config", "gunicorn.conf.py", app]
        )
        self.started = time.perf_counter()
        # Its own session, so cleanup reaches every process it forks.
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(self.proc.stdout), daemon=True
        )
        self._reader.start()

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        """Everything the server has written so far."""
        return "".join(self.lines)

    def tail(self, count: int = 15) -> str:
        """The last lines the server wrote (for error messages)."""
        return "".join(self.lines[-count:])

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from process start to the first /health 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"the server exited with {self.proc.returncode}:\n" + self.output()
                )
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.01)
        raise ServerError(f"no /health 200 within {timeout:.0f} s:\n{self.output()}")

    def request(self, path: str, body=None, headers: dict | None = None, timeout: float = 10):
        """GET, or POST a body (bytes as they are, anything else as JSON): status, headers, body."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
        req = urllib.request.Request(self.url(path), data=data, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            with err:  # closed even when reading its body fails
                return err.code, err.headers, err.read()

    def master_pid(self) -> int:
        """gunicorn's master process, from its "Listening at" line."""
        found = re.search(r"Listening at: \S+ \((\d+)\)", self.output())
        if not found:
            raise ServerError("gunicorn has not said it is listening:\n" + self.output())
        return int(found.group(1))

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes: the master's children."""
        import psutil

        return [child.pid for child in psutil.Process(self.master_pid()).children()]

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM the master, or the launcher (graceful, as in a deploy); the exit status."""
        try:
            os.kill(self.proc.pid if self.behind_nginx else self.master_pid(), signal.SIGTERM)
            status = self.proc.wait(timeout=timeout)
            self._close_output()
            return status
        except subprocess.TimeoutExpired:
            raise ServerError(
                f"{self.app} ignored SIGTERM for {timeout:.0f} s:\n" + self.tail()
            ) from None

    def kill(self) -> None:
        """Make sure nothing of this server is left running."""
        try:  # the whole session: make, the master and any worker it left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._close_output()

    def _close_output(self) -> None:
        """Close the pipe once the reader has it all (an open one is a ResourceWarning)."""
        self._reader.join(timeout=10)  # EOF comes once every process holding the pipe is gone
        if not self._reader.is_alive() and self.proc.stdout is not None:
            self.proc.stdout.close()
