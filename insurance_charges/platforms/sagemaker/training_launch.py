"""A SageMaker training job on the released image: created, followed, and its model fetched.

boto3 only, as ``launch`` (credentials, region and endpoint from boto3's own chain). The job
runs the image as ``docker run IMAGE train`` (``training_job``), with the data under
``--data`` as its ``training`` channel, the signing key's secret id in its Environment, and
the model written to ``--output``/JOB/output/model.tar.gz, which ``serve`` and the registry read.
"""

from __future__ import annotations

import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from .launch import (
    IMAGE_BY_DIGEST,
    JOB_NAME,
    ROLE_ARN,
    LaunchError,
    check,
    require_bucket,
    require_objects,
    split_s3,
)
from .training_job import (
    HOLDOUT,
    SECRET_VARIABLE,
    TRAINING,
    TrainingJobError,
    check_hyperparameters,
)

# 2 vCPUs and 8 GiB: a full training run peaked at 932 MiB (the command and its joblib workers
# together), so 8 GiB is 8 times that; its time is CPU-bound (about 30 s on 2 idle cores, 322 s
# on 2 cores shared at load 8.5), and more vCPUs would only shorten a run that is already
# short (docs/deploy/sagemaker-training.md#instance-type).
TRAINING_INSTANCE_TYPE = "ml.m5.large"
# The job's whole life, download and upload included: 11 times the slowest run measured (322 s
# on a machine shared at load 8.5), so a slow instance or a larger data set finishes, and a
# stuck job is stopped within the hour.
MAX_RUNTIME_S = 3600
# The instance's volume holds the channels and /opt/ml/model: a few MB here. 5 GB leaves room
# for data sets a thousand times this one.
VOLUME_GB = 5
PROGRESS_DELAY_S = 30  # between DescribeTrainingJob calls while waiting: 120 calls an hour
ENDED = ("Completed", "Failed", "Stopped")
ARCHIVE_MEMBERS_MAX = 16  # the pipeline, card and signature; more is not this image's archive


def default_training_job_name() -> str:
    """insurance-charges-train-YYYYMMDD-HHMMSS (UTC): job names are unique per region."""
    return "insurance-charges-train-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def parse_hyperparameters(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as the job's hyperparameters, checked as the image will check them."""
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LaunchError(f"--hyperparameter {pair[:80]!r}: write KEY=VALUE, e.g. folds=5")
        given[key] = value
    try:
        check_hyperparameters(given)
    except TrainingJobError as exc:
        raise LaunchError(str(exc)) from None
    return given


def _channel(name: str, uri: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "InputMode": "File",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def start_training(
    sm,
    s3,
    job: str,
    *,
    image: str,
    role: str,
    data: str,
    output: str,
    holdout: str | None,
    instance_type: str,
    secret_id: str,
    hyperparameters: dict[str, str],
) -> dict:
    """Create the training job once everything it names is known to be usable; its request."""
    check(job, JOB_NAME, "--name", "use 1 to 63 letters, digits and hyphens")
    check(
        image,
        IMAGE_BY_DIGEST,
        "--image",
        "give the released image by digest, "
        "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:... (dist/release.json)",
    )
    check(role, ROLE_ARN, "--role", "give an IAM role ARN, arn:aws:iam::123456789012:role/NAME")
    if not secret_id:
        raise LaunchError(
            "--signing-key-secret is empty; name the Secrets Manager secret "
            "holding the model-signing key (docs/deploy/sagemaker-training.md)"
        )
    require_objects(s3, data, "--data", exact=False)
    if holdout:
        require_objects(s3, holdout, "--holdout", exact=False)
    require_bucket(s3, output, "--output")
    channels = [_channel(TRAINING, data)] + ([_channel(HOLDOUT, holdout)] if holdout else [])
    request = {
        "TrainingJobName": job,
        "RoleArn": role,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": VOLUME_GB,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_S},
        # The id only: the key stays in Secrets Manager, read by the job's role.
        "Environment": {SECRET_VARIABLE: secret_id},
    }
    sm.create_training_job(**request)
    return request


def wait_training(
    sm,
    job: str,
    say: Callable[[str], None],
    delay: float = PROGRESS_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Follow the job until it ends, saying each new status; its description once Completed."""
    last = None
    while True:
        found = sm.describe_training_job(TrainingJobName=job)
        status = found["TrainingJobStatus"]
        now = (status, found.get("SecondaryStatus"))
        if now != last:
            transitions = found.get("SecondaryStatusTransitions") or [{}]
            message = transitions[-1].get("StatusMessage", "")
            say(
                f"training job {job}: {status} / {now[1] or '-'}"
                + (f": {message}" if message else "")
            )
            last = now
        if status in ENDED:
            break
        sleep(delay)
    if status != "Completed":
        raise LaunchError(
            f"training job {job} is {status}: " + (found.get("FailureReason") or "no reason given")
        )
    return found


def fetch_model(s3, uri: str, dest: Path) -> Path:
    """Download the job's model.tar.gz and extract its plain files into ``dest``."""
    bucket, key = split_s3(uri, "the job's model")
    archive = dest / "model.tar.gz"
    s3.download_file(bucket, key, str(archive))
    model_dir = dest / "model"
    model_dir.mkdir()
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name not in (".", "./")]
        if len(members) > ARCHIVE_MEMBERS_MAX or any(
            not m.isfile() or "/" in m.name.removeprefix("./") for m in members
        ):
            raise LaunchError(
                f"{uri} is not a model archive of this image (plain files at its "
                "top level: the pipeline, card and signature)"
            )
        # Extraction filters came in Python 3.11.4; Debian 12's 3.11.2 (the image's stand-in
        # base) lacks them. The members are already checked: plain files at the top level.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(model_dir, members=members, filter="data")
        else:
            tar.extractall(model_dir, members=members)  # nosec B202 (members checked above)
    return model_dir
