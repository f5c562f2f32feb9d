"""SageMaker's inference-container contract, in-process: /ping, /invocations, /execution-parameters.

Every content type and Accept gives /api/v1/predict's numbers in input order; bad bodies get
problem+json naming the 1-based line and field; the limits, the model directory and the
`serve` start are checked without a container (tests/test_sagemaker_container.py runs one).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.container import modes
from insurance_charges.container.launcher import GRACE_AFTER_DRAIN_S, write_config
from insurance_charges.core.estimates import InvalidRecords
from insurance_charges.core.schema import EXAMPLE_RECORD, FIELD_NAMES
from insurance_charges.errors import UsageError
from insurance_charges.platforms.sagemaker import ModelDirError, execution_parameters, model_in
from insurance_charges.platforms.sagemaker import csv_body as csv_reader
from insurance_charges.platforms.sagemaker.body_estimates import estimate_lines
from insurance_charges.platforms.sagemaker.csv_body import SPANNING, read_csv
from insurance_charges.settings import MAX_CONTENT_LENGTH, MB, Settings, SettingsError
from insurance_charges.tables.columns import reference_record
from insurance_charges.tables.lines import (
    blank_lines,
    line_chunks,
    line_count,
    line_starts,
    lines_of,
)
from insurance_charges.web import create_app

from .conftest import ROOT
from .sagemaker_support import reader_outcome

CSV, JSONL, JSON = "text/csv", "application/jsonlines", "application/json"
HEADER = ",".join(FIELD_NAMES)
RECORDS = valid_records(300, seed=7)  # the schema's corners (with warnings), then random ones
SAGEMAKER_KILLS_AFTER_S = 30  # SageMaker sends SIGKILL 30 s after SIGTERM


def csv_body(records, header: bool = True) -> bytes:
    rows = [",".join(str(r[name]) for name in FIELD_NAMES) for r in records]
    return ("\n".join(([HEADER] if header else []) + rows) + "\n").encode()


def jsonl_body(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def invoke(client, body: bytes, content_type: str, accept: str | None = None, **headers):
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {}), **headers}
    return client.post("/invocations", data=body, headers=headers)


def api_batch(client, records) -> dict:
    return without_ids(client.post("/api/v1/predict", json=records).get_json())


def without_ids(answer: dict) -> dict:
    """The API's answer without its inference ids, which CSV and JSON-lines answers lack (yet)."""
    return {k: v for k, v in answer.items() if k not in ("inference_id", "inference_ids")}


def by_line(answer: dict, first_line: int) -> dict:
    """The API's batch answer with each warning pointing at a line instead of an index."""

    def moved(warning):
        _, index, field = warning["pointer"].split("/")
        return {**warning, "pointer": f"/{int(index) + first_line}/{field}"}

    return {**answer, "warnings": [moved(w) for w in answer["warnings"]]}


def problem(response) -> dict:
    assert response.headers["Content-Type"] == "application/problem+json", response.data[:300]
    return response.get_json()


# /ping and /execution-parameters ------------------------------------------------------------


def test_ping_answers_200_like_health(client):
    assert client.get("/ping").status_code == 200
    assert client.get("/ping").get_json() == client.get("/health").get_json()


def test_execution_parameters_advise_one_full_mini_batch_per_worker(real_model):
    app = create_app({"TESTING": True, "MODEL": real_model, "WORKERS": 3})
    assert app.test_client().get("/execution-parameters").get_json() == {
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
        "MaxConcurrentTransforms": 3,
    }


@pytest.mark.parametrize(
    "workers, payload_mb, concurrency",
    [(1, 6, 1), (2, 6, 2), (16, 6, 16), (96, 6, 16), (4, 30, 3), (8, 100, 1)],
)
def test_concurrency_times_payload_stays_within_batch_transforms_100_mb(
    workers, payload_mb, concurrency
):
    got = execution_parameters(workers, payload_mb)
    assert got["MaxConcurrentTransforms"] == concurrency and got["MaxPayloadInMB"] == payload_mb
    assert got["MaxConcurrentTransforms"] * got["MaxPayloadInMB"] <= 100


