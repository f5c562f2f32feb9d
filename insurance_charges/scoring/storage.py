"""Where rows come from and go to: local paths, ``s3://bucket/key`` and ``-`` (stdin, stdout).

Inputs are read as streams (S3 through ``get_object``'s body, a block at a time); Parquet,
which needs random access, reads S3 through ranged GETs and stdin through a spooled temporary
file. Outputs are written so that nothing looks finished before it is: a local file goes to a
hidden temporary file beside the target and is renamed over it on ``commit``; an S3 object is a
multipart upload completed on ``commit`` and aborted on ``abort`` (or one PUT when small). Only
standard output is written as it goes. boto3 finds credentials, the region and
``AWS_ENDPOINT_URL`` in the environment itself.
"""
from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from .formats import STDIO, UsageError

S3_PREFIX = "s3://"
PART_SIZE = 8 * 1024 * 1024  # bytes per multipart part (S3's minimum is 5 MiB)
RANGE_BUFFER = 8 * 1024 * 1024  # bytes fetched per ranged GET when Parquet reads S3


def is_s3(location: str) -> bool:
    """True for an ``s3://bucket/key`` URI."""
    return location.startswith(S3_PREFIX)


def split_s3(location: str) -> tuple[str, str]:
    """Bucket and key of an ``s3://bucket/key`` URI."""
    bucket, _, key = location[len(S3_PREFIX):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise UsageError(f"{location} is not an S3 object URI; write s3://bucket/key")
    return bucket, key


_CLIENT = None


def s3_client():
    """One boto3 S3 client for the process (configured from the environment)."""
    global _CLIENT
    if _CLIENT is None:
        import boto3

        _CLIENT = boto3.client("s3")
    return _CLIENT


def s3_reason(exc: Exception, missing: str = "no such bucket or key") -> str:
    """An S3 failure in a few words: the service's code and message, or botocore's text.

    HEAD requests get no message with a 404; ``missing`` says what it means there.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        code, message = str(error.get("Code", "")), error.get("Message", "")
        if code == "404":
            return f"404 ({missing})"
        return f"{code} ({message})" if message else code
    return str(exc) or type(exc).__name__


def _s3_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class Source:
    """An input: a stream to read in blocks, its size when known, random access on demand."""

    def __init__(self, location: str):
        self.location = location
        self.size: int | None = None
        self._stream: BinaryIO | None = None
        if location == STDIO:
            self._stream = sys.stdin.buffer
        elif is_s3(location):
            self.bucket, self.key = split_s3(location)
        else:
            path = Path(location)
            try:
                self._stream = open(path, "rb")  # noqa: SIM115 - closed by close()
                self.size = os.fstat(self._stream.fileno()).st_size
            except IsADirectoryError:
                raise UsageError(f"cannot read {location}: it is a directory") from None
            except OSError as exc:
                raise UsageError(f"cannot read {location}: {exc.strerror}") from None

    def stream(self) -> BinaryIO:
        """The input as a stream of bytes (opened on the first call)."""
        if self._stream is None:  # S3: one streaming GET
            try:
                response = s3_client().get_object(Bucket=self.bucket, Key=self.key)
            except _s3_errors() as exc:
                raise UsageError(f"cannot read {self.location}: {s3_reason(exc)}") from None
            self.size = response.get("ContentLength")
            self._stream = response["Body"]
        return self._stream

    def random_access(self):
        """A seekable file for Parquet: the file itself, ranged GETs on S3, or a spooled stdin."""
        if is_s3(self.location):
            try:
                head = s3_client().head_object(Bucket=self.bucket, Key=self.key)
            except _s3_errors() as exc:
                raise UsageError(f"cannot read {self.location}: {s3_reason(exc)}") from None
            self.size = head["ContentLength"]
            return io.BufferedReader(S3RangeReader(self.bucket, self.key, self.size),
                                     buffer_size=RANGE_BUFFER)
        if self.location == STDIO:
            spooled = tempfile.TemporaryFile()  # disk, not memory: the file may be large
            shutil.copyfileobj(sys.stdin.buffer, spooled, 1024 * 1024)
            spooled.seek(0)
            self.size = spooled.tell() or os.fstat(spooled.fileno()).st_size
            return spooled
        return self._stream

    def close(self) -> None:
        """Close the input (never stdin itself)."""
        if self._stream is not None and self._stream is not sys.stdin.buffer:
            self._stream.close()


class S3RangeReader(io.RawIOBase):
    """A read-only, seekable view of an S3 object: each read is one ranged GET."""

    def __init__(self, bucket: str, key: str, size: int):
        self.bucket, self.key, self.size, self.position = bucket, key, size, 0

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
            body = s3_client().get_object(Bucket=self.bucket, Key=self.key,
                                          Range=f"bytes={self.position}-{end}")["Body"]
            data = body.read()
        except _s3_errors() as exc:
            raise OSError(f"cannot read s3://{self.bucket}/{self.key}: {s3_reason(exc)}") \
                from None
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


class Sink(io.RawIOBase):
    """A binary output that becomes visible only on ``commit``; ``abort`` leaves nothing."""

    location = ""

    def writable(self) -> bool:
        return True

    def commit(self) -> None:  # pragma: no cover - every sink overrides it
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover
        raise NotImplementedError


class LocalSink(Sink):
    """A hidden temporary file beside the target, renamed over it on commit."""

    def __init__(self, location: str):
        super().__init__()
        self.location = location
        self.target = Path(location)
        if self.target.is_dir():
            raise UsageError(f"cannot write {location}: it is a directory")
        try:
            fd, temp = tempfile.mkstemp(dir=self.target.parent or ".",
                                        prefix=f".{self.target.name}.", suffix=".partial")
        except OSError as exc:
            raise UsageError(f"cannot write {location}: {exc.strerror}") from None
        self.temp = Path(temp)
        self.file = os.fdopen(fd, "wb", buffering=1024 * 1024)
        self.written = 0

    def write(self, data) -> int:
        self.file.write(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        if not self.file.closed:
            self.file.flush()

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temp, 0o666 & ~umask)  # mkstemp makes it 0600; a new file would not be
        os.replace(self.temp, self.target)
        self.close()

    def abort(self) -> None:
        try:
            self.file.close()
        finally:
            self.temp.unlink(missing_ok=True)
            self.close()


class StreamSink(Sink):
    """Standard output (or error): written as it goes; it cannot be taken back."""

    def __init__(self, stream: BinaryIO, location: str = STDIO):
        super().__init__()
        self.stream, self.location, self.written = stream, location, 0

    def write(self, data) -> int:
        self.stream.write(data)
        self.written += len(data)
        if self.location == "stderr":
            self.stream.flush()  # interleaved with log lines: whole lines, in order
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        if not self.closed:
            self.stream.flush()

    def commit(self) -> None:
        self.stream.flush()

    def abort(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass


class S3Sink(Sink):
    """An S3 object written as a multipart upload: completed on commit, aborted otherwise.

    Memory holds at most one part. An object smaller than one part is sent as one PUT on
    commit, so nothing at all exists in the bucket before then.
    """

    def __init__(self, location: str, part_size: int | None = None):
        super().__init__()
        self.location, self.part_size = location, part_size or PART_SIZE
        self.bucket, self.key = split_s3(location)
        try:  # a missing bucket is said at once, not after scoring the whole input
            s3_client().head_bucket(Bucket=self.bucket)
        except _s3_errors() as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code not in ("403", "AccessDenied"):  # may write without listing: try later
                raise UsageError(f"cannot write {location}: "
                                 f"{s3_reason(exc, 'no such bucket')}") from None
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict] = []
        self.written = 0

    def write(self, data) -> int:
        self.buffer += data
        self.written += len(data)
        while len(self.buffer) >= self.part_size:
            self._upload(bytes(self.buffer[: self.part_size]))
            del self.buffer[: self.part_size]
        return len(data)

    def tell(self) -> int:
        return self.written

    def _upload(self, part: bytes) -> None:
        client = s3_client()
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(Bucket=self.bucket,
                                                            Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        etag = client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                  PartNumber=number, Body=part)["ETag"]
        self.parts.append({"ETag": etag, "PartNumber": number})

    def commit(self) -> None:
        client = s3_client()
        if self.upload_id is None:
            client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
        else:
            if self.buffer or not self.parts:
                self._upload(bytes(self.buffer))
            client.complete_multipart_upload(Bucket=self.bucket, Key=self.key,
                                             UploadId=self.upload_id,
                                             MultipartUpload={"Parts": self.parts})
        self.buffer = bytearray()
        self.close()

    def abort(self) -> None:
        self.buffer = bytearray()
        if self.upload_id is not None:
            try:
                s3_client().abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                   UploadId=self.upload_id)
            except Exception:  # noqa: BLE001 - the run is failing already; say the first cause
                pass
            self.upload_id = None
        self.close()


def open_sink(location: str) -> Sink:
    """The sink for an output location."""
    if location == STDIO:
        return StreamSink(sys.stdout.buffer)
    if is_s3(location):
        return S3Sink(location)
    return LocalSink(location)


def same_place(a: str, b: str) -> bool:
    """True when two locations name the same file or object."""
    if a == STDIO or b == STDIO:
        return False
    if is_s3(a) or is_s3(b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()
