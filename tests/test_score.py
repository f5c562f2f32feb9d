"""Scoring a file (python -m insurance_charges.scoring): formats, order, rejects, S3, failures.

Most runs call the command's ``main`` in this process with the session's model (loading it
again costs seconds); two run it as a real child process: stdin to stdout, and killed by
SIGKILL. S3 runs against moto's server over HTTP on 127.0.0.1. Accounting for every line and
bounded rejects: test_score_accounting.py; spreadsheet formulas and Parquet columns a CSV
cannot hold: test_score_cells.py; output places, publishing the pair, stop signals and
failures (SIGTERM mid-run moved there): test_score_outputs.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devtools.records import valid_records
from insurance_charges.core import schema
from insurance_charges.core.schema import FIELD_NAMES, FIELDS, check_value
from insurance_charges.scoring import cli, storage
from insurance_charges.scoring.chunk_scorer import ChunkScorer
from insurance_charges.scoring.reading import TextChunk, text_chunks
from insurance_charges.scoring.scored import Plan
from insurance_charges.tables import columns
from insurance_charges.web import create_app

from .scoring_support import (
    OUTPUTS,
    ROOT,
    WRITERS,
    cell,
    error_lines,
    fail_chunk,
    fields_of,
    messages_of,
    problems_of,
    read_rows,
    records_with_ids,
    start_on_a_pipe,
    summary_of,
    write_csv,
    write_jsonl,
)

pytest_plugins = ("tests.scoring_support",)  # the score and s3 fixtures


@pytest.fixture(scope="module")
def api_answer(real_model):
    """The JSON API's answer for a batch of records."""
    client = create_app({"TESTING": True, "MODEL": real_model}).test_client()

    def answer(records: list[dict]) -> dict:
        response = client.post("/api/v1/predict", json=records)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return answer


def assert_same_as_api(rows: list[dict], records: list[dict], api: dict) -> None:
    """Each output row has the API's estimate, likely range and warnings for its record."""
    assert len(rows) == len(records)
    warnings: dict[int, list[str]] = {}
    for w in api["warnings"]:
        warnings.setdefault(int(w["pointer"].split("/")[1]), []).append(w["message"])
    for i, (row, record) in enumerate(zip(rows, records, strict=True)):
        assert float(row["estimate"]) == api["predictions"][i]
        assert float(row["likely_lower"]) == api["intervals"][i]["lower"]
        assert float(row["likely_upper"]) == api["intervals"][i]["upper"]
        assert (row["warnings"] or "") == " | ".join(warnings.get(i, []))
        assert row["id"] == record["id"]


# Formats, ids, order, and the API's numbers ------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("source_format", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("target_format", ["csv", "jsonl", "parquet"])
def test_every_format_in_and_out_carries_ids_through_in_order_with_the_apis_numbers(
    score, api_answer, tmp_path, source_format, target_format
):
    rows = records_with_ids(300, seed=7)
    source = WRITERS[source_format](tmp_path / f"in.{source_format}", rows)
    target = tmp_path / f"out.{target_format}"
    status, _, err = score(source, "-o", target, "--chunk-rows", 64, "--jobs", 2)
    assert status == 0, err
    got = read_rows(target)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["note"] for r in got] == [r["note"] for r in rows]  # carried through
    assert list(got[0])[-len(OUTPUTS) :] == list(OUTPUTS)
    records = [{k: r[k] for k in FIELD_NAMES} for r in rows]
    assert_same_as_api(got, rows, api_answer(records))
    assert read_rows(tmp_path / f"out.rejects.{target_format}") == []
    report = summary_of(err)
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (300, 300, 0)


def test_csv_to_csv_keeps_every_input_column_and_value_as_it_was(score, tmp_path):
    rows = records_with_ids(50)
    source = write_csv(
        tmp_path / "in.csv",
        rows,
        ["note", "region", "age", "id", "sex", "bmi", "children", "smoker"],
    )
    status, _, err = score(source, "-o", tmp_path / "out.csv")
    assert status == 0, err
    got = read_rows(tmp_path / "out.csv")
    expected = read_rows(source)
    assert list(got[0]) == list(expected[0]) + list(OUTPUTS)
    assert [{k: r[k] for k in expected[0]} for r in got] == expected