# Every content type and Accept ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type, first_line",
    [
        (csv_body(RECORDS), CSV, 2),
        (csv_body(RECORDS, header=False), CSV, 1),
        (jsonl_body(RECORDS), JSONL, 1),
    ],
    ids=["csv-header", "csv", "jsonlines"],
)
@pytest.mark.parametrize("accept", [None, "*/*", JSON])
def test_lines_answered_as_json_are_the_apis_batch_answer_by_line(
    client, body, content_type, first_line, accept
):
    response = invoke(client, body, content_type, accept)
    assert response.status_code == 200 and response.mimetype == JSON
    assert without_ids(response.get_json()) == by_line(api_batch(client, RECORDS), first_line)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (csv_body(RECORDS), CSV),
        (csv_body(RECORDS, header=False), CSV),
        (jsonl_body(RECORDS), JSONL),
        (json.dumps(RECORDS).encode(), JSON),
    ],
    ids=["csv-header", "csv", "jsonlines", "json"],
)
def test_csv_answers_hold_one_estimate_per_record_in_input_order(client, body, content_type):
    response = invoke(client, body, content_type, CSV)
    assert response.status_code == 200 and response.mimetype == CSV
    lines = response.data.decode().splitlines()
    assert [float(x) for x in lines] == api_batch(client, RECORDS)["predictions"]
    assert response.data.endswith(b"\n") and len(lines) == len(RECORDS)


@pytest.mark.parametrize(
    "body, content_type",
    [
        (csv_body(RECORDS[:40]), CSV),
        (jsonl_body(RECORDS[:40]), JSONL),
        (json.dumps(RECORDS[:40]).encode(), JSON),
    ],
    ids=["csv", "jsonlines", "json"],
)
def test_json_lines_answers_are_the_apis_answer_for_each_record_alone(client, body, content_type):
    response = invoke(client, body, content_type, JSONL, **{"X-Request-ID": "tx.9"})
    assert response.status_code == 200 and response.mimetype == JSONL
    got = [json.loads(line) for line in response.data.decode().splitlines()]
    assert got == [
        {
            **without_ids(client.post("/api/v1/predict", json=r).get_json()),
            "inference_id": f"tx.9-{i}",
        }
        for i, r in enumerate(RECORDS[:40])
    ]
    assert all(list(line)[-1] == "inference_id" for line in got)  # last, as the API's


def test_one_json_record_can_be_answered_as_csv_or_json_lines(client, record):
    same = {"X-Request-ID": "one"}
    alone = client.post("/api/v1/predict", json=record, headers=same).get_json()
    assert (
        invoke(client, json.dumps(record).encode(), JSON, CSV).data
        == f"{alone['prediction']!r}\n".encode()
    )
    assert (
        json.loads(invoke(client, json.dumps(record).encode(), JSON, JSONL, **same).data) == alone
    )


@pytest.mark.parametrize(
    "body",
    [
        EXAMPLE_RECORD,
        RECORDS,
        [dict(EXAMPLE_RECORD, age="19")],
        {"age": 19},
        [],
        [EXAMPLE_RECORD] * 10_001,
    ],
    ids=["record", "batch", "invalid", "missing", "empty", "10001"],
)
def test_a_json_body_gets_exactly_the_apis_answer(client, body):
    ours, theirs = (
        client.post(path, json=body, headers={"X-Request-ID": "same"})
        for path in ("/invocations", "/api/v1/predict")
    )
    assert (ours.status_code, ours.headers["Content-Type"], ours.data) == (
        theirs.status_code,
        theirs.headers["Content-Type"],
        theirs.data,
    )


@pytest.mark.parametrize("raw", [b"{", b"", b'{"age": NaN}'], ids=["broken", "empty", "nan"])
def test_a_malformed_json_body_gets_the_apis_400(client, raw):
    ours = invoke(client, raw, JSON)
    theirs = client.post("/api/v1/predict", data=raw, content_type=JSON)
    assert ours.status_code == theirs.status_code == 400 and ours.data == theirs.data


def test_records_beyond_the_apis_batch_are_estimated_in_chunks_in_order(client, real_model):
    many = valid_records(25_000, seed=3)  # 2.5 x MAX_BATCH, one body
    response = invoke(client, csv_body(many, header=False), CSV, CSV)
    expected = [
        p
        for start in range(0, len(many), 10_000)
        for p in api_batch(client, many[start : start + 10_000])["predictions"]
    ]
    assert [float(x) for x in response.data.split()] == expected
    whole = estimate_lines(real_model, read_csv(csv_body(many[:500])))
    chunked = estimate_lines(real_model, read_csv(csv_body(many[:500])), chunk_rows=7)
    assert np.array_equal(whole.amounts, chunked.amounts)
    assert np.array_equal(whole.lower, chunked.lower) and whole.warnings == chunked.warnings


