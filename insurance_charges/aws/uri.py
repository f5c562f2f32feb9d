"""``s3://bucket/key`` parsed once, strictly, into a small typed value.

A typo is refused here, naming what is wrong and how to write it, instead of reaching S3 as a
400 or, worse, naming some other object. The rules are S3's own for bucket names (general
purpose buckets) and, for keys, the subset that names one thing unambiguously.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SCHEME = "s3://"
# S3's bucket naming rules: 3-63 characters of lower-case letters, digits, dots and hyphens,
# a letter or digit at each end; no "..", not an IP address, none of the reserved prefixes
# and suffixes (S3 access point aliases and the like).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap")
BUCKET_RULES = "3-63 lower-case letters, digits, dots, hyphens; a letter or digit at each end"
MAX_KEY_BYTES = 1024  # S3's limit on a key's UTF-8 length
# Control characters are legal in S3 keys but invisible in every message and log: refused.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadS3Uri(ValueError):
    """Text that is not a usable ``s3://`` URI; the message says what is wrong and the form."""


@dataclass(frozen=True)
class S3Uri:
    """A bucket and a key; a key ending in ``/`` (or empty) is a prefix, else an object."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    @property
    def is_object(self) -> bool:
        """Whether the key names one object (not empty, not ending in ``/``)."""
        return bool(self.key) and not self.key.endswith("/")

    def object_arn(self) -> str:
        """The ARN an IAM policy grants for this object (or every object under this prefix)."""
        return f"arn:aws:s3:::{self.bucket}/{self.key if self.is_object else self.key + '*'}"


def is_s3(text: str) -> bool:
    """Whether ``text`` is meant as an S3 URI (starts with ``s3://``)."""
    return text.startswith(SCHEME)


def check_bucket(bucket: str) -> str:
    """The name if S3 allows it for a bucket; BadS3Uri naming the rules otherwise."""
    if (
        not _BUCKET.fullmatch(bucket)
        or ".." in bucket
        or _is_ip_address(bucket)
        or bucket.startswith(_RESERVED_PREFIXES)
        or bucket.endswith(_RESERVED_SUFFIXES)
    ):
        raise BadS3Uri(f"{bucket!r} is not an S3 bucket name ({BUCKET_RULES})")
    return bucket


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key: str) -> str:
    """The key if it names one thing: UTF-8 within S3's 1,024 bytes, no control characters,
    no empty, ``.`` or ``..`` segments (``a//b``, ``a/./b`` would name another object than
    what a reader of the URI sees); a trailing ``/`` is kept (a prefix)."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadS3Uri(f"the key is longer than S3's {MAX_KEY_BYTES:,} bytes")
    if _CONTROL.search(key):
        raise BadS3Uri(f"the key {key!r} holds a control character")
    segments = key.removesuffix("/").split("/") if key else []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise BadS3Uri(f"the key {key!r} has an empty, '.' or '..' segment")
    return key


def parse_s3(text: str) -> S3Uri:
    """``s3://bucket[/key]`` as an S3Uri; BadS3Uri saying what is wrong otherwise."""
    if not is_s3(text):
        raise BadS3Uri(f"{text!r} is not an S3 URI; write s3://bucket/key")
    bucket, _, key = text[len(SCHEME) :].partition("/")
    return S3Uri(check_bucket(bucket), check_key(key))


def parse_s3_object(text: str) -> S3Uri:
    """An ``s3://bucket/key`` naming one object; BadS3Uri for a bucket or prefix."""
    uri = parse_s3(text)
    if not uri.is_object:
        raise BadS3Uri(f"{text} is not an S3 object URI; write s3://bucket/key")
    return uri
