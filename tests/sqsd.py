"""What EB's sqsd daemon does with one message, for the worker tests (sqsd is not installable).

It receives from a real SQS queue (moto's server) and POSTs the body to the app as sqsd does
(AWS's EB developer guide, "Elastic Beanstalk worker environments"): the path, the content type, its
headers; it deletes the message on 200 only, so any other answer leaves it to come back after
its visibility timeout and, after the queue's maxReceiveCount, go to the dead-letter queue.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime


def deliver_one(sqs, queue_url: str, app_url: str, visibility: int = 1) -> int | None:
    """Receive one message and POST it to ``app_url``; its status, or None if none came."""
    got = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=1,
        WaitTimeSeconds=2,
        VisibilityTimeout=visibility,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"],
    )
    messages = got.get("Messages", [])
    if not messages:
        return None
    message = messages[0]
    attributes = message.get("Attributes", {})
    first = int(attributes.get("ApproximateFirstReceiveTimestamp", "0")) / 1000
    headers = {
        "User-Agent": "aws-sqsd/1.1",
        "Content-Type": "application/json",
        "X-Aws-Sqsd-Msgid": message["MessageId"],
        "X-Aws-Sqsd-Queue": queue_url.rsplit("/", 1)[1],
        "X-Aws-Sqsd-First-Received-At": datetime.fromtimestamp(first, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "X-Aws-Sqsd-Receive-Count": attributes.get("ApproximateReceiveCount", "1"),
    }
    request = urllib.request.Request(
        app_url, data=message["Body"].encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection until closed (sqsd reads no body)
            status = exc.code
    if status == 200:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return status
