"""Money as people read it: one formatter for the pages and the charts."""

from __future__ import annotations


def money(value: float) -> str:
    """Whole dollars with thousands separators: "$19,270"."""
    return f"${value:,.0f}"


def about(value: float) -> str:
    """Dollars to the nearest hundred: a likely range is not precise to the dollar."""
    return money(round(value, -2))
