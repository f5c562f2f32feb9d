"""The latest outcome report, read for the model page: a file or an S3 object, read bounded.

``OUTCOMES_REPORT_URI`` names the JSON ``python -m insurance_charges.outcomes report --format
json`` wrote (settings.py checks it at start-up). ``Reader.read`` reads it when a page asks,
never more than ``LARGEST_REPORT`` bytes and never waiting on S3 for long, and checks every
figure the page shows: a report that is missing, cannot be read, is too large or is not one
raises ``Unavailable``, whose ``brief`` the page says and whose message the log keeps. No
Flask, and no pandas: the service imports this.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aws.uri import S3Uri
from ..core.strict_json import parse_json

# The shared data set's report, one version over 24 weeks, is 11,882 bytes: about 440 bytes a
# group (a week, a smoker group). A year of weeks for 20 versions is about 500 KB; this allows
# eight times that, and a file past it is not one to parse while a person waits for the page.
LARGEST_REPORT = 4 * 1024 * 1024
CHUNK = 64 * 1024  # bytes per read of an S3 body, so the deadline is checked between them
# A person is waiting for the page: S3 answers in-region within milliseconds, so one attempt,
# 2 s to connect, 2 s of silence and 5 s in all are ample; past them the page says so.
S3_ATTEMPTS = 1
S3_CONNECT_TIMEOUT = 2
S3_READ_TIMEOUT = 2
DEADLINE = 5
SHOWN_VERSIONS = 20  # the page lists the versions that served most recently, up to this many
LONGEST_TEXT = 1000  # a failure's sentence or a version's name past this is not the report's
# Wilson's interval always holds its proportion; floating point may put an end a hair past it.
ROUNDING = 1e-9
_WEEK = re.compile(r"[0-9]{4}-W[0-9]{2}")

Location = Path | S3Uri  # settings.py checks OUTCOMES_REPORT_URI into one of these


class Unavailable(Exception):
    """The report cannot be shown now; ``brief`` says why in words fit for the page."""

    def __init__(self, detail: str, brief: str):
        super().__init__(detail)
        self.brief = brief


MISSING = "no report has been written there yet"
UNREADABLE = "it could not be read just now"
TOO_LARGE = f"it is larger than {LARGEST_REPORT // 2**20} MiB"
NOT_A_REPORT = "what is there is not an outcome report"
SLOW = "reading it took too long"


@dataclass(frozen=True)
class Figures:
    """One group's figures as the report has them."""

    records: int
    mae: float
    ranged: int
    covered: int
    coverage: float | None  # None when no record had a likely range
    interval: tuple[float, float] | None  # coverage's confidence interval


@dataclass(frozen=True)
class VersionOutcome:
    """One model version's figures, its verdict and the weeks its records span."""

    version: str
    figures: Figures
    failures: tuple[str, ...]
    card_mae: float | None  # its card's holdout MAE; None when the report had no card for it
    first_week: str
    last_week: str


@dataclass(frozen=True)
class LatestReport:
    """What the model page shows of the latest report."""

    overall: Figures
    versions: tuple[VersionOutcome, ...]  # the most recent first, at most SHOWN_VERSIONS
    older_versions: int  # versions in the report beyond those
    failures: tuple[str, ...]
    confidence: float  # the coverage interval's confidence, such as 0.95
    written: datetime | None  # when the file or object was last written, UTC


class Reader:
    """Reads the report at one location; each process makes its own S3 client on first use."""

    def __init__(self, location: Location):
        self.location = location
        self._client: Any = None
        self._pid: int | None = None

    def read(self) -> LatestReport:
        """The report, checked; Unavailable when it cannot be shown."""
        if isinstance(self.location, Path):
            raw, written = _read_file(self.location)
        else:
            raw, written = self._read_s3(self.location)
        return checked(raw, str(self.location), written)

    def _s3(self) -> Any:
        if self._client is None or self._pid != os.getpid():  # boto3 clients survive no fork
            from ..aws.clients import client

            self._client = client(
                "s3",
                max_attempts=S3_ATTEMPTS,
                read_timeout=S3_READ_TIMEOUT,
                connect_timeout=S3_CONNECT_TIMEOUT,
            )
            self._pid = os.getpid()
        return self._client

    def _read_s3(self, uri: S3Uri) -> tuple[bytes, datetime | None]:
        from ..aws.errors import AwsError, call, failures

        started = time.monotonic()
        try:
            response = call(
                lambda: self._s3().get_object(Bucket=uri.bucket, Key=uri.key),
                f"reading {uri}",
                f"s3:GetObject on {uri.object_arn()}",
            )
        except AwsError as exc:
            raise Unavailable(str(exc), MISSING if exc.kind == "missing" else UNREADABLE) from None
        body = response["Body"]
        try:
            if (response.get("ContentLength") or 0) > LARGEST_REPORT:
                raise Unavailable(f"{uri}: {response['ContentLength']:,} bytes", TOO_LARGE)
            parts, size = [], 0
            while size <= LARGEST_REPORT:
                if time.monotonic() - started > DEADLINE:
                    raise Unavailable(f"{uri}: not read within {DEADLINE} s", SLOW)
                part = body.read(CHUNK)
                if not part:
                    break
                parts.append(part)
                size += len(part)
        except failures() as exc:
            raise Unavailable(f"{uri}: {type(exc).__name__}: {exc}", UNREADABLE) from None
        finally:
            body.close()
        if size > LARGEST_REPORT:
            raise Unavailable(f"{uri}: over {LARGEST_REPORT:,} bytes", TOO_LARGE)
        modified = response.get("LastModified")
        return b"".join(parts), modified.astimezone(UTC) if modified else None


