"""The aws module: one client factory (botocore's standard retries), one strict S3 URI parser,
one explainer turning any botocore failure into the line to show."""

import ast
import logging
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from devtools.gunicorn_server import free_port
from insurance_charges.aws import clients
from insurance_charges.aws.errors import AwsError, attempts, call, explain, kind
from insurance_charges.aws.uri import BadS3Uri, S3Uri, parse_s3, parse_s3_object

AWS = Path(clients.__file__).parent
GET = ("reading s3://b-1/k", "s3:GetObject on arn:aws:s3:::b-1/k")


# ---- the client factory ------------------------------------------------------------------------


def test_every_client_retries_in_botocores_standard_mode_with_timeouts():
    made = clients.client("s3", region="us-east-1")
    assert made.meta.config.retries == {
        "mode": "standard",
        "total_max_attempts": clients.MAX_ATTEMPTS,
    }
    assert (made.meta.config.connect_timeout, made.meta.config.read_timeout) == (
        clients.CONNECT_TIMEOUT,
        clients.READ_TIMEOUT,
    )


def test_an_unreachable_endpoint_is_tried_max_attempts_times_each_retry_logged(monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    s3 = clients.client("s3", region="us-east-1")
    with (
        caplog.at_level(logging.WARNING, logger=clients.__name__),
        pytest.raises(AwsError) as failed,
    ):
        call(lambda: s3.head_object(Bucket="b-1", Key="k"), *GET)
    retries = [r.getMessage() for r in caplog.records if r.name == clients.__name__]
    assert [m.split("; ")[1].split(":")[0] for m in retries] == [
        "attempt 2 of 4",
        "attempt 3 of 4",
        "attempt 4 of 4",
    ]
    assert all(m.startswith("AWS HeadObject failed (EndpointConnectionError)") for m in retries)
    assert failed.value.kind == "unreachable"
    assert str(failed.value).startswith(
        "cannot reach S3 reading s3://b-1/k after 4 attempts (EndpointConnectionError: "
    )


def test_a_lazy_client_is_made_once_on_first_use_and_never_before(monkeypatch):
    made = []
    monkeypatch.setattr(clients, "client", lambda service: made.append(service) or object())
    get = clients.lazy("s3")
    assert made == []
    assert get() is get() and made == ["s3"]


def test_the_aws_package_imports_nothing_from_the_project():
    for path in AWS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name} imports {node.module} from above aws"
                assert not (node.module or "").startswith(("insurance_charges", "flask"))
            elif isinstance(node, ast.Import):
                assert not any(
                    a.name.startswith(("insurance_charges", "flask")) for a in node.names
                ), path.name


# ---- the S3 URI parser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, uri",
    [
        ("s3://claims/in/2026-11.csv", S3Uri("claims", "in/2026-11.csv")),
        ("s3://a.b-c/", S3Uri("a.b-c", "")),
        ("s3://models", S3Uri("models", "")),
        ("s3://claims/in/2026-11/", S3Uri("claims", "in/2026-11/")),
        ("s3://claims/ä ö/x=1+2.csv", S3Uri("claims", "ä ö/x=1+2.csv")),
    ],
)
def test_a_well_formed_uri_is_its_bucket_and_key(text, uri):
    assert parse_s3(text) == uri


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("claims/in.csv", "'claims/in.csv' is not an S3 URI; write s3://bucket/key"),
        ("S3://claims/in.csv", "is not an S3 URI"),
        ("https://claims.s3.amazonaws.com/in.csv", "is not an S3 URI"),
        ("s3:///in.csv", "'' is not an S3 bucket name"),
        ("s3://ab/in.csv", "'ab' is not an S3 bucket name (3-63 lower-case letters"),
        ("s3://" + "a" * 64 + "/k", "is not an S3 bucket name"),
        ("s3://Claims/in.csv", "'Claims' is not an S3 bucket name"),
        ("s3://claims_2026/in.csv", "is not an S3 bucket name"),
        ("s3://-claims/in.csv", "is not an S3 bucket name"),
        ("s3://claims-/in.csv", "is not an S3 bucket name"),
        ("s3://cla..ims/in.csv", "is not an S3 bucket name"),
        ("s3://192.168.5.4/in.csv", "is not an S3 bucket name"),
        ("s3://xn--claims/in.csv", "is not an S3 bucket name"),
        ("s3://claims-s3alias/in.csv", "is not an S3 bucket name"),
        ("s3://claims//in.csv", "has an empty, '.' or '..' segment"),
        ("s3://claims/in//x.csv", "has an empty, '.' or '..' segment"),
        ("s3://claims/in/../secrets.csv", "has an empty, '.' or '..' segment"),
        ("s3://claims/./in.csv", "has an empty, '.' or '..' segment"),
        ("s3://claims/in\n.csv", "holds a control character"),
        ("s3://claims/in\x7f.csv", "holds a control character"),
        ("s3://claims/" + "k" * 1025, "longer than S3's 1,024 bytes"),
        ("s3://claims/" + "é" * 513, "longer than S3's 1,024 bytes"),  # 1,026 bytes in UTF-8
    ],
)
def test_a_malformed_uri_is_refused_saying_what_is_wrong(text, complaint):
    with pytest.raises(BadS3Uri) as refused:
        parse_s3(text)
    assert complaint in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("text", ["s3://claims", "s3://claims/", "s3://claims/in/"])
def test_an_object_uri_must_name_a_key(text):
    with pytest.raises(BadS3Uri, match=r"is not an S3 object URI; write s3://bucket/key$"):
        parse_s3_object(text)


