"""The Kafka consumer's translation, without a broker: message values in, the API's answers
or problem documents out, every valid record of a batch estimated in one call."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import NamedTuple

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.core.captures import check_capture, is_sampled
from insurance_charges.core.estimates import estimate
from insurance_charges.core.json_bytes import answer_json
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.core.strict_json import orjson_exact
from insurance_charges.events import cli, messages
from insurance_charges.events.kafka import by_size, client_properties
from insurance_charges.events.messages import (
    Refused,
    answer_values,
    capture_lines,
    read_value,
    read_values,
    reject_value,
    request_id_of,
)

from .json_strategies import json_values

OLD = {**EXAMPLE_RECORD, "age": 99, "bmi": 70.0}  # valid, outside the training ranges
LIMIT = 2 * 1024 * 1024
OUTPUT, REJECT = "output", "reject"


class Published(NamedTuple):
    """What the consumer publishes for one message: to the output or rejects topic, and what."""

    kind: str
    value: bytes


def answered(model, values: list, id_prefix: str = "in", **limits):
    """answer_values for messages with these values on partition 3 from offset 40 (bytes as
    they are, anything else as its JSON)."""
    return answer_values(
        model,
        [v if isinstance(v, bytes) or v is None else orjson.dumps(v) for v in values],
        [request_id_of(id_prefix, 3, 40 + i) for i in range(len(values))],
        max_batch=limits.get("max_batch", 10_000),
        max_bytes=limits.get("max_bytes", LIMIT),
    )


def answers(model, values: list, **limits) -> list[Published]:
    """What is published for messages with these values, read from topic "in", partition 3,
    from offset 40."""
    return [
        Published(OUTPUT, a)
        if isinstance(a, bytes)
        else Published(REJECT, reject_value(a, "in", 3, 40 + i))
        for i, a in enumerate(answered(model, values, **limits).answers)
    ]


def api_answer(model, body, i: int) -> bytes:
    """The API's answer to ``body`` sent with the i-th message's request id as X-Request-ID."""
    return answer_json(estimate(model, body), f"in:3:{40 + i}")


def test_each_message_gets_the_apis_answer_byte_for_byte(real_model):
    bodies = [EXAMPLE_RECORD, [EXAMPLE_RECORD, OLD], OLD, [OLD], [EXAMPLE_RECORD] * 9, OLD]
    got = answers(real_model, bodies)
    assert [a.kind for a in got] == [OUTPUT] * len(bodies)
    assert [a.value for a in got] == [api_answer(real_model, b, i) for i, b in enumerate(bodies)]


def test_each_estimate_is_named_by_its_messages_partition_and_offset_the_same_when_delivered_again(
    real_model,
):
    values = [EXAMPLE_RECORD, {"age": 1}, [OLD, EXAMPLE_RECORD], OLD]
    for _ in range(2):  # the same messages again (a redelivery): the same ids
        got_back = answered(real_model, values, id_prefix="claims", max_batch=10)
        got = [orjson.loads(a) if isinstance(a, bytes) else a for a in got_back.answers]
        assert got[0]["inference_id"] == "claims:3:40"
        assert "inference_id" not in got[1] and "inference_ids" not in got[1]  # a reject
        assert got[2]["inference_ids"] == ["claims:3:42-0", "claims:3:42-1"]
        assert got[3]["inference_id"] == "claims:3:43"
        # The capture's ids follow the estimates, record by record.
        assert got_back.ids == ["claims:3:40", "claims:3:42-0", "claims:3:42-1", "claims:3:43"]
        assert got_back.estimates is not None
        assert len(got_back.estimates.amounts) == len(got_back.ids)


@pytest.mark.parametrize("values", [[EXAMPLE_RECORD, OLD] * 3, [OLD, {"age": 1}, EXAMPLE_RECORD]])
def test_one_record_messages_ids_are_their_request_ids(real_model, values):
    got_back = answered(real_model, values)
    valid = [i for i, v in enumerate(values) if v != {"age": 1}]
    assert got_back.ids == [f"in:3:{40 + i}" for i in valid]


@pytest.mark.parametrize("percent", [100.0, 30.0])
def test_the_capture_lines_are_the_estimates_published_under_their_ids(real_model, percent):
    values = [EXAMPLE_RECORD, [OLD, EXAMPLE_RECORD] * 20, OLD, b"{"] * 10
    got_back = answered(real_model, values, max_batch=100)
    published = {}
    for answer in got_back.answers:
        body = orjson.loads(answer) if isinstance(answer, bytes) else answer
        if "inference_id" in body:
            published[body["inference_id"]] = (body["prediction"], body["interval"])
        for i, name in enumerate(body.get("inference_ids", [])):
            published[name] = (body["predictions"][i], body["intervals"][i])
    moment = datetime(2026, 12, 7, 13, 52, 28, tzinfo=UTC)
    data, count = capture_lines(got_back, percent, moment)
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert count == len(lines)
    assert sorted(line["inference_id"] for line in lines) == sorted(
        name for name in published if is_sampled(name, percent)
    )
    assert 0 < count <= len(published) == 10 * 42
    for line in lines:
        record, problem = check_capture(line)
        assert problem is None and record is not None
        prediction, interval = published[record["inference_id"]]
        assert (record["estimate"], record["low"], record["high"]) == (
            prediction,
            interval["lower"],
            interval["upper"],
        )
        assert (record["path"], record["time"]) == ("/kafka", moment)


def test_a_warning_points_into_its_own_message_not_the_whole_batch(real_model):
    got = answers(real_model, [[EXAMPLE_RECORD, EXAMPLE_RECORD], [EXAMPLE_RECORD, OLD], OLD])
    assert [w["pointer"] for w in orjson.loads(got[1].value)["warnings"]] == ["/1/age", "/1/bmi"]
    assert [w["pointer"] for w in orjson.loads(got[2].value)["warnings"]] == ["/age", "/bmi"]
    assert orjson.loads(got[0].value)["warnings"] == []


class Counting:
    """The committed model, counting its calls and the records in each."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.version, self.training_ranges = model.version, model.training_ranges
        self.likely_range = model.likely_range

    def predict(self, records):
        self.calls.append(len(records))
        return self.model.predict(records)


