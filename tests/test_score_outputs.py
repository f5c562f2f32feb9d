"""Where a run's output and rejects go, and what a run that does not finish leaves.

An output or rejects path that is not a regular file (a symbolic link, a device, a named pipe,
a directory) is refused before anything is read. The output and its rejects appear together or
not at all, whatever stop signal arrives when (SIGINT, SIGTERM, SIGHUP), locally and on S3, and
every failure removes every partial file; the one ``Error:`` line says what exists. Signals go
to real child processes where the moment does not matter, and to this process (from inside the
rename or the S3 request where it does); S3 is moto's server, once behind a relay that holds an
upload part on the wire.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from insurance_charges.aws import clients
from insurance_charges.scoring.chunk_scorer import ChunkScorer

from .conftest import require
from .scoring_support import (
    ROOT,
    HeldUploads,
    csv_bytes,
    error_lines,
    read_rows,
    records_with_ids,
    start_on_a_pipe,
    start_scoring,
    write_csv,
)

pytest_plugins = ("tests.scoring_support",)  # the score and s3 fixtures

STOP = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# Outputs that are not regular files -----------------------------------------------------------


def a_symbolic_link(path: Path) -> str:
    (path.parent / "target.csv").write_text("the link's target\n")
    path.symlink_to(path.parent / "target.csv")
    return "a symbolic link (to "


def a_dangling_symbolic_link(path: Path) -> str:
    path.symlink_to(path.parent / "nowhere" / "x.csv")
    return "a symbolic link (to "


def a_directory(path: Path) -> str:
    path.mkdir()
    return "a directory"


def a_named_pipe(path: Path) -> str:
    os.mkfifo(path)
    return "a named pipe (FIFO)"


def a_link_to_standard_output(path: Path) -> str:
    path.symlink_to("/dev/stdout")
    return "a symbolic link (to /dev/stdout)"


PLACES = {
    "symbolic link": a_symbolic_link,
    "dangling symbolic link": a_dangling_symbolic_link,
    "directory": a_directory,
    "named pipe": a_named_pipe,
    "link to /dev/stdout": a_link_to_standard_output,
}


def shape(path: Path) -> tuple:
    """What is at a path, to compare before and after a run."""
    if path.is_symlink():
        return ("link", os.readlink(path))
    mode = path.lstat().st_mode
    return (stat.S_IFMT(mode), path.read_text() if stat.S_ISREG(mode) else None)


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("option", ["-o", "--rejects", "the default rejects file"])
def test_an_output_that_is_not_a_regular_file_is_refused_before_anything_is_read(
    score, tmp_path, monkeypatch, place, option
):
    monkeypatch.chdir(tmp_path)
    special = Path({"-o": "out.csv", "--rejects": "bad.csv"}.get(option, "out.rejects.csv"))
    kind = PLACES[place](tmp_path / special)
    before = {p: shape(tmp_path / p) for p in names(tmp_path)}
    args = ["--rejects", "bad.csv"] if option == "--rejects" else []
    status, _, err = score("missing.csv", "-o", "out.csv", *args)  # never opened
    assert status == 2 and len(error_lines(err)) == 1, err
    said = "-o" if option == "-o" else "--rejects"
    assert error_lines(err)[0].startswith(f"Error: cannot write {special} ({said}): it is {kind}")
    assert error_lines(err)[0].endswith(
        "and the command replaces its output as a whole rather than writing through it; give "
        "the path of a regular file or a new one"
        + ("; -o - writes to standard output" if said == "-o" else "")
    )
    assert {p: shape(tmp_path / p) for p in names(tmp_path)} == before


@pytest.mark.parametrize("option", ["-o", "--rejects"])
def test_a_character_device_is_refused_too(score, tmp_path, option):
    args = (
        ["-o", "/dev/null"]
        if option == "-o"
        else ["-o", tmp_path / "out.csv", "--rejects", "/dev/null"]
    )
    status, _, err = score(tmp_path / "missing.csv", *args)
    assert status == 2 and error_lines(err)[0].startswith(
        f"Error: cannot write /dev/null ({option}): it is a character device"
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and names(tmp_path) == []


# The output and its rejects: both or neither ----------------------------------------------------


def previous_pair(directory: Path) -> dict[str, str]:
    """Last run's output and rejects, to tell them from this run's."""
    pair = {"out.csv": "last run's output\n", "out.rejects.csv": "last run's rejects\n"}
    for name, text in pair.items():
        (directory / name).write_text(text)
    return pair


@pytest.mark.parametrize("signum", STOP, ids=lambda s: s.name)
def test_a_stop_signal_between_the_two_renames_waits_until_both_are_in_place(
    score, tmp_path, monkeypatch, signum
):
    previous_pair(tmp_path)
    write_csv(tmp_path / "in.csv", records_with_ids(50))
    replace = os.replace
    renamed = []

    def replace_then_signal(source, target):  # the signal arrives just after the first rename
        replace(source, target)
        renamed.append(Path(target).name)
        if len(renamed) == 1:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert renamed == ["out.rejects.csv", "out.csv"]
    assert status == 128 + signum and error_lines(err) == [
        f"Error: interrupted by {signum.name} after {tmp_path}/out.rejects.csv and "
        f"{tmp_path}/out.csv were written in full"
    ]
    assert len(read_rows(tmp_path / "out.csv")) == 50
    assert read_rows(tmp_path / "out.rejects.csv") == []
    assert names(tmp_path) == ["in.csv", "out.csv", "out.rejects.csv"]


@pytest.mark.parametrize("signum", STOP, ids=lambda s: s.name)
def test_a_stop_signal_between_the_two_s3_writes_waits_until_both_objects_exist(
    score, s3, tmp_path, signum, monkeypatch
):
    write_csv(tmp_path / "in.csv", records_with_ids(50))
    written, real_factory = [], clients.client

    def signal_after_the_first(**kwargs):  # the first object is written: a signal comes
        written.append(kwargs["http_response"].status_code)
        if len(written) == 1:
            os.kill(os.getpid(), signum)

    def client_that_signals(service, **options):  # the run's client, with the hook on it
        made = real_factory(service, **options)
        made.meta.events.register("after-call.s3.PutObject", signal_after_the_first)
        return made

    monkeypatch.setattr(clients, "client", client_that_signals)
    status, _, err = score(tmp_path / "in.csv", "-o", f"s3://scoring/{signum.name}/out.csv")
    where = f"s3://scoring/{signum.name}"
    assert status == 128 + signum, err
    assert error_lines(err) == [
        f"Error: interrupted by {signum.name} after {where}/out.rejects.csv and {where}/out.csv "
        "were written in full"
    ]
    assert written == [200, 200]
    listed = s3.list_objects_v2(Bucket="scoring", Prefix=signum.name)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"{signum.name}/out.csv",
        f"{signum.name}/out.rejects.csv",
    ]


def make_a_directory_of_the_output_while_scoring(monkeypatch, output: Path) -> None:
    """The output's place turns into a directory mid-run, so it cannot be renamed into."""
    real = ChunkScorer.score

    def scoring(scorer, chunk, worded):
        if not output.is_dir():
            output.unlink(missing_ok=True)
            output.mkdir()
        return real(scorer, chunk, worded)

    monkeypatch.setattr(ChunkScorer, "score", scoring)


