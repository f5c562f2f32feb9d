"""The Kafka consumer against a real Kafka-protocol broker (Tansu) on 127.0.0.1.

Each test has its own topics and group; ``kcat`` reads what the consumer published as a second
client, independent of the one the consumer uses. Tansu is not Apache Kafka (docs/events.md).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import orjson
import pytest

from insurance_charges.core.estimates import estimate
from insurance_charges.core.json_bytes import answer_json
from insurance_charges.core.schema import EXAMPLE_RECORD
from tests.kafka_support import (
    ROOT,
    Broker,
    Reader,
    committed,
    consumer_command,
    free_port,
    kcat_read,
    names,
    produce,
    start_consumer,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test starts the consumer as a process
OLD = {**EXAMPLE_RECORD, "age": 99}  # valid, outside the training range: a warning
# ECS sends SIGKILL this long after SIGTERM unless the task definition's stopTimeout says more.
ECS_STOP_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory):
    """A Tansu broker with memory storage on a free loopback port."""
    broker = Broker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield broker
    broker.stop()


@pytest.fixture
def topics(kafka_broker):
    """Fresh input, output and rejects topics (one partition each) and a fresh group."""
    made = names()
    kafka_broker.topics(made["input"], made["output"], made["rejects"])
    return made


@pytest.fixture
def consumer(kafka_broker, topics, tmp_path):
    """Start the consumer on ``topics``; every one started is stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(*extra: str) -> subprocess.Popen:
        process = start_consumer(
            kafka_broker.address,
            topics,
            *extra,
            stderr_path=tmp_path / f"consumer-{len(started)}.log",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def stop(process: subprocess.Popen) -> tuple[int, float]:
    """SIGTERM, then the exit status and how long the exit took."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return process.wait(ECS_STOP_TIMEOUT_S), time.monotonic() - began


def test_records_and_batches_get_the_apis_answers_with_their_keys_and_headers(
    kafka_broker, topics, consumer, real_model
):
    bodies = [EXAMPLE_RECORD, [EXAMPLE_RECORD, OLD], OLD]
    produce(
        kafka_broker.address,
        topics["input"],
        [
            (f"key-{i}".encode(), orjson.dumps(body), [("trace", f"t{i}".encode())])
            for i, body in enumerate(bodies)
        ],
    )
    consumer()
    Reader(kafka_broker.address, topics["output"]).until(3, 60, "outputs")

    read = kcat_read(kafka_broker.address, topics["output"])
    assert [m["key"] for m in read] == ["key-0", "key-1", "key-2"]
    assert [m["headers"] for m in read] == [["trace", "t0"], ["trace", "t1"], ["trace", "t2"]]
    # The API's answer with X-Request-ID set to the message's place: ids the same if redelivered.
    assert [m["payload"].encode() for m in read] == [
        answer_json(estimate(real_model, body), f"{topics['input']}:0:{i}")
        for i, body in enumerate(bodies)
    ]
    assert kcat_read(kafka_broker.address, topics["rejects"]) == []


def test_bad_messages_go_to_rejects_with_where_they_were_and_the_partition_moves_on(
    kafka_broker, topics, consumer
):
    values = [
        orjson.dumps(EXAMPLE_RECORD),
        b"{not json",
        orjson.dumps({**EXAMPLE_RECORD, "age": 7}),
        None,
        orjson.dumps(EXAMPLE_RECORD),
    ]
    produce(
        kafka_broker.address,
        topics["input"],
        [(f"k{i}".encode(), value, None) for i, value in enumerate(values)],
    )
    consumer()
    outputs = Reader(kafka_broker.address, topics["output"]).until(2, 60, "outputs")
    rejects = Reader(kafka_broker.address, topics["rejects"]).until(3, 10, "rejects")

    assert [m.key() for m in outputs] == [b"k0", b"k4"]  # after the bad ones: not stalled
    read = [orjson.loads(m.value()) for m in rejects]
    assert [
        (m.key(), r["topic"], r["partition"], r["offset"], r["problem"]["status"])
        for m, r in zip(rejects, read, strict=True)
    ] == [
        (b"k1", topics["input"], 0, 1, 400),
        (b"k2", topics["input"], 0, 2, 422),
        (b"k3", topics["input"], 0, 3, 400),
    ]
    assert read[1]["problem"]["errors"] == [
        {"pointer": "/age", "message": "age must be a whole number from 18 to 100; got 7"}
    ]
    assert read[0]["problem"]["type"] == "/docs#problem-malformed-json"


def test_an_answer_over_the_producers_size_limit_is_rejected_and_the_rest_answered(
    kafka_broker, topics, consumer
):
    values = [orjson.dumps([EXAMPLE_RECORD] * 20), orjson.dumps(EXAMPLE_RECORD)]
    produce(
        kafka_broker.address,
        topics["input"],
        [(f"k{i}".encode(), value, None) for i, value in enumerate(values)],
    )
    consumer("-X", "producer.message.max.bytes=1000")  # librdkafka's least: 20 answers are more
    [output] = Reader(kafka_broker.address, topics["output"]).until(1, 60, "outputs")
    [rejected] = Reader(kafka_broker.address, topics["rejects"]).until(1, 10, "rejects")

    assert output.key() == b"k1"
    assert rejected.key() == b"k0"
    read = orjson.loads(rejected.value())
    assert (read["offset"], read["problem"]["status"]) == (0, 413)
    assert read["problem"]["detail"].endswith(
        "is over the output topic's message size limit; send fewer records per message"
    )


def test_a_consumer_killed_mid_stream_and_restarted_leaves_every_input_answered(
    kafka_broker, topics, consumer
):
    total = 50_000  # more than a loaded machine answers before the kill arrives
    produce(
        kafka_broker.address,
        topics["input"],
        [
            (b"%d" % i, orjson.dumps(EXAMPLE_RECORD if i % 10 else {"age": i}), None)
            for i in range(total)
        ],
    )
    outputs = Reader(kafka_broker.address, topics["output"])
    rejects = Reader(kafka_broker.address, topics["rejects"])
    first = consumer("--batch-size", "500")
    outputs.until(1, 60, "a first output")
    first.kill()  # SIGKILL: no chance to finish, publish or commit anything more
    first.wait(10)
    answered_before = len(outputs.read()) + len(rejects.read())
    assert answered_before < total, "the consumer finished before it was killed: kill earlier"

    second = consumer("--batch-size", "500")
    wait_for(
        lambda: len({m.key() for m in outputs.read() + rejects.read()}) == total,
        120,
        "every input answered",
    )
    assert stop(second)[0] == 0
    values = {}
    for message in outputs.read() + rejects.read():
        values.setdefault(message.key(), set()).add(message.value())
    assert all(len(v) == 1 for v in values.values()), "a duplicate must repeat the same answer"
    assert len(rejects.read()) >= total // 10


def test_sigterm_finishes_commits_and_exits_0_within_ecs_stop_timeout(
    kafka_broker, topics, consumer
):
    produce(
        kafka_broker.address,
        topics["input"],
        [(b"%d" % i, orjson.dumps(EXAMPLE_RECORD), None) for i in range(3000)],
    )
    process = consumer()
    Reader(kafka_broker.address, topics["output"]).until(3000, 60, "outputs")

    status, took = stop(process)
    assert status == 0 and took < ECS_STOP_TIMEOUT_S
    assert committed(kafka_broker.address, topics["group"], topics["input"]) == [3000]


def test_sigterm_mid_stream_commits_exactly_what_was_published(kafka_broker, topics, consumer):
    total = 100_000  # far more than a loaded machine answers before the stop arrives
    produce(
        kafka_broker.address,
        topics["input"],
        [(b"%d" % i, orjson.dumps(EXAMPLE_RECORD), None) for i in range(total)],
    )
    outputs = Reader(kafka_broker.address, topics["output"])
    process = consumer("--batch-size", "200")
    outputs.until(1, 60, "a first output")
    status, took = stop(process)
    [offset] = committed(kafka_broker.address, topics["group"], topics["input"])

    assert status == 0 and took < ECS_STOP_TIMEOUT_S
    assert 0 < offset < total, "the stop should come mid-stream"
    assert len(outputs.until(offset, 30, "the committed messages' outputs")) == offset
    assert len(outputs.read(2)) == offset  # and nothing published past the commit


def published_estimates(messages) -> dict[str, tuple]:
    """Each published estimate by its inference id: (estimate, low, high)."""
    found = {}
    for message in messages:
        body = orjson.loads(message.value())
        if "inference_id" in body:
            interval = body["interval"]
            found[body["inference_id"]] = (body["prediction"], interval["lower"], interval["upper"])
        for i, name in enumerate(body.get("inference_ids", [])):
            interval = body["intervals"][i]
            found[name] = (body["predictions"][i], interval["lower"], interval["upper"])
    return found


def captured_lines(folder) -> list[dict]:
    """Every capture line shipped under ``folder`` (partitioned by hour)."""
    return [
        orjson.loads(line)
        for path in sorted(folder.rglob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def mixed_inputs(total: int) -> list[tuple]:
    """Keyed by position: of every ten, an invalid value (a reject), four records and five
    batches of three records; so ``total // 10`` rejects and ``total // 10 * 19`` estimates."""
    bodies = [{"age": 7}, *[EXAMPLE_RECORD, OLD] * 2, *[[EXAMPLE_RECORD, OLD, EXAMPLE_RECORD]] * 5]
    return [(b"%d" % i, orjson.dumps(bodies[i % 10]), None) for i in range(total)]


def test_with_capture_on_offsets_are_committed_only_past_captured_estimates_and_sigterm_ships_all(
    kafka_broker, topics, consumer, monkeypatch, tmp_path
):
    total = 3000
    produce(kafka_broker.address, topics["input"], mixed_inputs(total))
    folder = tmp_path / "captures"
    monkeypatch.setenv("CAPTURE_URI", str(folder))  # the consumer inherits it
    outputs = Reader(kafka_broker.address, topics["output"])
    process = consumer("--batch-size", "100", "--id-prefix", "admissions")
    outputs.until(1, 60, "a first output")
    Reader(kafka_broker.address, topics["rejects"]).until(total // 10, 60, "rejects")
    outputs.until(total - total // 10, 60, "outputs")
    status, took = stop(process)
    assert status == 0 and took < ECS_STOP_TIMEOUT_S
    assert committed(kafka_broker.address, topics["group"], topics["input"]) == [total]

    published = published_estimates(outputs.read())
    captured = captured_lines(folder)
    assert len(captured) == len(published) == total // 10 * 19
    assert {c["inference_id"]: (c["estimate"], c["low"], c["high"]) for c in captured} == published
    assert {c["path"] for c in captured} == {"/kafka"}
    assert "admissions:0:1" in published and "admissions:0:5-2" in published


def test_a_capturing_consumer_killed_and_restarted_leaves_every_estimate_captured_and_joinable(
    kafka_broker, topics, consumer, monkeypatch, tmp_path
):
    total = 50_000  # more than a loaded machine answers before the kill arrives
    produce(kafka_broker.address, topics["input"], mixed_inputs(total))
    folder = tmp_path / "captures"
    monkeypatch.setenv("CAPTURE_URI", str(folder))
    outputs = Reader(kafka_broker.address, topics["output"])
    rejects = Reader(kafka_broker.address, topics["rejects"])
    # Captures shipped, and offsets committed after them, every second: a kill then comes
    # after some commits, with estimates held that no file has yet.
    first = consumer("--batch-size", "500", "--capture-seconds", "1")
    wait_for(
        lambda: committed(kafka_broker.address, topics["group"], topics["input"])[0] > 0,
        60,
        "a first commit",
    )
    first.kill()  # SIGKILL: what it held is lost; the offsets past its last file were not committed
    first.wait(10)
    [offset] = committed(kafka_broker.address, topics["group"], topics["input"])
    assert 0 < offset < total, "the consumer finished before it was killed: kill earlier"
    second = consumer("--batch-size", "500", "--capture-seconds", "1")
    wait_for(
        lambda: len({m.key() for m in outputs.read() + rejects.read()}) == total,
        120,
        "every input answered",
    )
    assert stop(second)[0] == 0

    published = published_estimates(outputs.read())
    captured = captured_lines(folder)
    assert {c["inference_id"] for c in captured} == set(published)  # none lost
    # A message answered twice was captured twice: the same estimate, which join keeps once.
    bills = tmp_path / "bills.csv"
    bills.write_text(
        "inference_id,charges\n"
        + "".join(f"{name},{e:.2f}\n" for name, (e, _, _) in published.items())
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "insurance_charges.outcomes",
            "join",
            "--captures",
            str(folder),
            "--actuals",
            str(bills),
            "-o",
            str(tmp_path / "joined.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    repeats = len(captured) - len(published)
    assert done.stdout.startswith(
        f"joined {len(published):,} of {len(published):,} captures with {len(published):,} bills; "
        f"rejected 0 capture lines and 0 bills"
    )
    assert f"{repeats:,} repeated captures kept once" in done.stdout


def test_an_unreachable_broker_is_one_line_within_the_connect_timeout():
    nobody = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    done = subprocess.run(
        consumer_command(nobody, names(), "--connect-timeout", "2"),
        check=False,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    took = time.monotonic() - began

    lines = done.stderr.decode().splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert done.returncode == 2 and len(errors) == 1, lines
    assert errors[0].startswith(f"Error: no Kafka broker at {nobody} answered within 2 s")
    assert not [line for line in lines if "rdkafka" in line or "Traceback" in line], lines
    assert took < 30  # model loading (a few seconds) plus the 2 s bound


def test_a_missing_topic_is_one_line(kafka_broker, topics):
    missing = {**topics, "output": topics["output"] + "-missing"}
    done = subprocess.run(
        consumer_command(kafka_broker.address, missing),
        check=False,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.decode().splitlines()[-1] == (
        f"Error: --output-topic {missing['output']!r}: no such topic at "
        f"{kafka_broker.address}; create it, or name an existing topic"
    )


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["-X", "no.such.property=1"], "Error: the Kafka client refused its settings: "),
        (["-X", "security.protocol=SASL_SSLX"], "Error: the Kafka client refused its settings: "),
    ],
)
def test_a_setting_the_client_refuses_is_one_line_before_the_model_loads(
    kafka_broker, topics, extra, expected
):
    done = subprocess.run(
        consumer_command(kafka_broker.address, topics, *extra),
        check=False,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
    )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), lines
