"""The EB worker's /worker/files: an S3 event in, the object scored into WORKER_SCORED_URI.

The unit half reads events and refuses what is no S3 event; the slow half runs the service
under gunicorn with a bucket whose notifications go to a real queue on moto's server, delivers
as sqsd does (tests/sqsd.py), and reads the scored object and the published summary back.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from insurance_charges.settings import SettingsError, from_environ
from insurance_charges.web import create_app
from insurance_charges.web.errors import HttpProblem
from insurance_charges.web.worker_files import Arrival, arrivals, scored_uri, summary

from .aws import clients_on, moto_server
from .sqsd import deliver_one


def _event(key="incoming/claims.csv", size=120, name="ObjectCreated:Put", bucket="claims-in"):
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": name,
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
            }
        ]
    }


def test_an_s3_event_names_each_created_object_with_its_key_decoded():
    found, skipped = arrivals(_event(key="incoming/claims+of+May%C3%A9.csv", size=2048))
    assert found == [Arrival("claims-in", "incoming/claims of Mayé.csv", 2048)]
    assert skipped == []
    assert found[0].uri == "s3://claims-in/incoming/claims of Mayé.csv"


def test_events_that_create_nothing_are_skipped_and_said():
    found, skipped = arrivals(_event(name="ObjectRemoved:Delete"))
    assert found == []
    assert skipped == ["/Records/0: ObjectRemoved:Delete is not an object being created"]
    assert arrivals({"Service": "Amazon S3", "Event": "s3:TestEvent"})[1] == [
        "S3's test event (sent when a notification is configured)"
    ]


@pytest.mark.parametrize(
    "body, says",
    [
        ([], "send an S3 event notification"),
        ({"Records": []}, "send an S3 event notification"),
        ({"Records": [{}] * 11}, "1 to 10 records"),
        ({"Records": ["x"]}, "/Records/0 is not an object"),
        ({"Records": [{"eventName": "ObjectCreated:Put"}]}, "/Records/0/s3/bucket/name is not"),
        (_event(bucket="Claims_In"), "/Records/0/s3/bucket/name is not an S3 bucket name"),
        (_event(bucket="a..b"), "/Records/0/s3/bucket/name is not an S3 bucket name"),
        (_event(key=""), "/Records/0/s3/object/key is missing"),
        (_event(key="k" * 1025), "/Records/0/s3/object/key is not an S3 key"),
        (_event(key="a%00b"), "/Records/0/s3/object/key is not an S3 key"),
        (_event(size=-1), "/Records/0/s3/object/size is not a whole number"),
        (_event(size="12"), "/Records/0/s3/object/size is not a whole number"),
        (_event(size=True), "/Records/0/s3/object/size is not a whole number"),
    ],
)
def test_a_body_that_is_no_s3_event_is_a_422_naming_what_is_wrong(body, says):
    with pytest.raises(HttpProblem) as refused:
        arrivals(body)
    assert refused.value.status == 422 and says in refused.value.detail


def test_the_scored_copy_keeps_the_object_s_key_under_the_scored_prefix():
    arrival = Arrival("claims-in", "incoming/2026/claims.csv", 1)
    assert scored_uri("s3://claims-out/scored", arrival) == (
        "s3://claims-out/scored/incoming/2026/claims.csv"
    )


def test_an_object_over_the_limit_is_refused_without_being_read():
    got = summary(
        Arrival("claims-in", "big.csv", 101 * 1024 * 1024),
        "s3://o/big.csv",
        100 * 1024 * 1024,
        {},
        "m-1",
    )
    assert got["outcome"] == "refused"
    assert got["error"].startswith(
        "the object is 105,906,176 bytes, over the 104,857,600 this "
        "worker scores (WORKER_MAX_FILE_MB)"
    )


def test_a_scored_copy_that_would_replace_its_object_is_refused():
    arrival = Arrival("claims", "in.csv", 10)
    assert summary(arrival, "s3://claims/in.csv", 10**6, {}, "m-1")["outcome"] == "refused"


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("WORKER_SCORED_URI", "scored/", "is not an s3:// URI; set WORKER_SCORED_URI"),
        ("WORKER_SCORED_URI", "s3://Scored/x", "is not an S3 bucket name"),
        ("WORKER_MAX_FILE_MB", "0", "set WORKER_MAX_FILE_MB from 1 to 1000"),
        ("WORKER_MAX_FILE_MB", "5000", "set WORKER_MAX_FILE_MB from 1 to 1000"),
    ],
)
def test_the_file_settings_are_checked_before_start_up(name, value, says):
    with pytest.raises(SettingsError) as refused:
        from_environ({name: value})
    assert str(refused.value).startswith(f"{name}={value!r}: ") and says in str(refused.value)


def test_without_a_scored_prefix_the_worker_has_no_files_route(real_model, monkeypatch):
    from insurance_charges.aws.messages import parse_destination

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app(
        {
            "TESTING": True,
            "MODEL": real_model,
            "WORKER_RESULTS": parse_destination("http://127.0.0.1:9/123456789012/results"),
        }
    )
    answer = app.test_client().post(
        "/worker/files", json=_event(), headers={"X-Aws-Sqsd-Msgid": "m-1"}
    )
    assert answer.status_code == 404


# The slow half: a bucket notifying a real queue, the service scoring what arrives.

ROWS = (
    "id,age,sex,bmi,children,smoker,region\n"
    "p1,19,female,27.9,0,yes,southwest\n"
    "p2,17,male,30.0,0,no,northeast\n"
    "p3,45,male,31.2,2,no,southeast\n"
)


@pytest.fixture(scope="module")
def arrivals_queue():
    """moto's server: an incoming bucket notifying a queue, a scored bucket, a results queue."""

    with moto_server() as env:
        s3, sqs = clients_on(env, "s3", "sqs")
        urls = {
            name: sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in ("arrivals", "file-results")
        }
        arn = sqs.get_queue_attributes(QueueUrl=urls["arrivals"], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for bucket in ("claims-in", "claims-out"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_notification_configuration(
            Bucket="claims-in",
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}
                        },
                    }
                ]
            },
        )
        _drain(sqs, urls["arrivals"])  # the test event S3 sends when notifications change
        yield env, s3, sqs, urls


