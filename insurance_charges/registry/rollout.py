"""Roll a promoted version out: the fleet's MODEL_URI pinned to it, then wait for health.

Elastic Beanstalk: ``UpdateEnvironment`` sets the environment property ``MODEL_URI`` (EB applies
it with the environment's configured deployment settings), then ``DescribeEnvironments`` and
``DescribeEvents`` are polled until the environment is Ready and its health Ok, or an error event
says why not. ECS: a new revision of the service's task definition with the new MODEL_URI, then
``UpdateService``, polled until that deployment has completed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..aws.clients import client
from .store import RegistryError, aws_call

EB_NAMESPACE = "aws:elasticbeanstalk:application:environment"
# The deploy job gives `eb deploy` 40 minutes
# (docs/deploy/elastic-beanstalk.md#deploying-from-github-actions); a
# property change rolls through the same batches (RollingWithAdditionalBatch, 600 s command
# timeout per batch), so it gets the same bound.
WAIT_S = 40 * 60
# Enhanced health reports every 10 seconds; polling faster only repeats the same answer.
POLL_S = 10
# What register_task_definition accepts back from describe_task_definition.
TASK_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


class RolloutFailed(RegistryError):
    """The fleet did not come up healthy on the new version; the message says what happened."""

    status = 4  # the champion moved: not the registry's plain failure (1), see registry/cli.py


def _aws(call: Callable, operation: str, where: str, service: str = "elasticbeanstalk"):
    """One API call (botocore retries network failures); a one-line RegistryError otherwise."""
    return aws_call(
        call,
        f"calling {operation} on {where}",
        f"{service}:{operation}",
        service={"ecs": "ECS"}.get(service, "Elastic Beanstalk"),
    )


def deploy_eb(
    environment: str,
    model_uri: str,
    eb=None,
    wait_s: float = WAIT_S,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Set ``MODEL_URI`` on an EB environment and wait for Ready and health Ok."""
    eb = eb or client("elasticbeanstalk")
    updated = _aws(
        lambda: eb.update_environment(
            EnvironmentName=environment,
            OptionSettings=[
                {"Namespace": EB_NAMESPACE, "OptionName": "MODEL_URI", "Value": model_uri}
            ],
        ),
        "UpdateEnvironment",
        environment,
    )
    since, waited, state = updated["DateUpdated"], 0.0, updated
    while True:
        events = _aws(
            lambda: eb.describe_events(
                EnvironmentName=environment, StartTime=since, Severity="ERROR"
            )["Events"],
            "DescribeEvents",
            environment,
        )
        if events:
            raise RolloutFailed(
                f"{environment} failed to take MODEL_URI={model_uri}: "
                + "; ".join(e["Message"] for e in sorted(events, key=lambda e: e["EventDate"]))
            )
        found = _aws(
            lambda: eb.describe_environments(EnvironmentNames=[environment], IncludeDeleted=False)[
                "Environments"
            ],
            "DescribeEnvironments",
            environment,
        )
        if not found:
            raise RolloutFailed(f"environment {environment} no longer exists")
        state = found[0]
        health = state.get("HealthStatus") or state.get("Health")
        if state["Status"] == "Ready" and health in ("Ok", "Green"):
            return f"{environment} is Ready with health {health}, serving MODEL_URI={model_uri}"
        if state["Status"] in ("Terminating", "Terminated"):
            raise RolloutFailed(f"environment {environment} is {state['Status']}")
        if waited >= wait_s:
            raise RolloutFailed(
                f"{environment} did not report Ready and Ok within {wait_s / 60:.0f} minutes "
                f"(status {state['Status']}, health {health}); see `eb health` and `eb events`"
            )
        sleep(poll_s)
        waited += poll_s


def _with_model_uri(containers: list[dict], model_uri: str, service: str) -> list[dict]:
    """The container definitions with MODEL_URI set where it is set (or on the only one)."""
    named = {
        c["name"]
        for c in containers
        if any(e["name"] == "MODEL_URI" for e in c.get("environment", []))
    }
    targets = named or ({containers[0]["name"]} if len(containers) == 1 else set())
    if not targets:
        raise RegistryError(
            f"{service} runs {len(containers)} containers and none sets "
            "MODEL_URI; set it once on the serving container's definition"
        )
    updated = []
    for container in containers:
        if container["name"] in targets:
            others = [e for e in container.get("environment", []) if e["name"] != "MODEL_URI"]
            container = {
                **container,
                "environment": [*others, {"name": "MODEL_URI", "value": model_uri}],
            }
        updated.append(container)
    return updated


def deploy_ecs(
    cluster: str,
    service: str,
    model_uri: str,
    ecs=None,
    wait_s: float = WAIT_S,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Register a task definition revision with the new MODEL_URI and roll the service to it."""
    ecs = ecs or client("ecs")
    where = f"ECS service {cluster}/{service}"
    found = _aws(
        lambda: ecs.describe_services(cluster=cluster, services=[service]),
        "DescribeServices",
        where,
        "ecs",
    )
    if not found["services"]:
        raise RegistryError(f"{where} not found ({found.get('failures')}); check the names")
    described = _aws(
        lambda: ecs.describe_task_definition(
            taskDefinition=found["services"][0]["taskDefinition"], include=["TAGS"]
        ),
        "DescribeTaskDefinition",
        where,
        "ecs",
    )
    current = described["taskDefinition"]
    fields = {k: current[k] for k in TASK_FIELDS if current.get(k) not in (None, [], {})}
    if described.get("tags"):
        fields["tags"] = described["tags"]
    registered = _aws(
        lambda: ecs.register_task_definition(
            containerDefinitions=_with_model_uri(current["containerDefinitions"], model_uri, where),
            **fields,
        ),
        "RegisterTaskDefinition",
        where,
        "ecs",
    )
    arn = registered["taskDefinition"]["taskDefinitionArn"]
    _aws(
        lambda: ecs.update_service(cluster=cluster, service=service, taskDefinition=arn),
        "UpdateService",
        where,
        "ecs",
    )
    waited = 0.0
    while True:
        state = _aws(
            lambda: ecs.describe_services(cluster=cluster, services=[service]),
            "DescribeServices",
            where,
            "ecs",
        )["services"][0]
        primary = next(d for d in state["deployments"] if d["status"] == "PRIMARY")
        if primary.get("rolloutState") == "FAILED" or state["taskDefinition"] != arn:
            raise RolloutFailed(
                f"{where} did not roll out {arn}: "
                f"{primary.get('rolloutStateReason', 'rolled back')}"
            )
        if (
            primary.get("rolloutState") == "COMPLETED"
            and len(state["deployments"]) == 1
            and primary["runningCount"] >= primary["desiredCount"]
        ):
            return f"{where} runs {arn} with MODEL_URI={model_uri}"
        if waited >= wait_s:
            raise RolloutFailed(
                f"{where} did not complete the deployment of {arn} within "
                f"{wait_s / 60:.0f} minutes ({primary.get('rolloutStateReason')})"
            )
        sleep(poll_s)
        waited += poll_s
