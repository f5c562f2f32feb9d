"""The EB worker environment: each SQS message sqsd posts is estimated and its result published.

The unit half checks the destination setting and the routes' refusals; the slow half runs the
service under gunicorn with real SQS queues and an SNS topic on moto's server, delivering
messages exactly as sqsd does (tests/sqsd.py).
"""

from __future__ import annotations

import json
import time

import pytest

from insurance_charges.aws.messages import MAX_MESSAGE_BYTES, parse_destination
from insurance_charges.settings import SettingsError, from_environ
from insurance_charges.web import create_app
from insurance_charges.web.worker import RETRY_AFTER_S

from .aws import clients_on, moto_server
from .sqsd import deliver_one

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    "text, kind, region, fifo",
    [
        (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/results", "sqs", "us-east-1", False),
        (f"https://sqs.eu-west-2.amazonaws.com/{ACCOUNT}/results.fifo", "sqs", "eu-west-2", True),
        (f"https://eu-west-1.queue.amazonaws.com/{ACCOUNT}/legacy", "sqs", "eu-west-1", False),
        (f"http://127.0.0.1:4566/{ACCOUNT}/local", "sqs", None, False),
        (f"arn:aws:sns:us-east-1:{ACCOUNT}:estimates", "sns", "us-east-1", False),
        (
            f"arn:aws-us-gov:sns:us-gov-west-1:{ACCOUNT}:estimates.fifo",
            "sns",
            "us-gov-west-1",
            True,
        ),
    ],
)
def test_a_result_destination_is_an_sqs_queue_url_or_an_sns_topic_arn(text, kind, region, fifo):
    destination = parse_destination(f"  {text} ")
    assert (destination.kind, destination.address, destination.region, destination.fifo) == (
        kind,
        text,
        region,
        fifo,
    )


@pytest.mark.parametrize(
    "text, says",
    [
        ("results", "neither an SNS topic ARN nor an SQS queue URL"),
        ("s3://bucket/results", "neither an SNS topic ARN nor an SQS queue URL"),
        (f"arn:aws:sqs:us-east-1:{ACCOUNT}:results", "not an SNS topic ARN"),
        ("arn:aws:sns:us-east-1:12345:results", "not an SNS topic ARN"),
        (f"arn:aws:sns:us-east-1:{ACCOUNT}:bad/name", "not an SNS topic ARN"),
        ("https://sqs.us-east-1.amazonaws.com/results", "its path is /ACCOUNT/NAME"),
        (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/a/b", "its path is /ACCOUNT/NAME"),
        (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{'q' * 81}", "its path is /ACCOUNT/NAME"),
        (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/q?Action=x", "its path is /ACCOUNT/NAME"),
        (f"http://sqs.us-east-1.amazonaws.com/{ACCOUNT}/results", "not an https:// SQS endpoint"),
        (f"https://sqs.us-east-1.example.com/{ACCOUNT}/results", "not an https:// SQS endpoint"),
        (f"http://10.0.0.8/{ACCOUNT}/results", "not an https:// SQS endpoint"),
        (f"ftp://127.0.0.1/{ACCOUNT}/results", "neither an SNS topic ARN nor an SQS queue URL"),
    ],
)
def test_a_destination_that_is_neither_is_refused_saying_what_to_set(text, says):
    with pytest.raises(ValueError) as refused:
        parse_destination(text)
    assert says in str(refused.value)
    assert str(refused.value).endswith(
        "set an SQS queue URL (https://sqs.REGION.amazonaws.com/"
        "ACCOUNT/NAME) or an SNS topic ARN "
        "(arn:aws:sns:REGION:ACCOUNT:NAME)"
    )


def test_worker_results_is_checked_before_start_up_in_one_line():
    with pytest.raises(SettingsError) as refused:
        from_environ({"WORKER_RESULTS": "results-queue"})
    assert str(refused.value).startswith("WORKER_RESULTS='results-queue': neither an SNS topic")


def test_the_web_tier_has_no_worker_routes(client, record):
    answer = client.post(
        "/worker/estimates",
        json=record,
        headers={"X-Aws-Sqsd-Msgid": "5fea7756-0ea4-451a-a703-a558b933e274"},
    )
    assert answer.status_code == 404
    assert answer.mimetype == "application/problem+json"


@pytest.fixture
def unreachable_worker(real_model, monkeypatch):
    """A worker whose result queue is on a port where nothing listens."""
    from devtools.gunicorn_server import free_port

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    closed = parse_destination(f"http://127.0.0.1:{free_port()}/{ACCOUNT}/results")
    return create_app({"TESTING": True, "MODEL": real_model, "WORKER_RESULTS": closed})


def test_a_result_that_cannot_be_published_is_a_503_so_sqsd_keeps_the_message(
    unreachable_worker, record, caplog
):
    answer = unreachable_worker.test_client().post(
        "/worker/estimates", json=record, headers={"X-Aws-Sqsd-Msgid": "m-1"}
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert answer.json["detail"] == (
        "the result could not be published; the message will be retried"
    )
    assert "message m-1: result not published" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Aws-Sqsd-Msgid": ""},
        {"X-Aws-Sqsd-Msgid": "id with spaces"},
        {"X-Aws-Sqsd-Msgid": "x" * 129},
    ],
)
def test_a_post_without_sqsd_s_message_id_is_refused_before_anything_is_published(
    unreachable_worker, record, headers
):
    answer = unreachable_worker.test_client().post(
        "/worker/estimates", json=record, headers=headers
    )
    assert answer.status_code == 400  # not 503: nothing was sent anywhere
    assert answer.json["detail"].startswith("send the SQS message id in X-Aws-Sqsd-Msgid")


# The slow half: real queues on moto's server, the service under gunicorn.


@pytest.fixture(scope="module")
def sqs():
    """moto's server with the worker's queues and topic: (environment, clients, names->URLs)."""

    with moto_server() as env:
        sqs_client, sns_client = clients_on(env, "sqs", "sns")
        urls = {
            name: sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            for name, attributes in [
                ("dead-letters", {}),
                ("topic-results", {}),
                ("results.fifo", {"FifoQueue": "true"}),
            ]
        }
        dead_arn = sqs_client.get_queue_attributes(
            QueueUrl=urls["dead-letters"], AttributeNames=["QueueArn"]
        )
        # sqsd's MaxRetries: after two failed deliveries the message goes to the dead letters.
        urls["incoming"] = sqs_client.create_queue(
            QueueName="incoming",
            Attributes={
                "RedrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
                        "maxReceiveCount": "2",
                    }
                )
            },
        )["QueueUrl"]
        topic = sns_client.create_topic(Name="estimates")["TopicArn"]
        queue_arn = sqs_client.get_queue_attributes(
            QueueUrl=urls["topic-results"], AttributeNames=["QueueArn"]
        )
        sns_client.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        urls["topic"] = topic
        yield env, sqs_client, urls