@pytest.mark.parametrize("earlier", [True, False], ids=["a previous pair", "no previous pair"])
def test_when_the_output_cannot_be_put_in_place_its_rejects_are_taken_back(
    score, tmp_path, monkeypatch, earlier
):
    pair = previous_pair(tmp_path) if earlier else {}
    write_csv(tmp_path / "in.csv", records_with_ids(50))
    make_a_directory_of_the_output_while_scoring(monkeypatch, tmp_path / "out.csv")
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--jobs", 1)
    said = "is back as it was before this run" if earlier else "was removed again"
    rejects = f"{tmp_path}/out.rejects.csv"
    assert status == 2 and error_lines(err) == [
        f"Error: Is a directory ({tmp_path}/out.csv); no output written; "
        + (f"{rejects} {said}" if earlier else f"this run's {rejects} {said}")
    ]
    if earlier:
        assert (tmp_path / "out.rejects.csv").read_text() == pair["out.rejects.csv"]
    assert names(tmp_path) == ["in.csv", "out.csv"] + (["out.rejects.csv"] if earlier else [])


def test_when_the_s3_output_cannot_be_written_its_rejects_object_is_deleted_again(
    score, s3, tmp_path, monkeypatch
):
    s3.create_bucket(Bucket="going-away")
    write_csv(tmp_path / "in.csv", records_with_ids(50))
    real = ChunkScorer.score

    def scoring(scorer, chunk, worded):  # the output's bucket goes while the rows are scored
        s3.delete_bucket(Bucket="going-away")
        monkeypatch.setattr(ChunkScorer, "score", real)
        return real(scorer, chunk, worded)

    monkeypatch.setattr(ChunkScorer, "score", scoring)
    status, _, err = score(
        tmp_path / "in.csv",
        "-o",
        "s3://going-away/out.csv",
        "--rejects",
        "s3://scoring/kept/out.rejects.csv",
        "--jobs",
        1,
    )
    assert status == 2 and error_lines(err) == [
        "Error: no such bucket writing s3://going-away/out.csv; create it or fix the URI; "
        "no output written; s3://scoring/kept/out.rejects.csv, written by this run, "
        "was deleted again"
    ]
    assert s3.list_objects_v2(Bucket="scoring", Prefix="kept").get("KeyCount", 0) == 0


