"""The capture record: what the service keeps of one estimate, as one JSON line (no Flask here).

The capture writer (insurance_charges/capture/) writes one line per estimate with
``capture_line``; ``python -m insurance_charges.outcomes join`` reads them back with
``check_capture``. Both use this module, so the format is spelled out once:

``{"inference_id": "...", "time": "2026-12-07T13:52:28.123456Z", "model_version": "...",
"path": "/api/v1/predict", "age": 19, "sex": "female", "bmi": 27.9, "children": 0,
"smoker": "yes", "region": "southwest", "estimate": 19270.25, "low": 17327.01,
"high": 22846.89}``

``low`` and ``high`` are the likely range (both null for a model whose card has none).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

import orjson

from .schema import FIELD_NAMES, FIELDS, check_value

# The request id's characters (web/logs.py allows 1 to 128 of them), with room for a batch
# position appended to it ("-9999"): an id derived from X-Request-ID fits.
INFERENCE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
# A model version or a URL path longer than this is not one the service wrote.
LONGEST_TEXT = 200
# A billion dollars: far beyond any yearly estimate, and small enough that squared errors of
# such numbers stay finite (1e18) when the report adds them up.
LARGEST_AMOUNT = 1e9
TIME_TEXT = 40  # "2026-12-07T13:52:28.123456+00:00" is 32 characters

# CAPTURE_PERCENT is kept in hundredths of a percent: sampling buckets run 0 to 9,999.
SAMPLING_BUCKETS = 10_000

KEYS: tuple[str, ...] = (
    "inference_id",
    "time",
    "model_version",
    "path",
    *FIELD_NAMES,
    "estimate",
    "low",
    "high",
)
# The joined record ``outcomes join`` writes: a capture without its path, with the bill that
# arrived for it. Retraining reads the same names (training/data_checks.py), so both sides
# spell them from here.
JOINED_KEYS: tuple[str, ...] = (
    *(key for key in KEYS if key != "path"),
    "charges",
    "billed_at",
)


class CaptureRecord(TypedDict):
    """One captured estimate as checked: ``time`` parsed (UTC), inputs typed as the schema's."""

    inference_id: str
    time: datetime
    model_version: str
    path: str
    age: int
    sex: str
    bmi: float
    children: int
    smoker: str
    region: str
    estimate: float
    low: float | None
    high: float | None


def inference_ids(request_id: str, count: int, batch: bool) -> list[str]:
    """The ids of one answer's estimates: the request id for one record, ``R-0``, ``R-1``, ...
    for a batch (in input order)."""
    return [f"{request_id}-{i}" for i in range(count)] if batch else [request_id]


def sampling_bucket(inference_id: str) -> int:
    """Where an id falls in 0 to 9,999: the first 8 bytes of its UTF-8's SHA-256, big-endian,
    modulo 10,000; a client can compute it to know whether its estimate was captured."""
    digest = hashlib.sha256(inference_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % SAMPLING_BUCKETS


def is_sampled(inference_id: str, percent: float) -> bool:
    """Whether CAPTURE_PERCENT ``percent`` captures this id: its bucket is below percent x 100."""
    return sampling_bucket(inference_id) < round(percent * SAMPLING_BUCKETS / 100)


def utc_text(moment: datetime) -> str:
    """A UTC time as the capture writes it: ISO 8601 with microseconds and a Z."""
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"{moment!r} is not a UTC time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def capture_line(record: CaptureRecord) -> bytes:
    """One record as its JSON line (keys in the documented order, a newline at the end)."""
    fields: Mapping[str, object] = record  # a TypedDict, read here by its keys' names
    body = {key: fields[key] for key in KEYS}
    body["time"] = utc_text(record["time"])
    return orjson.dumps(body) + b"\n"


def shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."  # a hostile value can be megabytes


def _text(obj: dict, key: str, longest: int = LONGEST_TEXT) -> str | None:
    value = obj[key]
    return value if isinstance(value, str) and 0 < len(value) <= longest else None


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # A huge JSON integer would overflow float(): compare before converting.
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > LARGEST_AMOUNT:
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > TIME_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.utcoffset() == timedelta(0) else None


def _problems(obj: dict, out: dict) -> list[str]:
    problems = [f"{shown(key)} appears more than once" for key in getattr(obj, "repeated", ())]
    unknown = [key for key in obj if key not in KEYS]
    if unknown:
        problems.append(f"unknown key {shown(unknown[0])}; a capture record has " + ", ".join(KEYS))
    missing = [key for key in KEYS if key not in obj]
    if missing:
        return problems + ["missing " + ", ".join(missing)]
    if not (isinstance(obj["inference_id"], str) and INFERENCE_ID.fullmatch(obj["inference_id"])):
        problems.append(
            "inference_id must be 1 to 200 letters, digits or ._:@/+=- ; got "
            + shown(obj["inference_id"])
        )
    out["inference_id"] = obj["inference_id"]
    out["time"] = _time(obj["time"])
    if out["time"] is None:
        problems.append(
            "time must be an ISO 8601 UTC time such as 2026-12-07T13:52:28Z; got "
            + shown(obj["time"])
        )
    for key in ("model_version", "path"):
        out[key] = _text(obj, key)
        if out[key] is None:
            problems.append(
                f"{key} must be text of 1 to {LONGEST_TEXT} characters; got " + shown(obj[key])
            )
    if out["path"] is not None and not out["path"].startswith("/"):
        problems.append(f"path must start with /; got {shown(out['path'])}")
    for field in FIELDS:
        out[field.name], message = check_value(field, obj[field.name])
        if message:
            problems.append(message)
    for key in ("estimate", "low", "high"):
        out[key] = _amount(obj[key])
        if out[key] is None and (key == "estimate" or obj[key] is not None):
            problems.append(
                f"{key} must be a number of dollars (at most {LARGEST_AMOUNT:.0e} "
                f"either side of 0){'' if key == 'estimate' else ' or null'}; got "
                + shown(obj[key])
            )
    if (obj["low"] is None) != (obj["high"] is None):
        problems.append("low and high must both be numbers or both null")
    elif out["low"] is not None and out["high"] is not None and out["low"] > out["high"]:
        problems.append(f"low {out['low']:g} is above high {out['high']:g}")
    return problems


def check_capture(obj: Any) -> tuple[CaptureRecord | None, str | None]:
    """Check one parsed JSON line: ``(record, None)``, or ``(None, every problem in one line)``."""
    if not isinstance(obj, dict):
        return None, "a capture record must be a JSON object; got " + shown(obj)
    out: dict[str, Any] = {}
    problems = _problems(obj, out)
    if problems:
        return None, "; ".join(problems)
    return cast(CaptureRecord, out), None  # _problems set every key, each of its type