def test_a_model_served_through_pipeline_predict_gives_the_same_answers(real_model):
    slow = dataclasses.replace(real_model, fast=None)
    clients = [create_app({"TESTING": True, "MODEL": m}).test_client() for m in (real_model, slow)]
    for kind, body in ((CSV, csv_body(RECORDS[:50])), (JSONL, jsonl_body(RECORDS[:50]))):
        fast_answer, slow_answer = (invoke(c, body, kind).get_json() for c in clients)
        assert np.allclose(fast_answer["predictions"], slow_answer["predictions"], rtol=1e-9)
        assert fast_answer["warnings"] == slow_answer["warnings"]


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"\xef\xbb\xbf" + csv_body([EXAMPLE_RECORD]), 1),
        (csv_body([EXAMPLE_RECORD] * 3).replace(b"\n", b"\r\n"), 3),
        (csv_body([EXAMPLE_RECORD] * 2).replace(b"\n", b"\n\n"), 2),
        (b" 19 , female,27.9, +0,yes,southwest\n", 1),
        (b'"19","female","27.9","0","yes","southwest"', 1),
        (HEADER.encode() + b"\n", 0),
        (HEADER.encode(), 0),
    ],
    ids=[
        "byte-order-mark",
        "crlf",
        "blank-lines",
        "spaces-and-sign",
        "quoted-no-newline",
        "header-only",
        "header-no-newline",
    ],
)
def test_csv_is_read_as_the_file_scoring_command_reads_it(client, body, expected):
    response = invoke(client, body, CSV, CSV)
    assert response.status_code == 200, response.data
    assert response.data.split() == [b"19270.25"] * expected


def test_csv_may_be_sent_with_a_utf8_charset_and_unknown_headers_are_ignored(client):
    plain = invoke(client, csv_body(RECORDS), CSV)
    for content_type in ("text/csv; charset=utf-8", "text/csv;charset=UTF-8", "TEXT/CSV"):
        got = invoke(
            client,
            csv_body(RECORDS),
            content_type,
            **{
                "X-Amzn-SageMaker-Custom-Attributes": "c000b4f9-df62-4c85-a0bf-7c525f9104a4",
                "X-Amzn-SageMaker-Target-Model": "a.tar.gz",
                "X-Made-Up": "1",
            },
        )
        assert (got.status_code, without_ids(got.get_json())) == (
            200,
            without_ids(plain.get_json()),
        )


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("text/csv; charset=utf-8", CSV),
        ("text/*", CSV),
        ("application/*", JSON),
        ("application/jsonlines;q=0.5, text/csv", CSV),
        ("application/xml, text/csv;q=0.1", CSV),
    ],
)
def test_accept_picks_the_best_answer_type_it_names(client, accept, expected):
    assert invoke(client, csv_body(RECORDS[:3]), CSV, accept).mimetype == expected


# Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        "application/xml",
        "text/html",
        "text/csv; charset=latin-1",
        "application/json;q=0",
        "image/*",
    ],
)
def test_an_accept_no_answer_fits_is_a_406_naming_the_types_answered(client, accept):
    got = invoke(client, csv_body(RECORDS[:3]), CSV, accept)
    body = problem(got)
    assert got.status_code == 406 and body["type"] == "/docs#problem-not-acceptable"
    assert "text/csv" in body["detail"] and "application/jsonlines" in body["detail"]


@pytest.mark.parametrize(
    "content_type, headers",
    [
        ("text/plain", {}),
        ("application/xml", {}),
        ("", {}),
        ("text/csv; charset=latin-1", {}),
        ("application/jsonlines; charset=utf-16", {}),
        (CSV, {"Content-Encoding": "gzip"}),
    ],
)
def test_a_body_type_it_does_not_read_is_a_415(client, content_type, headers):
    got = invoke(client, csv_body(RECORDS[:3]), content_type, **headers)
    assert got.status_code == 415
    assert problem(got)["type"] == "/docs#problem-unsupported-media-type"


ROW = "19,female,27.9,0,yes,southwest"


@pytest.mark.parametrize(
    "text, status, errors",
    [
        (
            f"{HEADER}\n{ROW}\n19,female,27.9,0,maybe,southwest\n",
            422,
            [("/3/smoker", 'smoker must be one of "yes", "no"; got "maybe" (a string)')],
        ),
        (
            f"{ROW}\n{ROW}\n19,female,,0,yes,southwest\n",
            422,
            [("/3/bmi", "bmi is required: a number from 10 to 80")],
        ),
        (
            f"{ROW}\n101,female,27.9,0,yes,southwest\n{ROW}\n19,female,27.9,0,yes,mars\n",
            422,
            [
                ("/2/age", "age must be a whole number from 18 to 100; got 101"),
                (
                    "/4/region",
                    'region must be one of "northeast", "northwest", "southeast", "southwest"; '
                    'got "mars" (a string)',
                ),
            ],
        ),
        (
            f"{ROW}\n{ROW},7\n",
            400,
            [
                (
                    "/2",
                    "the line has 7 value(s) where a record has 6: "
                    "age, sex, bmi, children, smoker, region",
                )
            ],
        ),
        (
            f'{HEADER}\n{ROW}\n19,"fe\nmale",27.9,0,yes,southwest\n',
            400,
            [
                (
                    "/3",
                    "the record does not end on this line (a quoted value holding a line break, a "
                    "quote left open, or a lone carriage return); SageMaker splits CSV on line "
                    "breaks, "
                    "so each record must be one whole line",
                )
            ],
        ),
    ],
    ids=["value", "blank-cell", "two-lines", "width", "line-break-in-value"],
)
def test_bad_csv_lines_are_refused_naming_the_line_and_field(client, text, status, errors):
    got = invoke(client, text.encode(), CSV)
    body = problem(got)
    assert got.status_code == status
    assert [(e["pointer"], e["message"]) for e in body["errors"]] == errors
    first = errors[0][0].split("/")[1]
    assert body["detail"].endswith(f"the first on line {first}; see errors")


