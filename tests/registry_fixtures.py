"""Shared by the registry's tests: moto's S3 over HTTP, a fresh store, the CLI run in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devtools.gunicorn_server import free_port
from insurance_charges.core.model_signing import TRUSTED_KEYS
from insurance_charges.registry import cli
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .conftest import ROOT

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "releases"


def start_moto(port: int, **env) -> subprocess.Popen:
    """moto's server (the console script beside this interpreter) on 127.0.0.1:port."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not answer within 60 s")


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 (and STS, ECS) server over HTTP on a free port, for the whole run."""
    port = free_port()
    # moto's ECS counts this many tasks of a new service as running, so its deployment reads
    # COMPLETED as a real one does once the tasks are up.
    proc = start_moto(port, MOTO_ECS_SERVICE_RUNNING="1")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """The environment boto3 reads pointed at moto, as any AWS_ENDPOINT_URL would."""
    env = {"AWS_ENDPOINT_URL": moto_endpoint, **CREDENTIALS}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("MODEL_STORE", raising=False)
    import boto3

    s3 = boto3.client("s3")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return env


@pytest.fixture
def store(aws):
    """A fresh, empty store: its own prefix in the bucket."""
    return f"s3://{BUCKET}/test-{uuid.uuid4().hex[:12]}"


def run(capsys, store: str | None, *argv) -> tuple[int, str, str]:
    """The CLI in-process: exit status, stdout, stderr."""
    capsys.readouterr()
    status = cli.main([*(["--store", store] if store else []), *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def run_module(env: dict, *argv) -> subprocess.CompletedProcess:
    """``python -m insurance_charges.registry`` as the DAG and a person run it."""
    return subprocess.run(
        [sys.executable, "-m", "insurance_charges.registry", *map(str, argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


@pytest.fixture
def committed_dir(tmp_path) -> Path:
    """A trained model directory: a copy of the committed model (signed by the shipped key)."""
    target = tmp_path / "committed"
    target.mkdir()
    for src in DEFAULT_MODEL_PATH.parent.glob(DEFAULT_MODEL_PATH.stem + ".*"):
        shutil.copy(src, target / src.name)
    return target


def trust_both(public_key_file: Path, tmp_path: Path) -> Path:
    """A MODEL_PUBLIC_KEY file trusting the tests' key and the shipped one (a key rotation)."""
    both = tmp_path / "trusted.pem"
    both.write_bytes(public_key_file.read_bytes() + TRUSTED_KEYS.read_bytes())
    return both
