"""The image started as SageMaker starts it (`docker run IMAGE serve`) meets its contract.

The session's image (tests/conftest.py, the one every container test runs) on 8080 or
SAGEMAKER_BIND_TO_PORT; every content type through its nginx; a model SageMaker extracted into
/opt/ml/model, signed by a key the container is told to trust; a Batch Transform run as
SageMaker makes it (a file split into mini-batches on line boundaries, sent concurrently,
answers joined) equal to the file scoring command and to /api/v1/predict; and a stop that
finishes the request in flight inside SageMaker's 30 s.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.records import valid_records
from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import signature_path
from insurance_charges.core.schema import EXAMPLE_RECORD, FIELD_NAMES
from insurance_charges.settings import DEFAULT_MODEL_PATH, MB

from .conftest import ROOT, sign_with
from .containers import docker

pytestmark = pytest.mark.slow
CSV, JSONL, JSON = "text/csv", "application/jsonlines", "application/json"
RECORDS = valid_records(200, seed=11)
NAME = f"insurance-charges-sagemaker-{os.getpid()}"


class Endpoint:
    """A container started with `serve`, and its URL on 127.0.0.1."""

    def __init__(self, name: str, url: str):
        self.name, self.url = name, url

    def post(self, path: str, body: bytes, content_type: str, accept: str | None = None):
        """Status, headers and body of one POST."""
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        request = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            with err:  # closed even when reading its body fails
                return err.code, err.headers, err.read()

    def get(self, path: str):
        """Status and parsed JSON body of one GET."""
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.status, json.loads(response.read())


def start(name: str, image: str, port: int = 8080, *options: str) -> Endpoint:
    """`docker run IMAGE serve` with ``options``; returns once /ping answers 200."""
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1::{port}", *options, image, "serve")
    host_port = docker("port", name, f"{port}/tcp").stdout.split(":")[-1].strip()
    endpoint = Endpoint(name, f"http://127.0.0.1:{host_port}")
    deadline = time.monotonic() + 120
    while True:
        try:
            if endpoint.get("/ping")[0] == 200:
                return endpoint
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        running = docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        assert running == "true", docker("logs", name).stderr[-3000:]
        assert time.monotonic() < deadline, "/ping never answered 200"
        time.sleep(0.5)


def remove(name: str) -> None:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def endpoint(image):
    """The image as SageMaker runs it: `serve`, no other setting."""
    try:
        yield start(NAME, image)
    finally:
        remove(NAME)


def csv_body(records, header: bool = True) -> bytes:
    rows = [",".join(str(r[name]) for name in FIELD_NAMES) for r in records]
    return ("\n".join(([",".join(FIELD_NAMES)] if header else []) + rows) + "\n").encode()


def test_the_image_says_sagemaker_may_bind_it_to_another_port(image):
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image).stdout)
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"


def test_serve_answers_ping_and_execution_parameters_on_8080(endpoint):
    assert endpoint.get("/ping") == (200, {"status": "ok"})
    assert (
        endpoint.get("/health")[1]["model_version"]
        == json.loads(path_for(DEFAULT_MODEL_PATH).read_text())["model_version"]
    )
    status, parameters = endpoint.get("/execution-parameters")
    assert status == 200 and parameters["BatchStrategy"] == "MULTI_RECORD"
    assert parameters["MaxPayloadInMB"] == 6
    assert parameters["MaxConcurrentTransforms"] == int(
        docker("exec", endpoint.name, "python", "-c", "import os; print(os.cpu_count())").stdout
    )


@pytest.mark.parametrize(
    "body, content_type",
    [
        (csv_body(RECORDS), CSV),
        (csv_body(RECORDS, header=False), CSV),
        (b"".join(json.dumps(r).encode() + b"\n" for r in RECORDS), JSONL),
        (json.dumps(RECORDS).encode(), JSON),
    ],
    ids=["csv-header", "csv", "jsonlines", "json"],
)
@pytest.mark.parametrize("accept", [JSON, CSV, JSONL])
def test_every_content_type_and_accept_gives_the_apis_estimates(
    endpoint, client, body, content_type, accept
):
    status, headers, answer = endpoint.post("/invocations", body, content_type, accept)
    assert status == 200 and headers["Content-Type"].split(";")[0] == accept
    expected = client.post("/api/v1/predict", json=RECORDS).get_json()["predictions"]
    if accept == JSON:
        got = json.loads(answer)["predictions"]
    elif accept == CSV:
        got = [float(line) for line in answer.decode().splitlines()]
    else:
        got = [json.loads(line)["prediction"] for line in answer.decode().splitlines()]
    assert got == expected


def test_bad_lines_are_refused_by_the_container_naming_line_and_field(endpoint):
    body = b"19,female,27.9,0,yes,southwest\n19,female,27.9,0,maybe,southwest\n"
    status, headers, answer = endpoint.post("/invocations", body, "text/csv; charset=utf-8")
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(answer)["errors"][0]["pointer"] == "/2/smoker"
    status, headers, _ = endpoint.post("/invocations", body, "text/plain")
    assert status == 415 and headers["Content-Type"] == "application/problem+json"
    status, headers, _ = endpoint.post("/invocations", body, CSV, "application/xml")
    assert status == 406 and headers["Content-Type"] == "application/problem+json"


def padded(size: int) -> bytes:
    """Valid CSV of exactly ``size`` bytes."""
    line = b"19,female,27.9,0,yes,southwest\n"
    body = line * (size // len(line))
    return b" " * (size - len(body)) + body


def test_nginx_passes_6_mb_to_invocations_and_keeps_2_mib_everywhere_else(endpoint):
    status, _, answer = endpoint.post("/invocations", padded(6 * MB), CSV, CSV)
    assert status == 200 and answer.count(b"\n") == (6 * MB) // 31
    status, headers, answer = endpoint.post("/invocations", padded(6 * MB + 1), CSV)
    assert status == 413 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(answer)["type"] == "/docs#problem-too-large"
    status, headers, _ = endpoint.post("/api/v1/predict", b" " * (3 * MB), JSON)
    assert status == 413 and headers["Content-Type"] == "application/problem+json"


def test_dockers_healthcheck_follows_the_port_serve_listens_on(endpoint):
    deadline = time.monotonic() + 90
    while (
        health := docker("inspect", "-f", "{{.State.Health.Status}}", endpoint.name).stdout.strip()
    ) != "healthy":
        assert health == "starting" and time.monotonic() < deadline, health
        time.sleep(1)


def test_sagemaker_bind_to_port_moves_the_listener(image):
    name = f"{NAME}-bind"
    try:
        moved = start(name, image, 9123, "-e", "SAGEMAKER_BIND_TO_PORT=9123")
        assert moved.get("/ping")[0] == 200
        listening = docker("exec", name, "cat", "/proc/net/tcp").stdout
        assert f":{9123:04X} 00000000:0000 0A" in listening  # 0A: LISTEN
        assert f":{8080:04X} 00000000:0000 0A" not in listening
    finally:
        remove(name)


# The model SageMaker extracted into /opt/ml/model ----------------------------------------------


@pytest.fixture(scope="module")
def extracted_model(tmp_path_factory, signing_key):
    """model.tar.gz's contents as SageMaker leaves them: the committed pipeline under a new
    model version, signed with the tests' own key; readable by the container's user."""
    directory = tmp_path_factory.mktemp("opt-ml-model")
    target = directory / DEFAULT_MODEL_PATH.name
    shutil.copy(DEFAULT_MODEL_PATH, target)
    card = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    card["model_version"] = f"2030.01.01-gbr-{digest[:8]}"
    path_for(target).write_text(json.dumps(card))
    sign_with(signing_key, target)
    for path in (directory, target, path_for(target), signature_path(target)):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


@pytest.fixture(scope="module")
def trusted_key_dir(public_key_file, tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    shutil.copy(public_key_file, directory / "model-key.pem")
    directory.chmod(0o755)
    (directory / "model-key.pem").chmod(0o644)
    return directory


def test_a_signed_model_in_opt_ml_model_is_served_instead_of_the_images(
    image, extracted_model, trusted_key_dir, client
):
    name = f"{NAME}-model"
    try:
        served = start(
            name,
            image,
            8080,
            "-v",
            f"{extracted_model}:/opt/ml/model:ro",
            "-v",
            f"{trusted_key_dir}:/keys:ro",
            "-e",
            "MODEL_PUBLIC_KEY=/keys/model-key.pem",
        )
        assert served.get("/health")[1]["model_version"].startswith("2030.01.01-gbr-")
        status, _, answer = served.post("/invocations", csv_body([EXAMPLE_RECORD]), CSV)
        assert status == 200 and json.loads(answer)["predictions"] == [
            client.post("/api/v1/predict", json=EXAMPLE_RECORD).get_json()["prediction"]
        ]
    finally:
        remove(name)


def test_a_model_signed_by_a_key_the_image_does_not_trust_stops_the_start(image, extracted_model):
    run = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{extracted_model}:/opt/ml/model:ro", image, "serve"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert run.returncode != 0 and len(errors) == 1 and "Traceback" not in run.stderr
    assert errors[0].startswith("Error: model /opt/ml/model/insurance-charges.pkl is refused")


# Batch Transform ------------------------------------------------------------------------------


def mini_batches(data: bytes, limit: int) -> list[bytes]:
    """A file cut as SplitType=Line cuts it: whole lines, each part at most ``limit`` bytes."""
    parts, start = [], 0
    while start < len(data):
        end = (
            data.rfind(b"\n", start, start + limit) + 1 if start + limit < len(data) else len(data)
        )
        assert end > start, "a line longer than the payload limit"
        parts.append(data[start:end])
        start = end
    return parts


def test_a_batch_transform_run_equals_the_scoring_command_and_the_api(endpoint, client, tmp_path):
    records = valid_records(250_000, seed=5)  # about 10 MB of CSV: at least two mini-batches
    source = tmp_path / "book.csv"
    source.write_bytes(csv_body(records))
    _, parameters = endpoint.get("/execution-parameters")
    parts = mini_batches(source.read_bytes(), parameters["MaxPayloadInMB"] * MB)
    assert len(parts) >= 2
    with ThreadPoolExecutor(parameters["MaxConcurrentTransforms"]) as pool:
        answers = list(pool.map(lambda part: endpoint.post("/invocations", part, CSV, CSV), parts))
    assert [status for status, _, _ in answers] == [200] * len(parts)
    # AssembleWith=Line: each answer, ending in a line break, joined in the input's order.
    joined = b"".join(a if a.endswith(b"\n") else a + b"\n" for _, _, a in answers)
    transformed = [float(line) for line in joined.decode().splitlines()]
    assert len(transformed) == len(records)  # one output line per input record

    scored = tmp_path / "scored.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "insurance_charges.scoring",
            str(source),
            "-o",
            str(scored),
            "--run-id",
            "book",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with open(scored, newline="") as f:
        rows = list(csv.DictReader(f))
    assert transformed == [float(row["estimate"]) for row in rows]
    # The numbers are the same; the ids are each one's own: SageMaker names a body's records by
    # their position in the body, the scorer names a file's rows by their line (the header is 1).
    assert [row["inference_id"] for row in rows] == [f"book-{n + 2}" for n in range(len(records))]
    api = [
        p
        for start in range(0, len(records), 10_000)
        for p in client.post("/api/v1/predict", json=records[start : start + 10_000]).get_json()[
            "predictions"
        ]
    ]
    assert transformed == api


# Stopping (last: it stops the module's container) ----------------------------------------------


def test_a_stop_finishes_the_invocation_in_flight_before_sagemakers_sigkill(endpoint):
    body = padded(6 * MB)
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: text/csv\r\nAccept: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    port = int(endpoint.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(head + body[: len(body) // 2])  # nginx holds the half-sent request
        time.sleep(1)
        # SageMaker: SIGTERM, then SIGKILL 30 s later (docker stop -t 30 does the same).
        stop = threading.Thread(
            target=docker, args=("stop", "-t", "30", endpoint.name), kwargs={"timeout": 90}
        )
        stop.start()
        time.sleep(1)
        conn.sendall(body[len(body) // 2 :])
        answer = b"".join(iter(lambda: conn.recv(1 << 16), b""))
    stop.join()
    status_line, _, payload = answer.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 200")
    assert payload.count(b"\n") == len(body) // 31
    # Exit 0, not 137: the launcher stopped by itself, before SIGKILL.
    assert docker("inspect", "-f", "{{.State.ExitCode}}", endpoint.name).stdout.strip() == "0"
