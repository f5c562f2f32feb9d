"""The one error the outcomes command stops with."""

from ..errors import UserError


class OutcomesError(UserError):
    """Something the person running the command must fix; printed as one ``Error:`` line."""

    status = 2  # "could not be done", as cli.py's docstring lists the statuses
