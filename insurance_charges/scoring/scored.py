"""What scoring one chunk takes (the run's ``Plan``) and gives (its ``Result``)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Plan:
    """What every chunk of one run needs to know."""

    input_format: str
    output_format: str
    rejects_format: str
    # CSV/Parquet input: its columns. JSON lines: the columns a CSV or Parquet output gets.
    columns: tuple[str, ...]
    fields: dict[str, str] = dc_field(default_factory=dict)  # field -> input column
    fast: bool = True  # the column-at-a-time fast path (tests turn it off to compare)
    inert: bool = True  # CSV text cells a spreadsheet would evaluate are quoted (cells.py)
    # Each scored row's inference id is this, a hyphen and the row's line (formats.RUN_ID).
    run_id: str = dc_field(kw_only=True)
    # With CAPTURE_URI set, the share of rows captured (CAPTURE_PERCENT); 0: no capture.
    capture_percent: float = dc_field(default=0.0, kw_only=True)


@dataclass
class Result:
    """A scored chunk: counts, the output rows and the rejects, ready to write."""

    rows: int = 0
    scored: int = 0
    rejected: int = 0
    problems: int = 0
    warnings: int = 0
    unreadable: int = 0  # rejected rows counted from text that is not a row, line by line
    first_unreadable: int | None = None  # where the first such text starts
    output: Any = None  # bytes (CSV, JSON lines) or a pyarrow.Table (Parquet)
    rejects: Any = None  # problems.ChunkRejects, or None when nothing was rejected
    size: int = 0  # the input bytes the chunk held (the command's progress counts them)
    captured: bytes = b""  # the scored rows' capture lines (Plan.capture_percent of them)
    captured_records: int = 0
    captured_at: datetime | None = None  # when they were estimated (the lines' time)
