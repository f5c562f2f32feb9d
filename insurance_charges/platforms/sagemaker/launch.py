"""SageMaker endpoints and Batch Transform jobs for a released image and a model archive in S3.

boto3 only: credentials, region and endpoint come from boto3's own chain (AWS_PROFILE, the
AWS_* variables, an instance or task role, AWS_ENDPOINT_URL). A SageMaker model or endpoint
configuration never changes once made, so each is named after a digest of what it holds: the
same command run again reuses them, and a new image or archive makes new ones and moves the
endpoint onto them (UpdateEndpoint: traffic moves once the new instances answer /ping).
"""

from __future__ import annotations

import hashlib
import re
import time

from ...aws.errors import code, kind, message
from ...aws.uri import BadS3Uri, parse_s3
from ...errors import UserError

# Real-time endpoints. 2 vCPUs, compute-optimised and not burstable: predictions are CPU-bound
# and the image runs one sync worker per vCPU (0.9 ms of CPU per one-record request, measured).
ENDPOINT_INSTANCE_TYPE = "ml.c5.large"
# Two instances: SageMaker tries to place an endpoint's instances in different Availability
# Zones, so one zone or instance can fail without an outage (as the two instances on EB, two
# tasks on ECS); AWS Config's rule sagemaker-endpoint-config-prod-instance-count flags one.
ENDPOINT_INSTANCE_COUNT = 2
# How long SageMaker waits for /ping to pass on a new instance. 60 s is its minimum; start-up
# measured 1.7 to 3.5 s from `docker run` to the first 200 (model load and the fast path's
# proof), and the archive is 60 KB to download: 120 s is a wide margin on a slow instance,
# and an image that cannot load its model fails the deployment in 2 minutes rather than in
# SageMaker's default window (4 minutes in its developer guide).
STARTUP_HEALTH_CHECK_S = 120
VARIANT = "AllTraffic"

# Batch Transform. 4 vCPUs, so 4 workers score 4 mini-batches at once; a larger book takes more
# instances, each given whole input files (SageMaker never splits a file across instances).
TRANSFORM_INSTANCE_TYPE = "ml.c5.xlarge"
TRANSFORM_INSTANCE_COUNT = 1
# 6 MB mini-batches: SageMaker's default and its real-time payload limit, the largest body the
# image's /invocations contract answers within 60 s (about 150,000 CSV rows).
MAX_PAYLOAD_MB = 6
# SageMaker refuses MaxConcurrentTransforms x MaxPayloadInMB above 100.
PAYLOAD_BUDGET_MB = 100
CONTENT_TYPES = ("text/csv", "application/jsonlines")  # what SplitType=Line can cut into records

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
IMAGE_BY_DIGEST = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,49}$")  # 63 with a 13-char suffix
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# vCPUs by size in the families where large = 2, xlarge = 4, Nxlarge = 4N.
REGULAR_FAMILY = re.compile(
    r"^ml\.(?:c5|c5d|c5n|c6i|c7i|m5|m5d|m6i|m7i|r5|r5d|r6i|r7i)\."
    r"(?:(large)|(\d*)xlarge)$"
)


class LaunchError(UserError):
    """The launch cannot go on; the message is the one line to show."""


def check(value: str, pattern: re.Pattern, what: str, fix: str) -> str:
    """``value`` if it matches ``pattern``, else a LaunchError naming it and how to fix it."""
    if not pattern.fullmatch(value):
        raise LaunchError(f"{what} {value!r}: {fix}")
    return value


def instance_vcpus(instance_type: str) -> int | None:
    """The vCPUs of an ml.* instance type of a regular family, else None."""
    found = REGULAR_FAMILY.fullmatch(instance_type)
    if not found:
        return None
    return 2 if found.group(1) else 4 * int(found.group(2) or 1)


