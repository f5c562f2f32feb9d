"""What the scoring tests share: files to score, reading outputs back, running the command (in
this process with the session's model, or as a real child process), moto's S3."""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools.records import valid_records
from insurance_charges.scoring import cli
from insurance_charges.scoring.chunk_scorer import ChunkScorer

from .aws import scoring_s3_on_moto

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("estimate", "likely_lower", "likely_upper", "warnings", "inference_id")


# Helpers ---------------------------------------------------------------------------------------


def records_with_ids(count: int, seed: int = 0) -> list[dict]:
    """Valid records (schema corners first, many outside the training ranges) with an id."""
    rows = []
    for i, record in enumerate(valid_records(count, seed)):
        rows.append({"id": f"P-{i:05d}", **record, "note": f"n,{i}"})
    return rows


def cell(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row[c]) for c in columns])
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


def read_rows(path: Path, fmt: str | None = None) -> list[dict]:
    fmt = fmt or path.suffix.lstrip(".")
    if fmt == "csv":
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pq.read_table(path).to_pylist()


def summary_of(stderr: str) -> dict:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return next(line for line in lines if line.get("event") == "summary")


def problems_of(reject: dict) -> list[tuple[str | None, str]]:
    """A rejects line's problems as (field, message), read back from any rejects format: CSV
    joins each with a line break (an empty field is the whole row's), JSON lines lists
    objects, Parquet keeps two lists."""
    if "problems" in reject:
        return [(p["field"], p["message"]) for p in reject["problems"]]
    fields, messages = reject["fields"], reject["messages"]
    if isinstance(messages, str):
        messages = messages.split("\n")
        fields = fields.split("\n") if fields else [""] * len(messages)
        fields = [f or None for f in fields]
    assert len(fields) == len(messages), reject
    return list(zip(fields, messages, strict=True))


def fields_of(reject: dict) -> list[str | None]:
    """The fields of a rejects line's problems (None for the whole row's)."""
    return [field for field, _ in problems_of(reject)]


def messages_of(reject: dict) -> list[str]:
    """The messages of a rejects line's problems."""
    return [message for _, message in problems_of(reject)]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


@pytest.fixture
def score(real_model, monkeypatch, capfd):
    """Run the command in this process with the session's model; (status, stdout, stderr).

    With ``--jobs 1`` unless a test asks for workers: forking them makes a test slow-tier
    (tests/tiers.py), and such a test says so with ``@pytest.mark.slow``.
    """
    monkeypatch.setattr(
        "insurance_charges.serving.model.load_model", lambda *args, **kwargs: real_model
    )

    def run(*args, stdin: bytes | None = None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capfd.readouterr()
        argv = [str(a) for a in args]
        status = cli.main(argv if "--jobs" in argv else [*argv, "--jobs", "1"])
        out, err = capfd.readouterr()
        return status, out, err

    return run


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1; boto3 finds it through AWS_ENDPOINT_URL."""
    with scoring_s3_on_moto("scoring") as client:
        yield client


def fail_chunk(monkeypatch, nth: int, error: Exception) -> None:
    """Make the ``nth`` chunk scored raise ``error``; the others score as usual."""
    calls = {"n": 0}
    real = ChunkScorer.score

    def failing(scorer, chunk, worded):
        calls["n"] += 1
        if calls["n"] == nth:
            raise error
        return real(scorer, chunk, worded)

    monkeypatch.setattr(ChunkScorer, "score", failing)


def start_scoring(args: list[str], data: bytes, env: dict | None = None) -> subprocess.Popen:
    """The real command, in its own session, reading ``data`` from a pipe left open (so it
    surely is mid-run until the pipe is closed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "insurance_charges.scoring", "-", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=env,
    )

    def feed() -> None:  # in the background: the command may stop reading (a held upload)
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except (BrokenPipeError, ValueError):  # it stopped, or the test closed the pipe
            pass

    threading.Thread(target=feed, daemon=True).start()
    return process


def csv_bytes(rows: list[dict]) -> bytes:
    """``rows`` as the bytes of a CSV file with a header."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(rows[0]))
    writer.writerows([[cell(row[c]) for c in rows[0]] for row in rows])
    return text.getvalue().encode()


def start_on_a_pipe(tmp_path: Path, name: str = "out.csv") -> tuple[subprocess.Popen, Path]:
    """The command scoring CSV from a pipe into ``tmp_path / name``, once its temporary file
    holds chunks."""
    process = start_scoring(
        ["-o", str(tmp_path / name), "--chunk-rows", "100", "--jobs", "2"],
        csv_bytes(records_with_ids(1000)),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # chunks have been written to the temporary file
        partial = [p for p in tmp_path.iterdir() if p.name.startswith(f".{name}.")]
        if partial and partial[0].stat().st_size > 10_000:
            return process, partial[0]
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.kill()
    pytest.fail("the command wrote nothing within 60 s")


class HeldUploads:
    """A TCP relay to moto's server that holds every S3 UploadPart request until released.

    A slow network, made certain: the command sending a part stays inside botocore, waiting on
    the socket, for as long as the test needs (a signal sent then arrives mid-request). Every
    other request passes straight through, so an abort reaches moto at once.
    """

    def __init__(self, target: str):
        host, port = target.rsplit("/", 1)[-1].split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.holding = threading.Event()  # a part is being held
        self.released = threading.Event()

    def __enter__(self) -> HeldUploads:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target) as upstream:
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()
            held = False
            while data := self._receive(client):
                request_line = data.split(b"\r\n", 1)[0]
                if data.startswith(b"PUT ") and b"partNumber=" in request_line:
                    held = True
                    self.holding.set()
                if held:
                    self.released.wait()
                upstream.sendall(data)

    @staticmethod
    def _receive(sock: socket.socket) -> bytes:
        try:
            return sock.recv(1 << 16)
        except OSError:
            return b""

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                target.sendall(data)
        except OSError:
            pass
