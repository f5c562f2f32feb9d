"""Schema-valid records for tests and the benchmark: the schema's corners, then random ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from insurance_charges.serving.fastpath.parity import corner_records, random_records


def valid_records(
    count: int, seed: int = 0, ranges: Mapping[str, Mapping] | None = None
) -> list[dict[str, Any]]:
    """``count`` valid records, corners first; numbers within ``ranges`` if given."""
    corners = corner_records(ranges)[:count]
    return corners + random_records(count - len(corners), seed, ranges)
