"""The Kafka consumer's tests: its command, fresh topics, and two clients reading them back.

The broker is Tansu (devtools/tansu.py). Topics are filled and read with ``confluent-kafka``;
``kcat`` (Debian's kafkacat, librdkafka 2.0.2) reads them back as a second, independent client.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from devtools.tansu import FAST_GROUP, Broker, free_port, produce

from .conftest import require

__all__ = [
    "FAST_GROUP",
    "Broker",
    "Reader",
    "committed",
    "consumer_command",
    "free_port",
    "kcat_read",
    "names",
    "produce",
    "start_consumer",
    "wait_for",
]

ROOT = Path(__file__).resolve().parent.parent
# Debian's kcat has librdkafka 2.0.2, which misreads Tansu 0.6's ApiVersions v3 answer: it is
# told not to ask, and to speak the 0.9 protocol versions (it reads; it never produces here).
KCAT_PROTOCOL = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]


def names(prefix: str = "t") -> dict[str, str]:
    """Fresh topic and group names for one test."""
    tag = uuid.uuid4().hex[:8]
    return {k: f"{prefix}-{k}-{tag}" for k in ("input", "output", "rejects", "group")}


class Reader:
    """Every message of a topic from its beginning, read as it arrives (confluent-kafka).

    Not by watermarks: Tansu 0.6 answers a ListOffsets for the latest offset with one past the
    last record batch's first offset, so a batch of 1,000 records reads as a high watermark of 1.
    """

    def __init__(self, address: str, topic: str):
        self.consumer = Consumer(
            {
                "bootstrap.servers": address,
                "enable.auto.commit": False,
                "group.id": "reader-" + uuid.uuid4().hex,
            }
        )
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self.messages: list = []

    def read(self, timeout_s: float = 0.5) -> list:
        """The messages read so far, after waiting up to ``timeout_s`` for more."""
        for message in self.consumer.consume(100_000, timeout_s):
            if message.error() is None:
                self.messages.append(message)
        return self.messages

    def until(self, expected: int, timeout_s: float, what: str = "messages") -> list:
        """Read until at least ``expected`` messages are in; fail after ``timeout_s``."""
        return wait_for(
            lambda: len(self.read()) >= expected and self.messages,
            timeout_s,
            f"{expected} {what}",
            every_s=0,
        )

    def close(self) -> None:
        """Leave the topic."""
        self.consumer.close()


def committed(address: str, group: str, topic: str, partitions: int = 1) -> list[int]:
    """The offsets ``group`` has committed on each partition of ``topic`` (-1001: none)."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": group})
    try:
        return [
            tp.offset
            for tp in consumer.committed(
                [TopicPartition(topic, p) for p in range(partitions)], timeout=10
            )
        ]
    finally:
        consumer.close()


def kcat_read(address: str, topic: str, partition: int = 0) -> list[dict]:
    """The messages of one partition as kcat reads them (-J: key, payload, headers, offset)."""
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    require(kcat is not None, "kcat is missing: apt-get install kafkacat (.ci/run does)")
    assert kcat is not None  # require() has stopped the test otherwise
    done = subprocess.run(
        [
            kcat,
            *KCAT_PROTOCOL,
            "-b",
            address,
            "-C",
            "-t",
            topic,
            "-p",
            str(partition),
            "-o",
            "0",
            "-e",
            "-q",
            "-J",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def consumer_command(address: str, topics: dict[str, str], *extra: str) -> list[str]:
    """The command line of the consumer under test."""
    return [
        sys.executable,
        "-m",
        "insurance_charges.events",
        "kafka",
        "--bootstrap-servers",
        address,
        "--input-topic",
        topics["input"],
        "--output-topic",
        topics["output"],
        "--rejects-topic",
        topics["rejects"],
        "--group-id",
        topics["group"],
        *FAST_GROUP,
        *extra,
    ]


def start_consumer(
    address: str, topics: dict[str, str], *extra: str, stderr_path: Path | None = None
) -> subprocess.Popen:
    """The consumer as a process in its own session, its log in ``stderr_path``."""
    sink = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            consumer_command(address, topics, *extra),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    finally:
        if stderr_path:
            sink.close()


def wait_for(condition, timeout_s: float, what: str, every_s: float = 0.2):
    """Poll ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)
