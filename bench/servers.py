"""Start and stop the service for the benchmark exactly as deployed, and read its memory."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """gunicorn with gunicorn.conf.py (as `make run` starts it), on a free loopback port."""

    def __init__(self, app: str = "application:application", workers: int = 2):
        self.app, self.port = app, free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if k != "API_KEYS"}
        env.update(PORT=str(self.port), WEB_CONCURRENCY=str(workers), PYTHONPATH=str(ROOT))
        self.started = time.perf_counter()
        # Its own session, so cleanup can reach every process it forks.
        self.proc = subprocess.Popen([str(GUNICORN), "--config", "gunicorn.conf.py", app],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from process start to the first /health 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.01)
        raise BenchError(f"no /health 200 within {timeout:.0f} s:\n{self.tail()}")

    def request(self, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """GET, or POST a JSON body; the status and the response body."""
        req = urllib.request.Request(self.url(path), data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def training_ranges(self) -> dict:
        """The served model's training ranges, from its card."""
        status, body = self.request("/api/v1/model")
        if status != 200:
            raise BenchError(f"GET /api/v1/model answered {status}")
        return json.loads(body)["schema"]["training_ranges"]

    def tail(self, lines: int = 15) -> str:
        """The last lines the server wrote (for error messages)."""
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def memory(self) -> dict:
        """RSS of the master and each worker, and the service's total RSS and PSS, in MB."""
        master = psutil.Process(self.proc.pid)
        workers = master.children()
        if not workers:
            raise BenchError("the server has no workers")

        def mb(value: int) -> float:
            return round(value / 2**20, 1)

        def pss(proc) -> int:
            return proc.memory_full_info().pss

        everyone = [master, *workers]
        return {"master_rss_mb": mb(master.memory_info().rss),
                "worker_rss_mb": [mb(w.memory_info().rss) for w in workers],
                "total_rss_mb": mb(sum(p.memory_info().rss for p in everyone)),
                # PSS splits pages shared copy-on-write after the fork: the real footprint.
                "total_pss_mb": mb(sum(pss(p) for p in everyone))}

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master, its workers, and workers already recycled."""
        master = psutil.Process(self.proc.pid)
        times = master.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for worker in master.children():
            try:
                worker_times = worker.cpu_times()
            except psutil.NoSuchProcess:  # recycled just now; counted once it is reaped
                continue
            total += worker_times.user + worker_times.system
        return total

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the master (graceful, as in a deploy) and return its exit status."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.app} ignored SIGTERM for {timeout:.0f} s:\n"
                             f"{self.tail()}") from None
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure nothing of this server is left running."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        Path(self.log.name).unlink(missing_ok=True)
