"""Any botocore failure as the one line to show: what failed, where, and how to fix it.

``doing`` says what was being done and on what ("reading s3://b/k", "calling UpdateService on
prod/web"); ``permission`` names the IAM action and resource it needs ("s3:GetObject on
arn:aws:s3:::b/k"), so a denial or missing credentials say exactly what to grant.
"""

from __future__ import annotations

from .clients import MAX_ATTEMPTS

# Error codes by what they mean for the person reading the line.
DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "AllAccessDisabled",
        "AccountProblem",
        "UnauthorizedOperation",
    }
)
BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
    }
)
WRONG_REGION = frozenset(
    {
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "301",
        "IllegalLocationConstraintException",
    }
)
NO_BUCKET = frozenset({"NoSuchBucket"})
MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
BUSY = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
    }
)
# What a kind of failure is, for callers that act on it (the registry's Missing, Conflict).
KINDS = (
    "credentials",
    "region",
    "denied",
    "refused-credentials",
    "wrong-region",
    "no-bucket",
    "missing",
    "conflict",
    "unreachable",
    "busy",
    "other",
)


def code(exc: BaseException) -> str:
    """The service's error code of a ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def message(exc: BaseException) -> str:
    """The service's own message of a ClientError, else botocore's text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error", {}).get("Message"):
        return str(response["Error"]["Message"])
    return str(exc) or type(exc).__name__


def attempts(exc: BaseException) -> int:
    """How many attempts the call made before it failed with ``exc``."""
    noted = getattr(exc, "aws_attempts", None)  # set by clients' retry hook
    if isinstance(noted, int):
        return noted
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
    return MAX_ATTEMPTS


def kind(exc: BaseException) -> str:
    """What ``exc`` means, one of KINDS."""
    from botocore import exceptions as b

    if isinstance(exc, (b.NoCredentialsError, b.PartialCredentialsError)):
        return "credentials"
    if isinstance(exc, b.NoRegionError):
        return "region"
    if isinstance(
        exc,
        (
            b.EndpointConnectionError,
            b.ConnectTimeoutError,
            b.ReadTimeoutError,
            b.ConnectionClosedError,
        ),
    ):
        return "unreachable"
    error = code(exc)
    if error == "404" and getattr(exc, "operation_name", "") == "HeadBucket":
        return "no-bucket"  # a HEAD answer carries no code: the operation says what is missing
    for name, codes in (
        ("denied", DENIED),
        ("refused-credentials", BAD_CREDENTIALS),
        ("wrong-region", WRONG_REGION),
        ("no-bucket", NO_BUCKET),
        ("missing", MISSING),
        ("conflict", CONFLICT),
        ("busy", BUSY),
    ):
        if error in codes:
            return name
    return "other"


def explain(
    exc: BaseException, doing: str, permission: str = "", *, service: str = "S3", guide: str = ""
) -> str:
    """One line for ``exc`` raised while ``doing``: what failed, where, and what to do.

    ``guide`` (a docs page) is cited where a permission must be granted.
    """
    see = f" ({guide})" if guide else ""
    grant = (
        f"give the instance profile or role {permission}{see}"
        if permission
        else "configure them (`aws configure`, AWS_PROFILE) or run where a role applies"
    )
    found = kind(exc)
    error = code(exc)
    if found == "credentials":
        return (
            f"no AWS credentials for {doing}: boto3 found none (environment, AWS_PROFILE, "
            f"~/.aws, instance profile); {grant}"
        )
    if found == "region":
        return (
            f"no AWS region for {doing}; set AWS_DEFAULT_REGION (e.g. us-east-1) or a "
            "profile's region"
        )
    if found == "denied":
        needs = (
            f"the instance profile or role needs {permission}{see}"
            if permission
            else f"check the IAM policy of the role or user ({message(exc)})"
        )
        return f"access denied {doing}; {needs}"
    if found == "refused-credentials":
        return (
            f"the AWS credentials were refused {doing} ({error}); check AWS_ACCESS_KEY_ID / "
            "AWS_PROFILE or the instance profile"
        )
    if found == "wrong-region":
        return (
            f"{service} answered from another region {doing} ({error}); set "
            "AWS_DEFAULT_REGION to the bucket's region"
        )
    if found == "no-bucket":
        return f"no such bucket {doing}; create it or fix the URI"
    if found == "missing":
        return f"no such object {doing} ({error}); check the URI"
    if found == "conflict":
        return f"changed by someone else while {doing}; run the command again"
    tries = attempts(exc)
    if found == "unreachable":
        return (
            f"cannot reach {service} {doing} after {tries} attempt{'s' * (tries != 1)} "
            f"({type(exc).__name__}: {exc}); check the network, AWS_ENDPOINT_URL and the "
            "region"
        )
    if found == "busy":
        return (
            f"{service} was unavailable {doing} after {tries} attempt{'s' * (tries != 1)} "
            f"({error}: {message(exc)}); try again later"
        )
    return f"{service} failed {doing} ({error or type(exc).__name__}: {message(exc)})"


def failures() -> tuple[type[Exception], ...]:
    """The exception types a boto3 call raises for AWS's or the network's failures."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class AwsError(Exception):
    """An AWS call failed; the message is the one line to show, ``kind`` what it means."""

    def __init__(self, line: str, kind: str):
        super().__init__(line)
        self.kind = kind


def call(operation, doing: str, permission: str = "", *, service: str = "S3", guide: str = ""):
    """``operation()``, with any AWS failure raised as an AwsError explaining it.

    botocore has already retried what is worth retrying (clients.MAX_ATTEMPTS).
    """
    try:
        return operation()
    except failures() as exc:
        raise AwsError(
            explain(exc, doing, permission, service=service, guide=guide), kind(exc)
        ) from None
