"""How every command ends when it fails: one line on stderr and an exit status, never a traceback.

A command's ``main`` hands its work to ``run``: a ``UserError`` becomes ``Error: <message>``
and the error's status; Ctrl-C becomes ``Error: interrupted`` and 130; anything else becomes
one line naming the exception, and 1. A command whose documented statuses differ maps them
(``statuses``), and one that knows more about a failure than its exception says (what a
stopped run left behind) words it (``explain``). ``SystemExit`` (``--help``) and other
``BaseException``s go through untouched.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from types import MappingProxyType

from .errors import UsageError, UserError

# What a shell reports for a process Ctrl-C ended (128 + SIGINT's number).
INTERRUPTED = 128 + signal.SIGINT
# Python's own status for an uncaught exception: a caller sees the same number as before.
UNEXPECTED = 1
NO_STATUSES: Mapping[type, int] = MappingProxyType({})

Explain = Callable[[BaseException], "UserError | None"]


class Parser(argparse.ArgumentParser):
    """argparse, with its complaints as a ``UsageError`` (one ``Error:`` line, status 2)."""

    def error(self, message: str):
        raise UsageError(f"{message}; see --help")


def line_for(exc: BaseException) -> str:
    """What went wrong, in one line, for any exception."""
    if isinstance(exc, UserError):
        text = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    elif isinstance(exc, OSError):  # a full disk, a broken pipe, a network failure
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        text = f"{exc.strerror or exc}{where}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    # One line, whatever the message holds: a newline would start a line that looks like output.
    return " ".join(text.split("\n"))


def status_for(exc: BaseException, statuses: Mapping[type, int] = NO_STATUSES) -> int:
    """The exit status for ``exc``: the nearest class ``statuses`` maps, else its own."""
    for kind in type(exc).__mro__:
        if kind in statuses:
            return statuses[kind]
    if isinstance(exc, UserError):
        return exc.status
    return INTERRUPTED if isinstance(exc, KeyboardInterrupt) else UNEXPECTED


def to_stderr(line: str) -> None:
    """Write one line on stderr, after whatever is already buffered there."""
    try:
        sys.stderr.flush()
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone: the exit status still tells
        pass


def run(
    command: Callable[[], int],
    *,
    statuses: Mapping[type, int] = NO_STATUSES,
    explain: Explain | None = None,
    shield: Callable[[], AbstractContextManager] = nullcontext,
    say: Callable[[str], None] = to_stderr,
) -> int:
    """Run ``command`` and return its exit status; a failure is one line and its status.

    ``statuses`` maps exception classes to this command's statuses (the nearest class in an
    exception's MRO wins over the error's own status); ``explain`` may word a failure itself,
    returning a ``UserError`` whose message and status are used as they are (None: not its
    own); ``shield`` is held while the failure is worded and said (e.g. stop signals held
    back); ``say`` writes the line (default: stderr).
    """
    try:
        return command()
    except BaseException as exc:  # one line, never a traceback
        with shield():
            told = explain(exc) if explain is not None else None
            if told is not None:
                say(f"{told.heading}: {line_for(told)}")
                return told.status
            if not isinstance(exc, (Exception, KeyboardInterrupt)):
                raise  # SystemExit (--help) and the like: theirs to end with
            heading = exc.heading if isinstance(exc, UserError) else UserError.heading
            say(f"{heading}: {line_for(exc)}")
            return status_for(exc, statuses)
