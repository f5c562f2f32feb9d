"""Serving MODEL_URI from the store with the real gunicorn: the version is downloaded once,
verified and shown; every way the store can fail stops start-up with one line, before any
worker serves."""

import hashlib
import json
import os
import subprocess
import sys

import boto3
import pytest

from devtools.gunicorn_server import GUNICORN, GunicornServer, free_port
from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import signature_path
from insurance_charges.registry import champion
from insurance_charges.registry.store import Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .conftest import ROOT

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import BUCKET, CREDENTIALS, run, start_moto  # noqa: E402

VERSION = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())["model_version"]
SIGNER = json.loads(signature_path(DEFAULT_MODEL_PATH).read_text())["key_id"]


@pytest.fixture
def published(capsys, store, committed_dir, data_path):
    """A store holding the committed model."""
    assert run(capsys, store, "publish", committed_dir, "--reference-data", data_path)[0] == 0
    return store


def start_up(env: dict) -> subprocess.CompletedProcess:
    """gunicorn with gunicorn.conf.py, as `make run` and the image start it, until it exits.

    A None in ``env`` unsets that variable.
    """
    environ = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
        **env,
    }
    command = [str(GUNICORN), "--config", "gunicorn.conf.py", "application:application"]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in environ.items() if v is not None},
    )


def test_the_service_serves_the_version_model_uri_names(published, aws):
    server = GunicornServer(workers=1, MODEL_URI=f"{published}/{VERSION}", **aws)
    try:
        server.wait_healthy(timeout=120)
        status, _, body = server.request("/api/v1/model")
        assert status == 200 and json.loads(body)["model_version"] == VERSION
        assert f"serving model {VERSION} from {published}/{VERSION}" in server.output()
    finally:
        server.stop()


def test_champion_is_resolved_once_and_the_version_logged(published, aws):
    champion.promote(
        Store(parse_store(published)),
        VERSION,
        by="test",
        gate=None,
        forced=True,
        reason="set up by a test",
    )
    server = GunicornServer(workers=1, MODEL_URI=f"{published}/champion", **aws)
    try:
        server.wait_healthy(timeout=120)
        assert json.loads(server.request("/health")[2])["model_version"] == VERSION
        assert f"MODEL_URI {published}/champion resolved to version {VERSION}" in server.output()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def locked_store():
    """A second moto that checks IAM: a bucket, and a user allowed nothing in it."""
    port = free_port()
    # The first three requests (bucket, user, key) are let through; every later one is checked.
    proc = start_moto(port, INITIAL_NO_AUTH_ACTION_COUNT="3")
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}
    boto3.client("s3", endpoint_url=endpoint, **_keys(env)).create_bucket(Bucket="locked")
    iam = boto3.client("iam", endpoint_url=endpoint, **_keys(env))
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    yield {
        **env,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    proc.terminate()
    proc.wait(timeout=30)


def _keys(env):
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": "us-east-1",
    }


def no_credentials(aws, store):
    """Every source in boto3's chain emptied, the instance metadata service included."""
    unset = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    )
    return {
        "MODEL_URI": f"{store}/champion",
        **dict.fromkeys(unset),
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def tampered(aws, store):
    key = parse_store(store).key(VERSION, "insurance-charges.pkl")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"\x80\x04 not the pipeline")
    return {"MODEL_URI": f"{store}/{VERSION}"}


def naming_a_path_outside(aws, store):
    """The manifest lists a .pth beside the signed files, at a path out of the directory: the
    signature still verifies, so only the names check stands between it and site-packages."""
    s3, body = boto3.client("s3"), b"import os; os.system('touch pwned')\n"
    name = "../../../../lib/python3.11/site-packages/evil.pth"
    s3.put_object(Bucket=BUCKET, Key=parse_store(store).key(VERSION, name), Body=body)
    key = parse_store(store).key(VERSION, "manifest.json")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    manifest["files"][name] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return {"MODEL_URI": f"{store}/{VERSION}"}


