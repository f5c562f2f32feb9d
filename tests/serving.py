"""A real server for tests: `make run` in the background, probed over HTTP."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`make run` in the background, its output collected line by line."""

    def __init__(self, workers: int = 2, **env):
        self.port = free_port()
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "run"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers), **env})
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "".join(self.lines)
            try:
                if urllib.request.urlopen(self.url("/health"), timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("no healthy server:\n" + "".join(self.lines))

    def request(self, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url(path), data=data, headers={
            **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def master_pid(self) -> int:
        found = re.search(r"Listening at: \S+ \((\d+)\)", "".join(self.lines))
        return int(found.group(1))

    def stop(self) -> int:
        os.kill(self.master_pid(), signal.SIGTERM)
        return self.proc.wait(timeout=40)


    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes: the master's children."""
        import psutil

        return [child.pid for child in psutil.Process(self.master_pid()).children()]

    def kill(self) -> None:
        """Stop everything at once (fixture teardown)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