OPEN = '19,female,27.9,0,yes,"southwest'  # a quote opened and never closed


WIDTH_2 = "the line has 2 value(s) where a record has 6: age, sex, bmi, children, smoker, region"


@pytest.mark.parametrize(
    "text, line, message",
    [
        (f"{ROW}\n{OPEN}\n", 2, SPANNING),
        (f"{ROW}\n{OPEN}", 2, SPANNING),
        (f"{ROW}\r\n{OPEN}\r\n", 2, SPANNING),
        (f"{HEADER}\n{ROW}\n{OPEN}", 3, SPANNING),
        # The row of lines 1 and 2 and the two rows of line 3 (a lone CR) add up to 3 lines.
        (f'{OPEN}\n"\n{ROW}\r{ROW}\n', 1, SPANNING),
        (f'{ROW}\n{ROW}\r{ROW}\n19,female,27.9,0,yes,mars\n"\n', 2, SPANNING),
        (f'{ROW}\n"19,female,27.9,0,yes,southwest\n', 2, SPANNING),
        (f'{ROW}\n19,female,27.9,0,yes,"south\rwest"\n', 2, SPANNING),
        (f"{ROW}\n19,female\n", 2, WIDTH_2),
    ],
    ids=[
        "last-line",
        "last-line-no-newline",
        "crlf",
        "after-header",
        "line-count-evened-out-by-a-lone-cr",
        "lone-cr-and-quote-left-open",
        "first-cell",
        "lone-cr-in-a-quoted-value",
        "two-values",
    ],
)
def test_a_quote_left_open_or_a_value_holding_a_line_break_is_a_400_naming_its_line(
    client, text, line, message
):
    got = invoke(client, text.encode(), CSV)
    body = problem(got)
    assert got.status_code == 400
    assert body["detail"] == f"1 line(s) that are not records, the first on line {line}; see errors"
    assert [(e["pointer"], e["message"]) for e in body["errors"]] == [(f"/{line}", message)]


SIX_MB = 6 * MB


def fill(line: bytes, size: int = SIX_MB) -> bytes:
    """As many copies of ``line`` as fit in ``size`` bytes."""
    return line * (size // len(line))


@pytest.mark.parametrize(
    "line, status, first",
    [
        (b",,,,,\n", 422, ["/1/age", "/1/sex", "/1/bmi"]),
        (b"0\n", 400, ["/1", "/2", "/3"]),
        (b"a,b,c,d,e,f,g\n", 400, ["/1", "/2", "/3"]),
        (b"19,female,27.9,0,yes,mars\n", 422, ["/1/region", "/2/region", "/3/region"]),
        (b" 19,female,27.9,0,yes,southwest, \n", 400, ["/1", "/2", "/3"]),
    ],
    ids=["empty-rows", "one-value", "seven-values", "bad-category", "seven-with-spaces"],
)
def test_six_mb_of_bad_csv_rows_get_one_small_problem_counting_at_least_101(
    client, line, status, first
):
    got = invoke(client, fill(line), CSV)
    body = problem(got)
    assert got.status_code == status and len(got.data) < 16_384
    assert body["errors_total"] == 101 and body["errors_total_is_lower_bound"] is True
    assert [e["pointer"] for e in body["errors"][:3]] == first
    what = "invalid value(s)" if status == 422 else "line(s) that are not records"
    assert body["detail"].startswith(f"at least 101 {what}")


def test_rows_the_column_check_leaves_to_the_core_are_built_only_until_it_refuses(
    client, monkeypatch
):
    built = []

    def counted(fields, cells, texts):
        built.append(cells)
        return reference_record(fields, cells, texts)

    monkeypatch.setattr(csv_reader, "reference_record", counted)
    got = invoke(client, fill(b",,,,,\n"), CSV)  # a million rows, every one missing everything
    assert got.status_code == 422 and problem(got)["errors_total"] == 101
    assert 17 <= len(built) <= csv_reader.SLOW_ROWS_AT_ONCE  # the 101st problem is on row 17


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40).map(lambda b: bytes(b" \r\n,a"[x % 5] for x in b)))
def test_blank_lines_and_line_starts_are_those_of_the_lines_cut_one_by_one(data):
    lines = lines_of(data)
    assert blank_lines(data, b"\r\n").tolist() == [not line.strip(b"\r\n") for line in lines]
    assert blank_lines(data, b" \r\n").tolist() == [not line.strip() for line in lines]
    assert line_starts(data).tolist() == [sum(map(len, lines[:i])) for i in range(len(lines))]
    assert len(line_starts(data)) == line_count(data)


