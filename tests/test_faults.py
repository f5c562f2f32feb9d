"""Faults under load: a killed worker, a SIGTERM mid-request, a broken model at start-up."""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import joblib
import pytest

from devtools.gunicorn_server import GunicornServer, free_port
from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import signature_path
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .conftest import ROOT, vouch_for
from .load import run_load

pytestmark = pytest.mark.slow
ONE = json.dumps(EXAMPLE_RECORD).encode()
BATCH = json.dumps([EXAMPLE_RECORD] * 10_000).encode()


@pytest.fixture
def server():
    srv = GunicornServer(via_make=True, workers=2)
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.kill()


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_worker_killed_under_load_is_replaced_losing_at_most_its_request(server):
    before = server.worker_pids()
    result = {}
    loader = threading.Thread(
        target=lambda: result.update(
            outcome=run_load(server.port, "/api/v1/predict", ONE, seconds=5, concurrency=4)
        )
    )
    loader.start()
    time.sleep(1.5)
    os.kill(before[0], signal.SIGKILL)
    loader.join()
    outcome = result["outcome"]
    # A sync worker holds one request at a time: at most that one is lost.
    assert len(outcome.errors) <= 1, outcome.errors
    assert outcome.ok > 20
    assert wait_for(
        lambda: len(server.worker_pids()) == 2 and before[0] not in server.worker_pids()
    )
    assert server.request("/health")[0] == 200


@pytest.fixture(scope="module")
def overrunning():
    """The shipped gunicorn settings but a 2 s worker timeout, and a route that outlives it."""
    srv = GunicornServer(
        "tests.overrun_app:application", workers=1, GUNICORN_CMD_ARGS="--timeout 2"
    )
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize(
    "path, media_type", [("/api/v1/overrun", "application/problem+json"), ("/overrun", "text/html")]
)
def test_a_request_past_the_worker_timeout_gets_the_apps_504_not_gunicorns_html_500(
    overrunning, path, media_type
):
    before = overrunning.worker_pids()
    status, headers, body = overrunning.request(path, body=b"{}", timeout=60)
    assert (status, headers["Content-Type"].split(";")[0]) == (504, media_type), body[:300]
    assert b"Internal Server Error" not in body and headers["X-Request-ID"]
    if media_type == "application/problem+json":
        assert json.loads(body)["type"] == "/docs#problem-gateway-timeout"
    # The worker that overran is replaced, and the service answers again.
    assert wait_for(lambda: overrunning.worker_pids() not in ([], before))
    assert overrunning.request("/health")[0] == 200


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(server):
    # Send half a 10,000-record batch, so the request is certainly in a worker's hands.
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn.sendall(
        b"POST /api/v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: "
        b"application/json\r\nContent-Length: %d\r\n\r\n" % len(BATCH)
    )
    conn.sendall(BATCH[: len(BATCH) // 2])
    time.sleep(0.5)
    os.kill(server.master_pid(), signal.SIGTERM)
    time.sleep(0.5)
    conn.sendall(BATCH[len(BATCH) // 2 :])
    response = b""
    while chunk := conn.recv(1 << 16):
        response += chunk
    conn.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(json.loads(body)["predictions"]) == 10_000
    assert server.proc.wait(timeout=35) == 0  # within graceful_timeout (30 s)


def broken_model(tmp_path, kind: str, signing_key):
    target = tmp_path / DEFAULT_MODEL_PATH.name
    path_for(target).write_text(path_for(DEFAULT_MODEL_PATH).read_text())
    if kind == "truncated":  # cut short in a copy, with the committed signature beside it
        target.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[:4096])
        signature_path(target).write_bytes(signature_path(DEFAULT_MODEL_PATH).read_bytes())
    elif kind == "unsigned":  # a pickle whose card vouches for it, as anyone can write
        joblib.dump({"weights": [1, 2, 3]}, target)
        vouch_for(target)
    else:  # the same, signed by a key the service is told to trust
        joblib.dump({"weights": [1, 2, 3]}, target)
        vouch_for(target, signing_key)
    return target


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("truncated", "signature does not match the pipeline and card"),
        ("unsigned", "is not signed"),
        ("foreign", "no pipeline with predict"),
    ],
)
def test_start_up_with_a_broken_model_exits_non_zero_with_one_clear_line(
    tmp_path, kind, reason, signing_key, public_key_file
):
    run = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PORT": str(free_port()),
            "MODEL_PATH": str(broken_model(tmp_path, kind, signing_key)),
            # the foreign model is signed by the tests' key, and trusted
            **({"MODEL_PUBLIC_KEY": str(public_key_file)} if kind == "foreign" else {}),
        },
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert run.returncode != 0 and len(errors) == 1 and reason in errors[0]
    assert "Traceback" not in run.stderr + run.stdout
