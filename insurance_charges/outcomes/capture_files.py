"""Captured estimates read from JSON-lines files: one file, or a tree partitioned by hour.

A capture directory looks like SageMaker Data Capture's: ``PREFIX/YYYY/MM/DD/HH/*.jsonl``. Every
``.jsonl`` file under it is read, in path order; each line is checked against the capture format
(core/captures.py). A line that fails is a reject with its file and line number, never dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.captures import KEYS, check_capture
from ..core.strict_json import parse_json
from .errors import OutcomesError

# A capture line is about 300 bytes; a line 200 times that is not one, and is refused before
# it is parsed, so a hostile file costs no more memory than this per line.
LONGEST_LINE = 64 * 1024
BLOCK = 1024 * 1024  # the rest of an overlong line is skipped this many bytes at a time
SUFFIX = ".jsonl"
# Where each row of the joined output, the rejects and the unbilled captures came from.
FILE, LINE, PROBLEM, INPUT = "file", "line", "problem", "input"
SHOWN = 3  # places a message names before it says "and N more"


@dataclass
class Captures:
    """The checked capture records (a frame with their file and line) and the rejected lines."""

    records: pd.DataFrame
    rejects: list[dict] = field(default_factory=list)
    files: int = 0
    repeats: int = 0  # identical records read again (a re-shipped file): kept once, listed


def capture_files(location: str) -> list[Path]:
    """The ``.jsonl`` files at ``location``: the file itself, or every one under the directory."""
    if location.startswith("s3://"):
        raise OutcomesError(f"{location}: captures are read from local paths only for now (the "
                            "project's S3 client is not there yet); copy them with `aws s3 sync "
                            f"{location} DIR` and pass DIR")
    path = Path(location)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise OutcomesError(f"--captures {location}: no such file or directory")
    found = []
    # os.walk does not follow links to directories: a link loop cannot make the walk endless.
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(names) if name.endswith(SUFFIX))
    files = [f for f in found if f.is_file()]
    if not files:
        raise OutcomesError(f"--captures {location}: no {SUFFIX} files in it or below it; "
                            "captures are JSON lines partitioned as YYYY/MM/DD/HH/*.jsonl")
    return files


def _reject(file: Path, line: int, inference_id: str | None, problem: str) -> dict:
    return {INPUT: "captures", FILE: str(file), LINE: line, "inference_id": inference_id,
            PROBLEM: problem}


def _lines(fh):
    """Each line with its number; an overlong line comes back as None, its rest skipped."""
    number = 0
    while True:
        raw = fh.readline(LONGEST_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > LONGEST_LINE:
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(BLOCK)
            yield number, None
        else:
            yield number, raw


def _parsed(raw: bytes):
    """The line's JSON value, or raise ValueError saying why it is not JSON."""
    try:
        return parse_json(raw, raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except RecursionError:  # [[[[... nested deeper than Python's stack
        raise ValueError("not a JSON object (nested too deeply)") from None


def read_captures(files: list[Path]) -> Captures:
    """Every capture line of ``files``: checked records (repeats kept once) and rejects."""
    rows, rejects = [], []
    for path in files:
        try:
            with open(path, "rb") as fh:
                for number, raw in _lines(fh):
                    if raw is None:
                        rejects.append(_reject(path, number, None, f"the line is longer than "
                                                                   f"{LONGEST_LINE // 1024} KiB"))
                        continue
                    if not raw.strip():
                        continue  # an empty line holds no record
                    try:
                        obj = _parsed(raw)
                    except ValueError as exc:
                        rejects.append(_reject(path, number, None, f"not JSON: {exc}"))
                        continue
                    record, problem = check_capture(obj)
                    if problem:
                        some_id = obj.get("inference_id") if isinstance(obj, dict) else None
                        rejects.append(_reject(path, number, some_id if isinstance(
                            some_id, str) and len(some_id) <= 200 else None, problem))
                        continue
                    rows.append({**record, FILE: str(path), LINE: number})
        except OSError as exc:
            raise OutcomesError(f"cannot read {path}: {exc.strerror or exc}") from None
    frame = pd.DataFrame(rows, columns=[*KEYS, FILE, LINE])
    captures = Captures(frame, rejects, len(files))
    _settle_repeats(captures)
    return captures


def _settle_repeats(captures: Captures) -> None:
    """One record per inference id: identical repeats kept once, conflicting ones rejected."""
    frame = captures.records
    repeated = frame["inference_id"].duplicated(keep=False)
    if not repeated.any():
        return
    same = frame.duplicated(subset=list(KEYS), keep="first")  # an exact copy of an earlier one
    first_at = {}
    for row in frame[repeated & ~same].itertuples(index=False):
        first_at.setdefault(row.inference_id, []).append(row)
    conflicting = {i for i, rows in first_at.items() if len(rows) > 1}
    distinct = {(r.file, r.line) for rows in first_at.values() for r in rows}
    for row in frame[repeated].itertuples(index=False):
        first = first_at[row.inference_id][0]
        where = f"{first.file} line {first.line}"
        if row.inference_id in conflicting:
            rivals = first_at[row.inference_id]
            # A few places name the conflict: all of them, on every line, would be quadratic.
            others = [f"{r.file} line {r.line}" for r in rivals[:SHOWN + 1]
                      if (r.file, r.line) != (row.file, row.line)][:SHOWN]
            more = len(rivals) - ((row.file, row.line) in distinct) - len(others)
            named = "; ".join(others) + (f" and {more} more" if more > 0 else "")
            captures.rejects.append(_reject(Path(row.file), row.line, row.inference_id,
                                            "other captures have this inference_id with other "
                                            f"values ({named}): which was billed is unknown"))
        elif (row.file, row.line) != (first.file, first.line):
            captures.repeats += 1
            captures.rejects.append(_reject(Path(row.file), row.line, row.inference_id,
                                            f"repeats {where} exactly (kept once)"))
    keep = ~repeated | (~same & ~frame["inference_id"].isin(conflicting))
    captures.records = frame[keep].reset_index(drop=True)
