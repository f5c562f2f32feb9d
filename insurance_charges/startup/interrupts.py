"""Ctrl-C while the service starts: the process ends at once, with no traceback.

Until gunicorn's master installs its own signal handlers (once the model is loaded), SIGINT is
Python's: a ``KeyboardInterrupt`` wherever the main thread is, 75-108 lines of traceback, and
not even reliably that: raised inside a C extension's import (numpy's) it comes out as an
``ImportError``, which gunicorn prints as "Failed to read config file" and a traceback. So
SIGINT gets its default action back instead: the kernel ends the process on the spot,
silently (exit status 130 in a shell; make adds its own one line, ``make: *** [...]
Interrupt``). Nothing is left to clean: a start writes nothing before gunicorn takes over,
but for a model fetched from the store (MODEL_URI), whose private temporary directory
(mode 0700, under TMPDIR) stays behind.
"""

from __future__ import annotations

import os
import signal
from types import FrameType


def quiet_interrupts() -> None:
    """From now until a SIGINT handler is installed, Ctrl-C ends this process at once."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not gunicorn's, not ignored
        signal.signal(signal.SIGINT, _end if os.getpid() == 1 else signal.SIG_DFL)


def _end(signum: int, frame: FrameType | None) -> None:
    # The image's launcher is PID 1, which the kernel never lets a signal's default action
    # end: it ends itself, with the status a shell gives a process ended by that signal.
    os._exit(128 + signum)