CSV_LINES = [
    ROW,
    ROW,
    " 19 , female,27.9, +0,yes,southwest",
    ",,,,,",
    "0",
    "a,b,c,d,e,f,g",
    "",
    "\r",
    OPEN,
    '19,"fe\nmale",27.9,0,yes,southwest',
    "19,female,27.9,0,yes,mars",
    '"19","female","27.9","0","yes","southwest"',
    f"{ROW}\r{ROW}",
    '"',
    "70,male,33.1,2,no,northeast",
    "19,female,,0,yes,southwest",
]


def csv_outcome(data: bytes):
    """What read_csv answers: the records and their lines, or the refusal in full."""
    return reader_outcome(
        read_csv, data, lambda got: ("ok", [dict(r) for r in got.records], got.lines.tolist())
    )


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.sampled_from(CSV_LINES), min_size=1, max_size=10),
    header=st.booleans(),
    last=st.booleans(),
    chunk=st.sampled_from([(1, 10**9), (2, 10**9), (3, 10**9), (10**9, 1), (10**9, 40)]),
)
def test_a_csv_body_read_a_chunk_at_a_time_is_answered_as_if_read_at_once(
    lines, header, last, chunk
):
    data = "\n".join(([HEADER] if header else []) + lines).encode() + (b"\n" if last else b"")
    whole = csv_outcome(data)
    shipped = csv_reader.CHUNK_LINES, csv_reader.CHUNK_BYTES
    csv_reader.CHUNK_LINES, csv_reader.CHUNK_BYTES = chunk
    try:
        assert csv_outcome(data) == whole
    finally:
        csv_reader.CHUNK_LINES, csv_reader.CHUNK_BYTES = shipped


def test_a_csv_body_is_parsed_a_chunk_of_lines_at_a_time(monkeypatch):
    parsed, table = [], csv_reader._table

    def counted(data, first, room):
        parsed.append((first, line_count(data)))
        return table(data, first, room)

    monkeypatch.setattr(csv_reader, "_table", counted)
    lines = csv_reader.CHUNK_LINES * 2 + 10
    with pytest.raises(InvalidRecords):
        read_csv(b",,,,,\n" * lines)
    # The rows of one chunk at a time are held, however many lines the body has.
    size = csv_reader.CHUNK_LINES
    assert parsed == [(1, size), (size + 1, size), (2 * size + 1, 10)]


@settings(max_examples=500, deadline=None)
@given(
    data=st.binary(max_size=40).map(lambda b: bytes(b"ab\n"[x % 3] for x in b)),
    at=st.integers(0, 40),
    max_lines=st.integers(1, 5),
    max_bytes=st.integers(1, 12),
)
def test_line_chunks_are_whole_lines_within_both_limits_numbered_from_where_they_start(
    data, at, max_lines, max_bytes
):
    begin = data.rfind(b"\n", 0, at) + 1
    first = data.count(b"\n", 0, begin) + 1
    chunks = list(line_chunks(data, begin, first, max_lines, max_bytes))
    assert b"".join(chunk for _, chunk in chunks) == data[begin:]
    for number, chunk in chunks:
        assert number == first
        lines = lines_of(chunk)
        assert chunk.endswith(b"\n") or chunk is chunks[-1][1]
        assert len(lines) == 1 or (len(lines) <= max_lines and len(chunk) <= max_bytes)
        first += chunk.count(b"\n")


def spanning_row_one_line_at_a_time(data: bytes) -> int:
    """The reference: Python's csv fed one line at a time, as the service cuts them."""
    ended = data if data.endswith(b"\n") else data + b"\n"
    reader = csv.reader(line.decode() for line in lines_of(ended))
    start = 1
    while True:
        try:
            row = next(reader)
        except (StopIteration, csv.Error):
            return start
        if reader.line_num > start or any("\n" in cell for cell in row):
            return start
        start = reader.line_num + 1


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=30).map(lambda b: bytes(b'a,"\n\r'[x % 5] for x in b)))
def test_the_spanning_row_is_found_as_csv_fed_one_line_at_a_time_finds_it(data):
    assert csv_reader._spanning_row(data) == spanning_row_one_line_at_a_time(data)


