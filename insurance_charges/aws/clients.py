"""The one boto3 client factory: botocore's ``standard`` retries, timeouts, retries logged.

Credentials, the region and the endpoint come from boto3's own chain (the AWS_* variables,
``AWS_PROFILE``, ``~/.aws``, an instance or task role, ``AWS_ENDPOINT_URL``), never from a switch
of ours. Each client is made by ``client()`` and kept by whoever owns it; nothing is cached here.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# botocore's ``standard`` mode retries network failures, 5xx answers and throttling (S3's
# SlowDown) with jittered exponential backoff and a per-client retry quota; a 4xx such as a
# denial or a missing key fails at once. 4 attempts absorb a blip at boot (a NAT gateway or VPC
# endpoint not ready yet) while a dead route fails within about 20 s (4 x CONNECT_TIMEOUT plus
# under a second of waits), far inside the container launcher's 120 s start-up limit and EB's
# 600 s command timeout.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT = 5  # seconds: AWS answers a connect in milliseconds in-region
# Seconds of silence on an open connection: S3 sends the first byte of an object within a
# second; the largest thing read in one response is a scorer's 8 MiB ranged GET.
READ_TIMEOUT = 30
# Where the retry log keeps what the failed attempt saw, inside botocore's per-request context.
_LAST_FAILURE = "insurance_charges.last_failure"


def config(
    max_attempts: int = MAX_ATTEMPTS,
    read_timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
):
    """The botocore Config every client gets (``max_attempts`` counts the first try)."""
    # total_max_attempts, not max_attempts: botocore reads the latter as retries after the
    # first try, so max_attempts=4 would make 5 attempts (tests/test_aws.py counts them).
    from botocore.config import Config

    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )


def client(
    service: str,
    *,
    region: str | None = None,
    session=None,
    max_attempts: int = MAX_ATTEMPTS,
    read_timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
):
    """A boto3 client for ``service`` from boto3's own chain, with our Config; retries logged."""
    import boto3

    session = session or boto3.session.Session()
    made = session.client(
        service, region_name=region, config=config(max_attempts, read_timeout, connect_timeout)
    )
    made.meta.events.register("needs-retry", _note_failure)
    made.meta.events.register("request-created", _log_retry)
    return made


def _note_failure(
    request_dict=None, response=None, caught_exception=None, attempts=None, **_
) -> None:
    """Keep what went wrong with this attempt for the retry's log line, and the attempt count
    on the exception for the final message; never decides whether to retry (botocore does)."""
    if caught_exception is not None:
        reason = type(caught_exception).__name__
        caught_exception.aws_attempts = attempts  # read by errors.attempts()
    elif response is not None:
        reason = str(response[1].get("Error", {}).get("Code") or response[0].status_code)
    else:
        return
    if request_dict is not None:
        request_dict["context"][_LAST_FAILURE] = reason


def _log_retry(request=None, operation_name=None, **_) -> None:
    """One warning per retry botocore makes: which call, what failed, which attempt this is."""
    context = getattr(request, "context", None) or {}
    retries = context.get("retries", {})
    attempt = retries.get("attempt", 1)
    if attempt > 1:
        log.warning(
            "AWS %s failed (%s); attempt %d of %d: %s",
            operation_name,
            context.get(_LAST_FAILURE, "unknown"),
            attempt,
            retries.get("max", MAX_ATTEMPTS),
            request.url.split("?")[0],
        )


def lazy(service: str):
    """A function returning one client for ``service``, made on its first call: the caller
    owns it (and so its lifetime), and a run that never touches AWS never imports boto3."""
    made: list = []

    def get():
        if not made:
            made.append(client(service))
        return made[0]

    return get
