"""The bills that arrived: a CSV or Parquet file of ``inference_id``, ``charges``, ``billed_at``.

``billed_at`` is optional. Each row is checked; a row that fails is a reject with its line (a
CSV's own line number, the header being line 1; a Parquet file's row number from 1), never
dropped. A file that cannot be read as a whole (no such file, a missing column, a column of the
wrong type) is one error instead.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.captures import INFERENCE_ID, shown
from .capture_files import FILE, INPUT, LINE, PROBLEM
from .errors import OutcomesError

ID, CHARGES, BILLED_AT = "inference_id", "charges", "billed_at"
REQUIRED = (ID, CHARGES)
# A yearly bill above ten million dollars is a unit or typing mistake (cents for dollars, a
# digit too many): the largest in the training data is $63,770.
LARGEST_BILL = 10_000_000
HEADER_BYTES = 64 * 1024  # a header longer than this is not one of a bills file


@dataclass
class Bills:
    """The bills that passed their checks (``inference_id``, ``charges``, ``billed_at``,
    ``line``) and the rows that did not."""

    rows: pd.DataFrame
    rejects: list[dict] = field(default_factory=list)
    read: int = 0


def _format(location: str) -> str:
    suffix = Path(location).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise OutcomesError(
            f"--actuals {location}: cannot tell its format; name it .csv or .parquet"
        )
    return suffix[1:]


def _missing(columns: list[str], location: str) -> None:
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise OutcomesError(
            f"--actuals {location}: column {repeated[0]!r} appears more than once; keep one"
        )
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise OutcomesError(
            f"--actuals {location}: no {' or '.join(missing)} column (its "
            f"columns: {', '.join(map(str, columns[:10])) or 'none'}); a bills "
            "file has inference_id and charges, and optionally billed_at"
        )


def _read_csv(location: str) -> tuple[pd.DataFrame, int]:
    with open(location, "rb") as fh:
        head = fh.readline(HEADER_BYTES)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OutcomesError(f"--actuals {location}: its header is not UTF-8 text") from None
    columns = next(csv.reader(io.StringIO(text)), [])
    _missing(columns, location)
    wanted = [c for c in (*REQUIRED, BILLED_AT) if c in columns]
    try:
        frame = pd.read_csv(
            location, dtype=str, keep_default_na=False, usecols=wanted, encoding="utf-8-sig"
        )
    except UnicodeDecodeError:
        raise OutcomesError(f"--actuals {location}: not UTF-8 text") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise OutcomesError(
            f"--actuals {location}: not a readable CSV file ({str(exc).strip().splitlines()[-1]})"
        ) from None
    return frame, 2  # the header is line 1


def _read_parquet(location: str) -> tuple[pd.DataFrame, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(location)
    except (pa.ArrowException, OSError) as exc:
        raise OutcomesError(f"--actuals {location}: not a readable Parquet file ({exc})") from None
    _missing(list(schema.names), location)
    text = (pa.types.is_string, pa.types.is_large_string)
    kinds = {
        ID: (text, "text"),
        CHARGES: ((pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal), "numbers"),
        BILLED_AT: (
            (pa.types.is_timestamp, pa.types.is_date, *text),
            "timestamps, dates or ISO 8601 text",
        ),
    }
    wanted = [c for c in (*REQUIRED, BILLED_AT) if c in schema.names]
    for name in wanted:
        kind = schema.field(name).type
        tests, what = kinds[name]
        if not any(test(kind) for test in tests):
            raise OutcomesError(
                f"--actuals {location}: column {name} holds {kind}; it must hold {what}"
            )
    try:
        table = pq.read_table(location, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise OutcomesError(f"--actuals {location}: not a readable Parquet file ({exc})") from None
    frame = table.to_pandas()
    if CHARGES in frame and frame[CHARGES].dtype == object:  # decimals
        frame[CHARGES] = frame[CHARGES].astype("float64")
    return frame, 1  # rows are numbered from 1


def read_bills(location: str) -> Bills:
    """Every bill of the file, checked; the good ones and the rejects."""
    fmt = _format(location)
    if not Path(location).is_file():
        raise OutcomesError(f"--actuals {location}: no such file")
    try:
        frame, first = _read_csv(location) if fmt == "csv" else _read_parquet(location)
    except OSError as exc:
        raise OutcomesError(f"--actuals {location}: {exc.strerror or exc}") from None
    lines = np.arange(first, first + len(frame))
    ids = frame[ID].astype(object)
    charges = pd.to_numeric(frame[CHARGES], errors="coerce").astype("float64")
    problems = pd.Series("", index=frame.index, dtype=object)

    bad_id = ~ids.map(lambda v: isinstance(v, str) and INFERENCE_ID.fullmatch(v) is not None)
    problems[bad_id] = [
        f"inference_id must be 1 to 200 letters, digits or ._:@/+=- ; got {shown(v)}"
        for v in ids[bad_id]
    ]
    finite = np.isfinite(charges.to_numpy())
    bad_charge = ~finite | (charges < 0) | (charges > LARGEST_BILL)
    raw = frame[CHARGES]
    problems[bad_charge] = [
        _and(p, f"charges must be dollars from 0 to {LARGEST_BILL:,}; got {shown(v)}")
        for p, v in zip(problems[bad_charge], raw[bad_charge], strict=True)
    ]
    billed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    if BILLED_AT in frame:
        billed, bad_time = _billed_at(frame[BILLED_AT])
        problems[bad_time] = [
            _and(p, f"billed_at must be an ISO 8601 date or time, or empty; got {shown(v)}")
            for p, v in zip(problems[bad_time], frame[BILLED_AT][bad_time], strict=True)
        ]
    bad = problems != ""
    rejects = [
        {
            INPUT: "actuals",
            FILE: location,
            LINE: int(line),
            ID: i if isinstance(i, str) and INFERENCE_ID.fullmatch(i) else None,
            PROBLEM: p,
        }
        for line, i, p in zip(lines[bad], ids[bad], problems[bad], strict=True)
    ]
    good = pd.DataFrame(
        {
            ID: ids[~bad].astype(str),
            CHARGES: charges[~bad],
            BILLED_AT: billed[~bad],
            LINE: lines[~bad],
        }
    )
    return Bills(good.reset_index(drop=True), rejects, len(frame))


def _and(earlier: str, problem: str) -> str:
    return f"{earlier}; {problem}" if earlier else problem


def _billed_at(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as UTC times (a date is its midnight; no zone is UTC) and where it is bad."""
    if pd.api.types.is_datetime64_any_dtype(column):
        times = (
            column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        )
        return times, pd.Series(False, index=column.index)
    text = column.map(
        lambda v: v if isinstance(v, str) else (v.isoformat() if hasattr(v, "isoformat") else v)
    )
    empty = text.map(
        lambda v: (
            v is None
            or (isinstance(v, str) and not v.strip())
            or (isinstance(v, float) and np.isnan(v))
        )
    )
    times = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    given = text[~empty]
    if len(given):
        times[~empty] = pd.to_datetime(
            given.map(lambda v: v if isinstance(v, str) else ""),
            utc=True,
            errors="coerce",
            format="ISO8601",
        )
    return times, ~empty & times.isna()
