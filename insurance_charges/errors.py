"""The one base of every error a person or a system can act on, and the usage error.

It sits beneath every layer, the core included: it imports nothing, so any module may raise
one. A command shows it as one line, ``Error: <message>``, and ends with its ``status``
(``cli_runner.run``); the HTTP layer keeps its own problem documents (``web/errors.py``).
"""

from __future__ import annotations

# sysexits.h's EX_USAGE is 64, but argparse exits 2 for a bad command line, and every command
# here has always used 2 for "fix how it was called": one number for one meaning.
USAGE = 2


class UserError(Exception):
    """Something a person or a system can fix; the message is the one line to show.

    ``status`` is the exit status a command ends with (a subclass sets its own; one
    instance may carry another). ``heading`` is the word before the message.
    """

    status = 1  # a command's plain "it failed", as an uncaught exception would have ended it
    heading = "Error"

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class UsageError(UserError):
    """The command was called in a way it cannot run: an option, an argument, a format."""

    status = USAGE