def _read_file(path: Path) -> tuple[bytes, datetime | None]:
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            if stat.st_size > LARGEST_REPORT:
                raise Unavailable(f"{path}: {stat.st_size:,} bytes", TOO_LARGE)
            raw = fh.read(LARGEST_REPORT + 1)  # it may have grown since fstat
    except FileNotFoundError:
        raise Unavailable(f"{path}: no such file", MISSING) from None
    except OSError as exc:
        raise Unavailable(f"{path}: {exc.strerror or exc}", UNREADABLE) from None
    if len(raw) > LARGEST_REPORT:
        raise Unavailable(f"{path}: over {LARGEST_REPORT:,} bytes", TOO_LARGE)
    return raw, datetime.fromtimestamp(stat.st_mtime, UTC)


class _Bad(ValueError):
    """A value of the report is not what ``report`` writes; the message names it."""


def checked(raw: bytes, where: str, written: datetime | None = None) -> LatestReport:
    """The report's bytes as the page's figures; Unavailable naming the first thing wrong."""
    try:
        report = parse_json(raw, raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Unavailable(f"{where}: not JSON ({exc})", NOT_A_REPORT) from None
    try:
        return _report(report, written)
    except _Bad as exc:
        raise Unavailable(f"{where}: {exc}", NOT_A_REPORT) from None


def _report(report: Any, written: datetime | None) -> LatestReport:
    top = _object(report, "the report")
    versions = _object(top.get("versions"), "versions")
    failures = _texts(top.get("failures"), "failures")
    if top.get("passed") is not (not failures):
        raise _Bad("passed does not agree with failures")
    checks = _object(top.get("checks"), "checks")
    confidence = _number(checks.get("coverage_confidence"), "checks.coverage_confidence")
    if not 0 < confidence < 1:
        raise _Bad("checks.coverage_confidence is not a fraction between 0 and 1")
    outcomes = [_version(name, item) for name, item in versions.items()]
    outcomes.sort(key=lambda v: (v.last_week, v.version), reverse=True)
    return LatestReport(
        _figures(top.get("overall"), "overall"),
        tuple(outcomes[:SHOWN_VERSIONS]),
        max(0, len(outcomes) - SHOWN_VERSIONS),
        failures,
        confidence,
        written,
    )


def _version(name: str, item: Any) -> VersionOutcome:
    if not name or len(name) > LONGEST_TEXT:
        raise _Bad("a version's name is empty or too long")
    where = f"versions[{name[:80]!r}]"
    version = _object(item, where)
    weeks = sorted(_object(version.get("weeks"), f"{where}.weeks"))
    if not weeks or not all(_WEEK.fullmatch(w) for w in weeks):
        raise _Bad(f"{where}.weeks are not ISO weeks such as 2026-W45")
    card = version.get("card")
    card_mae = (
        None
        if card is None
        else _number(_object(card, f"{where}.card").get("holdout_mae"), f"{where}.card.holdout_mae")
    )
    return VersionOutcome(
        name,
        _figures(version, where),
        _texts(version.get("failures"), f"{where}.failures"),
        card_mae,
        weeks[0],
        weeks[-1],
    )


def _figures(value: Any, where: str) -> Figures:
    group = _object(value, where)
    records = _count(group.get("records"), f"{where}.records")
    ranged = _count(group.get("ranged"), f"{where}.ranged")
    covered = _count(group.get("covered"), f"{where}.covered")
    if records < 1 or not covered <= ranged <= records:
        raise _Bad(f"{where}: records, ranged and covered do not add up")
    mae = _number(group.get("mae"), f"{where}.mae")
    coverage, interval = group.get("coverage"), group.get("coverage_interval")
    if not ranged:
        if coverage is not None or interval is not None:
            raise _Bad(f"{where}: a coverage without records that had a range")
        return Figures(records, mae, 0, 0, None, None)
    share = _fraction(coverage, f"{where}.coverage")
    if not isinstance(interval, list) or len(interval) != 2:
        raise _Bad(f"{where}.coverage_interval is not a pair of fractions")
    low, high = (_fraction(v, f"{where}.coverage_interval") for v in interval)
    if not low - ROUNDING <= share <= high + ROUNDING:
        raise _Bad(f"{where}.coverage_interval does not hold its coverage")
    return Figures(records, mae, ranged, covered, share, (low, high))


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and len(v) <= LONGEST_TEXT for v in value
    ):
        raise _Bad(f"{where} is not a list of sentences")
    return tuple(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"{where} is not a count")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"{where} is not a number")
    if value < 0:
        raise _Bad(f"{where} is below 0")
    return float(value)


def _fraction(value: Any, where: str) -> float:
    share = _number(value, where)
    if share > 1:
        raise _Bad(f"{where} is above 1")
    return share
