"""The SageMaker launcher against moto's server over HTTP (botocore's Stubber where moto has no
UpdateEndpoint), and the model archive SageMaker extracts into /opt/ml/model."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from insurance_charges.core.model_signing import signature_path
from insurance_charges.platforms.sagemaker import launch
from insurance_charges.platforms.sagemaker.__main__ import main
from insurance_charges.serving.model import load_model
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .aws import this_process_on_moto
from .conftest import vouch_for

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/insurance-charges@sha256:" + "ab" * 32
ROLE = "arn:aws:iam::123456789012:role/insurance-charges-sagemaker"
MODEL_DATA = "s3://models/insurance-charges/2026.11.21-gbr-586c9afb/model.tar.gz"
MEMBERS = ["insurance-charges.pkl", "insurance-charges.card.json", "insurance-charges.sig.json"]
SOURCES = [DEFAULT_MODEL_PATH.with_name(name) for name in MEMBERS]


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """Exit status, the printed JSON (if any) and stderr of one command."""
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto's server on a free 127.0.0.1 port; boto3 finds it through AWS_ENDPOINT_URL alone.
    The bucket `models` holds the committed model's archive; `claims` holds a book to score."""
    import boto3

    with this_process_on_moto():
        s3 = boto3.client("s3")
        for bucket in ("models", "claims"):
            s3.create_bucket(Bucket=bucket)
        archive = tmp_path_factory.mktemp("archive") / "model.tar.gz"
        assert main(["archive", "-o", str(archive), "--upload", MODEL_DATA]) == 0
        s3.put_object(
            Bucket="claims",
            Key="in/2026-11/part-0001.csv",
            Body=b"19,female,27.9,0,yes,southwest\n70,male,33.1,2,no,northeast\n",
        )
        yield {"s3": s3, "sagemaker": boto3.client("sagemaker"), "archive": archive}


# ---- the archive ----------------------------------------------------------------------------


def test_the_archive_holds_pipeline_card_and_signature_at_its_top_level(aws):
    with tarfile.open(aws["archive"]) as tar:
        assert tar.getnames() == MEMBERS
        assert all(member.isfile() and member.mode == 0o644 for member in tar.getmembers())
        for name, source in zip(MEMBERS, SOURCES, strict=True):
            assert tar.extractfile(name).read() == source.read_bytes()


def test_load_model_accepts_the_archive_extracted_as_sagemaker_extracts_it(
    aws, tmp_path, real_model
):
    with tarfile.open(aws["archive"]) as tar:
        tar.extractall(tmp_path / "opt-ml-model", filter="data")
    model = load_model(tmp_path / "opt-ml-model" / "insurance-charges.pkl")  # signature checked
    assert model.version == real_model.version


def test_the_same_model_makes_the_same_archive_byte_for_byte(aws, tmp_path, capsys):
    status, done, _ = run(capsys, "archive", "-o", tmp_path / "again.tar.gz")
    assert status == 0 and done["model_version"] == load_model(DEFAULT_MODEL_PATH).version
    assert (tmp_path / "again.tar.gz").read_bytes() == aws["archive"].read_bytes()


def test_a_model_under_another_name_is_archived_under_the_names_the_image_reads(tmp_path, capsys):
    for source in SOURCES:  # a retrained model kept elsewhere: the signature covers the bytes
        shutil.copy(source, tmp_path / source.name.replace("insurance-charges", "retrained"))
    status, _, err = run(
        capsys,
        "archive",
        "--model",
        tmp_path / "retrained.pkl",
        "-o",
        tmp_path / "out" / "model.tar.gz",
    )
    assert status == 0, err
    with tarfile.open(tmp_path / "out" / "model.tar.gz") as tar:
        assert tar.getnames() == MEMBERS


def test_a_retrained_model_signed_by_a_key_made_trusted_is_archived(
    model_copy, signing_key, public_key_file, tmp_path, capsys, monkeypatch
):
    vouch_for(model_copy, signing_key)  # as `make train SIGNING_KEY=...` leaves it
    monkeypatch.setenv("MODEL_PUBLIC_KEY", str(public_key_file))
    status, _, err = run(capsys, "archive", "--model", model_copy, "-o", tmp_path / "m.tar.gz")
    assert status == 0, err
    with tarfile.open(tmp_path / "m.tar.gz") as tar:
        assert tar.extractfile(MEMBERS[2]).read() == signature_path(model_copy).read_bytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda model: model.with_name("insurance-charges.card.json").write_text("{}"),
            "is refused: ",
        ),
        (lambda model: model.with_name("insurance-charges.sig.json").unlink(), "is not signed"),
        (lambda model: model.unlink(), "not found"),
    ],
)
def test_a_model_that_would_not_load_is_never_archived(
    model_copy, tmp_path, capsys, damage, message
):
    damage(model_copy)
    status, done, err = run(capsys, "archive", "--model", model_copy, "-o", tmp_path / "m.tar.gz")
    assert status == 2 and done is None and not (tmp_path / "m.tar.gz").exists()
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1


