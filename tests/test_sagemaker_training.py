"""SageMaker training without training: the container's contract (hyperparameters, channels,
mounts, the signing key from Secrets Manager, the failure file) and the launcher's training job,
against moto's server over HTTP (botocore's Stubber for a job that fails or moves).

Training itself, in the image as SageMaker runs it, is tests/test_sagemaker_container.py's.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization

from insurance_charges.core.model_signing import signature_path
from insurance_charges.errors import UserError
from insurance_charges.platforms.sagemaker import training_job, training_launch
from insurance_charges.platforms.sagemaker.__main__ import main
from insurance_charges.platforms.sagemaker.training_job import JobPaths, TrainingJobError
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .aws import this_process_on_moto

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/insurance-charges@sha256:" + "cd" * 32
ROLE = "arn:aws:iam::123456789012:role/insurance-charges-training"
SECRET = "insurance-charges/model-signing-key"
HEADER = "age,sex,bmi,children,smoker,region,charges\n"
ROWS = "19,female,27.9,0,yes,southwest,16884.924\n18,male,33.77,1,no,southeast,1725.5523\n"


def pem(key) -> str:
    """The private key as Secrets Manager would hold it."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def opt_ml(
    root: Path,
    hyperparameters: dict | None = None,
    channels: dict | None = None,
    files: dict | None = None,
) -> JobPaths:
    """/opt/ml as SageMaker lays it out, under ``root``."""
    paths = JobPaths(root)
    for directory in (paths.config, paths.model, paths.output, paths.channel("training")):
        directory.mkdir(parents=True, exist_ok=True)
    (paths.config / "hyperparameters.json").write_text(json.dumps(hyperparameters or {}))
    (paths.config / "inputdataconfig.json").write_text(
        json.dumps(
            channels
            if channels is not None
            else {
                "training": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
            }
        )
    )
    for name, text in (
        files if files is not None else {"training/data.csv": HEADER + ROWS}
    ).items():
        target = root / "input" / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return paths


# ---- hyperparameters --------------------------------------------------------------------------


def test_hyperparameters_given_as_strings_become_trainings_options():
    settings = training_job.check_hyperparameters(
        {
            "seed": "7",
            "folds": "5",
            "candidates": "lr, gbr,dummy",
            "interval_level": "0.9",
            "max_rejected": "3",
            "data_sha256": "a" * 64,
        }
    )
    assert (
        settings.seed,
        settings.folds,
        settings.candidates,
        settings.interval_level,
        settings.max_rejected,
        settings.data_sha256,
    ) == (7, 5, ("lr", "gbr", "dummy"), 0.9, 3, "a" * 64)


def test_no_hyperparameters_train_as_the_training_command_does():
    from insurance_charges.training.options import CANDIDATES, FOLDS, SESSION_ID

    settings = training_job.check_hyperparameters({})
    assert (
        settings.seed,
        settings.folds,
        settings.candidates,
        settings.interval_level,
        settings.max_rejected,
        settings.data_sha256,
    ) == (SESSION_ID, FOLDS, CANDIDATES, 0.8, 0, None)


@pytest.mark.parametrize(
    "given, line",
    [
        (
            {"learning_rate": "0.1"},
            "unknown hyperparameter 'learning_rate'; this image takes seed, "
            "folds, candidates, interval_level, max_rejected, data_sha256",
        ),
        ({"seed": "-1"}, "hyperparameter seed='-1': give a whole number from 0 to 4294967295"),
        ({"seed": 7}, "hyperparameter seed: int value; SageMaker passes every value as a string"),
        ({"folds": "1"}, "hyperparameter folds='1': give a whole number from 2 to 20"),
        ({"folds": "ten"}, "hyperparameter folds='ten': give a whole number from 2 to 20"),
        (
            {"candidates": "gbr,xgboost"},
            "hyperparameter candidates: unknown 'xgboost'; give a "
            "comma-separated list of PyCaret regressors from lr,",
        ),
        ({"candidates": ""}, "hyperparameter candidates: none given;"),
        ({"candidates": "gbr,gbr"}, "hyperparameter candidates: one named twice;"),
        ({"interval_level": "1.5"}, "hyperparameter interval_level='1.5': give the share"),
        ({"interval_level": "nan"}, "hyperparameter interval_level='nan': give the share"),
        ({"max_rejected": "1e3"}, "hyperparameter max_rejected='1e3': give a whole number"),
        ({"data_sha256": "ABC"}, "hyperparameter data_sha256='ABC': give the training data's"),
    ],
)
def test_a_hyperparameter_the_image_cannot_use_is_one_line(given, line):
    with pytest.raises(UserError) as refused:
        training_job.check_hyperparameters(given)
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value)