def transform_concurrency(instance_type: str, payload_mb: int, given: int | None) -> int:
    """Mini-batches in flight per instance: one per worker (vCPU), within SageMaker's budget."""
    if not 1 <= payload_mb <= PAYLOAD_BUDGET_MB:
        raise LaunchError(f"--max-payload-mb {payload_mb}: SageMaker allows 1 to 100")
    if given is None:
        vcpus = instance_vcpus(instance_type)
        if vcpus is None:
            raise LaunchError(
                f"cannot tell the vCPUs of {instance_type}; set "
                "--max-concurrent-transforms to its vCPU count (one worker each)"
            )
        return max(1, min(vcpus, PAYLOAD_BUDGET_MB // payload_mb))
    if given < 1 or given * payload_mb > PAYLOAD_BUDGET_MB:
        raise LaunchError(
            f"--max-concurrent-transforms {given} x --max-payload-mb {payload_mb}"
            f" must be from 1 to {PAYLOAD_BUDGET_MB} MB (SageMaker's limit)"
        )
    return given


def split_s3(uri: str, what: str) -> tuple[str, str]:
    """Bucket and key (or prefix) of an s3:// URI, checked by aws.uri's rules."""
    try:
        parsed = parse_s3(uri)
    except BadS3Uri as exc:
        raise LaunchError(f"{what}: {exc}") from None
    return parsed.bucket, parsed.key


def _missing(error) -> bool:
    """Whether a boto3 ClientError says the thing asked about does not exist."""
    return kind(error) in ("missing", "no-bucket") or (
        code(error) == "ValidationException" and "Could not find" in message(error)
    )


def require_bucket(s3, uri: str, what: str) -> tuple[str, str]:
    """Bucket and key of ``uri``, once its bucket is known to exist."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri, what)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _missing(exc):
            raise LaunchError(
                f"{what} {uri}: bucket {bucket} does not exist; create it or name another"
            ) from None
        raise
    return bucket, key


def require_objects(s3, uri: str, what: str, exact: bool) -> None:
    """Fail unless ``uri`` names an object (``exact``) or a prefix with at least one object."""
    bucket, key = require_bucket(s3, uri, what)
    found = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not found or (exact and found[0]["Key"] != key):
        missing = "no such object" if exact else "no objects under it"
        raise LaunchError(
            f"{what} {uri}: {missing}; upload it first (docs/deploy/sagemaker.md"
            "#deploying-an-endpoint-and-batch-transform-jobs)"
        )


def _digest(*parts: object) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:12]


def _exists(describe, **name) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe(**name)
    except ClientError as exc:
        if _missing(exc):
            return False
        raise
    return True


def ensure_model(sm, s3, image: str, model_data: str, role: str) -> str:
    """The SageMaker model for this image, archive and role, made if it is new; its name."""
    check(
        image,
        IMAGE_BY_DIGEST,
        "--image",
        "give the released image by digest, "
        "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:... (dist/release.json)",
    )
    check(role, ROLE_ARN, "--role", "give an IAM role ARN, arn:aws:iam::123456789012:role/NAME")
    if not model_data.endswith(".tar.gz"):
        raise LaunchError(
            f"--model-data {model_data!r}: SageMaker takes a .tar.gz archive; "
            "make one with `make model-archive`"
        )
    require_objects(s3, model_data, "--model-data", exact=True)
    name = f"insurance-charges-{_digest(image, model_data, role)}"
    if not _exists(sm.describe_model, ModelName=name):
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": image, "ModelDataUrl": model_data},
        )
    return name


def check_endpoint(endpoint: str, count: int) -> None:
    """Refuse an endpoint name SageMaker would refuse, or no instances, before anything is made."""
    check(endpoint, ENDPOINT_NAME, "endpoint name", "use 1 to 50 letters, digits and hyphens")
    if count < 1:
        raise LaunchError(f"--instance-count {count}: give at least 1 (2 for two zones)")


def ensure_endpoint_config(sm, endpoint: str, model: str, instance_type: str, count: int) -> str:
    """The endpoint configuration serving ``model`` on these instances; its name."""
    check_endpoint(endpoint, count)
    name = f"{endpoint}-{_digest(model, instance_type, count, STARTUP_HEALTH_CHECK_S)}"
    if not _exists(sm.describe_endpoint_config, EndpointConfigName=name):
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": model,
                    "InstanceType": instance_type,
                    "InitialInstanceCount": count,
                    "InitialVariantWeight": 1.0,
                    "ContainerStartupHealthCheckTimeoutInSeconds": STARTUP_HEALTH_CHECK_S,
                }
            ],
        )
    return name


def deploy_endpoint(sm, endpoint: str, config: str) -> str:
    """Create the endpoint, or move an existing one to ``config``; what was done."""
    from botocore.exceptions import ClientError

    try:
        current = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if not _missing(exc):
            raise
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        return "created"
    status = current["EndpointStatus"]
    if current["EndpointConfigName"] == config and status == "InService":
        return "unchanged"
    if status != "InService":
        raise LaunchError(
            f"endpoint {endpoint} is {status}"
            + (f" ({current['FailureReason']})" if current.get("FailureReason") else "")
            + "; wait until it is InService, or delete it if Failed"
        )
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return "updated"


def wait_endpoint(sm, endpoint: str, delay: int = 30) -> None:
    """Until the endpoint is InService (at most an hour); fail with SageMaker's reason."""
    from botocore.exceptions import WaiterError

    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": delay, "MaxAttempts": 3600 // delay}
        )
    except WaiterError:
        reason = sm.describe_endpoint(EndpointName=endpoint).get("FailureReason", "no reason given")
        raise LaunchError(f"endpoint {endpoint} did not come into service: {reason}") from None


def default_job_name() -> str:
    """insurance-charges-YYYYMMDD-HHMMSS (UTC): transform job names are unique per region."""
    return "insurance-charges-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def start_transform(
    sm,
    s3,
    job: str,
    model: dict,
    source: str,
    target: str,
    *,
    instance_type: str,
    count: int,
    payload_mb: int,
    concurrency: int | None,
    content_type: str,
    accept: str,
) -> dict:
    """Start a Batch Transform job over every object under ``source``; its request.

    ``model`` holds ensure_model's image, model_data and role: the model is made only once
    everything else is known to be usable.
    """
    check(job, JOB_NAME, "--name", "use 1 to 63 letters, digits and hyphens")
    if count < 1:
        raise LaunchError(f"--instance-count {count}: give at least 1")
    in_flight = transform_concurrency(instance_type, payload_mb, concurrency)
    require_objects(s3, source, "--input", exact=False)
    require_bucket(s3, target, "--output")
    request = {
        "TransformJobName": job,
        "ModelName": ensure_model(sm, s3, **model),
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": payload_mb,
        "MaxConcurrentTransforms": in_flight,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": content_type,
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": target, "Accept": accept, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": count},
    }
    sm.create_transform_job(**request)
    return request


def wait_transform(sm, job: str, delay: int = 30) -> None:
    """Until the job ends (at most a day); fail unless it Completed."""
    from botocore.exceptions import WaiterError

    waiter = sm.get_waiter("transform_job_completed_or_stopped")
    try:
        waiter.wait(
            TransformJobName=job, WaiterConfig={"Delay": delay, "MaxAttempts": 86400 // delay}
        )
    except WaiterError:
        pass  # the waiter also gives up on Failed: the job's own status says which
    found = sm.describe_transform_job(TransformJobName=job)
    if found["TransformJobStatus"] != "Completed":
        raise LaunchError(
            f"transform job {job} is {found['TransformJobStatus']}: "
            + found.get("FailureReason", "no reason given")
        )
