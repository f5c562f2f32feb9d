"""JSON-lines bodies read in bulk give exactly the API's answer for each line, and bad ones stop.

The reference is the reader as it was: every line through ``parse_json`` one at a time, every
problem counted. The bulk reader must give the same records, the same problems and the same
status for any body, and refuse a body of millions of bad lines without a Python step each.
"""

from __future__ import annotations

import gc
import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.core import strict_json
from insurance_charges.core.estimates import InvalidRecords
from insurance_charges.core.validation import LISTED, validate_records
from insurance_charges.platforms.sagemaker import jsonlines_body
from insurance_charges.platforms.sagemaker.decoding import (
    EMPTY,
    Unreadable,
    invalid,
    locate,
    unreadable,
)
from insurance_charges.platforms.sagemaker.jsonlines_body import read_jsonlines
from insurance_charges.settings import MB
from insurance_charges.tables import json_lines
from insurance_charges.tables.lines import lines_of

from .sagemaker_support import reader_outcome

RECORD = json.dumps(valid_records(1, seed=3)[0]).encode()
DEEP = b"[" * 1100 + b"]" * 1100  # orjson reads 1,024 levels, json fewer


def one_line_at_a_time(data: bytes):
    """The reference reader: each line through parse_json, every problem counted."""
    items, found, problems = [], [], []
    for number, raw in enumerate(lines_of(data), 1):
        body = raw.strip()
        if not body:
            continue
        try:
            items.append(strict_json.parse_json(body, body.decode("utf-8")))
        except UnicodeDecodeError as exc:
            problems.append(
                (
                    number,
                    f"the line is not UTF-8 text (byte {exc.start + 1}); send the body as UTF-8",
                )
            )
            continue
        except RecursionError:
            problems.append((number, "the line's JSON is nested too deeply"))
            continue
        except ValueError as exc:
            problems.append((number, f"the line is not valid JSON: {exc}"))
            continue
        found.append(number)
    if problems:
        raise unreadable(problems)
    if not found:
        raise Unreadable(EMPTY)
    lines = np.array(found, dtype=np.int64)
    records, refused = validate_records(items, locate(lines))
    if refused.total:
        raise invalid(refused)
    return records, lines


def outcome(read, data: bytes):
    """What a reader answers: the records and their lines, or the refusal in full."""

    def accepted(got):
        records, lines = (got.records, got.lines) if hasattr(got, "records") else got
        return "ok", [dict(r) for r in records], [type(r["bmi"]) for r in records], lines.tolist()

    return reader_outcome(read, data, accepted)


# Lines that each path of the reader meets: records, blank and odd whitespace, lines orjson
# refuses and json reads (a lone surrogate), long digit runs, repeated keys, colons in
# strings, lines that are not JSON at all, and lines that are JSON but not records.
LINES = [
    RECORD,
    RECORD,
    RECORD.replace(b'"bmi": 10.0', b'"bmi": 10'),
    RECORD.replace(b'"bmi": 10.0', b'"bmi": 310'),
    RECORD.replace(b'"age": 18', b'"age": 18.0'),
    b"",
    b"   ",
    b"\r",
    b"\x0c" + RECORD + b"\x0b",
    b"\t" + RECORD + b" \r",
    b"{}",
    b"0",
    b"[{}]",
    b'"\\ud800"',
    b'{"\\ud800": 1}',
    b'"\\ud83d\\ude00"',
    b'{"age": 1000000000000000000000}',
    b"0000000000000000000",
    b'{"age": 19, "age": 19}',
    b'[{"a": 1, "a": 2}]',
    b'{"sex": "x:y"}',
    b'{"sex": "x:y", "sex": "m"}',
    b'{"t": "\\u003a", "age": 1, "age": 2}',
    b'[{"k:": ":"}, {"a": {"b": "c:", "b": 1}}]',
    b'{"a": {"b": 1, "b": 2}}',
    b"{",
    b"1, 2",
    b'{"age": NaN}',
    b"\xef\xbb\xbf{}",
    b"\xff{}",
    DEEP,
    b'{"bmi": 1e999}',
    b'{"age": 30, "sex": "male", "bmi": 27.90000000000000000001, "children": 0, '
    b'"smoker": "no", "region": "northeast"}',
]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.sampled_from(LINES), min_size=1, max_size=12),
    ending=st.sampled_from([b"\n", b"\r\n"]),
    last=st.booleans(),
    chunk=st.sampled_from(
        [
            (1, 10**9),
            (2, 10**9),
            (5, 10**9),
            (10**9, 1),
            (10**9, 60),
            (jsonlines_body.CHUNK_LINES, jsonlines_body.CHUNK_BYTES),
        ]
    ),
)
def test_bulk_reading_answers_exactly_as_reading_one_line_at_a_time(lines, ending, last, chunk):
    data = ending.join(lines) + (ending if last else b"")
    expected = outcome(one_line_at_a_time, data)
    shipped = jsonlines_body.CHUNK_LINES, jsonlines_body.CHUNK_BYTES
    jsonlines_body.CHUNK_LINES, jsonlines_body.CHUNK_BYTES = chunk
    try:  # chunk boundaries anywhere, not only every 50,000 lines or 8 MiB
        got = outcome(read_jsonlines, data)
    finally:
        jsonlines_body.CHUNK_LINES, jsonlines_body.CHUNK_BYTES = shipped
    assert got == expected


