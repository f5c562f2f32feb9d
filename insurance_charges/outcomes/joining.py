"""``join``: each bill matched to the estimate it was for, by inference id.

A bill whose id no capture has, a bill for an id billed twice, and a bill dated before its
estimate are rejects; a capture with no accepted bill is listed as unbilled (bills arrive
weeks later, so that is expected, but it is counted): every capture is joined or listed.
JOINED, its rejects file and its unbilled file are written side by side, in JOINED's format,
each to a temporary name first and then renamed, so a run that fails leaves the earlier ones
as they were.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.captures import JOINED_KEYS
from .bills import BILLED_AT, ID, Bills
from .capture_files import FILE, INPUT, LINE, PROBLEM, Captures
from .errors import OutcomesError

JOINED_COLUMNS = JOINED_KEYS  # the core spells them once: retraining reads the same names
REJECT_COLUMNS = (INPUT, FILE, LINE, ID, PROBLEM)
UNBILLED_COLUMNS = (ID, "time", "model_version", FILE, LINE)
FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class Places:
    """Where the joined records, the rejects and the unbilled captures are written."""

    joined: Path
    rejects: Path
    unbilled: Path

    @classmethod
    def beside(cls, joined: str) -> Places:
        """JOINED and, beside it, ``STEM.rejects.EXT`` and ``STEM.unbilled.EXT``."""
        path = Path(joined)
        if path.suffix.lower() not in FORMATS:
            raise OutcomesError(f"-o {joined}: cannot tell its format; name it .csv or .parquet")
        return cls(
            path,
            path.with_name(f"{path.stem}.rejects{path.suffix}"),
            path.with_name(f"{path.stem}.unbilled{path.suffix}"),
        )

    def check(self, inputs: list[Path]) -> None:
        """Refuse outputs that would overwrite an input, or land in no directory."""
        taken = {p.resolve() for p in inputs}
        for what, path in (
            ("-o", self.joined),
            ("the rejects file", self.rejects),
            ("the unbilled file", self.unbilled),
        ):
            if path.resolve() in taken:
                raise OutcomesError(f"{what} {path} would overwrite an input; choose another -o")
            if not path.parent.is_dir():
                raise OutcomesError(f"{what} {path}: its directory {path.parent} does not exist")
            if path.exists() and not path.is_file():
                raise OutcomesError(f"{what} {path} exists and is not a file")


@dataclass(frozen=True)
class Joined:
    """What a join produced: the frames it writes and its counts."""

    records: pd.DataFrame
    rejects: pd.DataFrame
    unbilled: pd.DataFrame
    captures: int
    bills: int
    repeats: int

    def summary(self, places: Places) -> str:
        """The one line the command prints: every count, and where the lists are."""
        kinds = self.rejects[INPUT].value_counts()
        capture_rejects = int(kinds.get("captures", 0)) - self.repeats
        return (
            f"joined {len(self.records):,} of {self.captures:,} captures with "
            f"{self.bills:,} bills; rejected {capture_rejects:,} capture lines and "
            f"{int(kinds.get('actuals', 0)):,} bills (in {places.rejects}); "
            f"{self.repeats:,} repeated captures kept once; {len(self.unbilled):,} "
            f"captures without a bill yet (in {places.unbilled})"
        )

    @property
    def rejected(self) -> int:
        """Lines refused (repeats kept once are listed but not refused)."""
        return len(self.rejects) - self.repeats


def _reject(row, problem: str) -> dict:
    return {
        INPUT: "actuals",
        FILE: row.file,
        LINE: int(row.line),
        ID: row.inference_id,
        PROBLEM: problem,
    }


def join(captures: Captures, bills: Bills, actuals: str) -> Joined:
    """Match each good bill to its capture; list every bill and capture that did not match."""
    records, rows = captures.records, bills.rows.assign(**{FILE: actuals})
    rejects = [*captures.rejects, *bills.rejects]
    refused_ids = {r[ID] for r in captures.rejects if r[ID] is not None}
    billed_twice = rows[ID].duplicated(keep=False)
    lines_of = rows[billed_twice].groupby(ID)[LINE].apply(list).to_dict()
    for row in rows[billed_twice].itertuples(index=False):
        lines = lines_of[row.inference_id]
        rejects.append(
            _reject(
                row,
                f"{len(lines)} bills have this inference_id (lines "
                f"{', '.join(map(str, lines[:3]))}"
                f"{' ...' if len(lines) > 3 else ''}); send one bill per "
                "estimate",
            )
        )
    rows = rows[~billed_twice]
    known = rows[ID].isin(records[ID])
    for row in rows[~known].itertuples(index=False):
        rejects.append(
            _reject(
                row,
                "its capture was rejected (see the captures' lines with this id)"
                if row.inference_id in refused_ids
                else "no capture has this inference_id",
            )
        )
    merged = records.merge(
        rows[known].rename(columns={FILE: "bill_file", LINE: "bill_line"}),
        on=ID,
        how="inner",
        validate="one_to_one",
    )
    early = merged[BILLED_AT].notna() & (merged[BILLED_AT] < merged["time"])
    for row in merged[early].itertuples(index=False):
        rejects.append(
            {
                INPUT: "actuals",
                FILE: row.bill_file,
                LINE: int(row.bill_line),
                ID: row.inference_id,
                PROBLEM: f"billed_at {row.billed_at.isoformat()} "
                f"is before the estimate was made ({row.time.isoformat()})",
            }
        )
    merged = merged[~early]
    # Every capture is joined or listed: no bill yet, or only bills that were rejected.
    unbilled = records[~records[ID].isin(merged[ID])]
    return Joined(
        merged.loc[:, list(JOINED_COLUMNS)].reset_index(drop=True),
        pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)),
        unbilled.loc[:, list(UNBILLED_COLUMNS)].reset_index(drop=True),
        len(records),
        bills.read,
        captures.repeats,
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    """Write to a temporary name beside ``path``; return it (renamed once all are written)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix.lower() == ".csv":
        frame.to_csv(temporary, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    else:
        frame.to_parquet(temporary, index=False)
    return temporary


def write(joined: Joined, places: Places) -> None:
    """Write all three files, or (on a failure) none of them."""
    written = []
    try:
        for frame, path in (
            (joined.records, places.joined),
            (joined.rejects, places.rejects),
            (joined.unbilled, places.unbilled),
        ):
            written.append((_write(frame, path), path))
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, path in written:
        os.replace(temporary, path)
