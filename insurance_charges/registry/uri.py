"""Where releases live: the store ``s3://bucket/prefix`` and a model ``s3://bucket/prefix/NAME``.

Pure parsing, no boto3, on ``aws.uri``'s S3 rules: ``settings.py`` checks ``MODEL_STORE`` and
``MODEL_URI`` with these before anything starts, and the registry names its objects through
``StoreLocation``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..aws.uri import SCHEME as S3
from ..aws.uri import BadS3Uri, check_bucket

CHAMPION = "champion"  # the moving name, resolved once at start-up to the version it points at
# Folders of the store that are not versions (a version lives in the folder named after it).
RESERVED = (CHAMPION, "history", "reference")
# A card's model_version is date-estimator-hash (2026.11.21-gbr-586c9afb); the registry accepts
# any name safe as one S3 key segment, so a version never escapes its folder.
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Stricter than S3's keys: a prefix segment is safe in a path and a shell word as it is.
_SEGMENT = re.compile(r"[A-Za-z0-9._=+-]+")
FORMS = "s3://bucket/prefix (the prefix may be empty)"


def check_version(name: str) -> str:
    """The name if it can be a version (one safe key segment); ValueError otherwise."""
    if not VERSION.fullmatch(name) or ".." in name or name in RESERVED:
        raise ValueError(
            f"{name!r} is not a model version (letters, digits, '.', '_', '-'; "
            "the card's model_version, e.g. 2026.11.21-gbr-586c9afb)"
        )
    return name


@dataclass(frozen=True)
class StoreLocation:
    """A registry store: a bucket and a key prefix ('' for the bucket's root)."""

    bucket: str
    prefix: str = ""

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` inside the store."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def uri(self, *parts: str) -> str:
        """``s3://bucket/key`` of ``parts`` (the store itself without parts)."""
        return f"{S3}{self.bucket}/{self.key(*parts)}".rstrip("/")

    def model_uri(self, name: str) -> str:
        """The MODEL_URI that serves version (or ``champion``) ``name`` from this store."""
        return self.uri(name)


def _split(text: str, what: str) -> tuple[str, list[str]]:
    if not text.startswith(S3):
        raise ValueError(f"is not an s3:// URI; set {what}")
    bucket, _, rest = text[len(S3) :].partition("/")
    try:
        check_bucket(bucket)
    except BadS3Uri as exc:
        raise ValueError(f"{exc}; set {what}") from None
    parts = rest.rstrip("/").split("/") if rest.strip("/") else []
    for part in parts:
        if not _SEGMENT.fullmatch(part) or part in (".", ".."):
            raise ValueError(
                f"{part!r} is not a usable key prefix segment (letters, digits, "
                f"'._=+-', no empty segments); set {what}"
            )
    return bucket, parts


def parse_store(text: str) -> StoreLocation:
    """``s3://bucket[/prefix]`` as a StoreLocation; ValueError saying what to write."""
    return parse_prefix(text, f"the store as {FORMS}")


def parse_prefix(text: str, what: str) -> StoreLocation:
    """``s3://bucket[/prefix]`` as a StoreLocation; ValueError ending "set ``what``"."""
    bucket, parts = _split(text.strip(), what)
    return StoreLocation(bucket, "/".join(parts))


def parse_model_uri(text: str) -> tuple[StoreLocation, str]:
    """``s3://bucket/prefix/NAME`` as (store, NAME), NAME a version or ``champion``."""
    what = "MODEL_URI to s3://bucket/prefix/VERSION or s3://bucket/prefix/champion"
    bucket, parts = _split(text.strip(), what)
    if not parts:
        raise ValueError(f"names no version; set {what}")
    try:
        name = parts[-1] if parts[-1] == CHAMPION else check_version(parts[-1])
    except ValueError as exc:
        raise ValueError(f"{exc}; set {what}") from None
    return StoreLocation(bucket, "/".join(parts[:-1])), name
