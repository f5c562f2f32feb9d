"""Where capture files go: a local directory or an S3 prefix, each written whole or not at all.

``CAPTURE_URI`` names one; ``destination_of`` makes it. A file is shipped as one ``put``: a
directory gets a hidden temporary file renamed into place (``join`` reads only ``*.jsonl``, so a
half-written file is never read); S3 gets one PutObject, which is atomic.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# S3's rules for a bucket name (general purpose buckets): 3 to 63 lowercase letters, digits,
# dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A prefix of path segments in the characters S3 calls safe for keys; no empty, . or .. segment.
_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*")
# Each attempt to ship waits at most aws.clients' 5 s for a connection and this for an
# answer: a capture file is at most FILE_BYTES (writer.py), which S3 takes well within it.
READ_TIMEOUT = 20
# The client factory's standard retries with 3 attempts (botocore's default) rather than its 4:
# a file that still fails waits for the next interval (writer.py), so more attempts here would
# only hold the shipping thread longer, and the shutdown's 20 s budget with it.
MAX_ATTEMPTS = 3


class DestinationError(RuntimeError):
    """A capture file could not be shipped; the message says why in a few words."""


@dataclass(frozen=True)
class Directory:
    """Capture files under a local directory."""

    root: Path

    def prepare(self) -> None:
        """Create the directory (at start-up: an unusable one is one line, before serving)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise DestinationError(
                f"cannot write to {self.root} ({exc.strerror}); set "
                "CAPTURE_URI to a writable directory or s3://bucket/prefix"
            ) from None

    def put(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """Write ``parts``, one after the other, as ``key`` under the directory, whole or not
        at all."""
        final = self.root / key
        partial = final.with_name("." + final.name + ".partial")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                out.writelines(parts)
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):  # no partial file, or no directory to hold one
                partial.unlink(missing_ok=True)
            raise DestinationError(f"{final}: {exc.strerror or exc}") from None

    def __str__(self) -> str:
        return str(self.root)


class S3Prefix:
    """Capture files under s3://bucket/prefix, through one client per process (aws.clients)."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
        self._client = None
        self._pid: int | None = None

    def prepare(self) -> None:
        """Nothing at start-up: an unreachable bucket must not stop the service (it is counted
        and logged when a file fails to ship)."""

    def client(self):
        """This process's client (boto3 clients are not shared across a fork)."""
        if self._client is None or self._pid != os.getpid():
            from ..aws.clients import client

            self._client = client("s3", max_attempts=MAX_ATTEMPTS, read_timeout=READ_TIMEOUT)
            self._pid = os.getpid()
        return self._client

    def put(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """PutObject ``parts``, one after the other, at prefix/key."""
        from botocore.exceptions import BotoCoreError, ClientError

        name = f"{self.prefix}/{key}" if self.prefix else key
        try:
            self.client().put_object(
                Bucket=self.bucket,
                Key=name,
                Body=b"".join(parts),
                ContentType="application/x-ndjson",
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DestinationError(
                f"s3://{self.bucket}/{name}: {error.get('Code', 'error')}: "
                f"{error.get('Message', '')}".rstrip(": ")
            ) from None
        except BotoCoreError as exc:
            raise DestinationError(f"s3://{self.bucket}/{name}: {exc}") from None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


Destination = Directory | S3Prefix


def destination_of(uri: str) -> Destination:
    """CAPTURE_URI's destination; ValueError (one line, naming the fix) if it is not one."""
    text = uri.strip()
    if not text.startswith("s3://"):
        return Directory(Path(text).expanduser().resolve())
    bucket, _, prefix = text[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, "
            "digits, dots and hyphens); set CAPTURE_URI to s3://bucket/prefix"
        )
    if prefix and (
        not _PREFIX.fullmatch(prefix) or any(part in (".", "..") for part in prefix.split("/"))
    ):
        raise ValueError(
            "the prefix must be path segments of letters, digits and !_.*'()- ; "
            "set CAPTURE_URI to s3://bucket/prefix"
        )
    return S3Prefix(bucket, prefix)
