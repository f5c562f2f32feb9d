"""The one error the outcomes command stops with."""


class OutcomesError(Exception):
    """Something the person running the command must fix; printed as one ``Error:`` line."""
