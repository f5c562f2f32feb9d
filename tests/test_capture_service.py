"""Capture in the service as deployed: gunicorn stopped by SIGTERM under load loses no captured
record, and captures reach S3 (moto's server) from every worker (docs/outcomes.md#capture)."""

import threading
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from devtools.gunicorn_server import GunicornServer
from devtools.records import valid_records
from insurance_charges.capture.lines import COLUMNS_FROM
from insurance_charges.core.captures import check_capture
from insurance_charges.core.schema import EXAMPLE_RECORD

from .aws import moto_server

pytestmark = pytest.mark.slow


def captured_ids(blobs) -> list[str]:
    """The inference ids of every line of the given files' bytes, each line checked."""
    ids = []
    for blob in blobs:
        for line in blob.splitlines():
            record, problem = check_capture(orjson.loads(line))
            assert problem is None, problem
            ids.append(record["inference_id"])
    return ids


# A batch of this many records has its lines written column by column (capture/lines.py).
BIG_BATCH = COLUMNS_FROM + 12


class Load:
    """Threads posting one record or a batch each (a few records, or enough to be written
    column by column), with their own request ids, until the service stops answering; keeps
    the ids of every estimate answered with 200."""

    def __init__(self, server: GunicornServer, threads: int = 6):
        self.server, self.answered, self.sent = server, [], []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _run(self, n: int) -> None:
        for i in range(100_000):
            request_id = f"t{n}.{i}"
            size = BIG_BATCH if i % 6 == 0 else 1 + i % 7
            body = EXAMPLE_RECORD if i % 2 else valid_records(size, seed=i)
            with self.lock:
                self.sent.append(request_id)
            request = urllib.request.Request(
                self.server.url("/api/v1/predict"),
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json", "X-Request-ID": request_id},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = orjson.loads(response.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return  # the service has stopped listening
            ids = answer.get("inference_ids") or [answer["inference_id"]]
            with self.lock:
                self.answered.extend(ids)

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for thread in self.threads:
            thread.join(timeout=60)


def test_sigterm_under_load_loses_no_captured_record(tmp_path):
    server = GunicornServer(workers=2, CAPTURE_URI=str(tmp_path))
    try:
        server.wait_healthy()
        with Load(server) as load:
            while len(load.answered) < 300:  # under load: both workers busy, batches queued
                threading.Event().wait(0.05)
            assert server.stop() == 0
        captured = captured_ids(p.read_bytes() for p in sorted(tmp_path.rglob("*.jsonl")))
    finally:
        server.kill()
    answered = set(load.answered)
    assert len(answered) >= 300 and len(captured) == len(set(captured))
    missing = answered - set(captured)
    assert not missing, f"{len(missing)} of {len(answered)} answered estimates not captured"
    # Nothing captured that was not asked for: any extra is an answer the client gave up on.
    sent = {f"{r}-{i}" for r in load.sent for i in range(BIG_BATCH)} | set(load.sent)
    assert set(captured) <= sent
    assert len(set(p.parent for p in Path(tmp_path).rglob("*.jsonl"))) == 1  # one hour


def test_captures_reach_s3_from_every_worker_and_a_missing_bucket_fails_no_request(tmp_path):
    import boto3

    with moto_server() as env:
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="captures")
        for bucket, ok in (("captures", True), ("no-such-bucket", False)):
            server = GunicornServer(workers=2, CAPTURE_URI=f"s3://{bucket}/svc/prod", **env)
            try:
                server.wait_healthy()
                answers = [
                    server.request(
                        "/api/v1/predict",
                        valid_records(3, seed=i),
                        headers={"X-Request-ID": f"{bucket}-{i}"},
                    )
                    for i in range(40)
                ]
                assert {status for status, _, _ in answers} == {200}
                assert server.stop() == 0
            finally:
                server.kill()
            if not ok:
                assert "NoSuchBucket" in server.output() and "dropped" in server.output()
                assert "Traceback" not in server.output()
                continue
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
            assert all(k.startswith("svc/prod/") and k.endswith(".jsonl") for k in keys)
            blobs = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
            assert sorted(captured_ids(blobs)) == sorted(
                f"{bucket}-{i}-{j}" for i in range(40) for j in range(3)
            )
