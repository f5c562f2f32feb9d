"""An ordered map over a process pool that never holds more than a few chunks at once.

Workers are forked, so they inherit the model and the plan the parent installed; each scores
one chunk at a time. Results come back in input order. At most ``inflight`` chunks are read
ahead of the one being written, so memory stays flat however large the input is (Pool.imap
would read the whole input ahead).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1


def _worker_start() -> None:
    # Ctrl-C, a closed terminal (SIGHUP) and a stop sent to the whole process group reach the
    # workers too: the parent alone decides how to stop, and stops them itself.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:  # if the parent is killed outright, its workers go with it (Linux)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):
        pass


def _nothing() -> None:
    return None


class OrderedPool:
    """``map`` over ``jobs`` forked workers, results in order; ``jobs`` 1 runs in-process."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.executor = None
        if jobs > 1:
            self.executor = ProcessPoolExecutor(
                jobs, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start)
            self.executor.submit(_nothing).result()  # fork every worker now, before any I/O

    def map(self, fn: Callable, items: Iterable, inflight: int) -> Iterator:
        """``fn(item)`` for each item, in order, with at most ``inflight`` items pending."""
        if self.executor is None:
            for item in items:
                yield fn(item)
            return
        pending: deque = deque()
        for item in items:
            pending.append(self.executor.submit(fn, item))
            if len(pending) >= inflight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Let the workers finish and exit."""
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None

    def terminate(self) -> None:
        """Stop the workers now (a failed or interrupted run)."""
        if self.executor is None:
            return
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)
        self.executor = None