@pytest.mark.parametrize(
    "values",
    [
        [EXAMPLE_RECORD] * 20,
        [EXAMPLE_RECORD, [EXAMPLE_RECORD] * 5, b"nonsense", {"age": 1}, OLD],
    ],
)
def test_the_valid_records_of_a_batch_are_estimated_in_one_call(real_model, values):
    model = Counting(real_model)
    answers(model, values)
    valid = sum(
        len(v) if isinstance(v, list) else 1
        for v in values
        if not isinstance(v, bytes) and v != {"age": 1}
    )
    assert model.calls == [valid]


def test_a_batch_of_bad_messages_only_makes_no_call_to_the_model(real_model):
    model = Counting(real_model)
    assert [a.kind for a in answers(model, [b"{", {"age": 1}])] == [REJECT, REJECT]
    assert model.calls == []


@pytest.mark.parametrize(
    "value, status, detail",
    [
        (
            None,
            400,
            ("the message has no value (a tombstone); send a JSON object or an array of objects"),
        ),
        (b"", 400, "the value is empty; send a JSON object or an array of objects"),
        (b" \n", 400, "the value is empty; send a JSON object or an array of objects"),
        (b"\xff{}", 400, "the value is not valid UTF-8 (byte 0)"),
        (
            b"{",
            400,
            (
                "the value is not valid JSON: Expecting property name enclosed in double "
                "quotes: line 1 column 2 (char 1)"
            ),
        ),
        (b'{"age": NaN}', 400, "the value is not valid JSON: NaN is not valid JSON"),
        (b"[" * 100_000, 400, "the JSON is nested too deeply"),
        (b"[]", 422, "a batch holds 1 to 10000 records; got none"),
        (b'"text"', 422, "1 invalid value(s); see errors"),
        (b'{"age": 30}', 422, "5 invalid value(s); see errors"),
        (b'[{"age": 30}, 1]', 422, "6 invalid value(s); see errors"),
    ],
)
def test_a_value_that_can_never_be_estimated_is_rejected_with_its_problem(
    real_model, value, status, detail
):
    [got] = answers(real_model, [value])
    assert got.kind == REJECT
    body = orjson.loads(got.value)
    assert (body["topic"], body["partition"], body["offset"]) == ("in", 3, 40)
    assert (body["problem"]["status"], body["problem"]["detail"]) == (status, detail)


def test_the_limits_are_the_apis(real_model):
    too_many, too_big = answers(
        real_model, [[EXAMPLE_RECORD] * 3, b" " * 2046 + b"{}"], max_batch=2, max_bytes=2048
    )
    assert (
        orjson.loads(too_many.value)["problem"]["detail"]
        == "a batch holds at most 2 records; got 3"
    )
    assert orjson.loads(too_big.value)["problem"] == {
        "type": "/docs#problem-too-large",
        "title": "Request too large",
        "status": 413,
        "detail": "the value is over the 2 KiB limit; send fewer records per message",
    }


def test_a_rejects_problem_is_the_apis_problem_body(real_model, client):
    body = {**EXAMPLE_RECORD, "smoker": "maybe"}
    [got] = answers(real_model, [body])
    api = client.post("/api/v1/predict", json=body)
    assert orjson.loads(got.value)["problem"] == api.get_json()


