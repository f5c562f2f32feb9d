"""S3 objects read for the scorer and training: one streaming GET, or ranged GETs on demand.

One mechanism, boto3's GetObject through the caller's client: sequential formats (CSV, JSON
lines) and downloads stream the body of one GET; Parquet, which seeks to its footer and row
groups, reads through ``RangedReader``, one ranged GET per buffer. pyarrow's S3FileSystem read
the same Parquet object as fast (docs/architecture.md#aws) but is a second AWS SDK with its own
credential chain, retry policy and error texts, and it does not read AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from .errors import call, explain, failures
from .uri import S3Uri

RANGE_BUFFER = 8 * 1024 * 1024  # bytes per ranged GET: a Parquet row group's column chunk
DOWNLOAD_BLOCK = 1024 * 1024  # bytes per write while downloading


def _get_permission(uri: S3Uri) -> str:
    return f"s3:GetObject on {uri.object_arn()}"


def open_stream(s3, uri: S3Uri) -> tuple[BinaryIO, int | None]:
    """The object's body as a stream of bytes (one GET) and its size; AwsError if unreadable."""
    response = call(
        lambda: s3.get_object(Bucket=uri.bucket, Key=uri.key),
        f"reading {uri}",
        _get_permission(uri),
    )
    return response["Body"], response.get("ContentLength")


def open_seekable(s3, uri: S3Uri) -> tuple[io.BufferedReader, int]:
    """A seekable, buffered file over the object (ranged GETs) and its size."""
    head = call(
        lambda: s3.head_object(Bucket=uri.bucket, Key=uri.key),
        f"reading {uri}",
        _get_permission(uri),
    )
    size = head["ContentLength"]
    return io.BufferedReader(RangedReader(s3, uri, size), buffer_size=RANGE_BUFFER), size


def download(s3, uri: S3Uri, dest: Path) -> dict:
    """Write the object to ``dest``, botocore checking S3's stored checksum as it reads; the
    GetObject response (its checksum fields)."""

    def fetch():
        response = s3.get_object(Bucket=uri.bucket, Key=uri.key, ChecksumMode="ENABLED")
        with open(dest, "wb") as out:
            out.writelines(response["Body"].iter_chunks(DOWNLOAD_BLOCK))
        return response

    return call(fetch, f"reading {uri}", _get_permission(uri))


class RangedReader(io.RawIOBase):
    """A read-only, seekable view of an S3 object: each read is one ranged GET.

    A failure is an OSError (what file readers such as pyarrow pass on) with the one line.
    """

    def __init__(self, s3, uri: S3Uri, size: int):
        super().__init__()
        self.s3, self.uri, self.size, self.position = s3, uri, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        if self.position >= self.size or not len(buffer):
            return 0
        end = min(self.size, self.position + len(buffer)) - 1
        try:
            body = self.s3.get_object(
                Bucket=self.uri.bucket, Key=self.uri.key, Range=f"bytes={self.position}-{end}"
            )["Body"]
            data = body.read()
        except failures() as exc:
            raise OSError(explain(exc, f"reading {self.uri}", _get_permission(self.uri))) from None
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)