def test_a_line_that_is_not_utf8_is_refused_by_its_number(client):
    got = invoke(client, f"{ROW}\n{ROW}\n".encode() + b"19,f\xe9male,27.9,0,yes,southwest\n", CSV)
    assert got.status_code == 400 and problem(got)["errors"][0]["pointer"] == "/3"


@pytest.mark.parametrize(
    "body, detail",
    [
        (
            b"",
            "the body is empty; send one record per line (age, sex, bmi, children, smoker, region)",
        ),
        (b"\n\n", "the body is empty"),
        (
            b"sex,age,bmi,children,smoker,region\n" + ROW.encode(),
            "the header on line 1 names the fields in another order; SageMaker sends the rest of a "
            "file without its header, so send the columns in this order: age, sex, bmi, children, "
            "smoker, region",
        ),
    ],
)
def test_an_empty_body_or_a_header_out_of_order_is_a_400(client, body, detail):
    got = invoke(client, body, CSV)
    assert got.status_code == 400 and problem(got)["detail"].startswith(detail)


@pytest.mark.parametrize(
    "lines, status, errors",
    [
        ([json.dumps(EXAMPLE_RECORD), "{", json.dumps(EXAMPLE_RECORD)], 400, ["/2"]),
        (
            [json.dumps(EXAMPLE_RECORD), "", json.dumps(dict(EXAMPLE_RECORD, age="19"))],
            422,
            ["/3/age"],
        ),
        ([json.dumps(dict(EXAMPLE_RECORD, id=4)), json.dumps(EXAMPLE_RECORD)], 422, ["/1/id"]),
        ([json.dumps(EXAMPLE_RECORD), "[1, 2]"], 422, ["/2"]),
        ([json.dumps(EXAMPLE_RECORD), '{"age": 19, "age": 20}'], 422, ["/2/age", "/2/sex"]),
        ([json.dumps(EXAMPLE_RECORD), '{"age": NaN}'], 400, ["/2"]),
    ],
    ids=["not-json", "string-number", "unknown-field", "array", "repeated-key", "nan"],
)
def test_bad_json_lines_are_refused_naming_the_line_and_field(client, lines, status, errors):
    got = invoke(client, ("\n".join(lines) + "\n").encode(), JSONL)
    assert got.status_code == status
    assert [e["pointer"] for e in problem(got)["errors"]][: len(errors)] == errors


@pytest.mark.parametrize("count, total, lower_bound", [(60, 60, False), (5000, 101, True)])
def test_many_bad_lines_are_counted_up_to_one_more_than_listed_and_the_first_listed(
    client, count, total, lower_bound
):
    bad = "\n".join(["19,female,27.9,0,maybe,southwest"] * count) + "\n"
    body = problem(invoke(client, bad.encode(), CSV))
    assert body["errors_total"] == total and body["errors_total_is_lower_bound"] is lower_bound
    assert 1 <= len(body["errors"]) <= min(count - 1, 100)
    assert body["errors"][0]["pointer"] == "/1/smoker"
    assert body["detail"].startswith(("at least " if lower_bound else "") + f"{total} invalid ")


def test_sagemaker_paths_answer_problem_json_for_a_wrong_method(client):
    got = client.get("/invocations")
    assert got.status_code == 405 and problem(got)["type"] == "/docs#problem-method-not-allowed"
    assert client.post("/ping").status_code == 405


# Body limits -------------------------------------------------------------------------------


