"""The real server: `make run` starts gunicorn with gunicorn.conf.py, probed over HTTP."""

import json
import os
import re
import subprocess
import time

import pytest

from devtools.gunicorn_server import GunicornServer, free_port
from insurance_charges.core.schema import EXAMPLE_RECORD

from .conftest import ROOT

pytestmark = pytest.mark.slow


# Set but empty, each counts as unset; gunicorn itself would read "" with int() and stop
# (LISTEN_FDS, GUNICORN_PID) or take it as a setting (FORWARDED_ALLOW_IPS: trust no proxy).
EMPTY = {
    "LISTEN_FDS": "",
    "LISTEN_PID": "",
    "GUNICORN_PID": "",
    "GUNICORN_FD": "",
    "GUNICORN_CMD_ARGS": "",
    "SCRIPT_NAME": "",
    "FORWARDED_ALLOW_IPS": "",
}


@pytest.fixture(scope="module")
def server():
    srv = GunicornServer(via_make=True, **EMPTY)
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.kill()


def test_make_run_serves_health_form_and_api(server):
    status, _, body = server.request("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = server.request("/")
    assert status == 200 and b"Estimate charges" in body
    status, _, body = server.request("/api/v1/predict", [EXAMPLE_RECORD] * 3)
    assert status == 200 and len(json.loads(body)["predictions"]) == 3
    status, headers, body = server.request("/api/v1/predict", {"age": "x"})
    assert status == 422 and headers["Content-Type"] == "application/problem+json"


def test_server_runs_the_configured_workers_and_loads_the_model_once(server):
    # /health answers as soon as one worker is up; on a busy machine the second boots later.
    def booted() -> int:
        return len(re.findall(r"Booting worker with pid", "".join(server.lines)))

    deadline = time.monotonic() + 20
    while booted() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    text = "".join(server.lines)
    assert booted() == 2 and len(server.worker_pids()) == 2
    assert text.count('"message": "loaded model') == 1  # in the master, before forking


def test_make_run_listens_on_this_machine_only_unless_host_says_otherwise(server):
    assert f"Listening at: http://127.0.0.1:{server.port} (" in server.output()


def test_a_second_make_run_on_the_same_port_is_one_line_before_the_model_loads(server):
    run = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PORT": str(server.port)},
    )
    assert run.returncode != 0 and [
        line for line in run.stderr.splitlines() if not line.startswith("make: *** ")
    ] == [
        f"Error: PORT='{server.port}': already in use on 127.0.0.1:{server.port} (another "
        "server listens there, perhaps an earlier `make run`); stop it, or set PORT to a free "
        "port"
    ]
    assert "loaded model" not in run.stdout


def test_access_log_lines_are_json_with_the_request_id(server):
    _, headers, _ = server.request("/health", headers={"X-Request-ID": "probe-42"})
    assert headers["X-Request-ID"] == "probe-42"
    _, headers, _ = server.request("/api/v1/model")
    generated = headers["X-Request-ID"]
    time.sleep(0.3)
    entries = [json.loads(line) for line in server.lines if line.startswith('{"time"')]
    access = {e["request_id"]: e for e in entries if e.get("type") == "access"}
    assert access["probe-42"]["path"] == "/health" and access["probe-42"]["status"] == 200
    assert access[generated]["method"] == "GET" and access[generated]["duration_ms"] >= 0


def test_credentials_in_a_query_string_never_reach_the_access_log(server):
    server.request(
        "/health?api_key=k-secret-1&x=1&Access-Token=k-secret-2",
        headers={"X-Request-ID": "redact-1"},
    )
    time.sleep(0.3)
    assert "k-secret" not in server.output()
    line = next(json.loads(text) for text in server.lines if '"redact-1"' in text)
    assert line["query"] == "api_key=[redacted]&x=1&Access-Token=[redacted]"


def test_gunicorns_control_socket_is_off_and_logs_no_error(server):
    assert "Control server" not in server.output() and "control" not in server.output().lower()


def test_server_writes_no_logs_file_and_exits_0_on_sigterm(server):
    assert not (ROOT / "logs.log").exists()
    assert server.stop() == 0


@pytest.mark.parametrize(
    "model_path, reason",
    [
        ("/nonexistent/model.pkl", "not found"),
        (str(ROOT / "gunicorn.conf.py"), "model card"),
    ],
)
def test_start_up_with_a_bad_model_exits_with_one_clear_line(model_path, reason):
    run = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PORT": str(free_port()), "MODEL_PATH": model_path},
    )
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and reason in errors[0] and "make train" in errors[0]
    assert "Traceback" not in run.stderr + run.stdout