def test_an_unreadable_hyperparameters_file_is_one_line(tmp_path):
    paths = opt_ml(tmp_path)
    (paths.config / "hyperparameters.json").write_text("[1, 2]")
    with pytest.raises(TrainingJobError, match="hyperparameters.json holds a JSON list, not"):
        training_job.read_settings(paths.config / "hyperparameters.json")


# ---- channels and their files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "channels, line",
    [
        ({"train": {}}, "unknown input channel 'train'; give a 'training' channel"),
        ({"holdout": {}}, "no 'training' input channel;"),
        (
            {"training": {"TrainingInputMode": "Pipe"}},
            "channel 'training': input mode 'Pipe'; this image reads files: use File mode",
        ),
    ],
)
def test_channels_the_image_cannot_read_are_one_line(tmp_path, channels, line):
    with pytest.raises(TrainingJobError, match=f"^{line}"):
        training_job.read_channels(opt_ml(tmp_path, channels=channels))


def test_a_holdout_channel_is_read_beside_the_training_one(tmp_path):
    paths = opt_ml(tmp_path, channels={"holdout": {}, "training": {}})
    assert training_job.read_channels(paths) == ("training", "holdout")


def test_several_csv_files_of_a_channel_are_read_as_one_under_one_header(tmp_path):
    paths = opt_ml(
        tmp_path,
        files={
            "training/b.csv": HEADER + ROWS.splitlines()[1] + "\n",
            "training/a.csv": HEADER + ROWS.splitlines()[0],
        },
    )
    gathered = training_job.gather_csv(paths.channel("training"), tmp_path / "all.csv")
    assert gathered.read_text() == HEADER + ROWS


@pytest.mark.parametrize(
    "files, line",
    [
        (
            {"training/a.csv": HEADER + ROWS, "training/b.csv": "age,sex\n1,2\n"},
            "b.csv starts with another header than a.csv;",
        ),
        (
            {"training/a.csv": HEADER + ROWS, "training/notes.txt": "x"},
            "notes.txt in channel 'training' is not a .csv file;",
        ),
    ],
)
def test_a_channel_of_mismatched_files_is_one_line(tmp_path, files, line):
    paths = opt_ml(tmp_path, files=files)
    with pytest.raises(TrainingJobError, match=f"^{line}"):
        training_job.gather_csv(paths.channel("training"), tmp_path / "all.csv")


def test_an_empty_channel_is_one_line(tmp_path):
    paths = opt_ml(tmp_path, files={})
    with pytest.raises(TrainingJobError, match="holds no files; the channel's S3 prefix is empty"):
        training_job.gather_csv(paths.channel("training"), tmp_path / "all.csv")


# ---- the signing key --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto's server; boto3 in this process reaches it through AWS_ENDPOINT_URL alone."""
    import boto3

    with this_process_on_moto() as env:
        yield {
            "env": env,
            "secrets": boto3.client("secretsmanager"),
            "s3": boto3.client("s3"),
            "sagemaker": boto3.client("sagemaker"),
        }