def test_bad_messages_leave_their_neighbours_answered_as_if_alone(real_model):
    values = [EXAMPLE_RECORD, {"age": 1}, [OLD, EXAMPLE_RECORD], b"{", OLD]
    got = answers(real_model, values)
    assert [a.kind for a in got] == [OUTPUT, REJECT, OUTPUT, REJECT, OUTPUT]
    for i in (0, 2, 4):
        assert got[i].value == api_answer(real_model, values[i], i)
    assert [orjson.loads(got[i].value)["offset"] for i in (1, 3)] == [41, 43]


def read_alone(value: bytes | None) -> tuple:
    """What read_value gives for ``value``: its parsed value (with its exact type and the keys
    it repeats), or the document of its refusal."""
    try:
        got = read_value(value, LIMIT)
    except Refused as exc:
        return ("refused", exc.document)
    return ("read", type(got), got, getattr(got, "repeated", None))


def read_in_bulk(values: list) -> list[tuple]:
    """What read_values gives for each value, in read_alone's terms."""
    return [
        ("refused", got.document)
        if isinstance(got, Refused)
        else ("read", type(got), got, getattr(got, "repeated", None))
        for got in read_values(values, LIMIT)
    ]


RECORD = orjson.dumps(EXAMPLE_RECORD)


@pytest.mark.parametrize(
    "odd",
    [
        None,
        b"",
        b" \n",
        b"\xff{}",
        b"{",
        b"[NaN]",
        b'{"age": 30, "age": 31}',  # a repeated key: orjson keeps the last, parse_json says so
        b'{"age": 18446744073709551616}',  # beyond 64 bits: orjson may read a float
        b'{"bmi": 1e999}',
        b'{"sex": "\\ud800"}',
        b"\xef\xbb\xbf{}",
        b"[" * 1100 + b"]" * 1100,
        b"[1,]",
        b" 7 ",
        b'{"note": "a: b"}',  # a colon in a string: more colons than keys, read alone
        b" " * LIMIT + b"{}",  # over the size limit
    ],
)
def test_values_read_in_bulk_are_read_as_each_alone_beside_any_odd_one(odd):
    values = [RECORD, odd, orjson.dumps([EXAMPLE_RECORD, OLD]), RECORD]
    assert read_in_bulk(values) == [read_alone(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values.map(lambda v: json.dumps(v).encode()), min_size=1, max_size=8))
def test_values_read_in_bulk_are_read_as_each_alone_for_any_json(values):
    assert read_in_bulk(values) == [read_alone(v) for v in values]


@pytest.mark.parametrize(
    "odd, read_alone_calls",
    [
        (RECORD, 0),  # all read by orjson at once
        (b"{", 1),  # the one orjson refuses
        (b'{"age": 30, "age": 31}', 4),  # orjson's reading differs somewhere: each alone
    ],
)
def test_only_values_orjson_cannot_read_exactly_are_read_one_by_one(
    monkeypatch, odd, read_alone_calls
):
    calls = []

    def counted(value, max_bytes):
        calls.append(value)
        return read_value(value, max_bytes)

    monkeypatch.setattr(messages, "read_value", counted)
    read_values([RECORD, RECORD, odd, RECORD], LIMIT)
    assert len(calls) == read_alone_calls


@pytest.mark.parametrize(
    "raws, exact",
    [
        ([b'{"a": 1}', b'[{"b": 2}, {"c": 3}]', b"7"], True),
        ([b'{"a": 1}', b'{"a": 1, "a": 2}'], False),  # orjson keeps one "a" of two
        ([b'{"a": 1}', b'{"a": "b:c"}'], False),  # more colons than keys: not known exact
        ([b'{"a": {"b": 1}}'], False),  # a nested key is not counted
        ([b"[1234567890123456789]"], False),  # 19 digits: orjson may read a float
        ([b"1234567890", b"123456789"], True),  # 19 digits only if the two were joined
    ],
)
def test_orjsons_reading_is_exact_only_without_repeated_keys_or_long_runs_of_digits(raws, exact):
    assert orjson_exact(raws, [orjson.loads(raw) for raw in raws]) is exact


def test_a_batch_of_many_messages_with_warnings_and_mistakes_gets_each_ones_own_answer(
    real_model,
):
    bodies = valid_records(300, seed=5)  # some outside the training ranges: warnings
    values = [orjson.dumps(b) for b in bodies]
    values[7] = orjson.dumps({**bodies[7], "age": 7})
    values[8] = orjson.dumps([bodies[8], OLD])
    values[9] = b'{"age": 30, "age": 31}'
    got = answers(real_model, values)
    for i, value in enumerate(values):
        try:
            expected = api_answer(real_model, orjson.loads(value), i)
        except ValueError:  # refused: a reject
            assert got[i].kind == REJECT, i
            continue
        assert got[i] == Published(OUTPUT, expected), i
    assert [a.kind for a in got].count(REJECT) == 2