# Stop signals mid-run: a real process -----------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("signum", STOP, ids=lambda s: s.name)
def test_a_stop_signal_mid_run_leaves_last_runs_pair_and_no_partial_file(tmp_path, signum):
    pair = previous_pair(tmp_path)
    process, _ = start_on_a_pipe(tmp_path)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert error_lines(err.decode()) == [f"Error: interrupted by {signum.name}; no output written"]
    assert "Traceback" not in err.decode()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == pair


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, 2.0])
def test_ctrl_c_while_the_command_starts_is_one_line_whatever_it_was_doing(tmp_path, delay):
    require(Path("/proc/self/maps").exists(), "needs Linux's /proc to see what a process loaded")
    process = subprocess.Popen(
        [sys.executable, "-m", "insurance_charges.scoring", "-", "-o", str(tmp_path / "out.csv")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # From the moment it loads Arrow's library (the command's own code runs by then: Python's
    # start-up before it cannot be helped), over the arguments and the model's loading.
    maps = Path(f"/proc/{process.pid}/maps")
    while process.poll() is None and "libarrow" not in maps.read_text():
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and error_lines(err.decode()) == [
        "Error: interrupted by SIGINT; no output written"
    ], err.decode()
    assert "Traceback" not in err.decode() and names(tmp_path) == []


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("signum", STOP, ids=lambda s: s.name)
def test_a_stop_signal_while_a_part_is_on_the_wire_aborts_the_upload_and_stops(
    s3, tmp_path, signum
):
    env = {**os.environ}
    with HeldUploads(env["AWS_ENDPOINT_URL"]) as relay:
        env["AWS_ENDPOINT_URL"] = relay.endpoint
        key = f"held/{signum.name}.csv"
        # The pipe stays open, so the last chunks wait for more input and 4 chunks stay in
        # flight: 150,000 rows in chunks of 10,000 write 110,000 rows, more than one 8 MiB part.
        process = start_scoring(
            [
                "-o",
                f"s3://scoring/{key}",
                "--rejects",
                str(tmp_path / "rejects.csv"),
                "--chunk-rows",
                "10000",
                "--jobs",
                "2",
            ],
            csv_bytes(records_with_ids(150_000)),
            env,
        )
        assert relay.holding.wait(120), process.stderr.read1().decode()
        process.send_signal(signum)
        try:
            _, err = process.communicate(timeout=30)  # boto3 retrying would hang here
        finally:
            relay.released.set()
            process.kill()
    assert process.returncode == 128 + signum, err.decode()
    assert error_lines(err.decode()) == [f"Error: interrupted by {signum.name}; no output written"]
    assert s3.list_objects_v2(Bucket="scoring", Prefix="held").get("KeyCount", 0) == 0
    uploads = s3.list_multipart_uploads(Bucket="scoring").get("Uploads", [])
    assert [u for u in uploads if u["Key"] == key] == []
    assert names(tmp_path) == []


# Every failure removes every partial file -----------------------------------------------------


def run_with_a_file_size_limit(args: list[str], limit: int):
    """The real command with files limited to ``limit`` bytes: a write past it fails with
    EFBIG, as a full disk fails with ENOSPC."""

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "insurance_charges.scoring", *args],
        cwd=ROOT,
        capture_output=True,
        preexec_fn=limited,
        timeout=300,
    )


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_write_that_fails_midway_leaves_no_partial_file_of_either_output(tmp_path, fmt):
    noise = random.Random(0)  # notes that do not compress: Parquet files grow too
    rows = [{**r, "age": "x", "note": noise.randbytes(1000).hex()} for r in records_with_ids(3000)]
    rows[:3] = records_with_ids(3)  # a few good rows: the output has rows too
    write_csv(tmp_path / "in.csv", rows)
    run = run_with_a_file_size_limit(
        [
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / f"o.{fmt}"),
            "--chunk-rows",
            "100",
            "--jobs",
            "1",
        ],
        1_000_000,
    )
    err = run.stderr.decode()
    assert run.returncode == 2, err
    assert len(error_lines(err)) == 1 and "File too large" in error_lines(err)[0], err
    assert error_lines(err)[0].endswith("; no output written")
    assert "Traceback" not in err and "Exception ignored" not in err
    assert names(tmp_path) == ["in.csv"]


@pytest.mark.slow  # starts processes
def test_json_lines_of_mixed_types_to_parquet_is_one_error_line_and_no_traceback(tmp_path):
    record = {
        "age": 19,
        "sex": "female",
        "bmi": 27.9,
        "children": 0,
        "smoker": "yes",
        "region": "southwest",
    }
    lines = [json.dumps({"id": 1, **record}), json.dumps({"id": "x", **record})]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "insurance_charges.scoring",
            str(tmp_path / "in.jsonl"),
            "-o",
            str(tmp_path / "out.parquet"),
            "--chunk-rows",
            "1",
            "--jobs",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    err = run.stderr.decode()
    assert run.returncode == 2
    assert [line for line in err.splitlines() if not line.startswith("{")] == [
        "Error: a Parquet file has one type per column, but column id holds values of another "
        "type than in the first rows (Failed to parse string: 'x' as a scalar of type int64); "
        "write CSV or JSON lines instead, or give the column one type"
    ]
    assert names(tmp_path) == ["in.jsonl"]