def test_the_signing_key_is_read_from_the_secret_the_environment_names(moto, signing_key):
    import boto3

    moto["secrets"].create_secret(Name=SECRET, SecretString=pem(signing_key))
    key = training_job.signing_key(
        {"MODEL_SIGNING_KEY_SECRET": SECRET}, lambda: boto3.client("secretsmanager")
    )
    assert key.public_key().public_bytes_raw() == signing_key.public_key().public_bytes_raw()


@pytest.mark.parametrize(
    "environ, stored, line",
    [
        ({}, None, "MODEL_SIGNING_KEY_SECRET is not set; set it (the training job's Environment)"),
        (
            {"MODEL_SIGNING_KEY_SECRET": "nowhere"},
            None,
            "MODEL_SIGNING_KEY_SECRET='nowhere': no such secret in this account and region",
        ),
        (
            {"MODEL_SIGNING_KEY_SECRET": "not-a-key"},
            "-----BEGIN PRIVATE KEY-----\nsecret-bytes\n",
            "MODEL_SIGNING_KEY_SECRET='not-a-key': the secret is not an Ed25519 private key in PEM",
        ),
    ],
)
def test_a_missing_or_unusable_secret_is_one_line_that_never_shows_it(moto, environ, stored, line):
    import boto3

    if stored:
        moto["secrets"].create_secret(Name=environ["MODEL_SIGNING_KEY_SECRET"], SecretString=stored)
    with pytest.raises(TrainingJobError) as refused:
        training_job.signing_key(environ, lambda: boto3.client("secretsmanager"))
    assert str(refused.value).startswith(line) and "secret-bytes" not in str(refused.value)


# ---- the job's failure file -------------------------------------------------------------------


def test_refused_data_fails_the_job_with_one_error_line_in_the_failure_file(
    tmp_path, moto, signing_key, monkeypatch, capsys
):
    moto["secrets"].create_secret(Name="failing-job-key", SecretString=pem(signing_key))
    monkeypatch.setenv("MODEL_SIGNING_KEY_SECRET", "failing-job-key")
    paths = opt_ml(
        tmp_path,
        files={"training/data.csv": HEADER + ROWS + "40,male,33.1,two,maybe,northeast,1.0\n"},
    )
    assert training_job.main(tmp_path) == 1
    failure = paths.failure.read_text()
    assert failure.startswith("Error: 1 rows refused by the schema, more than the 0 allowed")
    assert failure.count("\n") == 1 and failure.strip() in capsys.readouterr().err
    assert list(paths.model.iterdir()) == []


def test_the_failure_file_holds_what_failure_reason_shows(tmp_path):
    paths = opt_ml(tmp_path)
    training_job.write_failure(paths, "Error: " + "x" * 2000)
    assert len(paths.failure.read_text()) == training_job.FAILURE_REASON_CHARS + 1  # its newline


def test_a_trained_model_is_moved_into_the_model_directory_only_once_signed(
    tmp_path, moto, signing_key, monkeypatch
):
    """Training is stood in for (its own tests train): what the job does around it is checked."""
    from insurance_charges.training import train

    moto["secrets"].create_secret(Name="moving-job-key", SecretString=pem(signing_key))
    seen = {}

    def trained(data, out_dir, key, options):
        seen.update(rows=data.read_text(), options=options, model_dir=list(paths.model.iterdir()))
        out_dir.mkdir()
        for source in DEFAULT_MODEL_PATH.parent.glob(DEFAULT_MODEL_PATH.stem + ".*"):
            shutil.copy(source, out_dir / source.name)
        return {"model_version": "v", "estimator": "E"}

    monkeypatch.setattr(train, "train", trained)
    paths = opt_ml(
        tmp_path,
        {"folds": "3", "candidates": "gbr,dummy"},
        {"training": {}, "holdout": {}},
        {"training/data.csv": HEADER + ROWS, "holdout/h.csv": HEADER + ROWS},
    )
    training_job.run_job(paths, {"MODEL_SIGNING_KEY_SECRET": "moving-job-key"})
    assert seen["rows"] == HEADER + ROWS and seen["model_dir"] == []
    assert (seen["options"].folds, seen["options"].candidates) == (3, ("gbr", "dummy"))
    assert sorted(p.name for p in paths.model.iterdir()) == sorted(
        [
            DEFAULT_MODEL_PATH.name,
            DEFAULT_MODEL_PATH.with_suffix(".card.json").name,
            signature_path(DEFAULT_MODEL_PATH).name,
        ]
    )
    assert (paths.output / "data" / "holdout.csv").read_text() == HEADER + ROWS