def test_prefixed_properties_go_to_one_client_and_the_rest_to_both():
    given = {
        "security.protocol": "SSL",
        "consumer.fetch.min.bytes": "1000",
        "producer.linger.ms": "50",
    }
    assert client_properties(given, "consumer.") == {
        "security.protocol": "SSL",
        "fetch.min.bytes": "1000",
    }
    assert client_properties(given, "producer.") == {"security.protocol": "SSL", "linger.ms": "50"}


REQUIRED = [
    "kafka",
    "--bootstrap-servers",
    "b:9092",
    "--input-topic",
    "in",
    "--output-topic",
    "out",
    "--rejects-topic",
    "rej",
    "--group-id",
    "g",
]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            ["-X", "enable.auto.commit=true"],
            (
                "enable.auto.commit is set by the command (offsets "
                "are committed only after the outputs are "
                "acknowledged)"
            ),
        ),
        (["-X", "consumer.group.id=other"], "group.id is set by the command (give --group-id)"),
        (
            ["-X", "producer.acks=1"],
            (
                "acks is set by the command (every output must be "
                "acknowledged by all in-sync replicas)"
            ),
        ),
        (["-X", "linger.ms"], "'linger.ms' is not KEY=VALUE"),
        (["--batch-size", "0"], "'0' is not from 1 to 100000"),
        (["--poll-timeout", "soon"], "'soon' is not a number"),
        (["--connect-timeout", "1000"], "'1000' is not from 0.1 to 300"),
        (["--capture-seconds", "0"], "'0' is not from 1 to 600"),
        (["--id-prefix", "a b"], "'a b' is not an id prefix: give 1 to 128 letters"),
        (["--id-prefix", "a:b"], "'a:b' is not an id prefix"),  # the separator of the id's parts
        (["--id-prefix", "x" * 129], "is not an id prefix"),
    ],
)
def test_an_unusable_argument_is_one_error_line_and_status_2(capsys, extra, expected):
    assert cli.main(REQUIRED + extra) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and expected in err[0], err


def test_a_missing_argument_names_it(capsys):
    assert cli.main(REQUIRED[:-2]) == 2
    assert capsys.readouterr().err == (
        "Error: the following arguments are required: --group-id; see --help\n"
    )


def test_an_input_topic_too_long_to_name_estimates_by_asks_for_an_id_prefix(capsys):
    # Kafka allows 249 characters; an inference id's prefix holds 128.
    argv = [a if a != "in" else "t" * 200 for a in REQUIRED]
    assert cli.main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("Error: --input-topic 'tttt") and line.endswith("give --id-prefix")
    args = cli.parser().parse_args([*argv, "--id-prefix", "claims.eu-1"])
    assert cli.options_from(args, {}).id_prefix == "claims.eu-1"
    assert cli.options_from(cli.parser().parse_args(REQUIRED), {}).id_prefix == "in"


def test_the_sasl_password_comes_from_the_environment_never_the_command_line():
    args = cli.parser().parse_args(REQUIRED + ["-X", "sasl.username=u"])
    options = cli.options_from(args, {cli.PASSWORD_VARIABLE: "s3cret"})
    assert options.client_config == {"sasl.username": "u", "sasl.password": "s3cret"}
    assert cli.options_from(args, {}).client_config == {"sasl.username": "u"}


@pytest.mark.parametrize(
    "sizes, limit, expected",
    [
        ([3, 3, 3], 6, [[3, 3], [3]]),
        ([3, 3], 6, [[3, 3]]),  # exactly at the limit: one call
        ([10, 1], 6, [[10], [1]]),  # one message over the limit is a group of its own
        ([1, 10, 1], 6, [[1], [10], [1]]),
        ([0, 0], 6, [[0, 0]]),  # a tombstone weighs nothing
        ([], 6, []),
    ],
)
def test_a_consumed_batch_is_estimated_in_calls_of_bounded_size(sizes, limit, expected):
    values = [b"x" * n if n else None for n in sizes]
    groups = by_size(values, limit)
    assert [[len(values[i] or b"") for i in group] for group in groups] == expected


class Replaced(Exception):
    """os.execv was called: the process would now be another program."""


def test_the_image_started_with_kafka_becomes_the_consumer(monkeypatch):
    from insurance_charges.container import launcher

    def execv(path, argv):
        raise Replaced(path, argv)

    monkeypatch.setattr(launcher.os, "execv", execv)
    with pytest.raises(Replaced) as replaced:
        launcher.main(["kafka", "--group-id", "g"])
    assert replaced.value.args == (
        sys.executable,
        [sys.executable, "-m", "insurance_charges.events", "kafka", "--group-id", "g"],
    )
