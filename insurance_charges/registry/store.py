"""The store's objects through the aws module: write-once puts, checked reads, one-line errors.

Endpoints, credentials and the region come from boto3's own chain (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, the instance profile...), the client and its retries from ``aws.clients``
(botocore's standard mode: network failures, S3's 5xx and SlowDown retried a bounded number of
times and logged; a 4xx such as access denied or no such key final at once). Every failure
becomes a ``RegistryError`` whose message is ``aws.errors``' one line.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..aws.clients import client
from ..aws.errors import AwsError, call
from ..errors import UserError
from .uri import StoreLocation

GUIDE = "docs/model-releases.md#iam-policies"  # where the store's IAM policies are written down


class RegistryError(UserError, RuntimeError):
    """The registry cannot do what was asked; the message is the one line to show.

    Also a RuntimeError, so gunicorn prints it as ``Error: ...`` and exits 1 at start-up.
    """


class Missing(RegistryError):
    """The object (or its bucket) is not in the store."""


class Conflict(RegistryError):
    """A write-once object exists already, or a conditional write lost a race."""


class Damaged(RegistryError):
    """An object in the store is not what the registry writes: malformed, oversized, or not
    matching its checksum. Anyone with s3:PutObject can cause it; the message names the object."""


# The largest JSON document the registry writes is a history entry with the gate's figures,
# about 2 KB; 1 MiB is 500 times that, and bounds what a hand-written object can make a reader
# download and parse.
MAX_DOCUMENT = 1024 * 1024
RESTORE = (
    "it was changed outside the registry: restore it from the bucket's object versions "
    "(docs/model-releases.md#the-store)"
)


def loads(data: bytes, uri: str) -> object:
    """The bytes parsed as JSON; Damaged naming ``uri`` if they are not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise Damaged(f"{uri} is not JSON; {RESTORE}") from None


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def aws_call(operation: Callable, doing: str, permission: str, service: str = "S3"):
    """``operation()``; any AWS failure as a RegistryError (Missing, Conflict) in one line."""
    try:
        return call(operation, doing, permission, service=service, guide=GUIDE)
    except AwsError as exc:
        error = {"missing": Missing, "conflict": Conflict}.get(exc.kind, RegistryError)
        raise error(str(exc)) from None


class Store:
    """The objects of one registry store."""

    def __init__(self, location: StoreLocation, s3=None):
        self.location, self._s3 = location, s3

    @property
    def s3(self):
        """The boto3 client, made on first use."""
        if self._s3 is None:
            self._s3 = client("s3")
        return self._s3

    def _arn(self) -> str:
        """The ARN a policy grants: every object of the store (docs/model-releases.md)."""
        return f"arn:aws:s3:::{self.location.bucket}/{self.location.key('*')}"

    def _read(self, key: str, limit: int | None, bound: str) -> tuple[bytes, str]:
        """The object's bytes (at most ``limit``, else Damaged saying ``bound``) and ETag."""
        uri = f"s3://{self.location.bucket}/{key}"

        def read():
            response = self.s3.get_object(Bucket=self.location.bucket, Key=key)
            with response["Body"] as body:  # closed unread past the bound: never downloaded
                data = body.read() if limit is None else body.read(limit + 1)
            return data, response["ETag"]

        data, etag = aws_call(read, f"reading {uri}", f"s3:GetObject on {self._arn()}")
        if limit is not None and len(data) > limit:
            raise Damaged(f"{uri} is longer than {bound} ({limit:,} bytes); {RESTORE}")
        return data, etag

    def get(self, key: str, *, limit: int | None = None, bound: str = "") -> bytes:
        """The object's bytes; Missing if it is not there; Damaged if it is longer than
        ``limit`` (``bound`` says whose limit, for the message)."""
        return self._read(key, limit, bound)[0]

    def get_json(self, key: str) -> tuple[object, str]:
        """The object parsed as JSON (any shape: the caller checks it), and its ETag."""
        data, etag = self._read(key, MAX_DOCUMENT, "any document the registry writes")
        return loads(data, f"s3://{self.location.bucket}/{key}"), etag

    def exists(self, key: str) -> bool:
        """Whether the object is there (a HEAD request: nothing is downloaded)."""
        uri = f"s3://{self.location.bucket}/{key}"
        try:
            aws_call(
                lambda: self.s3.head_object(Bucket=self.location.bucket, Key=key),
                f"reading {uri}",
                f"s3:GetObject on {self._arn()}",
            )
        except Missing:
            return False
        return True

    def put(self, key: str, body: bytes, *, replacing: str | None = None) -> str:
        """Write an object only if it is absent, or (``replacing``) still at that ETag; the
        new ETag.

        S3 checks the SHA-256 sent with the bytes, so a corrupted upload is refused.
        """
        conditions = {"IfMatch": replacing} if replacing else {"IfNoneMatch": "*"}
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        return aws_call(
            lambda: self.s3.put_object(
                Bucket=self.location.bucket,
                Key=key,
                Body=body,
                ChecksumSHA256=checksum,
                **conditions,
            )["ETag"],
            f"writing s3://{self.location.bucket}/{key}",
            f"s3:PutObject on {self._arn()}",
        )

    def put_json(
        self, key: str, document: Mapping[str, Any], *, replacing: str | None = None
    ) -> str:
        """Write a JSON document (readable, stable key order), as ``put`` does; the ETag."""
        return self.put(
            key, (json.dumps(document, indent=2) + "\n").encode("utf-8"), replacing=replacing
        )

    def folders(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix`` ('' for the store's root)."""
        base = self.location.key(prefix)
        base = base + "/" if base else ""

        def listing():
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=base, Delimiter="/"
            )
            return [
                p["Prefix"][len(base) :].rstrip("/")
                for page in pages
                for p in page.get("CommonPrefixes", [])
            ]

        names = aws_call(
            listing,
            f"listing s3://{self.location.bucket}/{base}",
            f"s3:ListBucket on arn:aws:s3:::{self.location.bucket}",
        )
        return sorted(names)

    def keys(self, prefix: str) -> list[str]:
        """Every object key under folder ``prefix``, in order."""
        base = self.location.key(prefix) + "/"

        def listing():
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=base
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

        return sorted(
            aws_call(
                listing,
                f"listing s3://{self.location.bucket}/{base}",
                f"s3:ListBucket on arn:aws:s3:::{self.location.bucket}",
            )
        )


def caller() -> str:
    """The AWS identity acting (STS GetCallerIdentity needs no permission)."""
    sts = client("sts")
    return aws_call(
        lambda: sts.get_caller_identity()["Arn"],
        "asking STS who is calling",
        "valid credentials",
        service="STS",
    )
