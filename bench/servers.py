"""The service for the benchmark: the shared gunicorn launcher plus memory and CPU readings."""

from __future__ import annotations

import json
import time

import psutil

from devtools.gunicorn_server import GunicornServer, ServerError

BenchError = ServerError  # the benchmark cannot go on; the message says why
# Readings of the service's memory retried when a worker is recycled meanwhile.
RECYCLED_RETRIES = 3


class Service(GunicornServer):
    """gunicorn with gunicorn.conf.py (as `make run` starts it); API_KEYS unset."""

    def __init__(
        self,
        app: str = "application:application",
        workers: int = 2,
        behind_nginx: bool = False,
        **env,
    ):
        super().__init__(app, workers, behind_nginx=behind_nginx, API_KEYS=None, **env)

    def training_ranges(self) -> dict:
        """The served model's training ranges, from its card."""
        status, _, body = self.request("/api/v1/model")
        if status != 200:
            raise BenchError(f"GET /api/v1/model answered {status}")
        return json.loads(body)["schema"]["training_ranges"]

    def memory(self) -> dict:
        """RSS of the master and each worker, and the service's total RSS and PSS, in MB."""
        # gunicorn recycles a worker every 5,000 to 5,500 requests (max_requests), which the
        # one-record rounds reach: a worker may be gone between being listed and being read.
        for _ in range(RECYCLED_RETRIES):
            try:
                return self._memory()
            except psutil.NoSuchProcess:
                time.sleep(1)  # its replacement boots in well under a second
        return self._memory()

    def _memory(self) -> dict:
        master = psutil.Process(self.proc.pid)
        workers = master.children()
        if not workers:
            raise BenchError("the server has no workers")

        def mb(value: int) -> float:
            return round(value / 2**20, 1)

        def pss(proc) -> int:
            return proc.memory_full_info().pss

        everyone = [master, *workers]
        return {
            "master_rss_mb": mb(master.memory_info().rss),
            "worker_rss_mb": [mb(w.memory_info().rss) for w in workers],
            "total_rss_mb": mb(sum(p.memory_info().rss for p in everyone)),
            # PSS splits pages shared copy-on-write after the fork: the real footprint.
            "total_pss_mb": mb(sum(pss(p) for p in everyone)),
        }

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