def _worker(env: dict, destination: str):
    from devtools.gunicorn_server import GunicornServer

    server = GunicornServer(workers=1, WORKER_RESULTS=destination, **env)
    server.wait_healthy()
    return server


@pytest.fixture(scope="module")
def worker_fifo(sqs):
    """The service as a worker publishing to a FIFO queue."""
    env, _, urls = sqs
    server = _worker(env, urls["results.fifo"])
    yield server
    server.kill()


@pytest.fixture(scope="module")
def worker_sns(sqs):
    """The service as a worker publishing to an SNS topic (read back through a queue)."""
    env, _, urls = sqs
    server = _worker(env, urls["topic"])
    yield server
    server.kill()


@pytest.fixture(scope="module")
def worker_unpublishable(sqs):
    """The service as a worker whose result queue does not exist."""
    env, _, urls = sqs
    server = _worker(env, urls["results.fifo"].replace("results.fifo", "gone"))
    yield server
    server.kill()


def _received(sqs_client, url: str, wait: int = 2) -> list[dict]:
    got = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    for message in got.get("Messages", []):
        sqs_client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def _send(sqs_client, url: str, body) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return sqs_client.send_message(QueueUrl=url, MessageBody=text)["MessageId"]


def test_a_message_is_estimated_published_and_then_deleted(sqs, worker_fifo, record):
    _, sqs_client, urls = sqs
    message_id = _send(sqs_client, urls["incoming"], [record, record])
    assert deliver_one(sqs_client, urls["incoming"], worker_fifo.url("/worker/estimates")) == 200
    status, _, api_answer = worker_fifo.request("/api/v1/predict", [record, record])
    assert status == 200
    [result] = _received(sqs_client, urls["results.fifo"])
    # sqsd sends no X-Request-ID: the ids derive from the message id, the same on redelivery
    assert result["estimates"].pop("inference_ids") == [f"{message_id}-0", f"{message_id}-1"]
    assert result == {
        "message_id": message_id,
        "model_version": json.loads(worker_fifo.request("/health")[2])["model_version"],
        "status": 200,
        "estimates": {k: v for k, v in json.loads(api_answer).items() if k != "inference_ids"},
    }
    time.sleep(1.1)  # past the delivery's visibility timeout: a kept message would be back
    assert deliver_one(sqs_client, urls["incoming"], worker_fifo.url("/worker/estimates")) is None


