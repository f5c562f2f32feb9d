"""The one tabular reader: what it gives the scorer and SageMaker's bodies alike.

Its place below them is import-linter's contract (tests/test_layers.py)."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insurance_charges.core.strict_json import RepeatedKeys, parse_json
from insurance_charges.tables import json_lines
from insurance_charges.tables.csv_text import read_csv_chunk
from insurance_charges.tables.json_lines import first_object, read_json_lines
from insurance_charges.tables.lines import line_blocks, lines_of

from .test_jsonlines_body import LINES

ROW = "19,female,27.9,0,yes,southwest"


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'\n  \n{"age": 19, "id": 1}\n{"b": 2}\n', {"age": 19, "id": 1}),
        (b'[1]\n"x"\n{not json\n\xff\n{"b": 2}', {"b": 2}),
        (b"0\n[]\n", None),
        (b"", None),
    ],
    ids=["after-blank-lines", "after-lines-that-are-no-object", "no-object", "empty"],
)
def test_the_first_object_is_the_first_line_whose_value_is_one(data, expected):
    assert first_object(data) == expected


def test_the_first_object_keeps_a_repeated_key_as_the_api_reads_it():
    got = first_object(b'{"a": 1, "a": 2}\n')
    assert isinstance(got, RepeatedKeys) and got.repeated == ("a",)


@pytest.mark.parametrize(
    "fix, message",
    [
        ("", "the line is not UTF-8 text (byte 3)"),
        ("send the body as UTF-8", "the line is not UTF-8 text (byte 3); send the body as UTF-8"),
    ],
)
def test_a_line_that_is_not_utf8_is_worded_with_the_callers_fix(fix, message):
    got = read_json_lines(b'{}\n  {"\xff"}\r\n', 5, not_utf8_fix=fix)
    assert got.lines.tolist() == [5, 6] and got.problems == [(1, message)]
    assert got.shown(1) == '  {"\ufffd"}\r'  # as sent, the broken byte replaced


def test_every_line_is_read_unless_a_limit_stops_the_reading():
    data = b"{\n" * 5 + b"{}\n"
    assert len(read_json_lines(data, 1).problems) == 5
    assert [i for i, _ in read_json_lines(data, 1, limit=2).problems] == [0, 1, 2]


def test_values_orjson_may_read_otherwise_are_read_again_by_the_strict_parser():
    got = read_json_lines(b'{"a": 1, "a": 2}\n{"age": 19}\n  {"b": "x:y"}  \n', 1)
    again = got.again()
    values = list(got.exact_values(again))
    assert again.tolist() == [True, False, True]
    assert isinstance(values[0], RepeatedKeys) and values[1:] == [{"age": 19}, {"b": "x:y"}]
    assert got.shown(2) == '{"b": "x:y"}'  # without the spaces around it


@pytest.mark.parametrize(
    "line, read_again",
    [
        (b'{"t": "2026-11-02T00:00:00Z", "id": "a:b"}', False),  # colons in text: counted
        (b'{"a": {"b": 1}, "c": [{"d": "e:f"}]}', False),  # nested members: counted
        (b'{"t": "x:y", "a": 1, "a": 2}', True),  # a repeat hides behind no colon in text
        (b'{"a": {"b": 1, "b": 2}}', True),  # nor in a nested object
        # An escaped colon is one more colon in the value than in the text, making up for the
        # repeated key's: a line with an escape is read again.
        (b'{"t": "\\u003a", "a": 1, "a": 2}', True),
        (b'{"t": "\\u003a", "u": "a:b"}', True),
    ],
)
def test_a_line_with_more_colons_than_keys_is_read_again_unless_they_prove_no_key_repeats(
    line, read_again, monkeypatch
):
    reads = []
    real = json_lines.line_value
    monkeypatch.setattr(json_lines, "line_value", lambda text: reads.append(text) or real(text))
    got = read_json_lines(line + b"\n", 1)
    assert got.again().tolist() == [True]
    assert shown_value(next(got.exact_values(got.again()))) == shown_value(
        parse_json(line, line.decode())
    )
    assert reads == ([line] if read_again else [])


@pytest.mark.parametrize(
    "line, kind, detail, byte",
    [
        (b'{"a"\xff}', "utf8", "", 5),
        (b"[" * 5000, "deep", "", 0),
        (b"{x}", "json", "Expecting property name enclosed in double quotes", 0),
        (b'{"a": NaN}', "json", "NaN is not valid JSON", 0),
    ],
)
def test_a_reader_that_words_its_own_refusals_learns_why_a_line_is_not_json(
    line, kind, detail, byte
):
    got = read_json_lines(b"{}\n" + line + b"\n", 1)
    why = got.why_not(1)
    assert [i for i, _ in got.problems] == [1]
    assert (why.kind, why.detail.split(":")[0], why.byte) == (kind, detail, byte)


def shown_value(value) -> tuple[str, str]:
    """A value as compared: its type (a RepeatedKeys is a dict that also names its repeats) and
    its repr."""
    return type(value).__name__, repr(value)


def each_line_alone(data: bytes, first: int) -> list:
    """The reference: (line, value or problem, echo) of each line through parse_json alone."""
    read = []
    for number, raw in enumerate(lines_of(data), first):
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        body = raw.strip()
        if not body:
            continue
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            read.append(
                (
                    number,
                    ("problem", f"the line is not UTF-8 text (byte {exc.start + 1})"),
                    raw.decode("utf-8", "replace"),
                )
            )
            continue
        try:
            got = ("value", shown_value(parse_json(body, text)))
        except RecursionError:
            got = ("problem", "the line's JSON is nested too deeply")
        except ValueError as exc:
            got = ("problem", f"the line is not valid JSON: {exc}")
        read.append((number, got, text))
    return read


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.sampled_from(LINES), min_size=1, max_size=12),
    ending=st.sampled_from([b"\n", b"\r\n"]),
    first=st.integers(1, 3),
)
def test_every_line_reads_as_the_strict_parser_reads_it_alone(lines, ending, first):
    data = ending.join(lines)
    got = read_json_lines(data, first)
    values = list(got.exact_values(got.again()))
    said = dict(got.problems)
    read = [
        (
            int(line),
            ("problem", said[i]) if i in said else ("value", shown_value(values[i])),
            got.shown(i),
        )
        for i, line in enumerate(got.lines)
    ]
    assert read == each_line_alone(data, first)


def each_line_read_by_readline(data: bytes, longest: int) -> list[tuple[int, bytes | None]]:
    """The reference: (number, line) of each line as ``readline(longest + 1)`` finds it, None
    for a line longer than ``longest`` with its line end."""
    stream, read = io.BytesIO(data), []
    while raw := stream.readline(longest + 1):
        if len(raw) > longest:
            while raw and not raw.endswith(b"\n"):  # the rest of the long line
                raw = stream.readline(longest + 1)
            read.append((len(read) + 1, None))
        else:
            read.append((len(read) + 1, raw))
    return read


@settings(max_examples=500, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\n\n"]), max_size=40).map(b"".join),
    longest=st.integers(1, 8),
    block=st.integers(1, 12),
)
def test_line_blocks_give_every_line_with_its_number_and_list_the_long_ones(data, longest, block):
    read = []
    for got in line_blocks(io.BytesIO(data), longest, block):
        for offset, line in enumerate(lines_of(got.data)):
            number = got.first + offset
            if number in got.overlong:
                assert line == b"\n"  # kept as a bare line end, so the numbers hold
            read.append((number, None if number in got.overlong else line))
    assert read == each_line_read_by_readline(data, longest)


def test_a_long_line_is_never_held_whole():
    data = b"{}\n" + b"x" * 10_000_000 + b"\n{}\n"
    blocks = list(line_blocks(io.BytesIO(data), 1000, 4096))
    assert [b.overlong for b in blocks if b.overlong] == [[2]]
    assert b"".join(b.data for b in blocks) == b"{}\n\n{}\n"
    assert max(len(b.data) for b in blocks) <= 1000 + 4096


def test_csv_rows_are_numbered_by_their_first_line_and_other_widths_are_no_rows():
    data = f'{ROW}\n\n19,"fe\nmale",27.9,0,yes,southwest\na,b\n{ROW}'.encode()
    table, lines, not_rows = read_csv_chunk(
        data, 2, ("age", "sex", "bmi", "children", "smoker", "region")
    )
    assert lines.tolist() == [2, 4, 7] and table.column("sex").to_pylist() == [
        "female",
        "fe\nmale",
        "female",
    ]
    assert [(p.line, p.last_line, p.message, p.text, p.rows) for p in not_rows] == [
        (6, 6, "the line has 2 values where the header has 6 columns", "a,b\n", 1)
    ]


def test_text_that_is_no_row_names_every_line_it_spans():
    data = f'{ROW}\n19,"fe\nmale,27.9\n\n{ROW}\n'.encode()  # the quote is never closed
    _, lines, not_rows = read_csv_chunk(data, 2, ("a", "b", "c", "d", "e", "f"))
    assert lines.tolist() == [2]
    assert [(p.line, p.last_line, p.rows) for p in not_rows] == [(3, 6, 3)]


def test_csv_rows_are_text_cells_as_written():
    table, _, _ = read_csv_chunk(b'" 19 ",,"" \n', 1, ("a", "b", "c"))
    assert json.loads(json.dumps(table.to_pylist())) == [{"a": " 19 ", "b": "", "c": " "}]
