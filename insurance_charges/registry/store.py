"""The store's objects through boto3: write-once puts, checked reads, one-line errors.

Endpoints, credentials and the region come from boto3's own chain (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, the instance profile...). Every failure becomes a ``RegistryError`` whose message
is one line saying what failed and what to do. Network failures (no connection, a timeout, S3's
own 5xx or SlowDown) are retried a bounded number of times; anything S3 answered with a 4xx
(access denied, no such key) is final at once.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import UserError
from .uri import StoreLocation

log = logging.getLogger(__name__)

# Bounded retry for the network: waits before the 2nd, 3rd and 4th attempt. A blip (a VPC
# endpoint or NAT hiccup, S3's SlowDown) is absorbed; a dead route fails within about half a
# minute (4 attempts x 5 s connect timeout + 7 s of waits), far inside the launcher's 120 s
# start-up limit and EB's 600 s command timeout, so a deployment reports it in minutes.
RETRY_DELAYS = (1.0, 2.0, 4.0)
CONNECT_TIMEOUT = 5  # seconds: S3 answers a connect in milliseconds in-region
READ_TIMEOUT = 30  # seconds: the largest object, the pipeline, is about 200 KB
_RETRIABLE_CODES = {"500", "502", "503", "504", "InternalError", "ServiceUnavailable",
                    "SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                    "InvalidToken", "TokenRefreshRequired"}


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
RESTORE = ("it was changed outside the registry: restore it from the bucket's object versions "
           "(docs/model-releases.md#the-store)")


def loads(data: bytes, uri: str) -> object:
    """The bytes parsed as JSON; Damaged naming ``uri`` if they are not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise Damaged(f"{uri} is not JSON; {RESTORE}") from None


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def client(service: str = "s3"):
    """A boto3 client configured from the environment, with our own retry policy."""
    import boto3
    from botocore.config import Config

    # botocore's own retries are off: RETRY_DELAYS is the whole bound, and it is logged.
    return boto3.client(service, config=Config(
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": 1}))


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _retriable(exc: Exception) -> bool:
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    network = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
               ConnectionClosedError)
    return isinstance(exc, network) or _code(exc) in _RETRIABLE_CODES


def explain(exc: Exception, doing: str, permission: str) -> RegistryError:
    """One line for a boto3 failure while ``doing`` (e.g. "reading s3://b/k")."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    code = _code(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return RegistryError(f"no AWS credentials for {doing}: boto3 found none (environment, "
                             "AWS_PROFILE, ~/.aws, instance profile); give the instance profile "
                             f"or role {permission} (docs/model-releases.md#iam-policies)")
    if code in _DENIED:
        return RegistryError(f"access denied {doing}; the instance profile or role needs "
                             f"{permission} (docs/model-releases.md#iam-policies)")
    if code in _BAD_CREDENTIALS:
        return RegistryError(f"the AWS credentials were refused {doing} ({code}); check "
                             "AWS_ACCESS_KEY_ID / AWS_PROFILE or the instance profile")
    if code == "NoSuchBucket":  # not Missing: a missing bucket is never "nothing there yet"
        return RegistryError(f"no such bucket {doing}; create it or fix the store URI")
    if code in ("NoSuchKey", "404"):
        return Missing(f"not found {doing}")
    if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
        return Conflict(f"changed by someone else while {doing}; run the command again")
    if _retriable(exc):
        return RegistryError(f"cannot reach S3 {doing} after {len(RETRY_DELAYS) + 1} attempts "
                             f"({type(exc).__name__}: {exc}); check the network, "
                             "AWS_ENDPOINT_URL and the region")
    return RegistryError(f"S3 failed {doing} ({code or type(exc).__name__}: {exc})")


def with_retries(call: Callable, doing: str, permission: str,
                 sleep: Callable[[float], None] = time.sleep):
    """``call()``, retried on network failures only (RETRY_DELAYS); RegistryError otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            return call()
        except (BotoCoreError, ClientError) as exc:
            if delay is None or not _retriable(exc):
                raise explain(exc, doing, permission) from None
            log.warning("S3 unreachable %s (%s); attempt %d of %d, next in %.0f s", doing,
                        type(exc).__name__, attempt, len(RETRY_DELAYS) + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


class Store:
    """The objects of one registry store."""

    def __init__(self, location: StoreLocation, s3=None, sleep=time.sleep):
        self.location, self._s3, self._sleep = location, s3, sleep

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

        def call():
            response = self.s3.get_object(Bucket=self.location.bucket, Key=key)
            with response["Body"] as body:  # closed unread past the bound: never downloaded
                data = body.read() if limit is None else body.read(limit + 1)
            return data, response["ETag"]
        data, etag = with_retries(call, f"reading {uri}", f"s3:GetObject on {self._arn()}",
                                  self._sleep)
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
            with_retries(lambda: self.s3.head_object(Bucket=self.location.bucket, Key=key),
                         f"reading {uri}", f"s3:GetObject on {self._arn()}", self._sleep)
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
        return with_retries(lambda: self.s3.put_object(
            Bucket=self.location.bucket, Key=key, Body=body, ChecksumSHA256=checksum,
            **conditions)["ETag"], f"writing s3://{self.location.bucket}/{key}",
            f"s3:PutObject on {self._arn()}", self._sleep)

    def put_json(self, key: str, document: Mapping[str, Any], *,
                 replacing: str | None = None) -> str:
        """Write a JSON document (readable, stable key order), as ``put`` does; the ETag."""
        return self.put(key, (json.dumps(document, indent=2) + "\n").encode("utf-8"),
                        replacing=replacing)

    def folders(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix`` ('' for the store's root)."""
        base = self.location.key(prefix)
        base = base + "/" if base else ""

        def call():
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=base, Delimiter="/")
            return [p["Prefix"][len(base):].rstrip("/") for page in pages
                    for p in page.get("CommonPrefixes", [])]
        names = with_retries(call, f"listing s3://{self.location.bucket}/{base}",
                             f"s3:ListBucket on arn:aws:s3:::{self.location.bucket}",
                             self._sleep)
        return sorted(names)

    def keys(self, prefix: str) -> list[str]:
        """Every object key under folder ``prefix``, in order."""
        base = self.location.key(prefix) + "/"

        def call():
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=base)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(with_retries(call, f"listing s3://{self.location.bucket}/{base}",
                                   f"s3:ListBucket on arn:aws:s3:::{self.location.bucket}",
                                   self._sleep))


def caller(sleep=time.sleep) -> str:
    """The AWS identity acting (STS GetCallerIdentity needs no permission)."""
    sts = client("sts")
    return with_retries(lambda: sts.get_caller_identity()["Arn"], "asking STS who is calling",
                        "valid credentials", sleep)