@pytest.mark.parametrize(
    "body, status, detail",
    [
        (
            {
                "age": 17,
                "sex": "male",
                "bmi": 30.0,
                "children": 0,
                "smoker": "no",
                "region": "northeast",
            },
            422,
            "age must be a whole number from 18 to 100",
        ),
        ("{not json", 400, "the body is not valid JSON"),
        ([], 422, ""),
    ],
)
def test_input_that_can_never_succeed_is_published_as_its_problem_and_acknowledged(
    sqs, worker_fifo, body, status, detail
):
    _, sqs_client, urls = sqs
    message_id = _send(sqs_client, urls["incoming"], body)
    assert deliver_one(sqs_client, urls["incoming"], worker_fifo.url("/worker/estimates")) == 200
    [result] = _received(sqs_client, urls["results.fifo"])
    assert (result["message_id"], result["status"], result["problem"]["status"]) == (
        message_id,
        status,
        status,
    )
    assert detail in json.dumps(result["problem"])


def test_the_same_message_delivered_twice_publishes_one_result_to_a_fifo_queue(
    sqs, worker_fifo, record
):
    _, sqs_client, urls = sqs
    headers = {"X-Aws-Sqsd-Msgid": "1f0c1c7e-7a53-4c36-9d41-8e0b4ea0c0de"}
    for _ in range(2):  # a redelivery: sqsd posts the same message again
        assert worker_fifo.request("/worker/estimates", record, headers)[0] == 200
    results = _received(sqs_client, urls["results.fifo"])
    assert [r["message_id"] for r in results] == [headers["X-Aws-Sqsd-Msgid"]]


def test_the_same_message_delivered_twice_publishes_the_same_result_to_a_topic(
    sqs, worker_sns, record
):
    _, sqs_client, urls = sqs
    headers = {"X-Aws-Sqsd-Msgid": "0b5d3c57-41c3-4a4e-9c3e-3d8a6b5c7f10"}
    for _ in range(2):  # a standard topic keeps both: they are equal, so either will do
        assert worker_sns.request("/worker/estimates", [record], headers)[0] == 200
    results = _received(sqs_client, urls["topic-results"]) + _received(
        sqs_client, urls["topic-results"], wait=1
    )
    assert len(results) == 2 and results[0] == results[1]
    assert results[0]["message_id"] == headers["X-Aws-Sqsd-Msgid"]


def test_an_answer_too_large_for_a_message_is_published_as_a_413_saying_how_to_fix_it(
    sqs, worker_sns, record
):
    _, sqs_client, urls = sqs
    # 5,000 records (a queue raised to 1 MiB messages carries them): 285 KB of answer, over
    # the 256 KiB a result message may hold
    batch = [record] * 5000
    assert worker_sns.request("/worker/estimates", batch, {"X-Aws-Sqsd-Msgid": "big-1"})[0] == 200
    [result] = _received(sqs_client, urls["topic-results"])
    assert result["status"] == 413
    assert result["problem"]["detail"].endswith(
        f"over the {MAX_MESSAGE_BYTES:,}-byte limit of a result message; send fewer records "
        "per message"
    )


def test_a_message_whose_result_cannot_be_published_comes_back_then_goes_to_the_dead_letters(
    sqs, worker_unpublishable, record
):
    _, sqs_client, urls = sqs
    message_id = _send(sqs_client, urls["incoming"], record)
    url = worker_unpublishable.url("/worker/estimates")
    statuses = []
    for _ in range(3):
        statuses.append(deliver_one(sqs_client, urls["incoming"], url))
        time.sleep(1.1)  # the visibility timeout sqsd's failure leaves it under
    assert statuses == [503, 503, None]  # maxReceiveCount 2: then it is the dead letters'
    dead = sqs_client.receive_message(QueueUrl=urls["dead-letters"], WaitTimeSeconds=2)
    assert [m["MessageId"] for m in dead["Messages"]] == [message_id]
    assert "result not published" in worker_unpublishable.output()