def exactly(size: int) -> bytes:
    """Valid CSV of exactly ``size`` bytes (spaces before the first cell fill the rest)."""
    line = (ROW + "\n").encode()
    body = line * (size // len(line))
    return b" " * (size - len(body)) + body


def test_invocations_takes_the_whole_payload_limit_and_refuses_one_byte_more(real_model):
    client = create_app({"TESTING": True, "MODEL": real_model, "MAX_PAYLOAD_MB": 1}).test_client()
    assert invoke(client, exactly(MB), CSV).status_code == 200
    for body in (exactly(MB + 1), exactly(3 * MB)):
        got = invoke(client, body, CSV)
        assert got.status_code == 413
        assert problem(got)["detail"] == (
            "the body is over the 1 MB limit (SAGEMAKER_MAX_PAYLOAD"
            "_IN_MB); send fewer records per request"
        )
    chunked = client.post(
        "/invocations",
        input_stream=io.BytesIO(exactly(MB + 1)),
        headers={"Content-Type": CSV, "Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413


def test_six_mb_reach_invocations_while_every_other_route_keeps_2_mib(client):
    body = exactly(6 * MB)
    assert MAX_CONTENT_LENGTH < len(body)
    assert invoke(client, body, CSV, CSV).status_code == 200
    assert invoke(client, exactly(6 * MB + 1), CSV).status_code == 413
    api = client.post("/api/v1/predict", data=b" " * (3 * MB), content_type=JSON)
    assert api.status_code == 413
    # JSON on /invocations is the API's contract, its 2 MiB included.
    assert invoke(client, b" " * (3 * MB), JSON).status_code == 413


def test_with_api_keys_set_invocations_needs_a_key_and_ping_does_not(real_model):
    client = create_app({"TESTING": True, "MODEL": real_model, "API_KEYS": ("k1",)}).test_client()
    assert invoke(client, csv_body(RECORDS[:2]), CSV).status_code == 401
    assert invoke(client, csv_body(RECORDS[:2]), CSV, **{"X-API-Key": "k1"}).status_code == 200
    assert client.get("/ping").status_code == 200
    assert client.get("/execution-parameters").status_code == 200


# The model SageMaker extracted, and the `serve` start ----------------------------------------


def model_files(directory, *names):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x")
    return directory


def test_the_model_in_opt_ml_model_is_its_one_pipeline(tmp_path):
    assert model_in(tmp_path / "absent") is None
    assert model_in(model_files(tmp_path / "empty")) is None
    found = model_files(tmp_path / "one", "m.pkl", "m.card.json", "m.sig.json")
    assert model_in(found) == found / "m.pkl"


@pytest.mark.parametrize(
    "names, message",
    [
        (
            ["a.pkl", "b.pkl"],
            "holds 2 pipelines (a.pkl, b.pkl); put one .pkl with its .card.json "
            "and .sig.json in model.tar.gz",
        ),
        (
            ["model.joblib"],
            "holds no .pkl pipeline at its top level (found: model.joblib); model.tar.gz must hold",
        ),
        (
            ["model/m.pkl"],
            "holds no .pkl pipeline at its top level (found: model); model/m.pkl is "
            "one folder down: archive the files themselves (tar -czf model.tar.gz "
            "-C model .)",
        ),
    ],
)
def test_anything_else_in_opt_ml_model_is_refused_saying_what_was_found(tmp_path, names, message):
    for name in names:
        model_files((tmp_path / name).parent, (tmp_path / name).name)
    with pytest.raises(ModelDirError) as raised:
        model_in(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path} {message}")


def test_no_argument_serves_on_port_as_before_and_serve_on_sagemakers_port(tmp_path):
    settings = Settings(port=8000, sagemaker_port=9001)
    assert modes.mode_for([], settings, {"A": "1"}, tmp_path) == modes.Mode(
        8000, {"A": "1"}, modes.DRAIN_S
    )
    served = modes.mode_for(["serve"], settings, {"A": "1"}, tmp_path / "absent")
    assert served == modes.Mode(9001, {"A": "1"}, modes.SERVE_DRAIN_S, "SAGEMAKER_BIND_TO_PORT")


def test_serve_takes_the_extracted_model_unless_model_path_names_one(tmp_path):
    extracted = model_files(tmp_path, "m.pkl")
    served = modes.mode_for(["serve"], Settings(), {}, extracted)
    assert served.environ["MODEL_PATH"] == str(extracted / "m.pkl")
    chosen = modes.mode_for(["serve"], Settings(), {"MODEL_PATH": "/x.pkl"}, extracted)
    assert chosen.environ["MODEL_PATH"] == "/x.pkl"


def test_serve_refuses_api_keys_a_key_inside_the_archive_and_a_directory_it_cannot_use(tmp_path):
    with pytest.raises(SettingsError, match="^API_KEYS=\\(hidden\\): SageMaker's InvokeEndpoint"):
        modes.mode_for(["serve"], Settings(api_keys=("k",)), {}, tmp_path)
    with pytest.raises(SettingsError, match="holds 2 pipelines"):
        modes.mode_for(["serve"], Settings(), {}, model_files(tmp_path, "a.pkl", "b.pkl"))
    with pytest.raises(SettingsError, match="inside the model archive it would vouch for"):
        modes.mode_for(
            ["serve"], Settings(), {"MODEL_PUBLIC_KEY": str(tmp_path / "k.pem")}, tmp_path
        )
    with pytest.raises(UsageError, match="^unknown arguments 'training'"):
        modes.mode_for(["training"], Settings(), {}, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, env, status, line",
    [
        (
            ["serve", "now"],
            {},
            2,
            "Error: unknown arguments 'serve now'; run the image with no "
            "argument (Elastic Beanstalk, ECS), with `serve` (SageMaker "
            "endpoints, Batch Transform) or `train` (SageMaker training), or "
            "`kafka --help` (the Kafka consumer), or `retrain --help` (a step of "
            "the weekly retraining)",
        ),
        (
            ["serve"],
            {"SAGEMAKER_BIND_TO_PORT": "80000"},
            1,
            "Error: SAGEMAKER_BIND_TO_PORT='80000'",
        ),
        (
            ["serve"],
            {"API_KEYS": "k-secret-1"},
            1,
            "Error: API_KEYS=(hidden): SageMaker's InvokeEndpoint",
        ),
    ],
)
def test_the_launcher_refuses_a_start_it_cannot_serve_with_one_line(args, env, status, line):
    run = subprocess.run(
        [sys.executable, "-m", "insurance_charges.container", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert run.returncode == status and run.stderr.startswith(line)
    assert len(run.stderr.splitlines()) == 1 and "k-secret" not in run.stderr


def nginx_blocks(config_text: str) -> dict[str, str]:
    """Each location's body by its pattern, and the rest of the file under ''."""
    block = r"location\s+([^{]+?)\s*\{(.*?)\n\s*\}\n"  # to the brace closing its line
    blocks = dict(re.findall(block, config_text, re.S))
    blocks[""] = re.sub(block, "", config_text, flags=re.S)
    return blocks


def test_the_images_nginx_takes_the_payload_limit_on_invocations_only(tmp_path):
    blocks = nginx_blocks(write_config(8080, tmp_path, modes.SERVE_DRAIN_S, 6).read_text())
    limits = {k: re.findall(r"client_max_body_size\s+(\S+);", v) for k, v in blocks.items()}
    assert limits.pop("= /invocations") == ["6m"] and limits.pop("") == [
        f"{MAX_CONTENT_LENGTH // 1024}k"
    ]
    assert not any(limits.values())  # every other location keeps the app's limit
    assert "_errors/$status.json" in blocks["= /invocations"]
    assert "listen 0.0.0.0:8080 default_server;" in blocks[""]
    problem_json = next(k for k in blocks if k.startswith("~"))
    assert "execution-parameters$" in problem_json


def test_the_images_nginx_answers_ping_itself_so_busy_workers_never_delay_it(tmp_path):
    ping = nginx_blocks(write_config(8080, tmp_path, modes.SERVE_DRAIN_S, 6).read_text())["= /ping"]
    assert 'return 200 \'{"status": "ok"}\\n\';' in ping and "proxy_pass" not in ping
    assert "X-Content-Type-Options" in ping


def test_a_stop_under_serve_drains_and_still_ends_before_sagemakers_sigkill(tmp_path):
    config = write_config(8080, tmp_path, modes.SERVE_DRAIN_S, 6).read_text()
    assert f"worker_shutdown_timeout {modes.SERVE_DRAIN_S}s;" in config
    gunicorn_stop_s = 1.5  # measured: gunicorn exits within this once nginx has gone
    assert modes.SERVE_DRAIN_S + GRACE_AFTER_DRAIN_S + gunicorn_stop_s < SAGEMAKER_KILLS_AFTER_S
    assert modes.DRAIN_S + GRACE_AFTER_DRAIN_S + gunicorn_stop_s < 10  # docker stop's default


# The docs' examples (docs/deploy/sagemaker.md) --------------------------------------------------

EXAMPLE = re.compile(
    r"```sh\nprintf '(?P<body>[^']*)' \\\n  \| curl -s localhost:8080/invocations "
    r"-H 'Content-Type: (?P<type>[^']+)'(?: -H 'Accept: (?P<accept>[^']+)')? "
    r"(?:-H 'X-Request-ID: (?P<request_id>[^']+)' )?"
    r"--data-binary @-\n```\n```\w*\n(?P<answer>.*?)\n```",
    re.S,
)


def documented_examples():
    """(body, content type, accept, documented answer, headers) for every /invocations
    example."""
    page = (ROOT / "docs" / "deploy" / "sagemaker.md").read_text()
    return [
        (
            m["body"].replace("\\n", "\n").encode(),
            m["type"],
            m["accept"],
            m["answer"],
            {"X-Request-ID": m["request_id"]} if m["request_id"] else {},
        )
        for m in EXAMPLE.finditer(page)
    ]


def test_the_docs_show_csv_json_lines_and_error_examples():
    accepts = [accept for _, _, accept, *_ in documented_examples()]
    assert accepts == [CSV, JSONL, None]


@pytest.mark.parametrize(
    "body, content_type, accept, documented, headers",
    documented_examples(),
    ids=lambda value: value if isinstance(value, str) else "example",
)
def test_the_documented_invocations_examples_are_what_the_service_answers(
    client, body, content_type, accept, documented, headers
):
    answer = invoke(client, body, content_type, accept, **headers).data.decode()
    if accept in (CSV, JSONL):
        assert answer.splitlines() == documented.splitlines()
    else:
        assert json.loads(answer) == json.loads(documented)