def _drain(sqs, url):
    while sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"):
        pass


@pytest.fixture(scope="module")
def worker_files(arrivals_queue):
    """The service as a worker: results to a queue, scored files under s3://claims-out/scored."""
    from devtools.gunicorn_server import GunicornServer

    env, _, _, urls = arrivals_queue
    server = GunicornServer(
        workers=1,
        WORKER_RESULTS=urls["file-results"],
        WORKER_SCORED_URI="s3://claims-out/scored",
        WORKER_MAX_FILE_MB="1",
        **env,
    )
    server.wait_healthy()
    yield server
    server.kill()


def _deliver_arrival(arrivals_queue, worker_files) -> dict:
    _, _, sqs, urls = arrivals_queue
    assert deliver_one(sqs, urls["arrivals"], worker_files.url("/worker/files")) == 200
    got = sqs.receive_message(QueueUrl=urls["file-results"], WaitTimeSeconds=2)
    [message] = got["Messages"]
    sqs.delete_message(QueueUrl=urls["file-results"], ReceiptHandle=message["ReceiptHandle"])
    return json.loads(message["Body"])


def test_a_file_dropped_into_incoming_is_scored_with_its_rejects_and_summarized(
    arrivals_queue, worker_files
):
    _, s3, _, _ = arrivals_queue
    s3.put_object(Bucket="claims-in", Key="incoming/claims of May.csv", Body=ROWS.encode())
    result = _deliver_arrival(arrivals_queue, worker_files)
    assert result["status"] == 200
    out = "s3://claims-out/scored/incoming/claims of May.csv"
    assert result["file"] == {
        "input": "s3://claims-in/incoming/claims of May.csv",
        "bytes": len(ROWS),
        "outcome": "scored",
        "output": out,
        "rejects": "s3://claims-out/scored/incoming/claims of May.rejects.csv",
        "rows_read": 3,
        "rows_scored": 2,
        "rows_rejected": 1,
        "rejects_worded": 1,  # every rejected row's messages: fewer than 1,000
        "first_unworded_line": None,
        "warnings": 0,
        "run_id": result["message_id"],  # sqsd's message id: a redelivery scores the same ids
    }
    scored = list(
        csv.DictReader(
            io.StringIO(
                s3.get_object(Bucket="claims-out", Key="scored/incoming/claims of May.csv")["Body"]
                .read()
                .decode()
            )
        )
    )
    assert [row["id"] for row in scored] == ["p1", "p3"]
    # Each row's inference id is the run id and its line (the header is line 1).
    assert [row["inference_id"] for row in scored] == [
        f"{result['message_id']}-2",
        f"{result['message_id']}-4",
    ]
    assert all(float(row["estimate"]) > 0 for row in scored)
    rejects = s3.get_object(Bucket="claims-out", Key="scored/incoming/claims of May.rejects.csv")[
        "Body"
    ].read()
    assert b"p2" in rejects and b"age" in rejects


def test_an_object_over_the_worker_s_limit_is_refused_with_a_summary(arrivals_queue, worker_files):
    _, s3, _, _ = arrivals_queue
    body = ROWS.encode() + b"p9,30,male,30.0,1,no,northwest\n" * 40_000  # 1.3 MB over 1 MB
    s3.put_object(Bucket="claims-in", Key="incoming/huge.csv", Body=body)
    result = _deliver_arrival(arrivals_queue, worker_files)
    assert result["file"]["outcome"] == "refused"
    assert "over the 1,048,576 this worker scores" in result["file"]["error"]


def test_a_file_the_scorer_cannot_read_is_summarized_with_its_error_line(
    arrivals_queue, worker_files
):
    _, s3, _, _ = arrivals_queue
    s3.put_object(Bucket="claims-in", Key="incoming/notes.txt", Body=b"call back Tuesday\n")
    result = _deliver_arrival(arrivals_queue, worker_files)
    assert result["file"]["outcome"] == "failed"
    assert result["file"]["error"].startswith(
        "cannot tell the format of s3://claims-in/incoming/notes.txt"
    )
