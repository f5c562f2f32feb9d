"""The Kafka loop: consume a batch, publish an answer for each message, then commit.

At least once, nothing lost: offsets are committed (synchronously, per partition, explicitly)
only once every output and reject of the batch has been acknowledged by the broker
(``acks=all``, each delivery report checked). A process killed at any moment leaves its batch
uncommitted, so a restart reads it again: duplicates are possible, losses are not. A stop
request (SIGTERM, SIGINT) ends the loop after the batch in hand is published and committed.

The broker acknowledges a batch while the next one is read and estimated: a batch is settled
(its acknowledgements awaited, its offsets committed) just before the next one's answers are
published, when its partitions are about to be taken away, and when the loop ends.

With capture on (``CAPTURE_URI``), an acknowledged batch's offsets also wait until the capture
lines of its messages have been shipped (the writer ships a file a minute, or each 16 MiB, from
this loop: no thread). A stop ships everything, then commits. A process killed meanwhile has
committed nothing that was not in a file, so a restart answers and captures those messages
again, under the same ids; ``join`` keeps such a repeat once. A destination that fails does
not hold the commits back: its files wait in the writer's bounded backlog, retried each
interval, and what is given up is counted and logged (docs/events.md).

Time is bounded everywhere: reaching the brokers at start (``connect_timeout_s`` for the
metadata request), each delivery (librdkafka's ``message.timeout.ms``), waiting for messages
(``poll_timeout_s``) and the final flush; past a bound the run ends with ``BrokerError``, one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from ..capture.writer import CaptureWriter
from ..core.estimates import Estimator
from ..core.problems import problem_body
from ..errors import UserError
from .messages import answer_values, capture_lines, reject_value, request_id_of

log = logging.getLogger(__name__)

# Properties the loop sets itself, because its guarantees rest on them: a -X option may not
# change them (each with the reason, for the one line that refuses it).
OWNED = {
    "bootstrap.servers": "give --bootstrap-servers",
    "group.id": "give --group-id",
    "enable.auto.commit": "offsets are committed only after the outputs are acknowledged",
    "enable.auto.offset.store": "offsets are committed only after the outputs are acknowledged",
    "acks": "every output must be acknowledged by all in-sync replicas",
    "request.required.acks": "every output must be acknowledged by all in-sync replicas",
    "message.timeout.ms": "give --delivery-timeout",
    "delivery.timeout.ms": "give --delivery-timeout",
    "on_delivery": "the loop checks every delivery itself",
    "delivery.report.only.error": "the loop checks every delivery itself",
    "dr_cb": "the loop checks every delivery itself",
    "dr_msg_cb": "the loop checks every delivery itself",
    "logger": "the client logs through the command's own log",
}


# The values estimated in one call to the core at most: about 40,000 records of the API's JSON
# (about 0.2 s of the model here), so a batch of large messages costs memory for 4 MiB of
# records at a time, not for all that librdkafka has fetched (64 MiB by default).
CALL_BYTES = 4 * 1024 * 1024


def by_size(values: list[bytes | None], limit: int) -> list[range]:
    """Consecutive ranges of values that hold at most ``limit`` bytes (or one value, if it
    alone is larger)."""
    if sum(len(v) for v in values if v) <= limit:  # the usual batch: one call for all
        return [range(len(values))] if values else []
    groups: list[range] = []
    start = size = 0
    for i, value in enumerate(values):
        length = len(value or b"")
        if i > start and size + length > limit:
            groups.append(range(start, i))
            start, size = i, 0
        size += length
    groups.append(range(start, len(values)))
    return groups


class BrokerError(UserError):
    """The brokers cannot be reached, refused a setting, or did not acknowledge an output."""


@dataclass(frozen=True)
class Options:
    """Where to read and write, as whom, and the bounds of every wait."""

    bootstrap_servers: str
    input_topic: str
    output_topic: str
    rejects_topic: str
    group_id: str
    batch_size: int = 5000
    poll_timeout_s: float = 1.0
    connect_timeout_s: float = 10.0
    delivery_timeout_s: float = 10.0
    # librdkafka properties (TLS, SASL...): the -X options. A key prefixed "consumer." or
    # "producer." is for that client alone (librdkafka warns of a property its client ignores).
    client_config: dict = field(default_factory=dict)
    # Each message's request id is <id_prefix>:<partition>:<offset> (messages.request_id_of);
    # the command's default is the input topic.
    id_prefix: str = ""


@dataclass
class LoopCounts:
    """What a run did: messages answered, outputs and rejects published, batches committed."""

    messages: int = 0
    outputs: int = 0
    rejects: int = 0
    batches: int = 0


CLIENTS = ("consumer.", "producer.")


def client_properties(client_config: dict, client: str) -> dict:
    """The -X properties for ``client`` ("consumer." or "producer."): the shared ones, then its
    own with the prefix taken off."""
    shared = {k: v for k, v in client_config.items() if not k.startswith(CLIENTS)}
    own = {k[len(client) :]: v for k, v in client_config.items() if k.startswith(client)}
    return {**shared, **own}


def consumer_config(options: Options, client_log: logging.Logger) -> dict:
    """The consumer's librdkafka properties: the -X options, then those the loop owns."""
    config: dict[str, Any] = {"auto.offset.reset": "earliest"}  # a new group misses nothing
    config.update(client_properties(options.client_config, "consumer."))
    config.update(
        {
            "bootstrap.servers": options.bootstrap_servers,
            "group.id": options.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # A connection attempt gives up within the start-up bound (librdkafka's 30 s default).
            "socket.connection.setup.timeout.ms": int(options.connect_timeout_s * 1000),
            "logger": client_log,
        }
    )
    return config


