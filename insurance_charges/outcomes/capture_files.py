"""Captured estimates read from JSON-lines files: one file, or a tree partitioned by hour.

A capture directory looks like SageMaker Data Capture's: ``PREFIX/YYYY/MM/DD/HH/*.jsonl``. Every
``.jsonl`` file under it is read, in path order; each line is checked against the capture format
(core/captures.py). A line that fails is a reject with its file and line number, never dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson
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


def _flat_and_whole(raw: bytes, value) -> bool:
    """True when orjson's value of a line is exact: a flat object that repeats no key.

    orjson keeps a repeated key's last value silently. Each member of a flat object has one
    colon outside strings, so the line's colons are the members' plus those inside keys and
    text values, exactly, when no key repeats (a repeat adds a member the object lacks). An
    escape could hide a colon (\\u003a), so a line with a backslash is not judged here.
    """
    if not isinstance(value, dict) or b"\\" in raw:
        return False
    inside = 0
    for key, item in value.items():
        if isinstance(item, (dict, list)):
            return False
        inside += key.count(":") + (item.count(":") if isinstance(item, str) else 0)
    return raw.count(b":") == len(value) + inside


def _parsed(raw: bytes):
    """The line's JSON value, or raise ValueError saying why it is not JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:  # the capture writer's lines: orjson's answer, when it is exact (most of the cost)
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # the strict parser below says why
    else:
        if _flat_and_whole(raw, value):
            return value
    try:
        return parse_json(raw, text)
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
                        rejects.append(
                            _reject(
                                str(path),
                                number,
                                None,
                                f"the line is longer than {LONGEST_LINE // 1024} KiB",
                            )
                        )
                        continue
                    if not raw.strip():
                        continue  # an empty line holds no record
                    try:
                        obj = _parsed(raw)
                    except ValueError as exc:
                        rejects.append(_reject(str(path), number, None, f"not JSON: {exc}"))
                        continue
                    record, problem = check_capture(obj)
                    if record is None:
                        some_id = obj.get("inference_id") if isinstance(obj, dict) else None
                        rejects.append(
                            _reject(
                                str(path),
                                number,
                                some_id
                                if isinstance(some_id, str) and len(some_id) <= 200
                                else None,
                                str(problem),
                            )
                        )
                        continue
                    rows.append({**record, FILE: str(path), LINE: number})
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