@pytest.mark.slow  # starts processes
def test_chunks_scored_by_two_workers_come_back_in_input_order(score, tmp_path):
    rows = records_with_ids(1000, seed=3)
    source = write_csv(tmp_path / "in.csv", rows)
    status, _, err = score(source, "-o", tmp_path / "out.csv", "--chunk-rows", 7, "--jobs", 2)
    assert status == 0, err
    assert [r["id"] for r in read_rows(tmp_path / "out.csv")] == [r["id"] for r in rows]


def test_estimates_equal_the_apis_for_text_typed_as_the_form_types_it(score, api_answer, tmp_path):
    records = [dict(r) for r in valid_records(40, seed=11)]
    lines = ["id,age,sex,bmi,children,smoker,region"]
    for i, r in enumerate(records):  # spaces around values, plus signs, leading zeros, "27."
        age = [f" {r['age']} ", f"+{r['age']}", f"0{r['age']}", str(r["age"])][i % 4]
        bmi = [f"{r['bmi']!r}", f"{r['bmi']:.3f}", f"{int(r['bmi'])}.", f" {r['bmi']!r}"][i % 4]
        lines.append(f"r{i},{age},{r['sex']},{bmi},{r['children']},{r['smoker']},{r['region']}")
        r["bmi"] = float(bmi.strip())
        r["id"] = f"r{i}"
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert status == 0, err
    api = api_answer([{k: r[k] for k in FIELD_NAMES} for r in records])
    assert_same_as_api(read_rows(tmp_path / "out.csv"), records, api)


def test_json_lines_keep_each_line_as_sent_with_the_four_values_added(score, tmp_path):
    source = tmp_path / "in.jsonl"
    line = (
        '{"id": 123456789012345678901234567890, "age": 19, "sex": "female", "bmi": 27.90, '
        '"children": 0, "smoker": "yes", "region": "southwest", "meta": {"a": [1, 2]}}'
    )
    source.write_text(line + "\n")
    status, _, err = score(source, "-o", tmp_path / "out.jsonl")
    assert status == 0, err
    out = (tmp_path / "out.jsonl").read_text()
    assert out.startswith(line[:-1] + ',"estimate":19270.25,')
    assert json.loads(out)["id"] == 123456789012345678901234567890


