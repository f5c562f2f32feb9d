"""What an /invocations body reader answers, as one comparable value (the readers' tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from insurance_charges.core.estimates import InvalidRecords
from insurance_charges.platforms.sagemaker.decoding import Unreadable


def reader_outcome(
    read: Callable[[bytes], Any], data: bytes, accepted: Callable[[Any], tuple]
) -> tuple:
    """``read(data)`` as ("400" | "422", detail, problems, total), or ``accepted`` of its result."""
    try:
        got = read(data)
    except Unreadable as exc:
        return "400", exc.detail, [(e.pointer, e.message) for e in exc.errors], exc.errors.total
    except InvalidRecords as exc:
        return "422", exc.detail, [(e.pointer, e.message) for e in exc.errors], exc.total
    return accepted(got)
