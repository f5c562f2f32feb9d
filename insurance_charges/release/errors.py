"""The one error a release stops with."""


class ReleaseError(RuntimeError):
    """Stops the release; the message is one line: what is wrong, and what to do about it."""
