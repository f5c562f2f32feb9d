"""Amazon ECR through boto3: the registry, its repository and a login token.

The account comes from ``sts.get_caller_identity``, the repository is created if missing
(tags immutable, scanned on push), and ``ecr.get_authorization_token`` gives the 12-hour
login `docker login --password-stdin` takes. Clients come from ``aws.clients`` (boto3 finds
credentials and any endpoint, ``AWS_ENDPOINT_URL``, the usual way; the region is the one given)
and failures are ``aws.errors``' one line.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..aws.clients import client
from ..aws.errors import explain, failures
from .errors import ReleaseError

# The repository settings a release creates: a tag, once pushed, always names the same
# image, and every pushed image is scanned for known vulnerabilities.
REPOSITORY_SETTINGS = {
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
}


@dataclass(frozen=True, repr=False)
class Registry:
    """Where to push (``repository``: host/name) and how to log in there."""

    repository: str
    host: str
    username: str
    password: str
    notes: tuple[str, ...] = ()


def _say(exc: Exception, region: str) -> str:
    """aws.errors' line, saying the call that failed when there was one."""
    operation = getattr(exc, "operation_name", "")
    return explain(
        exc,
        f"releasing to ECR in {region}" + (f" ({operation})" if operation else ""),
        service="ECR",
    )


def check_region(region: str) -> str:
    """The region, if boto3 knows ECR there; ReleaseError otherwise."""
    import boto3

    if not region:
        raise ReleaseError(
            "AWS_REGION is not set; set it to the region of the ECR repository "
            "and of the Elastic Beanstalk environment (e.g. eu-west-1)"
        )
    session = boto3.session.Session()
    known = {
        name
        for partition in session.get_available_partitions()
        for name in session.get_available_regions("ecr", partition_name=partition)
    }
    if region not in known:
        raise ReleaseError(
            f"AWS_REGION={region!r} is not a region where ECR runs; set one of "
            f"boto3's regions for ECR (e.g. eu-west-1, us-east-1)"
        )
    return region


def prepare(name: str, region: str) -> Registry:
    """The repository ``name`` in this account's registry (created if missing) and a login."""
    import boto3

    session = boto3.session.Session(region_name=check_region(region))
    try:
        account = client("sts", session=session).get_caller_identity()["Account"]
        ecr = client("ecr", session=session)
        repository, notes = _repository(ecr, account, name)
        auth = ecr.get_authorization_token()["authorizationData"][0]
    except failures() as exc:
        raise ReleaseError(_say(exc, region)) from None
    username, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    host = auth["proxyEndpoint"].removeprefix("https://")
    return Registry(repository["repositoryUri"], host, username, password, notes)


def _repository(ecr, account: str, name: str) -> tuple[dict, tuple[str, ...]]:
    try:
        found = ecr.describe_repositories(registryId=account, repositoryNames=[name])
    except ecr.exceptions.RepositoryNotFoundException:
        created = ecr.create_repository(repositoryName=name, **REPOSITORY_SETTINGS)
        return created["repository"], (
            f"created ECR repository {name} (tags immutable, scan on push)",
        )
    repository = found["repositories"][0]
    notes = []
    if repository.get("imageTagMutability") != "IMMUTABLE":
        notes.append(
            f"ECR repository {name} lets tags be overwritten; the bundle names the "
            "image by digest all the same"
        )
    if not repository.get("imageScanningConfiguration", {}).get("scanOnPush"):
        notes.append(f"ECR repository {name} does not scan images on push")
    return repository, tuple(notes)


def released_digest(name: str, region: str, tag: str) -> str | None:
    """The digest already pushed under ``tag`` (a release of this commit), or None."""
    ecr = client("ecr", region=region)
    try:
        images = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return None
    except failures() as exc:
        raise ReleaseError(_say(exc, region)) from None
    return images["imageDetails"][0]["imageDigest"]
