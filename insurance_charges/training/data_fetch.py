"""Where retraining data comes from, fetched into a local file and checked by its SHA-256.

A source is ``canonical`` (the published file, ``data.CANONICAL_URL``), an ``https://`` URL, an
``s3://bucket/key`` object or a local path. Every source must match a SHA-256 someone vouches
for: the one given (``--sha256``), else the canonical file's published digest, else the
SHA-256 checksum S3 stores for an object uploaded with one (``--checksum-algorithm SHA256``).
A source with none of these is refused rather than trained on unchecked.
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..aws.clients import client
from ..aws.errors import AwsError
from ..aws.objects import download
from ..aws.uri import BadS3Uri, is_s3, parse_s3_object
from ..core.model_card import sha256_of
from ..errors import UsageError, UserError
from .data import CANONICAL_SHA256, CANONICAL_URL, DataError, download_canonical

CANONICAL = "canonical"
FILE_NAME = "source.csv"
URL_TIMEOUT = 60  # seconds, as download_canonical allows the canonical file
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class FetchError(UserError):
    """The source could not be read now (network, S3 busy, not there yet); a retry may work."""

    status = 75  # sysexits' EX_TEMPFAIL: a scheduler retries it
    heading = "Try again later"


# What no retry mends: a right, a credential, a region or a bucket must change first, so the
# command fails at once (status 1) instead of asking a scheduler to retry for an hour.
NEEDS_A_FIX = frozenset(
    {"denied", "credentials", "refused-credentials", "region", "wrong-region", "no-bucket"}
)


@dataclass(frozen=True)
class Fetched:
    """A source's bytes on local disk, with the SHA-256 they were checked against and who
    vouches for it."""

    source: str
    path: Path
    sha256: str
    size: int
    vouched_by: str


def parse_sha256(text: str) -> str:
    """A SHA-256 given on the command line: 64 hex digits (any case)."""
    digest = text.strip().lower()
    if not _HEX_SHA256.fullmatch(digest):
        raise UsageError(
            f"--sha256 {text!r} is not a SHA-256; give its 64 hex digits (`sha256sum FILE`)"
        )
    return digest


def fetch(source: str, dest_dir: Path, sha256: str | None = None) -> Fetched:
    """Bring ``source`` into ``dest_dir`` (a local path is read in place) and check its digest."""
    stored = None
    if source in (CANONICAL, CANONICAL_URL):
        try:
            path = download_canonical(dest_dir)  # refuses any other digest itself
        except OSError as exc:
            raise FetchError(f"cannot download {CANONICAL_URL}: {exc}") from None
        source = CANONICAL_URL
    elif is_s3(source):
        path, stored = _from_s3(source, dest_dir / FILE_NAME)
    elif source.startswith("https://"):
        path = _from_url(source, dest_dir / FILE_NAME)
    elif "://" in source:
        raise UsageError(
            f"{source}: read data from `canonical`, https://, s3://bucket/key or a local path"
        )
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{source}: no such file")
    digest = sha256_of(path)
    expected, vouched_by = _expected(digest, sha256, stored, source == CANONICAL_URL)
    if expected is None:
        raise DataError(
            f"{source} has no SHA-256 to check it against; pass --sha256 (the "
            "DAG's data_sha256), or upload it to S3 with `aws s3 cp "
            "--checksum-algorithm SHA256`"
        )
    if digest != expected:
        raise DataError(
            f"{source} has SHA-256 {digest}, but {vouched_by} is {expected}; "
            "refusing to train on it"
        )
    return Fetched(source, path, digest, path.stat().st_size, vouched_by)


def _expected(
    digest: str, given: str | None, stored: str | None, canonical: bool
) -> tuple[str | None, str]:
    if given:
        return given, "the SHA-256 given (--sha256)"
    if canonical or digest == CANONICAL_SHA256:
        return CANONICAL_SHA256, "the canonical file's published SHA-256"
    if stored:
        return stored, "the SHA-256 checksum S3 stores for the object"
    return None, ""


def _from_url(url: str, dest: Path) -> Path:
    try:
        # B310 is safe here: only https:// reaches this line, and the bytes are checked after.
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as resp:  # nosec B310
            with open(dest, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
    except OSError as exc:
        raise FetchError(f"cannot download {url}: {exc}") from None
    return dest


def _from_s3(location: str, dest: Path) -> tuple[Path, str | None]:
    """Download an object; botocore checks S3's stored checksum (any algorithm) as it reads."""
    try:
        uri = parse_s3_object(location)
    except BadS3Uri as exc:
        raise UsageError(f"{location}: {exc}") from None
    try:
        response = download(client("s3"), uri, dest)
    except AwsError as exc:
        raise (UserError if exc.kind in NEEDS_A_FIX else FetchError)(str(exc)) from None
    return dest, _full_object_sha256(response)


def _full_object_sha256(response: dict) -> str | None:
    """S3's SHA-256 of the whole object, as hex; None for none or a per-part (composite) one."""
    stored = response.get("ChecksumSHA256")
    if not stored or "-" in stored or response.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        return base64.b64decode(stored, validate=True).hex()
    except (binascii.Error, ValueError):
        return None