def test_the_uploaded_archive_is_the_written_one(aws):
    bucket, key = MODEL_DATA.removeprefix("s3://").split("/", 1)
    body = aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == aws["archive"].read_bytes()


@pytest.mark.parametrize(
    "uri, message",
    [
        ("s3://no-such-bucket/m/model.tar.gz", "bucket no-such-bucket does not exist"),
        ("s3://models/m/model.zip", "SageMaker takes a .tar.gz"),
        ("models/m/model.tar.gz", "is not an S3 URI"),
    ],
)
def test_an_upload_nowhere_useful_is_one_line(aws, tmp_path, capsys, uri, message):
    status, _, err = run(capsys, "archive", "-o", tmp_path / "m.tar.gz", "--upload", uri)
    assert status == 2 and message in err and err.count("\n") == 1


def made(sagemaker) -> tuple[int, int, int, int]:
    """How many models, endpoint configurations, endpoints and transform jobs exist."""
    return (
        len(sagemaker.list_models()["Models"]),
        len(sagemaker.list_endpoint_configs()["EndpointConfigs"]),
        len(sagemaker.list_endpoints()["Endpoints"]),
        len(sagemaker.list_transform_jobs()["TransformJobSummaries"]),
    )


# ---- endpoints -----------------------------------------------------------------------------


def test_endpoint_creates_the_model_its_configuration_and_the_endpoint(aws, capsys):
    status, done, err = run(
        capsys,
        "endpoint",
        "claims-estimates",
        "--image",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--role",
        ROLE,
        "--wait",
    )
    assert status == 0, err
    assert (done["action"], done["status"]) == ("created", "InService")
    sagemaker = aws["sagemaker"]
    model = sagemaker.describe_model(ModelName=done["model"])
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == MODEL_DATA
    assert model["ExecutionRoleArn"] == ROLE
    config = sagemaker.describe_endpoint_config(EndpointConfigName=done["endpoint_config"])
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == done["model"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.large", 2)
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 120
    endpoint = sagemaker.describe_endpoint(EndpointName="claims-estimates")
    assert endpoint["EndpointConfigName"] == done["endpoint_config"]


def test_the_same_endpoint_command_again_changes_nothing(aws, capsys):
    argv = [
        "endpoint",
        "claims-again",
        "--image",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--role",
        ROLE,
        "--instance-type",
        "ml.m5.large",
        "--instance-count",
        "3",
    ]
    first, second = run(capsys, *argv)[1], run(capsys, *argv)[1]
    assert (first["action"], second["action"]) == ("created", "unchanged")
    assert second["endpoint_config"] == first["endpoint_config"]
    config = aws["sagemaker"].describe_endpoint_config(EndpointConfigName=first["endpoint_config"])
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 3


def stubbed_sagemaker(endpoint: dict):
    """A SageMaker client whose calls botocore's Stubber checks against the service model (and
    records): the model and configuration are new, the endpoint is ``endpoint``."""
    import boto3
    from botocore.stub import ANY, Stubber

    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    calls = []
    client.meta.events.register(
        "before-parameter-build.sagemaker",
        lambda params, model, **_: calls.append((model.name, params)),
    )
    stub = Stubber(client)
    missing = {"service_error_code": "ValidationException", "service_message": "Could not find it."}
    stub.add_client_error("describe_model", **missing)
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"},
        {"ModelName": ANY, "ExecutionRoleArn": ROLE, "PrimaryContainer": ANY},
    )
    stub.add_client_error("describe_endpoint_config", **missing)
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"},
        {"EndpointConfigName": ANY, "ProductionVariants": ANY},
    )
    stub.add_response("describe_endpoint", endpoint, {"EndpointName": "claims-estimates"})
    return client, stub, calls


def deploy(client, s3, model_data: str) -> str:
    """What the endpoint command does, on ``client``."""
    model = launch.ensure_model(client, s3, IMAGE, model_data, ROLE)
    config = launch.ensure_endpoint_config(client, "claims-estimates", model, "ml.c5.large", 2)
    return launch.deploy_endpoint(client, "claims-estimates", config)


