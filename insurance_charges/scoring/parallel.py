"""An ordered map over a process pool that never holds more than a few chunks at once.

Workers are forked and each is given the pool's ``state`` (the run's ``ChunkScorer``: the model
and the plan) once, when it starts; each then scores one chunk at a time. Results come back in
input order. At most ``inflight`` chunks are read ahead of the one being written, so memory
stays flat however large the input is (Pool.imap would read the whole input ahead).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1

# The one per-process holder of this package, written once in each worker by ``_worker_start``
# and never in the parent. ProcessPoolExecutor pickles the function and arguments of every
# task: handing the state with each chunk would pickle the whole model again for each. The
# initializer's arguments cross no pipe under fork (the worker is a copy of the parent), so
# the state reaches each worker once, for free, and waits here for that worker's tasks.
_WORKER_STATE: dict[str, object] = {}


def _worker_start(state: object) -> None:
    _WORKER_STATE["state"] = state
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


def _with_state(fn: Callable, item):
    """In a worker: ``fn`` given the state the worker started with, and the item."""
    return fn(_WORKER_STATE["state"], item)


class OrderedPool:
    """``map`` over ``jobs`` forked workers, each given ``state`` once, results in order;
    ``jobs`` 1 runs in-process."""

    def __init__(self, jobs: int, state: object):
        self.jobs, self.state = jobs, state
        self.executor = None
        if jobs > 1:
            self.executor = ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_start,
                initargs=(state,),
            )
            self.executor.submit(_nothing).result()  # fork every worker now, before any I/O

    def map(self, fn: Callable, items: Iterable, inflight: int) -> Iterator:
        """``fn(state, item)`` for each item, in order, with at most ``inflight`` items
        pending; ``fn`` is pickled by name, so it is a module's function."""
        if self.executor is None:
            for item in items:
                yield fn(self.state, item)
            return
        pending: deque = deque()
        for item in items:
            pending.append(self.executor.submit(_with_state, fn, item))
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
