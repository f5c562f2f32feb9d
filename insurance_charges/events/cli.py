"""``python -m insurance_charges.events kafka ...``: estimate every message of a Kafka topic.

Exit status: 0 when stopped by SIGTERM or SIGINT (the batch in hand published and committed
first), 1 when the run failed after it started (an output the broker did not acknowledge, the
brokers lost for longer than the bounds allow), 2 when it could not start (an unusable
argument, setting or model, brokers that do not answer, a missing topic). Every failure is one
``Error:`` line on stderr; the log (JSON lines unless stderr is a terminal) says the rest.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .. import cli_runner
from ..capture.destinations import DestinationError
from ..capture.writer import SHIP_SECONDS, CaptureTally, CaptureWriter
from ..command_logs import handler_for
from ..errors import USAGE, UsageError
from .kafka import OWNED, BrokerError, Loop, Options

KAFKA = "kafka"
# The environment variable that holds the SASL password, so that it appears in no process
# list or task definition (ECS injects it from Secrets Manager).
PASSWORD_VARIABLE = "KAFKA_SASL_PASSWORD"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("insurance_charges.events")


def _bounded(low: float, high: float, kind=float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not from {low:g} to {high:g}")
        return value

    return parse


# A message's request id is <prefix>:<partition>:<offset> (messages.request_id_of): the prefix
# takes a request id's characters and length (web/logs.py), so with a partition (10 digits),
# an offset (19) and a batch position (5) every inference id fits the capture format's 200.
ID_PREFIX = re.compile(r"[A-Za-z0-9._@/+=-]{1,128}")


def _id_prefix(text: str) -> str:
    if not ID_PREFIX.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:140]!r} is not an id prefix: give 1 to 128 letters, digits or ._@/+=-"
        )
    return text


def _property(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not KEY=VALUE")
    bare = key.removeprefix("consumer.").removeprefix("producer.")
    if bare in OWNED:
        raise argparse.ArgumentTypeError(f"{bare} is set by the command ({OWNED[bare]})")
    return key, value


def parser() -> cli_runner.Parser:
    """The command's arguments."""
    p = cli_runner.Parser(
        prog="python -m insurance_charges.events",
        description="Estimate yearly insurance charges for every message of a Kafka topic, "
        "through the same validation and model as the JSON API.",
    )
    commands = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=cli_runner.Parser
    )
    k = commands.add_parser(
        KAFKA,
        help="consume a topic, publish the answers and the rejects",
        description="Each input message's value is what POST /api/v1/predict takes (a record or "
        "a batch); its output carries the API's answer, with the input's key and "
        "headers. Values that can never be estimated go to the rejects topic with "
        "their problem document. Offsets are committed once the broker has "
        "acknowledged every output before them (at least once).",
        epilog="The model comes from MODEL_URI or MODEL_PATH and MODEL_PUBLIC_KEY, as for the "
        f"service; a SASL password from {PASSWORD_VARIABLE}. Exit status: 0 stopped by "
        "SIGTERM or SIGINT, 1 failed while running, 2 could not start.",
    )
    k.add_argument("--bootstrap-servers", required=True, metavar="HOST:PORT[,...]")
    k.add_argument("--input-topic", required=True, metavar="TOPIC")
    k.add_argument("--output-topic", required=True, metavar="TOPIC")
    k.add_argument("--rejects-topic", required=True, metavar="TOPIC")
    k.add_argument(
        "--group-id",
        required=True,
        metavar="GROUP",
        help="the consumer group: processes sharing it share the partitions",
    )
    k.add_argument(
        "--batch-size",
        type=_bounded(1, 100_000, int),
        default=5000,
        metavar="N",
        help="messages per consume() and per call to the model (default 5000)",
    )
    k.add_argument(
        "--poll-timeout",
        type=_bounded(0.01, 10),
        default=1.0,
        metavar="SECONDS",
        help="longest wait for messages; a stop waits at most this (default 1)",
    )
    k.add_argument(
        "--connect-timeout",
        type=_bounded(0.1, 300),
        default=10.0,
        metavar="SECONDS",
        help="give up on brokers that do not answer after this (default 10)",
    )
    k.add_argument(
        "--delivery-timeout",
        type=_bounded(1, 300),
        default=10.0,
        metavar="SECONDS",
        help="give up on an output the broker has not acknowledged after this "
        "(librdkafka's message.timeout.ms; default 10)",
    )
    k.add_argument(
        "--id-prefix",
        type=_id_prefix,
        metavar="PREFIX",
        help="each message's estimates are named PREFIX:PARTITION:OFFSET (a batch's "
        "PREFIX:PARTITION:OFFSET-0, -1, ...), the same when a message is delivered again "
        "(default: the input topic)",
    )
    k.add_argument(
        "--capture-seconds",
        type=_bounded(1, 600),
        default=SHIP_SECONDS,
        metavar="SECONDS",
        help="with CAPTURE_URI set: how often captures are shipped, and offsets committed "
        f"after them (default {SHIP_SECONDS:g}); a restart answers at most this much again",
    )
    k.add_argument(
        "-X",
        dest="client_config",
        type=_property,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka property for both clients, e.g. security.protocol=SSL, "
        "ssl.ca.location=PATH, sasl.mechanism=SCRAM-SHA-512, sasl.username=U; "
        "prefixed consumer. or producer., for that client alone (repeat for "
        "more)",
    )
    return p


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """SIGTERM and SIGINT noted (in the list yielded) instead of raised, for this block."""
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in STOP_SIGNALS
    }
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def options_from(args: argparse.Namespace, environ) -> Options:
    """The loop's options from checked arguments and the environment."""
    client_config = dict(args.client_config)
    if environ.get(PASSWORD_VARIABLE):
        client_config["sasl.password"] = environ[PASSWORD_VARIABLE]
    id_prefix = args.id_prefix or args.input_topic
    if not ID_PREFIX.fullmatch(id_prefix):  # a Kafka topic's name may be 249 characters
        raise UsageError(
            f"--input-topic {args.input_topic[:60]!r}... is too long to name its estimates "
            "by (inference ids start with it, in at most 128 characters); give --id-prefix"
        )
    return Options(
        args.bootstrap_servers,
        args.input_topic,
        args.output_topic,
        args.rejects_topic,
        args.group_id,
        batch_size=args.batch_size,
        poll_timeout_s=args.poll_timeout,
        connect_timeout_s=args.connect_timeout,
        delivery_timeout_s=args.delivery_timeout,
        client_config=client_config,
        id_prefix=id_prefix,
    )


