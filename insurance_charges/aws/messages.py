"""Where an EB worker publishes its results: an SQS queue or an SNS topic, checked and sent to.

``WORKER_RESULTS`` names the destination: an SQS queue URL
(``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``) or an SNS topic ARN
(``arn:aws:sns:REGION:ACCOUNT:NAME``). Parsing is pure (settings check it before anything
starts); publishing imports boto3 on first use, through ``clients`` like every other client.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import clients
from .errors import explain, failures

# SNS refuses a message over 256 KiB (SNS quotas); an SQS queue refuses one over its
# MaximumMessageSize, 256 KiB unless raised (up to 1 MiB). One limit for both: a result that
# fits one fits the other, and a queue left at its default takes it.
MAX_MESSAGE_BYTES = 262_144
_ACCOUNT = r"\d{12}"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
# A queue name: 1-80 letters, digits, - and _, with .fifo at the end of a FIFO queue's.
_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,75}(?:\.fifo)?|[A-Za-z0-9_-]{1,80}")
# A topic name: 1-256 letters, digits, - and _, with .fifo at the end of a FIFO topic's.
_TOPIC_ARN = re.compile(
    rf"arn:aws(?:-cn|-us-gov)?:sns:({_REGION}):{_ACCOUNT}:"
    r"([A-Za-z0-9_-]{1,251}(?:\.fifo)?|[A-Za-z0-9_-]{1,256})"
)
_SQS_HOST = re.compile(
    rf"sqs\.({_REGION})\.amazonaws\.com(?:\.cn)?|({_REGION})\.queue\."
    r"amazonaws\.com(?:\.cn)?"
)
FORMS = (
    "an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) or an SNS topic ARN "
    "(arn:aws:sns:REGION:ACCOUNT:NAME)"
)


class PublishError(RuntimeError):
    """A result could not be published; the message stays on its queue to be retried."""


@dataclass(frozen=True)
class Destination:
    """An SQS queue or SNS topic that results are published to."""

    kind: str  # "sqs" or "sns"
    address: str  # the queue URL or the topic ARN
    region: str | None  # the AWS region it names; None for a queue on this machine

    @property
    def fifo(self) -> bool:
        """True for a FIFO queue or topic, which deduplicates by message id."""
        return self.address.endswith(".fifo")


def parse_destination(text: str) -> Destination:
    """The destination ``text`` names; ValueError saying what to set otherwise."""
    text = text.strip()
    if text.startswith("arn:"):
        match = _TOPIC_ARN.fullmatch(text)
        if not match:
            raise ValueError(f"not an SNS topic ARN; set {FORMS}")
        return Destination("sns", text, match.group(1))
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"neither an SNS topic ARN nor an SQS queue URL; set {FORMS}")
    segments = parts.path.strip("/").split("/")
    if (
        len(segments) != 2
        or not re.fullmatch(_ACCOUNT, segments[0])
        or not _QUEUE.fullmatch(segments[1])
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"not an SQS queue URL (its path is /ACCOUNT/NAME); set {FORMS}")
    host = _SQS_HOST.fullmatch(parts.hostname)
    if host and parts.scheme == "https":
        return Destination("sqs", text, host.group(1) or host.group(2))
    if _loopback(parts.hostname):  # an SQS-compatible server on this machine (e.g. moto)
        return Destination("sqs", text, None)
    raise ValueError(
        f"not an https:// SQS endpoint (results hold health data: they never "
        f"leave this machine unencrypted or for another service); set {FORMS}"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def publish(destination: Destination, body: bytes, message_id: str, client) -> None:
    """Publish ``body`` once; a FIFO destination drops a repeat of ``message_id`` itself.

    Raises PublishError naming the destination and the cause; never anything else.
    """
    text = body.decode("utf-8")
    fifo = (
        {"MessageDeduplicationId": message_id, "MessageGroupId": message_id}
        if destination.fifo
        else {}
    )
    try:
        if destination.kind == "sqs":
            client.send_message(QueueUrl=destination.address, MessageBody=text, **fifo)
        else:
            client.publish(TopicArn=destination.address, Message=text, **fifo)
    except failures() as exc:
        action = "sqs:SendMessage" if destination.kind == "sqs" else "sns:Publish"
        raise PublishError(
            explain(
                exc,
                f"publishing to {destination.address}",
                f"{action} on it",
                service=destination.kind.upper(),
            )
        ) from None


# Attempts in all: throttling and 5xx retried with backoff; a worker that still fails answers
# 503 and sqsd retries the whole message later, so fewer than the default suffice.
PUBLISH_ATTEMPTS = 3
# Seconds of silence before a send is given up: SQS and SNS answer in milliseconds, and the
# request sqsd holds open waits for this one.
PUBLISH_READ_TIMEOUT = 10


def messaging_client(destination: Destination):
    """A client for the destination's service, in its region (aws.clients' factory)."""
    return clients.client(
        destination.kind,
        region=destination.region,
        max_attempts=PUBLISH_ATTEMPTS,
        read_timeout=PUBLISH_READ_TIMEOUT,
    )