def test_parquet_numbers_follow_the_apis_json_rules(score, tmp_path):
    table = pa.table(
        {
            "policy": pa.array([1, 2, 3, 4, 5, 6]),
            "age": pa.array([19.0, 40.0, 40.5, None, 30.0, 30.0], pa.float32()),
            "sex": pa.array(["female", "male", "male", "male", "male", "male"]).dictionary_encode(),
            "bmi": pa.array([27, 33, 33, 33, float("nan"), 33], pa.float64()),
            "children": pa.array([0, 1, 1, 1, 1, 1], pa.uint8()),
            "smoker": pa.array(["yes", "no", "no", "no", "no", "no"]),
            "region": pa.array(["southwest"] * 6),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    status, _, err = score(tmp_path / "in.parquet", "-o", tmp_path / "out.csv")
    assert status == 1
    assert [r["policy"] for r in read_rows(tmp_path / "out.csv")] == ["1", "2", "6"]
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [(r["line"], problems_of(r)) for r in rejects] == [
        ("3", [("age", "age must be a whole number from 18 to 100; got 40.5")]),
        ("4", [("age", "age must be a whole number from 18 to 100; got null")]),
        ("5", [("bmi", "bmi must be a number from 10 to 80; got nan")]),
    ]


# Rejects and the summary -------------------------------------------------------------------------

BAD_CSV = """id,age,sex,bmi,children,smoker,region
a1,19,female,27.9,0,yes,southwest
a2,abc,female,27.9,0,maybe,southwest

a3,19,female,27.9,0,yes
a4,١٩,female,27.9,0,yes,southwest
a5,70,male,33.1,2,no,northeast
a6,19,female,,0,yes,southwest
"""


def test_bad_rows_go_to_the_rejects_file_with_line_numbers_and_their_columns(score, tmp_path):
    (tmp_path / "in.csv").write_text(BAD_CSV)
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert status == 1  # rows were rejected and --max-rejects is 0
    assert [r["id"] for r in read_rows(tmp_path / "out.csv")] == ["a1", "a5"]
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [(r["line"], r["last_line"], r["rows"], fields_of(r), r["id"]) for r in rejects] == [
        ("3", "3", "1", ["age", "smoker"], "a2"),
        ("5", "5", "1", [None], ""),
        ("6", "6", "1", ["age"], "a4"),
        ("8", "8", "1", ["bmi"], "a6"),
    ]
    assert messages_of(rejects[0]) == [
        'age must be a whole number from 18 to 100; got "abc" (a string)',
        'smoker must be one of "yes", "no"; got "maybe" (a string)',
    ]
    assert messages_of(rejects[1]) == ["the line has 6 values where the header has 7 columns"]
    assert messages_of(rejects[3]) == ["bmi is required: a number from 10 to 80"]
    report = summary_of(err)
    assert report["rows_read"] == report["rows_scored"] + report["rows_rejected"]
    assert (
        report["rows_read"],
        report["rows_scored"],
        report["rows_rejected"],
        report["problems"],
        report["warnings"],
    ) == (6, 2, 4, 5, 1)
    assert "4 rows rejected, more than --max-rejects allows (0)" in err


@pytest.mark.parametrize("allowed, status", [(3, 1), (4, 0), (100, 0)])
def test_max_rejects_decides_the_exit_status(score, tmp_path, allowed, status):
    (tmp_path / "in.csv").write_text(BAD_CSV)
    got, _, _ = score(tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--max-rejects", allowed)
    assert got == status
    assert (tmp_path / "out.csv").exists() and (tmp_path / "out.rejects.csv").exists()


def test_json_lines_rejects_hold_the_record_as_sent(score, tmp_path):
    good = {
        "id": 1,
        "age": 19,
        "sex": "female",
        "bmi": 27.9,
        "children": 0,
        "smoker": "yes",
        "region": "southwest",
    }
    lines = [
        json.dumps(good),
        "",
        "not json",
        "[1, 2]",
        json.dumps({**good, "age": "19"}),
        '{"id": 9, "age": 19, "age": 20, "sex": "female", "bmi": 27.9, "children": 0, '
        '"smoker": "yes", "region": "southwest"}',
        json.dumps({**good, "estimate": 1}),
        json.dumps({**good, "bmi": float("nan")}),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    status, _, err = score(tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl")
    assert status == 1
    rejects = read_rows(tmp_path / "out.rejects.jsonl")
    assert [(r["line"], fields_of(r)) for r in rejects] == [
        (3, [None]),
        (4, [None]),
        (5, ["age"]),
        (6, ["age"]),
        (7, ["estimate"]),
        (8, [None]),
    ]
    [not_json], [not_an_object], _, [repeated], _, [nan] = map(messages_of, rejects)
    assert rejects[0]["text"] == "not json" and "not valid JSON" in not_json
    assert rejects[1]["row"] == [1, 2] and not_an_object.startswith("a record must be")
    assert rejects[2]["row"]["age"] == "19"
    assert repeated == "'age' appears more than once in the object; send each field once"
    assert "NaN" in nan  # the API's parser refuses it too
    report = summary_of(err)
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (7, 1, 6)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50_000])
def test_a_quoted_value_may_hold_line_breaks_and_text_that_is_not_utf8_rejects_its_line(
    score, tmp_path, chunk_rows
):
    data = (
        b"id,age,sex,bmi,children,smoker,region\n"
        b"a1,19,female,27.9,0,yes,southwest\n"
        b'"a\n2\n""x""",19,female,27.9,0,yes,southwest\n'
        b"a3,19,f\xe9male,27.9,0,yes,southwest\r\n"
        b"5'10\",19,female,27.9,0,yes,southwest\r\n"
        b'a5,19,female,27.9,0,"yes\nno",southwest\r\n'
        b"a6,19,female,27.9,0,yes,southwest\r\n"
    )
    (tmp_path / "in.csv").write_bytes(data)
    status, _, err = score(
        tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--chunk-rows", chunk_rows
    )
    assert status == 1
    assert [r["id"] for r in read_rows(tmp_path / "out.csv")] == ["a1", 'a\n2\n"x"', "5'10\"", "a6"]
    rejects = read_rows(tmp_path / "out.rejects.csv")
    assert [(r["line"], fields_of(r)) for r in rejects] == [("6", [None]), ("8", ["smoker"])]
    assert messages_of(rejects[0]) == [
        "the line is not UTF-8 text (byte 8); save the file as UTF-8"
    ]
    assert summary_of(err)["rows_read"] == 6


def test_a_byte_order_mark_and_padded_header_names_are_understood(score, tmp_path):
    text = "\ufeffid, age ,sex,bmi,children,smoker,region\nx,19,female,27.9,0,yes,southwest\n"
    (tmp_path / "in.csv").write_text(text)
    status, _, err = score(tmp_path / "in.csv", "-o", tmp_path / "out.jsonl")
    assert status == 0, err
    assert read_rows(tmp_path / "out.jsonl")[0]["estimate"] == 19270.25


# Standard streams and S3 -------------------------------------------------------------------------


def test_stdin_to_stdout_streams_rows_and_sends_rejects_to_stderr(score, tmp_path):
    rows = records_with_ids(20)
    data = write_csv(tmp_path / "in.csv", rows).read_bytes() + b"bad,1,2,3,4,5,6,7\n"
    status, out, err = score("-", "-o", "-", "--format", "jsonl", stdin=data)
    assert status == 1
    got = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    [rejected] = [json.loads(line) for line in err.splitlines() if '"row"' in line]
    assert fields_of(rejected) == ["age", "sex", "bmi", "smoker", "region"]
    assert rejected["line"] == 22 and rejected["row"]["id"] == "bad"


@pytest.mark.slow  # starts processes
def test_the_real_command_reads_stdin_and_writes_stdout(tmp_path):
    rows = records_with_ids(30)
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    with open(source, "rb") as stdin:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "insurance_charges.scoring",
                "-",
                "-o",
                "-",
                "--input-format",
                "jsonl",
                "--jobs",
                "2",
            ],
            stdin=stdin,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr.decode()
    got = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert all(line.startswith(b"{") for line in run.stderr.splitlines())  # JSON log lines
    assert summary_of(run.stderr.decode())["rows_scored"] == 30


@pytest.mark.parametrize("source_format", ["csv", "parquet"])
def test_s3_in_and_out(score, s3, tmp_path, source_format):
    rows = records_with_ids(200, seed=5)
    local = WRITERS[source_format](tmp_path / f"in.{source_format}", rows)
    s3.put_object(Bucket="scoring", Key=f"in/{local.name}", Body=local.read_bytes())
    status, _, err = score(
        f"s3://scoring/in/{local.name}", "-o", "s3://scoring/out/scored.csv", "--chunk-rows", 50
    )
    assert status == 0, err
    body = s3.get_object(Bucket="scoring", Key="out/scored.csv")["Body"].read().decode()
    got = list(csv.DictReader(io.StringIO(body)))
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    rejects = s3.get_object(Bucket="scoring", Key="out/scored.rejects.csv")["Body"].read()
    assert rejects.decode().splitlines()[0].startswith("line,last_line,rows,fields,messages,id")


def test_a_large_s3_output_is_a_completed_multipart_upload(score, s3, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "PART_SIZE", 5 * 1024 * 1024)  # S3's smallest part
    rows = records_with_ids(70_000, seed=2)
    source = write_csv(tmp_path / "in.csv", rows)
    status, _, err = score(source, "-o", "s3://scoring/big.csv", "--jobs", 2)
    assert status == 0, err
    head = s3.head_object(Bucket="scoring", Key="big.csv")
    assert head["ContentLength"] > 5 * 1024 * 1024 and "-" in head["ETag"]  # several parts
    body = s3.get_object(Bucket="scoring", Key="big.csv")["Body"].read().decode()
    assert body.count("\n") == 70_001


def test_a_failed_run_aborts_its_s3_upload_and_leaves_no_object(score, s3, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "PART_SIZE", 1024)
    fail_chunk(monkeypatch, 4, RuntimeError("disk on fire"))
    source = write_csv(tmp_path / "in.csv", records_with_ids(500))
    status, _, err = score(source, "-o", "s3://scoring/failed.csv", "--chunk-rows", 50, "--jobs", 1)
    assert status == 2 and error_lines(err) == [
        "Error: RuntimeError: disk on fire; no output written"
    ]
    listed = s3.list_objects_v2(Bucket="scoring", Prefix="failed")
    assert listed.get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket="scoring").get("Uploads")


# Failures leave nothing that looks finished -----------------------------------------------------


def test_a_failure_after_some_chunks_leaves_no_output_and_no_temporary_file(
    score, tmp_path, monkeypatch
):
    fail_chunk(monkeypatch, 3, MemoryError("out of memory"))
    source = write_csv(tmp_path / "in.csv", records_with_ids(300))
    status, _, err = score(source, "-o", tmp_path / "out.csv", "--chunk-rows", 50, "--jobs", 1)
    assert status == 2 and len(error_lines(err)) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.slow  # starts processes
def test_sigkill_mid_run_leaves_only_a_hidden_partial_file_and_no_workers(tmp_path):
    import psutil

    process, partial = start_on_a_pipe(tmp_path)
    try:
        workers = psutil.Process(process.pid).children()
        assert len(workers) == 2
    finally:
        process.kill()
        # communicate, not wait: it also closes the pipes, which the collector would otherwise
        # find (and report) in whichever test runs then.
        process.communicate(timeout=60)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    names = [p.name for p in tmp_path.iterdir()]
    assert "out.csv" not in names and "out.rejects.csv" not in names
    assert all(n.startswith(".") and n.endswith(".partial") for n in names)


# Errors: one line, exit status 2 ----------------------------------------------------------------

GOOD = "id,age,sex,bmi,children,smoker,region\nx,19,female,27.9,0,yes,southwest\n"


@pytest.mark.parametrize(
    "setup, args, expected",
    [
        (
            {"in.csv": "id,age,sex,bmi,smoker,region\n1,19,female,27.9,yes,southwest\n"},
            ["in.csv", "-o", "out.csv"],
            "has no column children",
        ),
        (
            {"in.csv": "id,age,sex,bmi,children,smoker,region,estimate\n"},
            ["in.csv", "-o", "out.csv"],
            "already has a column estimate",
        ),
        (
            {"in.csv": "age,age,sex,bmi,children,smoker,region\n"},
            ["in.csv", "-o", "out.csv"],
            "has the column 'age' twice",
        ),
        ({"in.csv": ""}, ["in.csv", "-o", "out.csv"], "is empty"),
        (
            {},
            ["missing.csv", "-o", "out.csv"],
            "cannot read missing.csv: No such file or directory",
        ),
        ({"dir.csv/x": ""}, ["dir.csv", "-o", "out.csv"], "cannot read dir.csv: it is a directory"),
        (
            {"in.parquet": GOOD},
            ["in.parquet", "-o", "out.csv"],
            "cannot read in.parquet as Parquet",
        ),
        ({"in.txt": GOOD}, ["in.txt", "-o", "out.csv"], "cannot tell the format of in.txt"),
        ({"in.csv": GOOD}, ["in.csv", "-o", "out.csv", "--format", "xml"], "'xml' is not a format"),
        (
            {"in.csv": GOOD},
            ["in.csv", "-o", "out.csv", "--input-format", "excel"],
            "--input-format 'excel' is not a format",
        ),
        ({"in.csv": GOOD}, ["in.csv", "-o", "no/such/dir/out.csv"], "cannot write no/such/dir"),
        ({"in.csv": GOOD}, ["in.csv", "-o", "in.csv"], "the output would overwrite the input"),
        ({"in.csv": GOOD}, ["in.csv"], "the following arguments are required: -o"),
        ({"in.csv": GOOD}, ["in.csv", "-o", "out.csv", "--jobs", "0"], "'0' is below 1"),
    ],
)
def test_unusable_input_or_arguments_exit_2_with_one_error_line_and_write_nothing(
    score, tmp_path, monkeypatch, setup, args, expected
):
    for name, text in setup.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, _, err = score(*args)
    assert status == 2
    assert len(error_lines(err)) == 1 and expected in error_lines(err)[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "location, expected",
    [
        (
            "s3://scoring/nothing-here.csv",
            "Error: no such object reading s3://scoring/nothing-here.csv (NoSuchKey); "
            "check the URI\n",
        ),
        (
            "s3://no-such-bucket-here/x.csv",
            "Error: no such bucket reading s3://no-such-bucket-here/x.csv; "
            "create it or fix the URI\n",
        ),
        ("s3://scoring/", "is not an S3 object URI"),
    ],
)
def test_an_s3_input_that_cannot_be_read_exits_2(score, s3, tmp_path, location, expected):
    status, _, err = score(location, "-o", tmp_path / "out.csv")
    assert status == 2 and len(error_lines(err)) == 1 and expected in err, err


def test_an_s3_output_to_a_missing_bucket_exits_2_before_scoring(score, s3, tmp_path):
    source = write_csv(tmp_path / "in.csv", records_with_ids(5))
    status, _, err = score(source, "-o", "s3://no-such-bucket-here/out.csv")
    assert status == 2 and error_lines(err) == [
        "Error: no such bucket writing s3://no-such-bucket-here/out.csv; create it or fix the URI"
    ]
    assert '"summary"' not in err


def test_an_unusable_model_setting_is_one_error_line(tmp_path, monkeypatch, capfd):
    (tmp_path / "in.csv").write_text(GOOD)
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    status = cli.main([str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")])
    err = capfd.readouterr().err
    assert status == 2 and error_lines(err) == [
        f"Error: MODEL_PATH='{tmp_path}': not a regular file (a directory); set MODEL_PATH to "
        "the trained pipeline's .pkl file, with its .card.json beside it"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# The fast path is the core, exactly ---------------------------------------------------------------

TRICKY_TEXT = [
    "19",
    "019",
    "0000019",
    "+19",
    "-19",
    " 19",
    "19 ",
    "19.0",
    "19.",
    "1e1",
    "١٩",
    "１９",
    "",
    "  ",
    "nan",
    "inf",
    "0x13",
    "18",
    "100",
    "101",
    "17",
    "64",
    "65",
    "10",
    "80",
    "80.0",
    "80.0000001",
    "9.99",
    "27.9",
    ".5",
    "27.",
    "33.7700",
    "1234567",
    "999999",
    "0",
    "5",
    "10",
    "11",
    "yes",
    "no",
    "YES",
    " no",
    "male",
    "female",
    "southwest",
    "northeast",
    "north east",
    "Male",
    None,
]


def reference_of(field, value, text: bool):
    """What the core makes of one cell: (valid, value)."""
    typed = columns.reference_value(field, value, text)
    if typed is columns.MISSING:
        return False, None
    coerced, message = check_value(field, typed)
    return message is None, coerced


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_the_fast_path_accepts_a_text_cell_only_where_the_core_does_with_the_same_value(field):
    rng = np.random.default_rng(0)
    random_text = [
        f"{x:.{d}f}"
        for x, d in zip(rng.uniform(0, 120, 3000), rng.integers(0, 8, 3000), strict=True)
    ]
    cells = TRICKY_TEXT + random_text
    ok, values = columns.fast_values(field, pa.array(cells, pa.string()))
    for cell_text, certain, value in zip(cells, ok, values, strict=True):
        valid, coerced = reference_of(field, cell_text, True)
        if certain:
            assert valid and value == coerced and type(coerced) in (int, float, str), cell_text
    # and the fast path is not vacuous: plain valid cells are taken
    assert ok[
        cells.index(
            "27.9"
            if field.name == "bmi"
            else field.example
            if field.kind == schema.CATEGORY
            else "19"
            if field.name == "age"
            else "5"
        )
    ]


@pytest.mark.parametrize(
    "kind",
    [pa.int8(), pa.int64(), pa.uint64(), pa.float32(), pa.float64(), pa.bool_(), pa.date32()],
    ids=str,
)
def test_the_fast_path_follows_the_cores_json_rules_for_parquet_numbers(kind):
    raw = [0, 5, 10, 18, 19, 64, 80, 100, 101, 127, None]
    if pa.types.is_floating(kind):
        raw += [19.5, 27.9, 10.0, 80.0, 79.99, float("nan"), float("inf"), -0.0, 1e300]
    if kind == pa.uint64():
        raw += [2**64 - 1, 2**53 + 1]
    if kind == pa.bool_():
        raw = [True, False, None]
    if kind == pa.date32():
        raw = [0, 19, None]
    array = pa.array(raw, kind) if kind != pa.date32() else pa.array(raw, pa.int32()).cast(kind)
    for field in FIELDS:
        ok, values = columns.fast_values(field, array)
        for cell_value, certain, value in zip(array.to_pylist(), ok, values, strict=True):
            valid, coerced = reference_of(field, cell_value, False)
            if certain:
                assert valid and columns._python(field, value) == coerced, (field.name, cell_value)


# The first 100 rejected rows of a chunk worded, the later ones naming their fields only: the
# fast path and the reference are compared on both kinds of rejects line.
WORDED = 100


def _chunk_of(lines: list[str]) -> TextChunk:
    return TextChunk(2, ("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("output_format", ["csv", "jsonl", "parquet"])
def test_a_whole_chunk_scores_the_same_with_and_without_the_fast_path(real_model, output_format):
    rng = np.random.default_rng(1)
    lines = []
    pool = {f.name: [c for c in TRICKY_TEXT if c is not None] for f in FIELDS}
    for i, record in enumerate(valid_records(600, seed=4)):
        cells = [cell(record[f.name]) for f in FIELDS]
        if i % 3 == 0:  # one tricky cell in every third row
            j = int(rng.integers(0, len(FIELDS)))
            cells[j] = str(rng.choice(pool[FIELDS[j].name]))
        lines.append(",".join([f"id{i}", *(f'"{c}"' for c in cells)]))
    chunk = _chunk_of(lines)
    results = []
    for fast in (True, False):
        plan = Plan(
            "csv",
            output_format,
            "csv",
            ("id", *FIELD_NAMES),
            {f: f for f in FIELD_NAMES},
            fast=fast,
            run_id="run-1",
        )
        results.append(ChunkScorer(real_model, plan).score(chunk, WORDED))
    with_fast, reference = results
    assert (
        with_fast.rows,
        with_fast.scored,
        with_fast.rejected,
        with_fast.problems,
        with_fast.warnings,
    ) == (
        reference.rows,
        reference.scored,
        reference.rejected,
        reference.problems,
        reference.warnings,
    )
    assert with_fast.scored > 300 and with_fast.rejected > 50 and with_fast.warnings > 100
    if output_format == "parquet":
        assert with_fast.output.equals(reference.output)
    else:
        assert with_fast.output == reference.output
    assert with_fast.rejects.finished(WORDED) == reference.rejects.finished(WORDED)


def _same_with_and_without_the_fast_path(real_model, chunk, plan: dict) -> tuple:
    results = []
    for fast in (True, False):
        results.append(
            ChunkScorer(real_model, Plan(**plan, fast=fast, run_id="run-1")).score(chunk, WORDED)
        )
    with_fast, reference = results
    counts = [(r.rows, r.scored, r.rejected, r.problems, r.warnings) for r in results]
    assert counts[0] == counts[1]
    for got, expected in (
        (with_fast.output, reference.output),
        (with_fast.rejects.finished(WORDED), reference.rejects.finished(WORDED)),
    ):
        if isinstance(got, pa.Table):  # by repr: a NaN echoed in a rejected row equals itself
            assert got.schema == expected.schema
            got, expected = repr(got.to_pylist()), repr(expected.to_pylist())
        assert got == expected
    return with_fast


@pytest.mark.parametrize("rejects_format", ["csv", "jsonl", "parquet"])
def test_rows_with_many_bad_cells_reject_the_same_with_and_without_the_fast_path(
    real_model, rejects_format
):
    rng = np.random.default_rng(2)
    pool = {f.name: [c for c in TRICKY_TEXT if c is not None] for f in FIELDS}
    lines = []
    for i, record in enumerate(valid_records(600, seed=5)):
        cells = [cell(record[f.name]) for f in FIELDS]
        for j in rng.choice(len(FIELDS), int(rng.integers(0, 7)), replace=False):
            cells[j] = str(rng.choice(pool[FIELDS[j].name]))
        lines.append(",".join([f"id{i}", *(f'"{c}"' for c in cells)]))
    lines[7] = "a,b"  # and a line that is no row
    result = _same_with_and_without_the_fast_path(
        real_model,
        _chunk_of(lines),
        dict(
            input_format="csv",
            output_format="csv",
            rejects_format=rejects_format,
            columns=("id", *FIELD_NAMES),
            fields={f: f for f in FIELD_NAMES},
        ),
    )
    assert result.rejected > 400 and result.problems > 1000


def test_typed_parquet_columns_reject_the_same_with_and_without_the_fast_path(real_model):
    from insurance_charges.scoring.reading import BatchChunk

    n = 240
    rng = np.random.default_rng(3)

    def pick(values, kind=None):
        chosen = [values[int(i)] for i in rng.integers(0, len(values), n)]
        return pa.array(chosen, kind)

    table = pa.table(
        {
            "age": pick(
                [19, 40.0, 40.5, None, float("nan"), -0.0, 1e300, 101, 18, 64], pa.float64()
            ),
            "sex": pick(["female", "male", None, "Male", " male", ""]).dictionary_encode(),
            "bmi": pick([27.9, 10, 80, 9, None, 33], pa.int64()),
            "children": pick([0, 1, None, 11], pa.uint8()),
            "smoker": pick([True, False, None], pa.bool_()),
            "region": pick(["southwest", "north", None, "southeast"], pa.large_string()),
        }
    )
    chunk = BatchChunk(1, table.to_batches()[0])
    for rejects_format in ("csv", "jsonl", "parquet"):
        result = _same_with_and_without_the_fast_path(
            real_model,
            chunk,
            dict(
                input_format="parquet",
                output_format="parquet",
                rejects_format=rejects_format,
                columns=tuple(FIELD_NAMES),
                fields={f: f for f in FIELD_NAMES},
            ),
        )
        assert result.rejected == n  # smoker is never text: every row is refused


JSON_VALUES = [
    19,
    19.0,
    19.5,
    "19",
    True,
    False,
    1,
    0,
    None,
    -0.0,
    0.0,
    1e300,
    123456789012345678901234567890,
    [],
    {},
    [19],
    "female",
    "Female",
    "yes",
    "no",
    "southwest",
    27.9,
    10,
    80,
    80.5,
    "",
    " 19",
]


@pytest.mark.parametrize("output_format", ["jsonl", "csv"])
def test_json_lines_reject_the_same_with_and_without_the_fast_path(real_model, output_format):
    rng = np.random.default_rng(4)
    lines = []
    for i, record in enumerate(valid_records(300, seed=6)):
        record = {"id": i, **record}
        for name in rng.choice(FIELD_NAMES, int(rng.integers(0, 4)), replace=False):
            if rng.random() < 0.2:
                del record[name]
            else:
                record[name] = JSON_VALUES[int(rng.integers(0, len(JSON_VALUES)))]
        lines.append(json.dumps(record))
    lines[3] = "[1, 2]"
    lines[5] = '{"age": 19, "age": 20}'
    lines[9] = "not json"
    lines[11] = "{}"
    result = _same_with_and_without_the_fast_path(
        real_model,
        TextChunk(1, ("\n".join(lines) + "\n").encode()),
        dict(
            input_format="jsonl",
            output_format=output_format,
            rejects_format="jsonl",
            columns=("id", *FIELD_NAMES),
            fields={f: f for f in FIELD_NAMES},
        ),
    )
    assert result.rejected > 100 and result.scored > 50


def test_text_cells_are_typed_exactly_as_the_web_form_types_them():
    from insurance_charges.web.form_parsing import typed_values

    for text in TRICKY_TEXT:
        if text is None:
            continue
        form = {f.name: text for f in FIELDS}
        record = columns.reference_record(FIELDS, [text] * len(FIELDS), [True] * len(FIELDS))
        assert record == typed_values(form)


# Chunking ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, max_bytes", [(1, 10**6), (3, 10**6), (1000, 10**6), (1000, 40), (2, 7)]
)
def test_chunks_are_whole_lines_numbered_from_the_first(rows, max_bytes):
    data = b"".join(f"line {i} {'x' * (i % 13)}\n".encode() for i in range(500)) + b"last"
    got = list(text_chunks(io.BytesIO(data), rows, first_line=2, max_bytes=max_bytes))
    assert b"".join(c.data for c in got) == data
    line = 2
    for chunk in got:
        assert chunk.first_line == line
        assert chunk.data.endswith(b"\n") or chunk is got[-1]
        assert chunk.data.count(b"\n") <= rows
        line += chunk.data.count(b"\n")
    assert math.fsum(c.data.count(b"\n") for c in got) == 500