def _load(settings):
    from ..serving.model import load_model

    if settings.model_uri:
        from ..registry.loading import load_from_store

        return load_from_store(settings.model_uri, settings.trusted_keys)
    return load_model(settings.model_path, settings.trusted_keys)


class ClientLog(logging.Filter):
    """librdkafka's own log lines, kept out of the way until the brokers have answered: a
    broker that is not there is said once, in the ``Error:`` line, not once per retry."""

    def __init__(self) -> None:
        super().__init__()
        self.connected = False

    def filter(self, record: logging.LogRecord) -> bool:
        return self.connected


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status."""
    from ..registry.store import RegistryError
    from ..serving.model import ModelLoadError
    from ..settings import SettingsError

    handler = handler_for(sys.stderr)
    root = logging.getLogger("insurance_charges")
    root.addHandler(handler)
    try:
        with stop_requests() as received:
            # What keeps it from starting is 2, as for a bad argument (the module's docstring).
            return cli_runner.run(
                lambda: run(parser().parse_args(argv), received),
                statuses={SettingsError: USAGE, ModelLoadError: USAGE, RegistryError: USAGE},
            )
    finally:
        root.removeHandler(handler)


def run(args: argparse.Namespace, received: list[int]) -> int:
    """Load the model, then consume until a stop signal; return the exit status."""
    from ..settings import MAX_CONTENT_LENGTH, from_environ

    settings = from_environ()
    logging.getLogger("insurance_charges").setLevel(settings.log_level.upper())
    options = options_from(args, os.environ)
    quiet = ClientLog()
    client_log = logging.getLogger("insurance_charges.events.librdkafka")
    client_log.addFilter(quiet)
    capture, tally = _capture_writer(settings, args.capture_seconds)
    try:
        loop = Loop(options, client_log, capture)  # client settings are checked before the model
        model = _load(settings)
        # The model and the libraries live until the process ends: keep the cycle collector
        # off their millions of objects, which it would otherwise walk every few thousand
        # messages' allocations (a sixth of the consumer's time, py-spy).
        gc.freeze()

        def connected() -> None:
            quiet.connected = True

        counts = loop.run(
            model,
            lambda: bool(received),
            max_batch=settings.max_batch,
            max_bytes=MAX_CONTENT_LENGTH,
            connected=connected,
        )
    except BrokerError as exc:  # before the brokers answered, it could not start: 2
        raise BrokerError(str(exc), 1 if quiet.connected else USAGE) from None
    finally:
        client_log.removeFilter(quiet)
    captured = (
        {}
        if capture is None
        else {
            "captures_shipped": tally.shipped,
            "captures_dropped": tally.dropped,
            "capture_failures": tally.failed,
        }
    )
    log.info(
        "stopped by %s after %d messages: %d outputs, %d rejects, %d batches committed%s",
        signal.Signals(received[0]).name,
        counts.messages,
        counts.outputs,
        counts.rejects,
        counts.batches,
        ""
        if capture is None
        else f"; {tally.shipped} estimates captured, {tally.dropped} captures dropped",
        extra={"fields": {"event": "stopped", **vars(counts), **captured}},
    )
    return 0


def _capture_writer(settings, seconds: float) -> tuple[CaptureWriter | None, CaptureTally]:
    """With CAPTURE_URI set (and CAPTURE_PERCENT above 0), the consumer's capture writer: no
    thread, the loop ships (kafka.Loop), and its counts for the closing line."""
    tally = CaptureTally()
    if settings.capture is None or settings.capture_percent <= 0:
        return None, tally
    try:
        settings.capture.prepare()
    except DestinationError as exc:
        raise UsageError(f"CAPTURE_URI={str(settings.capture)!r}: {exc}") from None
    return (
        CaptureWriter(settings.capture, settings.capture_percent, tally, seconds, background=False),
        tally,
    )
