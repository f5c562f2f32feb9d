"""The image trains as a SageMaker training job runs it (`docker run IMAGE train`).

The session's one image (tests/conftest.py); /opt/ml laid out and mounted as SageMaker mounts
it (the channels and config read-only, the model and output directories writable by the image's
user); the signing key in Secrets Manager on moto's server, which the container reaches over
the host's network. What it trains, `docker run IMAGE serve` then serves, trusting the key
through MODEL_PUBLIC_KEY; refused data, a missing secret and unwritable mounts each end the job
with one line; SIGTERM stops it well inside SageMaker's 120 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from insurance_charges.core.schema import EXAMPLE_RECORD

from .aws import moto_server
from .containers import docker
from .test_sagemaker_container import CSV, csv_body, remove, start

pytestmark = pytest.mark.slow
NAME = f"insurance-charges-training-{os.getpid()}"
# moto keeps its state per process, shared by every moto server a run starts: the unit tests'
# secret of the usual name is already there, so this module's is its own.
SECRET = "insurance-charges/container-tests-signing-key"
IMAGE_USER = 10001  # the Dockerfile's USER
# Two candidates and three folds: the whole pipeline (checks, compare, calibrate, baseline,
# refit, card, signature) in a fraction of the full 18 x 10 folds' time.
QUICK = {"folds": "3", "candidates": "gbr,dummy"}
SIGTERM_EXIT = 128 + 15
SAGEMAKER_STOP_S = 120  # StopTrainingJob: SIGTERM, then SIGKILL 120 s later


@pytest.fixture(scope="module")
def aws_env(signing_key):
    """moto's server holding the signing key's secret; the environment a container needs."""
    import boto3

    with moto_server() as env:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_secret(
            Name=SECRET,
            SecretString=signing_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )
        yield env


def writable_by_the_image(directory: Path) -> Path:
    """A mount the image's user can write, as SageMaker's must be for this image."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(directory, IMAGE_USER, IMAGE_USER)
    else:
        directory.chmod(0o777)
    return directory


def opt_ml(root: Path, data: bytes, hyperparameters: dict | None = None) -> Path:
    """/opt/ml as SageMaker lays it out for a job with one `training` channel."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters or QUICK))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                "training": {
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
            }
        )
    )
    channel = root / "input" / "data" / "training"
    channel.mkdir(parents=True)
    (channel / "insurance.csv").write_bytes(data)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    writable_by_the_image(root / "model")
    writable_by_the_image(root / "output")
    return root


def train_args(root: Path, env: dict, *more: str, name: str | None = None) -> list[str]:
    """`docker run ... IMAGE train` as SageMaker runs it, on the host's network (moto)."""
    return [
        "run",
        "--name",
        name or NAME,
        "--network",
        "host",
        "-v",
        f"{root / 'input'}:/opt/ml/input:ro",
        "-v",
        f"{root / 'model'}:/opt/ml/model",
        "-v",
        f"{root / 'output'}:/opt/ml/output",
        *(item for key, value in env.items() for item in ("-e", f"{key}={value}")),
        *more,
    ]


def train(image: str, root: Path, env: dict, *more: str) -> subprocess.CompletedProcess:
    """Run the training container to its end; remove it."""
    try:
        return subprocess.run(
            ["docker", *train_args(root, env, *more), image, "train"],
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        remove(NAME)


@pytest.fixture(scope="module")
def trained(image, aws_env, data_path, tmp_path_factory):
    """The shared data set trained on in the image: the job's /opt/ml and its run."""
    root = opt_ml(tmp_path_factory.mktemp("opt-ml"), data_path.read_bytes())
    run = train(image, root, {**aws_env, "MODEL_SIGNING_KEY_SECRET": SECRET})
    return root, run


def test_the_job_writes_the_pipeline_card_and_signature_to_opt_ml_model(trained):
    root, run = trained
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (root / "model").iterdir()) == [
        "insurance-charges.card.json",
        "insurance-charges.pkl",
        "insurance-charges.sig.json",
    ]
    card = json.loads((root / "model" / "insurance-charges.card.json").read_text())
    assert card["training"]["cv_folds"] == 3 and card["training"]["candidates"] == ["gbr", "dummy"]
    assert not (root / "output" / "failure").exists()
    assert "BEGIN PRIVATE KEY" not in run.stdout + run.stderr  # the key is never logged