# ---- the launcher's training job --------------------------------------------------------------


@pytest.fixture
def buckets(moto):
    """Data under s3://training-data/week/, an output bucket, a registry bucket."""
    for bucket in ("training-data", "training-output", "registry"):
        moto["s3"].create_bucket(Bucket=bucket)
    moto["s3"].put_object(
        Bucket="training-data", Key="week/insurance.csv", Body=(HEADER + ROWS).encode()
    )
    return moto


def train_command(*more: str) -> list[str]:
    """The launcher's train command on moto's buckets."""
    return [
        "train",
        "--image",
        IMAGE,
        "--role",
        ROLE,
        "--data",
        "s3://training-data/week/",
        "--output",
        "s3://training-output/jobs/",
        "--signing-key-secret",
        SECRET,
        *more,
    ]


def test_train_creates_the_job_sagemaker_runs_as_the_container_contract_expects(buckets, capsys):
    status = main(train_command("--name", "weekly-1", "--hyperparameter", "folds=5"))
    printed = json.loads(capsys.readouterr().out)
    job = buckets["sagemaker"].describe_training_job(TrainingJobName="weekly-1")
    assert status == 0 and printed["training_job"] == "weekly-1"
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["RoleArn"] == ROLE and job["HyperParameters"] == {"folds": "5"}
    assert [
        (c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"]) for c in job["InputDataConfig"]
    ] == [("training", "s3://training-data/week/")]
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://training-output/jobs/"
    assert job["ResourceConfig"]["InstanceType"] == training_launch.TRAINING_INSTANCE_TYPE
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == training_launch.MAX_RUNTIME_S


def test_the_secret_id_reaches_the_job_through_its_environment():
    """moto keeps no Environment: botocore's Stubber checks the request against the model."""
    import boto3

    sm = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    s3 = _StubbedS3()
    with Stubber(sm) as stub:
        stub.add_response(
            "create_training_job",
            {"TrainingJobArn": "arn:x"},
            {**_expected_request(), "Environment": {"MODEL_SIGNING_KEY_SECRET": SECRET}},
        )
        training_launch.start_training(
            sm,
            s3,
            "weekly-2",
            image=IMAGE,
            role=ROLE,
            data="s3://data-bucket/week/",
            output="s3://output-bucket/jobs/",
            holdout=None,
            instance_type="ml.m5.large",
            secret_id=SECRET,
            hyperparameters={},
        )
        stub.assert_no_pending_responses()


class _StubbedS3:
    """An S3 client whose buckets and prefixes all exist."""

    def head_bucket(self, **_):
        return {}

    def list_objects_v2(self, Prefix, **_):
        return {"Contents": [{"Key": Prefix + "x.csv"}]}


def _expected_request() -> dict:
    return {
        "TrainingJobName": "weekly-2",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {},
        "InputDataConfig": [training_launch._channel("training", "s3://data-bucket/week/")],
        "OutputDataConfig": {"S3OutputPath": "s3://output-bucket/jobs/"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": training_launch.VOLUME_GB,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training_launch.MAX_RUNTIME_S},
    }


@pytest.mark.parametrize(
    "change, line",
    [
        (["--hyperparameter", "epochs=3"], "Error: unknown hyperparameter 'epochs'"),
        (["--hyperparameter", "folds"], "Error: --hyperparameter 'folds': write KEY=VALUE"),
        (
            ["--image", "x.dkr.ecr.us-east-1.amazonaws.com/insurance-charges:latest"],
            "Error: --image 'x.dkr.ecr.us-east-1.amazonaws.com/insurance-charges:latest': give the "
            "released image by digest",
        ),
        (
            ["--data", "s3://training-data/nothing/"],
            "Error: --data s3://training-data/nothing/: no objects under it",
        ),
        (
            ["--output", "s3://no-such-bucket/x/"],
            "Error: --output s3://no-such-bucket/x/: bucket no-such-bucket does not exist",
        ),
        (["--signing-key-secret", ""], "Error: --signing-key-secret is empty;"),
        (["--name", "a_b"], "Error: --name 'a_b': use 1 to 63 letters"),
    ],
)
def test_an_unusable_training_request_is_one_line_and_starts_nothing(buckets, capsys, change, line):
    before = len(buckets["sagemaker"].list_training_jobs()["TrainingJobSummaries"])
    assert main(train_command(*change)) == 2
    assert capsys.readouterr().err.startswith(line)
    assert len(buckets["sagemaker"].list_training_jobs()["TrainingJobSummaries"]) == before


def test_waiting_says_each_new_status_and_a_failed_job_is_its_failure_reason():
    said = []
    answers = iter(
        [
            {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
            {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
            {
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Training",
                "SecondaryStatusTransitions": [
                    {"StatusMessage": "Training image download completed."}
                ],
            },
            {
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": "AlgorithmError: Error: 3 rows refused by the schema",
            },
        ]
    )

    class Jobs:
        def describe_training_job(self, TrainingJobName):
            return next(answers)

    with pytest.raises(
        training_launch.LaunchError,
        match="^training job w is Failed: AlgorithmError: Error: 3 rows refused",
    ):
        training_launch.wait_training(Jobs(), "w", said.append, sleep=lambda _: None)
    assert said == [
        "training job w: InProgress / Starting",
        "training job w: InProgress / Training: Training image download completed.",
        "training job w: Failed / Failed",
    ]


def archive_of(model_path: Path) -> bytes:
    """model.tar.gz as SageMaker tars /opt/ml/model: the files at its top level."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for source in sorted(model_path.parent.glob(model_path.stem + ".*")):
            tar.add(source, arcname=source.name)
    return out.getvalue()


def test_a_completed_job_is_published_to_the_registry_from_its_model_archive(
    buckets, capsys, monkeypatch, data_path
):
    monkeypatch.delenv("MODEL_PUBLIC_KEY", raising=False)  # the committed model's key is trusted
    # moto completes a job at once, its model at SageMaker's OUTPUT/JOB/output/model.tar.gz:
    # the committed model's archive is put there first, as the job would have.
    buckets["s3"].put_object(
        Bucket="training-output",
        Key="jobs/weekly-4/output/model.tar.gz",
        Body=archive_of(DEFAULT_MODEL_PATH),
    )
    status = main(
        train_command(
            "--name",
            "weekly-4",
            "--publish",
            "s3://registry/models",
            "--reference-data",
            str(data_path),
        )
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    done = json.loads(out)
    assert done["status"] == "Completed" and done["published"] == "s3://registry/models"
    assert "training job weekly-4: Completed" in err and "published " in err
    listed = buckets["s3"].list_objects_v2(Bucket="registry", Prefix="models/")["Contents"]
    assert any(item["Key"].endswith("/insurance-charges.sig.json") for item in listed)


def test_an_archive_that_is_not_a_models_is_refused_before_the_registry_sees_it(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("model/insurance-charges.pkl")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    class S3:
        def download_file(self, bucket, key, path):
            Path(path).write_bytes(out.getvalue())

    with pytest.raises(training_launch.LaunchError, match="is not a model archive of this image"):
        training_launch.fetch_model(S3(), "s3://models-bucket/k/model.tar.gz", tmp_path)
