"""The container checks a release runs against the exact image it is about to push.

The image is started as Elastic Beanstalk starts it (Dockerrun's container port, the
.ebextensions environment properties) on a read-only root with a tmpfs /tmp, as the tests
and EB's instances run it. It must answer /health with 200, estimate the example record
exactly as this checkout's estimator core does in-process, and run nothing as root.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..core.schema import EXAMPLE_RECORD
from . import eb_files
from .docker_cli import docker, last_line
from .errors import ReleaseError

# Start-up to the first 200 from /health measured 1.7 to 3.5 s (docs/deploy/elastic-beanstalk.md,
# docker/measure.py); a loaded shared
# machine gets a wide margin, as the Dockerfile's HEALTHCHECK start period does.
START_SECONDS = 120
POLL_SECONDS = 0.5
REQUEST_SECONDS = 30


def check_image(image: str, root: Path) -> None:
    """Run the checks against ``image``; ReleaseError naming the first that fails."""
    port = eb_files.container_port(root)
    name = f"insurance-charges-release-check-{os.getpid()}"
    # The container's own /tmp, a fresh tmpfs (as EB's read-only root needs), not this host's.
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",  # nosec B108
        "--publish",
        f"127.0.0.1::{port}",
        *[f"--env={key}={value}" for key, value in eb_files.environment_properties(root).items()],
        image,
    )
    try:
        expected = in_process_answer()  # the model loads here while the container starts
        url = _wait_until_healthy(name, port)
        _check_prediction(url, expected)
        _check_nothing_runs_as_root(name)
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)


def in_process_answer() -> dict:
    """The API's answer for the example record from this checkout's own estimator core."""
    from ..core.estimates import estimate
    from ..paths import DEFAULT_MODEL_PATH
    from ..serving.model import load_model

    return estimate(load_model(DEFAULT_MODEL_PATH), dict(EXAMPLE_RECORD)).to_json()


def _request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        # Always http://127.0.0.1:<the port docker published>: no caller-given scheme reaches it.
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:  # nosec B310
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:  # closed even when reading its body fails
            return err.code, err.read()


def _wait_until_healthy(name: str, port: int) -> str:
    """The container's URL once /health answers 200; ReleaseError if it stops or never does."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        if docker("inspect", "--format", "{{.State.Running}}", name).strip() != "true":
            logs = subprocess.run(
                ["docker", "logs", name], capture_output=True, text=True, timeout=60
            )
            raise ReleaseError(
                "the image's container stopped before answering /health: "
                f"{last_line(logs.stderr, logs.stdout)}"
            )
        try:
            host_port = docker("port", name, f"{port}/tcp").split(":")[-1].strip()
            url = f"http://127.0.0.1:{host_port}"
            if _request(url + "/health")[0] == 200:
                return url
        except (OSError, ReleaseError):
            pass  # not listening yet, or just stopped: the next round says which
        if time.monotonic() > deadline:
            raise ReleaseError(
                f"the image's container did not answer /health with 200 within "
                f"{START_SECONDS} s; run it by hand and read `docker logs`"
            )
        time.sleep(POLL_SECONDS)


def _check_prediction(url: str, expected: dict) -> None:
    status, body = _request(url + "/api/v1/predict", EXAMPLE_RECORD)
    got = json.loads(body) if status == 200 else {}
    if (
        got.get("prediction") != expected["prediction"]
        or got.get("model_version") != expected["model_version"]
    ):
        raise ReleaseError(
            f"the image estimates the example record as {status} {got or body!r}, "
            f"but this checkout's core gives {expected['prediction']} with model "
            f"{expected['model_version']}; the image is not this commit's"
        )


def _check_nothing_runs_as_root(name: str) -> None:
    table = [
        line.split(None, 2)
        for line in docker("top", name, "-eo", "pid,uid,args").splitlines()[1:]
        if line.strip()
    ]
    as_root = [row[-1] for row in table if row[1] == "0"]
    if not table or as_root:
        raise ReleaseError(
            f"the image runs {as_root or 'no process'} as root; it must run as "
            "its app user (the Dockerfile's USER)"
        )