def test_an_object_arn_names_the_object_or_everything_under_a_prefix():
    assert parse_s3("s3://claims/in/a.csv").object_arn() == "arn:aws:s3:::claims/in/a.csv"
    assert parse_s3("s3://claims/in/").object_arn() == "arn:aws:s3:::claims/in/*"


# ---- the explainer -----------------------------------------------------------------------------


def refused(
    code: str, operation: str = "GetObject", text: str = "as S3 said it", retries: int = 0
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": text}, "ResponseMetadata": {"RetryAttempts": retries}},
        operation,
    )


@pytest.mark.parametrize(
    "exc, line",
    [
        (
            NoCredentialsError(),
            (
                "no AWS credentials for reading s3://b-1/k: boto3 found none "
                "(environment, AWS_PROFILE, ~/.aws, instance profile); give the "
                "instance profile or role s3:GetObject on arn:aws:s3:::b-1/k"
            ),
        ),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            "no AWS credentials for reading s3://b-1/k: boto3 found none",
        ),
        (
            NoRegionError(),
            (
                "no AWS region for reading s3://b-1/k; set AWS_DEFAULT_REGION (e.g. "
                "us-east-1) or a profile's region"
            ),
        ),
        (
            refused("AccessDenied"),
            (
                "access denied reading s3://b-1/k; the instance profile or role "
                "needs s3:GetObject on arn:aws:s3:::b-1/k"
            ),
        ),
        (refused("403", "HeadObject"), "access denied reading s3://b-1/k; the instance profile"),
        (
            refused("InvalidAccessKeyId"),
            (
                "the AWS credentials were refused reading s3://b-1/k "
                "(InvalidAccessKeyId); check AWS_ACCESS_KEY_ID / "
                "AWS_PROFILE or the instance profile"
            ),
        ),
        (refused("ExpiredToken"), "the AWS credentials were refused reading s3://b-1/k"),
        (
            refused("PermanentRedirect"),
            (
                "S3 answered from another region reading s3://b-1/k "
                "(PermanentRedirect); set AWS_DEFAULT_REGION to the "
                "bucket's region"
            ),
        ),
        (refused("NoSuchBucket"), "no such bucket reading s3://b-1/k; create it or fix the URI"),
        (refused("404", "HeadBucket"), "no such bucket reading s3://b-1/k"),
        (refused("NoSuchKey"), "no such object reading s3://b-1/k (NoSuchKey); check the URI"),
        (refused("404", "HeadObject"), "no such object reading s3://b-1/k (404); check the URI"),
        (
            refused("PreconditionFailed", "PutObject"),
            "changed by someone else while reading s3://b-1/k; run the command again",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            (
                "cannot reach S3 reading s3://b-1/k after 4 attempts (EndpointConnectionError: "
                "Could not "
                'connect to the endpoint URL: "http://127.0.0.1:9"); check the network, '
                "AWS_ENDPOINT_URL and the region"
            ),
        ),
        (ConnectTimeoutError(endpoint_url="http://10.0.0.1"), "cannot reach S3 reading s3://b-1/k"),
        (
            refused("SlowDown", text="Please reduce your request rate.", retries=3),
            (
                "S3 was unavailable reading s3://b-1/k after 4 attempts (SlowDown: Please reduce "
                "your "
                "request rate.); try again later"
            ),
        ),
        (
            refused("InvalidObjectState"),
            ("S3 failed reading s3://b-1/k (InvalidObjectState: as S3 said it)"),
        ),
    ],
)
def test_each_failure_is_one_line_saying_what_where_and_how_to_fix_it(exc, line):
    said = explain(exc, *GET)
    assert said.startswith(line) and "\n" not in said


def test_without_a_permission_a_denial_quotes_aws_and_credentials_say_how_to_configure():
    assert explain(
        refused("AccessDeniedException", "CreateModel", "User x is not authorized"),
        "calling CreateModel",
    ) == (
        "access denied calling CreateModel; check the IAM "
        "policy of the role or user (User x is not "
        "authorized)"
    )
    assert explain(NoCredentialsError(), "calling SageMaker").endswith(
        "configure them (`aws configure`, AWS_PROFILE) or run where a role applies"
    )


def test_a_guide_is_cited_where_a_permission_must_be_granted():
    said = explain(refused("AccessDenied"), *GET, guide="docs/model-releases.md#iam-policies")
    assert said.endswith("s3:GetObject on arn:aws:s3:::b-1/k (docs/model-releases.md#iam-policies)")


def test_the_attempts_said_are_the_ones_made():
    assert attempts(refused("SlowDown", retries=1)) == 2
    exc = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    exc.aws_attempts = 3  # as the clients' retry hook records it
    assert "after 3 attempts" in explain(exc, *GET)


@pytest.mark.parametrize(
    "exc, expected",
    [
        (refused("NoSuchKey"), "missing"),
        (refused("NoSuchBucket"), "no-bucket"),
        (refused("412", "PutObject"), "conflict"),
        (refused("AccessDenied"), "denied"),
        (refused("Whatever"), "other"),
        (NoCredentialsError(), "credentials"),
    ],
)
def test_the_kind_of_a_failure_is_what_callers_act_on(exc, expected):
    assert kind(exc) == expected


def test_call_returns_what_succeeds_and_raises_what_fails_as_one_line():
    assert call(lambda: 42, *GET) == 42

    def fails():
        raise refused("NoSuchKey")

    with pytest.raises(AwsError, match=r"^no such object reading s3://b-1/k") as failed:
        call(fails, *GET)
    assert failed.value.kind == "missing"
