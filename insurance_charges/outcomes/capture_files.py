"""Captured estimates read from JSON-lines files: one file, or a tree partitioned by hour.

A capture directory looks like SageMaker Data Capture's: ``PREFIX/YYYY/MM/DD/HH/*.jsonl``. Every
``.jsonl`` file under it is read, in path order, a block of whole lines at a time through the
one tabular reader (``tables``: each line's value exactly as the API's strict parser gives it);
each line is checked against the capture format (core/captures.py). A line that fails is a
reject with its file and line number, never dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.captures import KEYS, check_capture
from ..tables.json_lines import NotJsonLine, read_json_lines
from ..tables.lines import LineBlock, line_blocks
from .errors import OutcomesError

# A capture line is about 300 bytes; a line 200 times that is not one, and is refused before
# it is parsed, so a hostile file costs no more memory than this per line.
LONGEST_LINE = 64 * 1024
# Bytes read at a time: about 3,000 capture lines read in bulk, and what a file costs in memory
# (with one line as long as LONGEST_LINE), however large the file.
BLOCK = 1024 * 1024
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
        raise OutcomesError(
            f"{location}: captures are read from local paths only for now (the "
            "project's S3 client is not there yet); copy them with `aws s3 sync "
            f"{location} DIR` and pass DIR"
        )
    path = Path(location)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise OutcomesError(f"--captures {location}: no such file or directory")
    found: list[Path] = []
    # os.walk does not follow links to directories: a link loop cannot make the walk endless.
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(names) if name.endswith(SUFFIX))
    files = [f for f in found if f.is_file()]
    if not files:
        raise OutcomesError(
            f"--captures {location}: no {SUFFIX} files in it or below it; "
            "captures are JSON lines partitioned as YYYY/MM/DD/HH/*.jsonl"
        )
    return files


def _reject(file: str, line: int, inference_id: str | None, problem: str) -> dict:
    return {
        INPUT: "captures",
        FILE: file,
        LINE: line,
        "inference_id": inference_id,
        PROBLEM: problem,
    }


def _not_json(why: NotJsonLine) -> str:
    """A line that is not JSON, worded as the capture rejects say it."""
    if why.kind == "utf8":
        return "not JSON: not UTF-8 text"
    if why.kind == "deep":
        return "not JSON: not a JSON object (nested too deeply)"
    return f"not JSON: {why.detail}"


def _read_block(block: LineBlock, file: str, rows: list[dict], rejects: list[dict]) -> None:
    """A block's capture lines: checked records onto ``rows``, refused lines onto ``rejects``
    (in line order)."""
    refused = [
        (n, _reject(file, n, None, f"the line is longer than {LONGEST_LINE // 1024} KiB"))
        for n in block.overlong
    ]
    got = read_json_lines(block.data, block.first)  # blank lines are left out
    not_json = {i for i, _ in got.problems}
    for i, (line, obj) in enumerate(
        zip(got.lines.tolist(), got.exact_values(got.again()), strict=True)
    ):
        if i in not_json:
            refused.append((line, _reject(file, line, None, _not_json(got.why_not(i)))))
            continue
        record, problem = check_capture(obj)
        if record is None:
            some_id = obj.get("inference_id") if isinstance(obj, dict) else None
            shown_id = some_id if isinstance(some_id, str) and len(some_id) <= 200 else None
            refused.append((line, _reject(file, line, shown_id, str(problem))))
            continue
        rows.append({**record, FILE: file, LINE: line})
    rejects.extend(reject for _, reject in sorted(refused, key=lambda found: found[0]))


def read_captures(files: list[Path]) -> Captures:
    """Every capture line of ``files``: checked records (repeats kept once) and rejects."""
    rows: list[dict] = []
    rejects: list[dict] = []
    for path in files:
        try:
            with open(path, "rb") as fh:
                for block in line_blocks(fh, LONGEST_LINE, BLOCK):
                    _read_block(block, str(path), rows, rejects)
        except OSError as exc:
            raise OutcomesError(f"cannot read {path}: {exc.strerror or exc}") from None
    frame = pd.DataFrame(rows, columns=[*KEYS, FILE, LINE])
    captures = Captures(frame, rejects, len(files))
    _settle_repeats(captures)
    return captures


# A capture that equals another in all but its time is the same estimate made again: the same
# message or file delivered again (the Kafka consumer, the EB worker, the scorer rerun with its
# run id) or a request retried with its id. Which of them was billed does not matter.
SAME_ESTIMATE = [key for key in KEYS if key != "time"]


def _settle_repeats(captures: Captures) -> None:
    """One record per inference id: repeats of one estimate kept once (the earliest),
    conflicting ones rejected."""
    frame = captures.records
    if not frame["inference_id"].duplicated().any():
        return
    # Earliest first (stable: file order among equal times), so the copy kept is the first made.
    frame = frame.sort_values("time", kind="stable")
    repeated = frame["inference_id"].duplicated(keep=False)
    same = frame.duplicated(subset=SAME_ESTIMATE, keep="first")  # an earlier one made again
    distinct = frame[repeated & ~same].groupby("inference_id", sort=False)
    versions = distinct.size()
    conflicting = set(versions[versions > 1].index)
    # Said once per id, naming a few places: every place on every line would be quadratic.
    places = {
        i: "; ".join(f"{f} line {n}" for f, n in zip(g[FILE][:SHOWN], g[LINE][:SHOWN], strict=True))
        + (f" and {len(g) - SHOWN} more" if len(g) > SHOWN else "")
        for i, g in distinct
        if i in conflicting
    }
    first = {
        i: f"{g[FILE].iloc[0]} line {g[LINE].iloc[0]}" for i, g in distinct if i not in conflicting
    }
    rows = frame[repeated]
    for inference_id, file, line, copy in zip(
        rows["inference_id"], rows[FILE], rows[LINE], same[repeated], strict=True
    ):
        if inference_id in conflicting:
            captures.rejects.append(
                _reject(
                    file,
                    line,
                    inference_id,
                    (
                        f"{versions[inference_id]} captures have this inference_id with different "
                        f"values ({places[inference_id]}): which was billed is unknown"
                    ),
                )
            )
        elif copy:
            captures.repeats += 1
            captures.rejects.append(
                _reject(
                    file,
                    line,
                    inference_id,
                    f"repeats {first[inference_id]}, the same estimate (kept once, the earliest)",
                )
            )
    keep = ~repeated | (~same & ~frame["inference_id"].isin(conflicting))
    captures.records = frame[keep].sort_index().reset_index(drop=True)