def existing_endpoint(status: str, **more) -> dict:
    """DescribeEndpoint's answer for an endpoint made from an older configuration."""
    return {
        "EndpointName": "claims-estimates",
        "EndpointConfigName": "claims-estimates-old",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/claims-estimates",
        "EndpointStatus": status,
        "CreationTime": 0,
        "LastModifiedTime": 0,
        **more,
    }


def test_a_new_archive_moves_the_existing_endpoint_to_a_new_configuration(aws):
    from botocore.stub import ANY

    newer = MODEL_DATA.replace("586c9afb", "0123abcd")
    bucket, key = newer.removeprefix("s3://").split("/", 1)
    aws["s3"].put_object(Bucket=bucket, Key=key, Body=aws["archive"].read_bytes())
    client, stub, calls = stubbed_sagemaker(existing_endpoint("InService"))
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": "arn:aws:sagemaker:::endpoint/e"},
        {"EndpointName": "claims-estimates", "EndpointConfigName": ANY},
    )
    with stub:
        assert deploy(client, aws["s3"], newer) == "updated"
        stub.assert_no_pending_responses()
    made = dict(calls)
    assert made["CreateModel"]["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": newer}
    assert (
        made["CreateEndpointConfig"]["ProductionVariants"][0]["ModelName"]
        == made["CreateModel"]["ModelName"]
    )
    assert (
        made["UpdateEndpoint"]["EndpointConfigName"]
        == made["CreateEndpointConfig"]["EndpointConfigName"]
        != "claims-estimates-old"
    )


def test_an_endpoint_that_is_not_in_service_is_left_alone_with_the_reason(aws):
    client, stub, _ = stubbed_sagemaker(existing_endpoint("Failed", FailureReason="ping failed"))
    with stub, pytest.raises(launch.LaunchError, match=r"is Failed \(ping failed\); .*delete"):
        deploy(client, aws["s3"], MODEL_DATA)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--role": "claims-role"}, "--role 'claims-role': give an IAM role ARN"),
        ({"--role": "arn:aws:iam::123:role/x"}, "give an IAM role ARN"),
        ({"--image": IMAGE.split("@")[0] + ":latest"}, "give the released image by digest"),
        ({"--model-data": "s3://models/model.zip"}, "SageMaker takes a .tar.gz archive"),
        (
            {"--model-data": "s3://no-such-bucket/m/model.tar.gz"},
            "bucket no-such-bucket does not exist",
        ),
        ({"--model-data": "s3://models/nothing/model.tar.gz"}, "no such object; upload it first"),
        ({"name": "claims_estimates"}, "endpoint name 'claims_estimates'"),
        ({"name": "e" * 51}, "use 1 to 50 letters"),
        ({"--instance-count": "0"}, "--instance-count 0: give at least 1"),
    ],
)
def test_an_unusable_endpoint_request_is_one_line_and_creates_nothing(aws, capsys, change, message):
    options = {
        "name": "claims-bad",
        "--image": IMAGE,
        "--model-data": MODEL_DATA,
        "--role": ROLE,
        **change,
    }
    before = made(aws["sagemaker"])
    argv = ["endpoint", options.pop("name")] + [part for pair in options.items() for part in pair]
    status, done, err = run(capsys, *argv)
    assert status == 2 and done is None and message in err and err.count("\n") == 1
    assert made(aws["sagemaker"]) == before


def test_without_credentials_the_command_says_how_to_give_them(aws, capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status, _, err = run(
        capsys, "endpoint", "claims-x", "--image", IMAGE, "--model-data", MODEL_DATA, "--role", ROLE
    )
    assert status == 2 and err == (
        "Error: no AWS credentials for calling SageMaker: boto3 found none (environment, "
        "AWS_PROFILE, ~/.aws, instance profile); configure them (`aws configure`, AWS_PROFILE) "
        "or run where a role applies\n"
    )


def test_without_a_region_the_command_says_how_to_give_one(aws, capsys, monkeypatch, tmp_path):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    status, _, err = run(
        capsys,
        "transform",
        "--image",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--role",
        ROLE,
        "--input",
        "s3://claims/in/",
        "--output",
        "s3://claims/o/",
    )
    assert status == 2 and err == (
        "Error: no AWS region for calling SageMaker; set "
        "AWS_DEFAULT_REGION (e.g. us-east-1) or a profile's region\n"
    )


# ---- Batch Transform -----------------------------------------------------------------------


def test_transform_starts_a_job_over_the_prefix_as_the_container_contract_expects(aws, capsys):
    status, done, err = run(
        capsys,
        "transform",
        "--image",
        IMAGE,
        "--model-data",
        MODEL_DATA,
        "--role",
        ROLE,
        "--input",
        "s3://claims/in/2026-11/",
        "--output",
        "s3://claims/out/2026-11/",
        "--name",
        "book-2026-11",
        "--wait",
    )
    assert status == 0, err
    assert (done["transform_job"], done["status"]) == ("book-2026-11", "Completed")
    job = aws["sagemaker"].describe_transform_job(TransformJobName="book-2026-11")
    assert job["ModelName"] == done["model"]
    assert aws["sagemaker"].describe_model(ModelName=done["model"])["PrimaryContainer"] == {
        "Image": IMAGE,
        "ModelDataUrl": MODEL_DATA,
    }
    assert job["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://claims/in/2026-11/"}
        },
        "ContentType": "text/csv",
        "SplitType": "Line",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": "s3://claims/out/2026-11/",
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    assert (job["BatchStrategy"], job["MaxPayloadInMB"]) == ("MULTI_RECORD", 6)
    # ml.c5.xlarge: 4 vCPUs, so 4 workers, so 4 mini-batches in flight; 4 x 6 MB <= 100 MB
    assert job["MaxConcurrentTransforms"] == 4
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1}


