"""The one error a release stops with."""

from ..errors import UserError


class ReleaseError(UserError):
    """Stops the release; the message is one line: what is wrong, and what to do about it."""

    status = 2  # "not released", whatever the reason (docs/deploy/elastic-beanstalk.md)
