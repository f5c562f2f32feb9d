"""Where rows come from and go to: local paths, ``s3://bucket/key`` and ``-`` (stdin, stdout).

Inputs are read as streams (S3 through ``get_object``'s body, a block at a time); Parquet,
which needs random access, reads S3 through ranged GETs and stdin through a spooled temporary
file. Outputs are written so that nothing looks finished before it is: a local file goes to a
hidden temporary file beside the target and is renamed over it on ``publish``; an S3 object is
a multipart upload completed on ``publish`` and aborted on ``abort`` (or one PUT when small).
``publishing.publish_together`` makes the output and its rejects appear as a pair. Only
standard output is written as it goes. boto3 finds credentials, the region and
``AWS_ENDPOINT_URL`` in the environment itself.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import UsageError
from .formats import STDIO

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
            # Disk, not memory: the file may be large. Returned open: the caller closes it.
            spooled = tempfile.TemporaryFile()  # noqa: SIM115
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
    """A binary output that becomes visible only when published; ``abort`` leaves nothing.

    Publishing is split so that two sinks can appear together: ``finish`` does the slow,
    interruptible part (fsync, the last part's upload) and ``publish`` the quick one (a rename,
    completing an upload); ``withdraw`` takes a publish back, ``settle`` forgets how to.
    """

    location = ""
    streams = False  # written as it goes (standard output): it cannot be taken back

    @property
    def label(self) -> str:
        """The sink's name in messages."""
        return "standard output" if self.location == STDIO else self.location

    def writable(self) -> bool:
        return True

    def finish(self) -> None:  # pragma: no cover - every sink overrides it
        raise NotImplementedError

    def publish(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def withdraw(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def settle(self) -> None:
        """Forget what ``withdraw`` would need (the publish stands)."""

    def abort(self) -> str | None:  # pragma: no cover
        raise NotImplementedError


class LocalSink(Sink):
    """A hidden temporary file beside the target, renamed over it on publish."""

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
        self.aborted = False  # later writes (a Parquet writer's footer) go nowhere
        self.previous: Path | None = None  # a hard link to the file publish replaced
        self.replaced = False

    def write(self, data) -> int:
        if not self.aborted:
            self.file.write(data)
            self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        if not self.file.closed:
            self.file.flush()

    def finish(self) -> None:
        """Flush and fsync the temporary file, with a new file's permissions."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temp, 0o666 & ~umask)  # mkstemp makes it 0600; a new file would not be

    def publish(self) -> None:
        """Rename the temporary file over the target, keeping a link to what it replaces."""
        self.previous = None
        self.replaced = os.path.lexists(self.target)
        backup = self.target.with_name(f".{self.target.name}.{secrets.token_hex(6)}.previous")
        if self.replaced:
            try:
                os.link(self.target, backup, follow_symlinks=False)
                self.previous = backup
            except OSError:  # no hard links here: the previous file cannot be put back
                pass
        try:
            os.replace(self.temp, self.target)
        except OSError as exc:  # named by the target, not by the hidden temporary file
            raise OSError(exc.errno, exc.strerror, self.location) from None
        self.close()

    def withdraw(self) -> str:
        """Put back the file that publish replaced (or remove this run's): what is there now."""
        if self.previous is not None:
            os.replace(self.previous, self.target)
            self.previous = None
            return f"{self.location} is back as it was before this run"
        self.target.unlink(missing_ok=True)
        if self.replaced:
            return (f"this run's {self.location} was removed again (the file it had replaced "
                    "could not be kept)")
        return f"this run's {self.location} was removed again"

    def settle(self) -> None:
        if self.previous is not None:
            self.previous.unlink(missing_ok=True)
            self.previous = None

    def abort(self) -> str | None:
        self.aborted = True
        try:
            self.file.close()  # flushing may fail again (a full disk): the file goes anyway
        except OSError:
            pass
        self.temp.unlink(missing_ok=True)
        self.close()
        return None


class StreamSink(Sink):
    """Standard output (or error): written as it goes; it cannot be taken back."""

    streams = True

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

    def finish(self) -> None:
        self.stream.flush()

    def publish(self) -> None:
        """Nothing to do: the rows are out already."""

    def withdraw(self) -> str:
        return f"{self.label} got all of it"

    def abort(self) -> str | None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass
        if self.location == STDIO and self.written:
            return f"standard output got {self.written:,} bytes of an incomplete output"
        return None


class S3Sink(Sink):
    """An S3 object written as a multipart upload: completed on publish, aborted otherwise.

    Memory holds at most one part. An object smaller than one part is sent as one PUT on
    publish, so nothing at all exists in the bucket before then.
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
        self.aborted = False  # later writes (a Parquet writer's footer) go nowhere

    def write(self, data) -> int:
        if self.aborted:
            return len(data)
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

    def finish(self) -> None:
        """Upload the last part of a multipart upload (a small object waits for publish)."""
        if self.upload_id is not None and (self.buffer or not self.parts):
            self._upload(bytes(self.buffer))
            self.buffer = bytearray()

    def publish(self) -> None:
        """Complete the upload, or PUT a small object: the object appears."""
        client = s3_client()
        try:
            if self.upload_id is None:
                client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            else:
                client.complete_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                 UploadId=self.upload_id,
                                                 MultipartUpload={"Parts": self.parts})
                self.upload_id = None
        except _s3_errors() as exc:
            raise OSError(f"cannot write {self.location}: {s3_reason(exc)}") from None
        self.buffer = bytearray()
        self.close()

    def withdraw(self) -> str:
        """Delete the object publish wrote (S3 keeps no previous version to put back)."""
        s3_client().delete_object(Bucket=self.bucket, Key=self.key)
        return f"{self.location}, written by this run, was deleted again"

    def abort(self) -> str | None:
        self.aborted = True
        self.buffer = bytearray()
        note = None
        if self.upload_id is not None:
            try:
                s3_client().abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                   UploadId=self.upload_id)
            except Exception as exc:  # noqa: BLE001 - said in the run's one line
                note = (f"the unfinished upload of {self.location} could not be aborted "
                        f"({s3_reason(exc)}); it is invisible, and a bucket lifecycle rule "
                        "(AbortIncompleteMultipartUpload) removes it")
            self.upload_id = None
        self.close()
        return note


def open_sink(location: str) -> Sink:
    """The sink for an output location."""
    if location == STDIO:
        return StreamSink(sys.stdout.buffer)
    if is_s3(location):
        return S3Sink(location)
    return LocalSink(location)


KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
         (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_output_place(location: str, option: str) -> None:
    """Refuse a local output that is not a regular file (or a new one) before anything runs.

    An output is replaced as a whole when the run is complete (a rename), never written
    through: a symbolic link, a device, a named pipe or a directory in its place would be
    replaced, not written to, so it is refused instead.
    """
    if location == STDIO or is_s3(location):
        return
    try:
        mode = os.lstat(location).st_mode
    except FileNotFoundError:
        return  # a new file; a missing directory is said when the file is made
    except OSError as exc:
        raise UsageError(f"cannot write {location}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
    if stat.S_ISLNK(mode):
        kind += f" (to {os.readlink(location)})"
    stdout = "; -o - writes to standard output" if option == "-o" else ""
    raise UsageError(f"cannot write {location} ({option}): it is {kind}, and the command "
                     "replaces its output as a whole rather than writing through it; give the "
                     f"path of a regular file or a new one{stdout}")


def same_place(a: str, b: str) -> bool:
    """True when two locations name the same file or object."""
    if a == STDIO or b == STDIO:
        return False
    if is_s3(a) or is_s3(b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()
