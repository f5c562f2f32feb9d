"""The Kafka consumer's translation, without a broker: message values in, the API's answers
or problem documents out, every valid record of a batch estimated in one call."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import orjson
import pytest

from insurance_charges.core.captures import check_capture, is_sampled
from insurance_charges.core.estimates import estimate
from insurance_charges.core.json_bytes import answer_json
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.events import cli
from insurance_charges.events.kafka import by_size, client_properties
from insurance_charges.events.messages import (
    OUTPUT,
    REJECT,
    Incoming,
    answer_batch,
    capture_lines,
)

OLD = {**EXAMPLE_RECORD, "age": 99, "bmi": 70.0}  # valid, outside the training ranges
LIMIT = 2 * 1024 * 1024


def incoming(values: list, topic: str = "in") -> list[Incoming]:
    """Messages on partition 3 from offset 40, each keyed and with one header."""
    return [
        Incoming(
            v if isinstance(v, bytes) or v is None else orjson.dumps(v),
            f"k{i}".encode(),
            [("trace", b"t%d" % i)],
            topic,
            3,
            40 + i,
        )
        for i, v in enumerate(values)
    ]


def answers(model, values: list, **limits):
    return answer_batch(
        model,
        incoming(values),
        max_batch=limits.get("max_batch", 10_000),
        max_bytes=limits.get("max_bytes", LIMIT),
        id_prefix="in",
    ).outgoing


def api_answer(model, body, i: int) -> bytes:
    """The API's answer to ``body`` sent with the i-th message's request id as X-Request-ID."""
    return answer_json(estimate(model, body), f"in:3:{40 + i}")


def test_each_message_gets_the_apis_answer_byte_for_byte_with_its_key_and_headers(real_model):
    bodies = [EXAMPLE_RECORD, [EXAMPLE_RECORD, OLD], OLD, [OLD], [EXAMPLE_RECORD] * 9, OLD]
    got = answers(real_model, bodies)
    assert [a.kind for a in got] == [OUTPUT] * len(bodies)
    assert [a.value for a in got] == [api_answer(real_model, b, i) for i, b in enumerate(bodies)]
    assert [(a.key, a.headers) for a in got] == [
        (f"k{i}".encode(), [("trace", b"t%d" % i)]) for i in range(len(bodies))
    ]


def test_each_estimate_is_named_by_its_messages_partition_and_offset_the_same_when_delivered_again(
    real_model,
):
    values = [EXAMPLE_RECORD, {"age": 1}, [OLD, EXAMPLE_RECORD], OLD]
    for _ in range(2):  # the same messages again (a redelivery): the same ids
        answered = answer_batch(
            real_model, incoming(values), max_batch=10, max_bytes=LIMIT, id_prefix="claims"
        )
        got = [orjson.loads(a.value) for a in answered.outgoing]
        assert got[0]["inference_id"] == "claims:3:40"
        assert "inference_id" not in got[1] and "inference_ids" not in got[1]  # a reject
        assert got[2]["inference_ids"] == ["claims:3:42-0", "claims:3:42-1"]
        assert got[3]["inference_id"] == "claims:3:43"
        # The capture's ids follow the estimates, record by record.
        assert answered.ids == ["claims:3:40", "claims:3:42-0", "claims:3:42-1", "claims:3:43"]
        assert answered.estimates is not None
        assert len(answered.estimates.amounts) == len(answered.ids)


@pytest.mark.parametrize("percent", [100.0, 30.0])
def test_the_capture_lines_are_the_estimates_published_under_their_ids(real_model, percent):
    values = [EXAMPLE_RECORD, [OLD, EXAMPLE_RECORD] * 20, OLD, b"{"] * 10
    answered = answer_batch(
        real_model, incoming(values), max_batch=100, max_bytes=LIMIT, id_prefix="in"
    )
    published = {}
    for answer in answered.outgoing:
        body = orjson.loads(answer.value)
        if "inference_id" in body:
            published[body["inference_id"]] = (body["prediction"], body["interval"])
        for i, name in enumerate(body.get("inference_ids", [])):
            published[name] = (body["predictions"][i], body["intervals"][i])
    moment = datetime(2026, 12, 7, 13, 52, 28, tzinfo=UTC)
    data, count = capture_lines(answered, percent, moment)
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
    assert got.kind == REJECT and (got.key, got.headers) == (b"k0", [("trace", b"t0")])
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


def test_an_input_topic_too_long_to_name_estimates_by_asks_for_an_id_prefix(capsys):
    # Kafka allows 249 characters; an inference id's prefix holds 128.
    argv = [a if a != "in" else "t" * 200 for a in REQUIRED]
    assert cli.main(argv) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("Error: --input-topic 'tttt") and line.endswith("give --id-prefix")
    args = cli.parser().parse_args([*argv, "--id-prefix", "claims.eu-1"])
    assert cli.options_from(args, {}).id_prefix == "claims.eu-1"
    assert cli.options_from(cli.parser().parse_args(REQUIRED), {}).id_prefix == "in"


def test_a_missing_argument_names_it(capsys):
    assert cli.main(REQUIRED[:-2]) == 2
    assert capsys.readouterr().err == (
        "Error: the following arguments are required: --group-id; see --help\n"
    )


def test_the_sasl_password_comes_from_the_environment_never_the_command_line():
    args = cli.parser().parse_args(REQUIRED + ["-X", "sasl.username=u"])
    options = cli.options_from(args, {cli.PASSWORD_VARIABLE: "s3cret"})
    assert options.client_config == {"sasl.username": "u", "sasl.password": "s3cret"}
    assert cli.options_from(args, {}).client_config == {"sasl.username": "u"}


@pytest.mark.parametrize(
    "sizes, limit, expected",
    [
        ([3, 3, 3], 6, [[3, 3], [3]]),
        ([10, 1], 6, [[10], [1]]),  # one message over the limit is a group of its own
        ([1, 10, 1], 6, [[1], [10], [1]]),
        ([0, 0], 6, [[0, 0]]),  # a tombstone weighs nothing
        ([], 6, []),
    ],
)
def test_a_consumed_batch_is_estimated_in_calls_of_bounded_size(sizes, limit, expected):
    messages = [
        Incoming(b"x" * n if n else None, None, None, "in", 0, i) for i, n in enumerate(sizes)
    ]
    assert [[len(m.value or b"") for m in group] for group in by_size(messages, limit)] == expected


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