def producer_config(
    options: Options, client_log: logging.Logger, on_delivery: Callable[[Any, Any], None]
) -> dict:
    """The producer's librdkafka properties: the -X options, then those the loop owns;
    ``on_delivery`` hears of every failed delivery."""
    config: dict[str, Any] = {"linger.ms": 5}  # a batch's outputs go in few requests
    config.update(client_properties(options.client_config, "producer."))
    config.update(
        {
            "bootstrap.servers": options.bootstrap_servers,
            "acks": "all",
            # A delivery fails within this (librdkafka retries until then; its default is 300 s,
            # past ECS's 30 s stop timeout).
            "message.timeout.ms": int(options.delivery_timeout_s * 1000),
            "delivery.report.only.error": True,  # see Deliveries
            "on_delivery": on_delivery,  # once here, not on each produce() call
            "socket.connection.setup.timeout.ms": int(options.connect_timeout_s * 1000),
            "logger": client_log,
        }
    )
    return config


class Deliveries:
    """The first failed delivery of the outputs in flight, if any.

    The producer reports failures only (``delivery.report.only.error``): a flush that leaves
    nothing queued and reported no failure means every output was acknowledged, and a report
    per output would cost a call into Python for each (5 us of the 20 us a message may take).
    """

    def __init__(self) -> None:
        self.failure: str | None = None

    def report(self, err: KafkaError | None, msg: Any) -> None:
        """librdkafka's delivery callback (failed deliveries only)."""
        if err is not None and self.failure is None:
            self.failure = f"{msg.topic()}: {err.str()}"


def _clients(
    options: Options, client_log: logging.Logger, on_delivery: Callable[[Any, Any], None]
) -> tuple[Consumer, Producer]:
    try:
        consumer = Consumer(consumer_config(options, client_log))
    except (KafkaException, ValueError, TypeError) as exc:
        raise BrokerError(f"the Kafka client refused its settings: {_said(exc)}") from None
    try:
        producer = Producer(producer_config(options, client_log, on_delivery))
    except (KafkaException, ValueError, TypeError) as exc:
        consumer.close()
        raise BrokerError(f"the Kafka client refused its settings: {_said(exc)}") from None
    return consumer, producer


def _said(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].str()
    return str(exc)


def check_topics(client: Any, options: Options) -> None:
    """Reach the brokers within ``connect_timeout_s`` and find the three topics; else one line."""
    try:
        metadata = client.list_topics(timeout=options.connect_timeout_s)
    except KafkaException as exc:
        raise BrokerError(
            f"no Kafka broker at {options.bootstrap_servers} answered within "
            f"{options.connect_timeout_s:g} s ({_said(exc)}); check --bootstrap-servers, the "
            "network path and the TLS/SASL -X options, or raise --connect-timeout"
        ) from None
    for flag, topic in (
        ("--input-topic", options.input_topic),
        ("--output-topic", options.output_topic),
        ("--rejects-topic", options.rejects_topic),
    ):
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise BrokerError(
                f"{flag} {topic!r}: no such topic at {options.bootstrap_servers}; "
                "create it, or name an existing topic"
            )


