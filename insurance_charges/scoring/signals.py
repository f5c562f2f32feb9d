"""Stop signals: SIGINT, SIGTERM and SIGHUP end a run the same way, never halfway through
publishing its outputs or cleaning up after a failure."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

# Ctrl-C, a scheduler's stop (docker stop, ECS, Batch) and a closed terminal or SSH session.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal arrived.

    A BaseException, as KeyboardInterrupt is: botocore wraps any ``Exception`` raised while a
    request is on the wire in a retryable HTTPClientError, which would swallow the signal and
    send the request again.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """The handler of the stop signals for one run: raises ``Interrupted``, or notes the
    signal while a ``deferred`` block runs (raising there would leave a half-published pair
    or a partial file behind)."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending: list[int] = []
        # What signal.signal returned: a handler, SIG_DFL/SIG_IGN, or None (set outside Python).
        self.previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __call__(self, signum: int, frame) -> None:
        if self.deferring:
            self.pending.append(signum)
            return
        raise Interrupted(signum)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the stop signals in this block; the previous handlers come back after."""
        self.previous = {s: signal.signal(s, self) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            self.deferring = True  # the run is over: a late signal changes nothing now
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Note stop signals instead of raising them until the block is over (nested: the
        outermost block decides)."""
        outer = self.deferring
        self.deferring = True  # one store: no window where a signal sees half a state
        try:
            yield
        finally:
            self.deferring = outer

    def raise_pending(self) -> None:
        """Raise ``Interrupted`` for the first signal noted while deferred, if any."""
        if self.pending:
            raise Interrupted(self.pending[0])