CASES = {
    "missing version": (
        lambda aws, store: {"MODEL_URI": f"{store}/2026.01.01-gbr-00000000"},
        "{store}/2026.01.01-gbr-00000000: version 2026.01.01-gbr-00000000 is "
        "not in the store {store}; `python -m insurance_charges.registry list` "
        "shows the published ones",
    ),
    "no champion yet": (
        lambda aws, store: {"MODEL_URI": f"{store}/champion"},
        "{store}/champion: {store} has no champion yet; promote a version",
    ),
    "missing bucket": (
        lambda aws, store: {"MODEL_URI": f"s3://no-such-bucket-{os.getpid()}/x/champion"},
        "s3://no-such-bucket-{pid}/x/champion: no such bucket reading "
        "s3://no-such-bucket-{pid}/x/champion.json; create it or fix the URI",
    ),
    "wrong checksum": (
        tampered,
        "{store}/{version}: {store}/{version}/insurance-charges.pkl does "
        "not match the SHA-256 its manifest records (changed in the "
        "store?)",
    ),
    "manifest naming a path outside": (
        naming_a_path_outside,
        "{store}/{version}: {store}/{version}/manifest.json is not a "
        "usable manifest of {version}: files lists '../../../../lib/",
    ),
    "untrusted signature": (
        lambda aws, store: {"MODEL_URI": f"{store}/{VERSION}", "MODEL_PUBLIC_KEY": aws["test_key"]},
        "{store}/{version}: model {store}/{version} is refused: it is signed "
        "by key {signer}, which this service does not trust",
    ),
    "no credentials": (
        no_credentials,
        "{store}/champion: no AWS credentials for reading {store}/champion.json: boto3 found none",
    ),
    "unreachable endpoint": (
        lambda aws, store: {"MODEL_URI": f"{store}/champion", "AWS_ENDPOINT_URL": aws["closed"]},
        "{store}/champion: cannot reach S3 reading {store}/champion.json "
        "after 4 attempts (EndpointConnectionError",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_store_that_cannot_serve_stops_start_up_with_one_line(
    published, aws, public_key_file, case
):
    make_env, message = CASES[case]
    context = {**aws, "test_key": str(public_key_file), "closed": f"http://127.0.0.1:{free_port()}"}
    done = start_up(make_env(context, published))
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    expected = "Error: MODEL_URI " + message.format(
        store=published, version=VERSION, pid=os.getpid(), signer=SIGNER
    )
    assert done.returncode != 0 and len(errors) == 1 and errors[0].startswith(expected), (
        done.stderr + done.stdout
    )
    assert "Booting worker" not in done.stderr and "Traceback" not in done.stderr + done.stdout
    if case == "unreachable endpoint":  # botocore's bounded retry: three retries, each logged
        retries = [
            json.loads(line)["message"]
            for line in done.stdout.splitlines()
            if "failed (EndpointConnectionError); attempt" in line
        ]
        assert [m.split("; ")[1].split(":")[0] for m in retries] == [
            "attempt 2 of 4",
            "attempt 3 of 4",
            "attempt 4 of 4",
        ]


def test_access_denied_by_the_stores_policy_stops_start_up_naming_the_permission(locked_store):
    done = start_up({**locked_store, "MODEL_URI": "s3://locked/insurance/champion"})
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert done.returncode != 0 and errors == [
        "Error: MODEL_URI s3://locked/insurance/champion: access denied reading "
        "s3://locked/insurance/champion.json; the instance profile or role needs s3:GetObject "
        "on arn:aws:s3:::locked/insurance/* (docs/model-releases.md#iam-policies)"
    ], done.stderr
    assert "Booting worker" not in done.stderr


def test_the_file_scorer_scores_with_the_version_model_uri_names(published, aws, tmp_path):
    rows = tmp_path / "claims.csv"
    rows.write_text("age,sex,bmi,children,smoker,region\n19,female,27.9,0,yes,southwest\n")
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **aws, "MODEL_URI": f"{published}/{VERSION}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "insurance_charges.scoring",
            str(rows),
            "-o",
            str(tmp_path / "scored.csv"),
            "--jobs",
            "1",
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert f"serving model {VERSION} from {published}/{VERSION}" in done.stderr
    assert (tmp_path / "scored.csv").read_text().count("\n") == 2
