"""Measure the EB worker route: sqsd messages per second one instance estimates and publishes.

Usage: ``.venv/bin/python -m bench.worker [--seconds 5] [--out bench/results/worker.json]``.
Starts moto's server (SQS, in its own process) and the service under gunicorn with
WEB_CONCURRENCY=2, as the worker environment runs it (deploy/eb-worker/), publishing each
result to a real SQS queue there. Then, for one-record and 100-record messages, it POSTs
messages to ``/worker/estimates`` exactly as sqsd does (its headers, one message per request)
over as many connections as sqsd's ``HttpConnections`` (2), in alternating rounds; a message
counts only when answered 200 (published). After each round the results queue must hold
exactly one result per message acknowledged. The worker environment's scaling thresholds
(deploy/eb-worker/.ebextensions) follow from the one-record rate. Exits 1 with one line if
anything fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from devtools import host
from devtools.gunicorn_server import free_port
from devtools.records import valid_records
from insurance_charges.core.schema import EXAMPLE_RECORD

from .servers import BenchError, Service

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
CONNECTIONS = 2  # sqsd's HttpConnections in the worker environment (= WEB_CONCURRENCY)
ROUNDS = 3
BATCH_RECORDS = 100
PATH = "/worker/estimates"
MOTO_START_S = 30  # moto's server imports every service it emulates: a few seconds here


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's server in its own process (SQS in AWS is not on the instance's cores either)."""
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + MOTO_START_S
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()
            return moto, endpoint
        except OSError:
            if moto.poll() is not None or time.monotonic() > deadline:
                moto.kill()
                raise BenchError(
                    f"moto's server did not answer on {endpoint} within {MOTO_START_S} s"
                ) from None
            time.sleep(0.2)


def post(url: str, body: bytes) -> int:
    """One message as sqsd sends it; the status."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "User-Agent": "aws-sqsd/1.1",
            "Content-Type": "application/json",
            "X-Aws-Sqsd-Msgid": str(uuid.uuid4()),
            "X-Aws-Sqsd-Queue": "awseb-worker-queue",
            "X-Aws-Sqsd-First-Received-At": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "X-Aws-Sqsd-Receive-Count": "1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection until closed (sqsd reads no body)
            return exc.code


def round_of(service: Service, body: bytes, seconds: float) -> dict:
    """``CONNECTIONS`` sqsd connections posting for ``seconds``: messages/s and CPU per message."""
    url = service.url(PATH)
    done: list[float] = []  # seconds each acknowledged message took, as sqsd waits for it
    failed: list[int] = []
    stop = time.monotonic() + seconds

    def connection() -> None:
        while time.monotonic() < stop:
            sent = time.perf_counter()
            status = post(url, body)
            if status == 200:
                done.append(time.perf_counter() - sent)
            else:
                failed.append(status)

    cpu_before, started = service.cpu_seconds(), time.monotonic()
    threads = [threading.Thread(target=connection) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, cpu = time.monotonic() - started, service.cpu_seconds() - cpu_before
    if failed:
        raise BenchError(
            f"{len(failed)} messages were not acknowledged (statuses "
            f"{sorted(set(failed))}); see the service's log"
        )
    return {
        "messages": len(done),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(done) / elapsed, 1),
        "cpu_ms_per_message": round(1000 * cpu / len(done), 2),
        "p50_ms": round(1000 * statistics.median(done), 1),
        "p99_ms": round(1000 * statistics.quantiles(done, n=100)[98], 1),
    }


def publish_ms(sqs, queue: str, count: int = 30) -> float:
    """Median milliseconds of one SendMessage from here to moto: what each message waits on."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(EXAMPLE_RECORD))
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 1)


def empty(sqs, queue: str) -> None:
    """The queue, deleted and made again under its name and URL."""
    sqs.delete_queue(QueueUrl=queue)
    sqs.create_queue(QueueName=queue.rsplit("/", 1)[1])


def held(sqs, queue: str) -> int:
    """Messages on ``queue`` now."""
    return int(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )


def measure(seconds: float) -> dict:
    """Every round against one worker service; moto and the service always stopped."""
    import boto3

    moto, endpoint = start_moto()
    service = None
    try:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        results = sqs.create_queue(QueueName="results")["QueueUrl"]
        service = Service(WORKER_RESULTS=results, **env)
        service.wait_healthy()
        ranges = service.training_ranges()
        bodies = {
            "one_record": json.dumps(EXAMPLE_RECORD).encode(),
            "records_100": json.dumps(valid_records(BATCH_RECORDS, seed=7, ranges=ranges)).encode(),
        }
        round_of(service, bodies["one_record"], 2)  # warm-up: first requests, boto3's client
        rounds: dict[str, list[dict]] = {name: [] for name in bodies}
        latency = []
        for _ in range(ROUNDS):
            for name, body in bodies.items():
                # moto slows as a queue grows: each round starts from an empty one (PurgeQueue
                # is allowed once a minute; moto re-creates a deleted queue's name at once).
                empty(sqs, results)
                latency.append(publish_ms(sqs, results))
                empty(sqs, results)
                measured = round_of(service, body, seconds)
                measured["results_on_the_queue"] = held(sqs, results)
                if measured["results_on_the_queue"] != measured["messages"]:
                    raise BenchError(
                        f"{measured['messages']} messages acknowledged but "
                        f"{measured['results_on_the_queue']} results on the queue"
                    )
                rounds[name].append(measured)
    finally:
        if service is not None:
            service.stop()
        moto.terminate()
        moto.wait(timeout=30)
    summary = {
        name: {
            "messages_per_s": statistics.median(r["messages_per_s"] for r in runs),
            "cpu_ms_per_message": statistics.median(r["cpu_ms_per_message"] for r in runs),
            "rounds": runs,
        }
        for name, runs in rounds.items()
    }
    return {"publish_ms_median": statistics.median(latency), **summary}


def main() -> int:
    """Run the measurement and write its JSON; exit 1 with one line if it fails."""
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each round")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "worker.json")
    args = parser.parse_args()
    machine = host.machine()  # its load average, before anything starts
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        result = measure(args.seconds)
    except (BenchError, BotoCoreError, ClientError) as exc:
        print(f"bench.worker failed: {exc}", file=sys.stderr)
        return 1
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "setup": {
            "WEB_CONCURRENCY": 2,
            "connections": CONNECTIONS,
            "rounds": ROUNDS,
            "round_s": args.seconds,
            "batch_records": BATCH_RECORDS,
            "destination": "SQS standard queue on moto's server (own process)",
        },
        **result,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    one, batch = result["one_record"], result["records_100"]
    print(
        f"one-record messages/s {one['messages_per_s']:,.0f} "
        f"({one['cpu_ms_per_message']} ms CPU each); {BATCH_RECORDS}-record messages/s "
        f"{batch['messages_per_s']:,.0f}; one SendMessage to moto "
        f"{result['publish_ms_median']} ms; written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
