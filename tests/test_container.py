"""The uploaded bundle builds with the real Docker engine and runs the way EB runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from devtools.slow_clients import attack
from insurance_charges.core.schema import EXAMPLE_RECORD

from .conftest import ROOT, require
from .containers import Container, docker, engine_running
from .deploy_files import copy_sources, dockerrun, settings, working_tree_files

pytestmark = pytest.mark.slow
PORT = dockerrun()["Ports"][0]["ContainerPort"]
LOGGING = dockerrun()["Logging"]
ENV = settings()["aws:elasticbeanstalk:application:environment"]
BATCH = [dict(EXAMPLE_RECORD, age=18 + i % 47) for i in range(10_000)]


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    """The image run as EB runs it: Dockerrun's port and Logging directory, the environment
    properties from .ebextensions; a read-only root with a tmpfs /tmp proves it writes nowhere
    else. Yields once Docker's HEALTHCHECK reports healthy."""
    logs = tmp_path_factory.mktemp("eb-logs")
    logs.chmod(0o777)
    name = f"insurance-charges-test-{os.getpid()}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-p",
        f"127.0.0.1::{PORT}",
        "-v",
        f"{logs}:{LOGGING}",
        *[f"--env={key}={value}" for key, value in ENV.items()],
        image,
    )
    try:
        host_port = docker("port", name, f"{PORT}/tcp").stdout.split(":")[-1].strip()
        box = Container(name, f"http://127.0.0.1:{host_port}")
        deadline = time.monotonic() + 120
        while box.inspect("{{.State.Health.Status}}") != "healthy":
            assert box.inspect("{{.State.Running}}") == "true", docker("logs", name).stderr
            assert time.monotonic() < deadline, "HEALTHCHECK never reported healthy"
            time.sleep(0.5)
        yield box
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def test_container_from_the_bundle_reports_healthy_on_a_read_only_root(container):
    assert container.inspect("{{.State.Health.Status}}") == "healthy"
    assert container.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"


def test_container_serves_health_the_form_and_the_api_like_the_app(container, client):
    status, _, body = container.request("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = container.request("/")
    assert status == 200 and b"<form" in body
    form = {key: str(value) for key, value in EXAMPLE_RECORD.items()}
    status, _, body = container.request("/", form=form)
    assert status == 200 and b"Estimated yearly charges" in body
    status, _, body = container.request("/api/v1/predict", body=EXAMPLE_RECORD)
    expected = client.post("/api/v1/predict", json=EXAMPLE_RECORD).get_json()["prediction"]
    assert status == 200 and json.loads(body)["prediction"] == expected
    status, headers, _ = container.request("/api/v1/predict", body={"age": "x"})
    assert status == 422 and headers["Content-Type"] == "application/problem+json"


def test_the_launcher_is_pid_1_and_nothing_runs_as_root(container):
    command = docker("exec", container.name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert command[1:3] == ["-m", "insurance_charges.container"]
    assert docker("exec", container.name, "id", "-u").stdout.strip() != "0"
    table = docker("top", container.name, "-eo", "pid,uid,args").stdout.splitlines()[1:]
    assert table and all(line.split()[1] != "0" for line in table)
    gunicorns = [line for line in table if "gunicorn" in line]
    nginxes = [line for line in table if "nginx: " in line]
    assert len(gunicorns) == 1 + int(ENV["WEB_CONCURRENCY"])  # master + workers
    assert len(nginxes) == 2  # master + one worker


def test_nginx_serves_the_port_dockerrun_maps_and_gunicorn_logs_json_to_stdout(container):
    container.request("/health")
    logs = docker("logs", container.name)
    assert "Listening at: unix:/tmp/insurance-charges/gunicorn.sock" in logs.stderr
    assert "Control server" not in logs.stderr
    lines = [line for line in logs.stdout.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["time"] for line in lines)
    access = [json.loads(line) for line in lines if '"type": "access"' in line]
    assert access[-1]["forwarded_for"] and access[-1]["path"] == "/health"


@pytest.mark.parametrize(
    "path, media_type", [("/api/v1/predict", "application/problem+json"), ("/", "text/html")]
)
def test_a_body_over_the_limit_is_refused_by_nginx_in_the_sites_own_format(
    container, path, media_type
):
    req = urllib.request.Request(
        container.url + path, data=b"x" * 3_000_000, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    # The refusal holds the connection until it is closed: left to the collector, it is
    # reported as an unclosed socket in whichever test runs then.
    with refused.value as answer:
        assert answer.code == 413
        assert answer.headers["Content-Type"] == media_type
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        if media_type.endswith("json"):
            assert json.loads(answer.read())["type"] == "/docs#problem-too-large"


def test_fifty_slow_clients_leave_health_and_predictions_answering_within_a_second(container):
    report = attack(int(container.url.rsplit(":", 1)[1]), seconds=45)
    # Every probe sent was answered: 75 rounds of two in the 37.5 s after arrivals and warm-up.
    assert report.failures() == [] and len(report.probes) == report.probes_sent >= 140
    assert report.slowest("health") <= 1.0 and report.slowest("predict") <= 1.0, report.probes
    # The legitimate client uploading a full batch at 25 KB/s (about 40 s) gets every answer.
    assert report.legit["status"] == 200 and report.legit["predictions"] == 10_000, report.legit
    # Slowloris clients are dropped after nginx's 10 s header timeout, again and again.
    assert report.dropped["headers"] >= 17, report.dropped


def test_docker_stop_lets_an_in_flight_batch_finish_and_exits_0(container):
    body = json.dumps(BATCH).encode()
    head = (
        f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    port = int(container.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(head + body[: len(body) // 2])  # nginx holds the half-sent request
        time.sleep(1)
        began = time.monotonic()
        stop = threading.Thread(
            target=docker, args=("stop", "-t", "60", container.name), kwargs={"timeout": 90}
        )
        stop.start()
        time.sleep(1)  # SIGTERM has reached the launcher; nginx must finish this request
        assert container.inspect("{{.State.Running}}") == "true"
        conn.sendall(body[len(body) // 2 :])
        answer = b"".join(iter(lambda: conn.recv(1 << 16), b""))
    stop.join()
    status_line, _, payload = answer.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 200")
    assert len(json.loads(payload)["predictions"]) == len(BATCH)
    assert time.monotonic() - began < 10  # inside docker stop's default grace period
    assert container.inspect("{{.State.ExitCode}}") == "0"


def test_dockerignore_keeps_everything_but_what_the_dockerfile_copies_out_of_the_context():
    require(engine_running(), "needs a running Docker engine (.ci/run installs docker.io)")
    tag = f"insurance-charges:context-test-{os.getpid()}"
    docker(
        "build",
        "-t",
        tag,
        "-f",
        "-",
        str(ROOT),
        timeout=600,
        input="FROM python:3.11-slim\nCOPY . /context\n",
    )
    try:
        listing = docker(
            "run",
            "--rm",
            tag,
            "python3",
            "-c",
            "import os; print('\\n'.join("
            "os.path.relpath(os.path.join(d, f), '/context') for d, _, fs in "
            "os.walk('/context') for f in fs))",
        ).stdout.split()
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)
    assert set(listing) == working_tree_files(copy_sources())