def test_a_transform_job_is_named_by_its_start_time_unless_named():
    name = launch.default_job_name()
    assert launch.JOB_NAME.fullmatch(name) and name.startswith("insurance-charges-20")


@pytest.mark.parametrize(
    "instance_type, payload_mb, given, expected",
    [
        ("ml.c5.large", 6, None, 2),  # one mini-batch per worker, one worker per vCPU
        ("ml.c5.xlarge", 6, None, 4),
        ("ml.m5.4xlarge", 6, None, 16),  # 16 x 6 = 96 MB, within SageMaker's 100
        ("ml.c5.9xlarge", 6, None, 16),  # 36 vCPUs, but 17 x 6 would exceed 100 MB
        ("ml.c5.xlarge", 50, None, 2),
        ("ml.c5.xlarge", 100, None, 1),
        ("ml.g4dn.xlarge", 6, 3, 3),  # given: any instance type
    ],
)
def test_concurrency_is_the_workers_per_instance_within_sagemakers_budget(
    instance_type, payload_mb, given, expected
):
    assert launch.transform_concurrency(instance_type, payload_mb, given) == expected


@pytest.mark.parametrize(
    "instance_type, payload_mb, given, message",
    [
        ("ml.c5.xlarge", 6, 17, "must be from 1 to 100 MB"),
        ("ml.c5.xlarge", 6, 0, "must be from 1 to 100 MB"),
        ("ml.c5.xlarge", 0, None, "SageMaker allows 1 to 100"),
        ("ml.c5.xlarge", 101, None, "SageMaker allows 1 to 100"),
        ("ml.g4dn.xlarge", 6, None, "set --max-concurrent-transforms to its vCPU count"),
    ],
)
def test_concurrency_beyond_what_sagemaker_takes_is_refused(
    instance_type, payload_mb, given, message
):
    with pytest.raises(launch.LaunchError, match=message):
        launch.transform_concurrency(instance_type, payload_mb, given)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--input": "s3://claims/in/2027-01/"}, "no objects under it; upload it first"),
        ({"--input": "s3://no-such-bucket/in/"}, "bucket no-such-bucket does not exist"),
        ({"--output": "s3://no-such-bucket/out/"}, "--output s3://no-such-bucket/out/: bucket"),
        ({"--name": "book_2026"}, "--name 'book_2026'"),
        ({"--instance-count": "0"}, "--instance-count 0: give at least 1"),
        ({"--max-concurrent-transforms": "20"}, "20 x --max-payload-mb 6 must be from 1 to 100"),
    ],
)
def test_an_unusable_transform_request_is_one_line_and_starts_nothing(aws, capsys, change, message):
    options = {
        "--image": IMAGE,
        "--model-data": MODEL_DATA,
        "--role": ROLE,
        "--input": "s3://claims/in/2026-11/",
        "--output": "s3://claims/out/x/",
        "--name": "book-refused",
        **change,
    }
    argv = ["transform"] + [part for pair in options.items() for part in pair]
    before = made(aws["sagemaker"])
    status, done, err = run(capsys, *argv)
    assert status == 2 and done is None and message in err and err.count("\n") == 1
    assert made(aws["sagemaker"]) == before


def test_a_refusal_from_aws_is_one_line_naming_the_call():
    from botocore.exceptions import ClientError

    from insurance_charges.platforms.sagemaker.__main__ import _aws_reason

    refused = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "CreateModel"
    )
    told = _aws_reason(refused)
    assert (str(told), told.status) == (
        "access denied calling CreateModel; check the IAM policy of the role or user (not allowed)",
        2,
    )