def test_a_body_is_read_a_chunk_of_lines_at_a_time(monkeypatch):
    read, parsed = [], json_lines._parsed

    def counted(texts, by_json, limit, not_utf8_fix):
        read.append(len(texts))
        return parsed(texts, by_json, limit, not_utf8_fix)

    monkeypatch.setattr(json_lines, "_parsed", counted)
    lines = jsonlines_body.CHUNK_LINES * 2 + 10
    with pytest.raises(InvalidRecords):
        read_jsonlines(b"{}\n" * lines)
    # The values of one chunk at a time are held, however many lines the body has.
    assert read == [jsonlines_body.CHUNK_LINES] * 2 + [10]


SIX_MB = 6 * MB


def fill(line: bytes) -> bytes:
    return line * (SIX_MB // len(line))


@pytest.fixture
def exact_reads(monkeypatch):
    """Each line read by parse_json itself, and whether orjson ran with the collector off."""
    calls, collector = [], []
    real_parse, real_loads = strict_json.parse_json, json_lines.orjson.loads

    def parse(raw, text):
        calls.append(raw)
        return real_parse(raw, text)

    class Orjson:
        dumps = staticmethod(orjson.dumps)  # writing a value back counts its colons

        @staticmethod
        def loads(raw):
            if not collector:
                collector.append(gc.isenabled())
            return real_loads(raw)

    monkeypatch.setattr(strict_json, "parse_json", parse)
    monkeypatch.setattr(json_lines, "orjson", Orjson)
    return calls, collector


BAD_BODIES = {  # 6 MB each: millions of lines, every one of them a problem
    "{}": (b"{}\n", InvalidRecords, ["/1/age", "/1/sex"]),
    "0": (b"0\n", InvalidRecords, ["/1", "/2"]),
    '{"a":1}': (b'{"a":1}\n', InvalidRecords, ["/1/a", "/1/age"]),
    "[{}]": (b"[{}]\n", InvalidRecords, ["/1", "/2"]),
    "lone surrogate": (b'"\\ud800"\n', InvalidRecords, ["/1", "/2"]),
    "repeated key": (b'{"a":1,"a":1}\n', InvalidRecords, ["/1/a", "/1/a"]),
    "form feed": (b"\x0c{}\n", InvalidRecords, ["/1/age", "/1/sex"]),
    "not JSON": (b"{\n", Unreadable, ["/1", "/2"]),
    "19 digits": (b"0000000000000000000\n", Unreadable, ["/1", "/2"]),
}


@pytest.mark.parametrize("line, refusal, first", BAD_BODIES.values(), ids=BAD_BODIES)
def test_six_mb_of_bad_lines_are_read_in_bulk_and_refused_at_the_101st_problem(
    exact_reads, line, refusal, first
):
    calls, collector = exact_reads
    with pytest.raises(refusal) as raised:
        read_jsonlines(fill(line))
    problems = raised.value.errors
    assert [e.pointer for e in problems[:2]] == first
    assert (len(problems), problems.total, problems.complete) == (LISTED, LISTED + 1, False)
    assert raised.value.detail.startswith(f"at least {LISTED + 1} ")
    # parse_json reads only the lines that are problems, up to the 101st, and at most as many
    # again that validation reads anew: not one call for each of the millions of lines.
    assert len(calls) <= 2 * (LISTED + 1)
    assert collector in ([], [False]) and gc.isenabled()


def test_problems_of_lines_read_by_either_parser_are_listed_in_line_order():
    # Odd lines orjson refuses, even lines json refuses (an escaped surrogate, left open).
    data = b"".join(b'{\n"\\ud800\n' for _ in range(300))
    with pytest.raises(Unreadable) as raised:
        read_jsonlines(data)
    problems = raised.value.errors
    assert [e.pointer for e in problems] == [f"/{n}" for n in range(1, LISTED + 1)]
    assert problems.total >= LISTED + 1 and problems.complete is False


def test_a_body_of_valid_lines_is_read_by_orjson_alone(exact_reads):
    calls, collector = exact_reads
    data = b"\n".join(json.dumps(r).encode() for r in valid_records(500, seed=5)) + b"\n"
    got = read_jsonlines(data)
    assert len(got.records) == 500 and got.lines.tolist() == list(range(1, 501))
    assert calls == [] and collector == [False] and gc.isenabled()
