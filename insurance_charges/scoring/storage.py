"""Where rows come from and go to: local paths, ``s3://bucket/key`` and ``-`` (stdin, stdout).

Inputs are read as streams (S3 through ``aws.objects``: one GET's body, a block at a time);
Parquet, which needs random access, reads S3 through ranged GETs and stdin through a spooled
temporary file. Outputs are written so that nothing looks finished before it is: a local file
goes to a hidden temporary file beside the target and is renamed over it on ``publish``; an S3
object is a multipart upload completed on ``publish`` and aborted on ``abort`` (or one PUT when
small).
``publishing.publish_together`` makes the output and its rejects appear as a pair. Only
standard output is written as it goes. S3 goes through the run's one client (``aws.clients``:
boto3 finds credentials, the region and ``AWS_ENDPOINT_URL`` itself), and every S3 failure is
``aws.errors``' one line.
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

from ..aws.errors import AwsError, call, explain, failures
from ..aws.objects import open_seekable, open_stream
from ..aws.uri import BadS3Uri, S3Uri, is_s3, parse_s3_object
from ..errors import UsageError
from .formats import STDIO

PART_SIZE = 8 * 1024 * 1024  # bytes per multipart part (S3's minimum is 5 MiB)


def parse_object_uri(location: str) -> S3Uri:
    """The S3 object an ``s3://bucket/key`` location names; UsageError saying how to write it."""
    try:
        return parse_s3_object(location)
    except BadS3Uri as exc:
        raise UsageError(f"{location}: {exc}") from None


class Source:
    """An input: a stream to read in blocks, its size when known, random access on demand."""

    def __init__(self, location: str, s3):
        """``s3`` returns the run's S3 client (aws.clients.lazy), used for an s3:// location."""
        self.location, self._s3 = location, s3
        self.size: int | None = None
        self._stream: BinaryIO | None = None
        if location == STDIO:
            self._stream = sys.stdin.buffer
        elif is_s3(location):
            self.uri = parse_object_uri(location)
        else:
            path = Path(location)
            if path.is_dir():  # refused before open(): Python 3.11's failed FileIO of a
                # directory is left for the collector, a ResourceWarning (the except below
                # still covers one made meanwhile)
                raise UsageError(f"cannot read {location}: it is a directory")
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
                stream, self.size = open_stream(self._s3(), self.uri)
            except AwsError as exc:
                raise UsageError(str(exc)) from None
            self._stream = stream
            return stream
        return self._stream

    def random_access(self):
        """A seekable file for Parquet: the file itself, ranged GETs on S3, or a spooled stdin."""
        if is_s3(self.location):
            try:
                seekable, self.size = open_seekable(self._s3(), self.uri)
            except AwsError as exc:
                raise UsageError(str(exc)) from None
            return seekable
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
            fd, temp = tempfile.mkstemp(
                dir=self.target.parent or ".", prefix=f".{self.target.name}.", suffix=".partial"
            )
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
            return (
                f"this run's {self.location} was removed again (the file it had replaced "
                "could not be kept)"
            )
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

    def __init__(self, location: str, s3, part_size: int | None = None):
        """``s3`` returns the run's S3 client (aws.clients.lazy)."""
        super().__init__()
        self.location, self.part_size, self._s3 = location, part_size or PART_SIZE, s3
        uri = parse_object_uri(location)
        self.bucket, self.key = uri.bucket, uri.key
        self.permission = f"s3:PutObject on {uri.object_arn()}"
        try:  # a missing bucket is said at once, not after scoring the whole input
            call(
                lambda: s3().head_bucket(Bucket=self.bucket),
                f"writing {location}",
                f"s3:ListBucket on arn:aws:s3:::{self.bucket}",
            )
        except AwsError as exc:
            if exc.kind != "denied":  # may write without listing: try later
                raise UsageError(str(exc)) from None
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
        client = self._s3()
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=self.key)[
                "UploadId"
            ]
        number = len(self.parts) + 1
        etag = client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part
        )["ETag"]
        self.parts.append({"ETag": etag, "PartNumber": number})

    def finish(self) -> None:
        """Upload the last part of a multipart upload (a small object waits for publish)."""
        if self.upload_id is not None and (self.buffer or not self.parts):
            self._upload(bytes(self.buffer))
            self.buffer = bytearray()

    def publish(self) -> None:
        """Complete the upload, or PUT a small object: the object appears."""
        client = self._s3()
        try:
            if self.upload_id is None:
                client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            else:
                client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": self.parts},
                )
                self.upload_id = None
        except failures() as exc:
            raise OSError(explain(exc, f"writing {self.location}", self.permission)) from None
        self.buffer = bytearray()
        self.close()

    def withdraw(self) -> str:
        """Delete the object publish wrote (S3 keeps no previous version to put back)."""
        self._s3().delete_object(Bucket=self.bucket, Key=self.key)
        return f"{self.location}, written by this run, was deleted again"

    def abort(self) -> str | None:
        self.aborted = True
        self.buffer = bytearray()
        note = None
        if self.upload_id is not None:
            try:
                self._s3().abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                )
            except Exception as exc:  # noqa: BLE001 - said in the run's one line
                note = (
                    f"the unfinished upload of {self.location} could not be aborted "
                    f"({_said(exc)}); it is invisible, and a bucket lifecycle rule "
                    "(AbortIncompleteMultipartUpload) removes it"
                )
            self.upload_id = None
        self.close()
        return note


def _said(exc: Exception) -> str:
    """An abort's failure in a few words: AWS's line, or the exception's own text."""
    if isinstance(exc, failures()):
        return explain(exc, "aborting the upload", "s3:AbortMultipartUpload")
    return str(exc) or type(exc).__name__


def open_sink(location: str, s3) -> Sink:
    """The sink for an output location (``s3`` returns the run's client, for s3://)."""
    if location == STDIO:
        return StreamSink(sys.stdout.buffer)
    if is_s3(location):
        return S3Sink(location, s3)
    return LocalSink(location)


KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


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
    raise UsageError(
        f"cannot write {location} ({option}): it is {kind}, and the command "
        "replaces its output as a whole rather than writing through it; give the "
        f"path of a regular file or a new one{stdout}"
    )


def same_place(a: str, b: str) -> bool:
    """True when two locations name the same file or object."""
    if a == STDIO or b == STDIO:
        return False
    if is_s3(a) or is_s3(b):
        return a == b
    return Path(a).resolve() == Path(b).resolve()