def test_serve_serves_what_train_wrote_with_the_key_made_trusted(
    image, trained, public_key_file, tmp_path, client
):
    root, run = trained
    assert run.returncode == 0, run.stderr[-3000:]
    keys = tmp_path / "keys"
    keys.mkdir()
    shutil.copy(public_key_file, keys / "model-key.pem")
    keys.chmod(0o755)
    (keys / "model-key.pem").chmod(0o644)
    for path in (root / "model").iterdir():
        path.chmod(0o644)  # SageMaker extracts model.tar.gz readable by all
    name = f"{NAME}-serve"
    try:
        served = start(
            name,
            image,
            8080,
            "-v",
            f"{root / 'model'}:/opt/ml/model:ro",
            "-v",
            f"{keys}:/keys:ro",
            "-e",
            "MODEL_PUBLIC_KEY=/keys/model-key.pem",
        )
        card = json.loads((root / "model" / "insurance-charges.card.json").read_text())
        assert served.get("/health")[1]["model_version"] == card["model_version"]
        records = [{**EXAMPLE_RECORD, "smoker": "no"}, {**EXAMPLE_RECORD, "smoker": "yes"}]
        status, _, answer = served.post("/invocations", csv_body(records), CSV)
        assert status == 200
        retrained = json.loads(answer)["predictions"]
        committed = client.post("/api/v1/predict", json=records).get_json()["predictions"]
        # Sane: the same data and estimator family as the committed model, so within 15% of
        # its estimates, and a smoker costs more.
        assert all(abs(r - c) <= 0.15 * c for r, c in zip(retrained, committed, strict=True))
        assert retrained[1] > retrained[0]
    finally:
        remove(name)


def test_damaged_data_fails_the_job_with_one_line_in_the_failure_file(
    image, aws_env, data_path, tmp_path
):
    damaged = data_path.read_bytes() + b"40,male,33.1,two,maybe,northeast,1000.0\n"
    root = opt_ml(tmp_path / "opt-ml", damaged)
    run = train(image, root, {**aws_env, "MODEL_SIGNING_KEY_SECRET": SECRET})
    failure = (root / "output" / "failure").read_text()
    assert run.returncode != 0 and failure.count("\n") == 1
    assert failure.startswith("Error: 1 rows refused by the schema, more than the 0 allowed")
    assert "Traceback" not in run.stderr and list((root / "model").iterdir()) == []


@pytest.mark.parametrize(
    "secret, line",
    [
        (None, "Error: MODEL_SIGNING_KEY_SECRET is not set;"),
        ("nowhere", "Error: MODEL_SIGNING_KEY_SECRET='nowhere': no such secret in this account"),
    ],
)
def test_a_missing_secret_is_one_line_before_any_training(
    image, aws_env, data_path, tmp_path, secret, line
):
    root = opt_ml(tmp_path / "opt-ml", data_path.read_bytes())
    env = {**aws_env, **({"MODEL_SIGNING_KEY_SECRET": secret} if secret else {})}
    run = train(image, root, env)
    assert run.returncode == 1 and (root / "output" / "failure").read_text().startswith(line)
    assert [x for x in run.stderr.splitlines() if x.startswith("Error:")] == [
        (root / "output" / "failure").read_text().strip()
    ]
    assert "step 1/6" not in run.stderr  # nothing was trained


def test_mounts_the_image_user_cannot_write_are_one_line(image, aws_env, data_path, tmp_path):
    root = opt_ml(tmp_path / "opt-ml", data_path.read_bytes())
    (root / "output").chmod(0o755)  # another owner's, as a root-owned mount would be
    if os.geteuid() == 0:
        os.chown(root / "output", 0, 0)
    run = train(image, root, {**aws_env, "MODEL_SIGNING_KEY_SECRET": SECRET})
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].startswith(
        "Error: /opt/ml/output cannot be written by user 10001 (Permission denied); the image "
        "runs as 10001: mount it owned by (or open to) that user"
    )


def test_sigterm_stops_the_job_well_inside_sagemakers_120_s(image, aws_env, data_path, tmp_path):
    root = opt_ml(tmp_path / "opt-ml", data_path.read_bytes(), {})  # the full 18 x 10 folds
    name = f"{NAME}-stop"
    env = {**aws_env, "MODEL_SIGNING_KEY_SECRET": SECRET}
    try:
        docker(*train_args(root, env, "-d", name=name), image, "train")
        deadline = time.monotonic() + 300
        while "step 2/6" not in docker("logs", name).stderr:  # comparing: workers busy
            assert time.monotonic() < deadline, docker("logs", name).stderr[-2000:]
            time.sleep(1)
        started = time.monotonic()
        docker("stop", "-t", str(SAGEMAKER_STOP_S), name, timeout=SAGEMAKER_STOP_S + 30)
        stopped_in = time.monotonic() - started
        exit_code = int(docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout)
    finally:
        remove(name)
    assert exit_code == SIGTERM_EXIT and stopped_in < 30  # measured 1-2 s; never SIGKILL's 137
    assert (root / "output" / "failure").read_text().startswith("Error: stopped by SIGTERM")
    assert list((root / "model").iterdir()) == []