@dataclass(frozen=True)
class Settling:
    """A batch published, not yet committed: the offsets to commit, its messages and outputs,
    and (with capture on) its capture lines: (when, lines, how many) per call to the model."""

    offsets: list[TopicPartition]
    messages: int
    outputs: int
    captured: list[tuple[datetime, bytes, int]]


class Loop:
    """One consumer process: reads batches, publishes answers, commits, until told to stop."""

    def __init__(
        self,
        options: Options,
        client_log: logging.Logger,
        capture: CaptureWriter | None = None,
    ):
        self.options = options
        self.deliveries = Deliveries()
        # The client settings are refused here.
        self.consumer, self.producer = _clients(options, client_log, self.deliveries.report)
        self.counts = LoopCounts()
        self.in_flight: Settling | None = None
        # With capture on (a writer without its thread), offsets wait here, acknowledged but
        # not committed, until the capture lines of their messages have been shipped.
        self.capture = capture
        self.pending: dict[tuple[str, int], int] = {}

    def run(
        self,
        model: Estimator,
        stop_requested: Callable[[], bool],
        *,
        max_batch: int,
        max_bytes: int,
        connected: Callable[[], None] = lambda: None,
    ) -> LoopCounts:
        """Answer with ``model`` until ``stop_requested()``; the batch in hand is finished first.

        ``connected`` is called once the brokers have answered and the topics are found.
        """
        try:
            check_topics(self.consumer, self.options)
            connected()
            # Before its partitions go to another consumer, the batch in flight is committed.
            self.consumer.subscribe(
                [self.options.input_topic], on_revoke=lambda consumer, partitions: self.settle()
            )
            log.info(
                "consuming %s as group %s: outputs to %s, rejects to %s",
                self.options.input_topic,
                self.options.group_id,
                self.options.output_topic,
                self.options.rejects_topic,
            )
            while not stop_requested():
                batch = self.consumer.consume(self.options.batch_size, self.options.poll_timeout_s)
                messages = [m for m in batch if m.error() is None]
                if len(messages) < len(batch):  # an event (end of partition) or an error
                    for event in batch:
                        error = event.error()
                        if error is not None:
                            self._on_error(error)
                if messages:
                    self.handle(model, messages, max_batch, max_bytes)
            self.settle()
        finally:
            self.in_flight = None  # a batch not acknowledged is not committed, on leaving too
            try:
                self._ship_all()
            finally:
                self.consumer.close()  # leaves the group: its partitions move at once
        return self.counts

    def _ship_all(self) -> None:
        """At the end, stopped or failed: ship every capture held (within the writer's
        CLOSE_SECONDS; what fails is counted and logged), then commit the acknowledged
        batches still waiting for it."""
        if self.capture is not None:
            self.capture.close()
            self._commit_pending()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise BrokerError(f"consuming {self.options.input_topic}: {error.str()}")
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            check_topics(self.consumer, self.options)  # back within the bound, or one line
        log.warning("consuming %s: %s", self.options.input_topic, error.str())

    def handle(self, model: Estimator, messages: list, max_batch: int, max_bytes: int) -> None:
        """Publish an answer for each message; the batch is settled before the next one's
        answers are published (``settle``)."""
        values = [m.value() for m in messages]
        prefix = self.options.id_prefix
        request_ids = [request_id_of(prefix, m.partition(), m.offset()) for m in messages]
        outputs = 0
        captured: list[tuple[datetime, bytes, int]] = []
        for group in by_size(values, CALL_BYTES):
            answered = answer_values(
                model,
                values[group.start : group.stop],
                request_ids[group.start : group.stop],
                max_batch=max_batch,
                max_bytes=max_bytes,
            )
            self.settle()  # the batch before: acknowledged while this one was estimated
            # Published as each group is answered: sent while the next group is read.
            outputs += self._publish(messages[group.start : group.stop], answered.answers)
            if self.capture is not None:
                moment = datetime.now(UTC)
                captured.append((moment, *capture_lines(answered, self.capture.percent, moment)))
        # Offsets grow within a partition: each partition's last message is its highest (all
        # are of the one topic subscribed).
        last = {m.partition(): m for m in messages}
        self.in_flight = Settling(
            [TopicPartition(m.topic(), p, m.offset() + 1) for p, m in last.items()],
            len(messages),
            outputs,
            captured,
        )

    def settle(self) -> None:
        """Wait until the broker has acknowledged every output and reject of the batch
        published last, then commit its offsets (with capture on: once the capture lines of
        its messages have been shipped); nothing when it has been settled."""
        settling, self.in_flight = self.in_flight, None
        if settling is None:
            return
        self._flush()
        if self.capture is not None:  # held once acknowledged: an output that failed is not
            for moment, data, records in settling.captured:
                self.capture.hold(moment, data, records)
        for tp in settling.offsets:
            self.pending[(tp.topic, tp.partition)] = tp.offset
        # Without capture, every batch is committed; with it, once a file was due and shipped
        # (every SHIP_SECONDS, or 16 MiB held): what failed to ship waits in the writer's
        # backlog, retried each interval and counted, so the consumer's lag stays bounded.
        if self.capture is None or self.capture.ship_if_due():
            self._commit_pending()
        counts = self.counts
        counts.messages += settling.messages
        counts.batches += 1
        counts.outputs += settling.outputs
        counts.rejects += settling.messages - settling.outputs

    def _publish(self, messages: list, answers: list) -> int:
        """Produce each message's answer with its key and headers; return the outputs."""
        produce, topic = self.producer.produce, self.options.output_topic
        outputs = 0
        for message, answer in zip(messages, answers, strict=True):
            if type(answer) is bytes:
                try:  # the usual case, at one call each
                    produce(topic, answer, message.key(), headers=message.headers())
                    outputs += 1
                    continue
                except (BufferError, KafkaException):
                    pass  # tried again, or refused, below
            outputs += self._publish_one(message, answer)
        return outputs

    def _publish_one(self, message: Any, answer: bytes | dict) -> bool:
        """Produce one answer, waiting while the producer's queue is full; an output over the
        size limit becomes a reject. True when published as an output."""
        key, headers = message.key(), message.headers()
        if isinstance(answer, dict):
            document = answer
        else:
            topic = self.options.output_topic
            try:
                self._produce(topic, answer, key, headers)
                return True
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise BrokerError(f"publishing to {topic}: {_said(exc)}") from None
            # The answer is over the producer's message.max.bytes: the message is refused.
            document = problem_body(
                413,
                f"the answer ({len(answer):,} bytes) is over the output topic's "
                "message size limit; send fewer records per message",
            )
        value = reject_value(document, message.topic(), message.partition(), message.offset())
        try:
            self._produce(self.options.rejects_topic, value, key, headers)
        except KafkaException as exc:
            raise BrokerError(f"publishing to {self.options.rejects_topic}: {_said(exc)}") from None
        return False

    def _produce(self, topic: str, value: bytes, key: bytes | None, headers: list | None) -> None:
        deadline = None
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:  # the local queue is full: serve delivery reports, try again
                deadline = deadline or time.monotonic() + self.options.delivery_timeout_s
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"publishing to {topic}: the producer's queue stayed full "
                        f"for {self.options.delivery_timeout_s:g} s"
                    ) from None
                self.producer.poll(0.1)

    def _flush(self) -> None:
        # librdkafka fails each message within message.timeout.ms; the extra second lets
        # those reports arrive before the flush gives up.
        left = self.producer.flush(self.options.delivery_timeout_s + 1)
        failure = self.deliveries.failure
        if left or failure:
            raise BrokerError(
                f"{failure or f'{left} outputs unacknowledged'}: nothing of this batch was "
                "committed, so a restart estimates it again"
            )

    def _commit_pending(self) -> None:
        if self.pending:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self.pending.items()]
            self.pending = {}
            self._commit(offsets)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        try:
            done = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # After a rebalance the partitions belong to another consumer, which reads from
            # the last commit: the batch is answered twice, never lost.
            log.warning(
                "committing offsets failed (%s); their messages will be answered again", _said(exc)
            )
            return
        failed = [
            f"{tp.topic}[{tp.partition}]: {tp.error.str()}"
            for tp in done or ()
            if tp.error is not None
        ]
        if failed:
            log.warning(
                "committing offsets failed for %s; their messages will be answered again",
                ", ".join(failed),
            )
