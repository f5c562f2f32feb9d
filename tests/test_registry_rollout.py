"""Rolling a promotion out. EB through botocore's Stubber (moto lacks UpdateEnvironment and
DescribeEvents; the Stubber checks every parameter against EB's service model); ECS against moto."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from insurance_charges.core.model_card import path_for
from insurance_charges.registry import champion, rollout
from insurance_charges.registry.rollout import EB_NAMESPACE, RolloutFailed
from insurance_charges.registry.store import RegistryError, Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import run  # noqa: E402

URI = "s3://releases/insurance/2026.11.22-gbr-dee2aa3c"
SINCE = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
VERSION = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())["model_version"]


def eb_client():
    return botocore.session.get_session().create_client(
        "elasticbeanstalk",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def environment(status, health, health_status):
    return {
        "Environments": [
            {
                "EnvironmentName": "insurance-charges-prod",
                "Status": status,
                "Health": health,
                "HealthStatus": health_status,
            }
        ]
    }


def expect_update(stubber, uri=URI):
    stubber.add_response(
        "update_environment",
        {"EnvironmentName": "insurance-charges-prod", "Status": "Updating", "DateUpdated": SINCE},
        {
            "EnvironmentName": "insurance-charges-prod",
            "OptionSettings": [
                {"Namespace": EB_NAMESPACE, "OptionName": "MODEL_URI", "Value": uri}
            ],
        },
    )


def expect_poll(stubber, events, state):
    stubber.add_response(
        "describe_events",
        {"Events": events},
        {"EnvironmentName": "insurance-charges-prod", "StartTime": SINCE, "Severity": "ERROR"},
    )
    if not events:
        stubber.add_response(
            "describe_environments",
            state,
            {"EnvironmentNames": ["insurance-charges-prod"], "IncludeDeleted": False},
        )


def event(message, minutes):
    return {
        "EventDate": SINCE + timedelta(minutes=minutes),
        "Message": message,
        "Severity": "ERROR",
        "EnvironmentName": "insurance-charges-prod",
    }


def test_eb_sets_model_uri_and_waits_until_the_environment_is_ready_and_ok():
    eb = eb_client()
    with Stubber(eb) as stubber:
        expect_update(stubber)
        expect_poll(stubber, [], environment("Updating", "Grey", "Info"))
        expect_poll(stubber, [], environment("Ready", "Yellow", "Warning"))  # settling
        expect_poll(stubber, [], environment("Ready", "Green", "Ok"))
        waits = []
        said = rollout.deploy_eb("insurance-charges-prod", URI, eb=eb, sleep=waits.append)
        stubber.assert_no_pending_responses()
    assert said == f"insurance-charges-prod is Ready with health Ok, serving MODEL_URI={URI}"
    assert waits == [10, 10]  # enhanced health's own reporting interval


def test_eb_error_events_fail_the_rollout_saying_what_eb_said():
    eb = eb_client()
    with Stubber(eb) as stubber:
        expect_update(stubber)
        expect_poll(stubber, [], environment("Updating", "Grey", "Info"))
        expect_poll(
            stubber,
            [
                event("Failed to deploy configuration.", 9),
                event("Instance i-0abc failed health checks.", 7),
            ],
            None,
        )
        with pytest.raises(RolloutFailed) as failed:
            rollout.deploy_eb("insurance-charges-prod", URI, eb=eb, sleep=lambda s: None)
        stubber.assert_no_pending_responses()
    assert str(failed.value) == (
        f"insurance-charges-prod failed to take MODEL_URI={URI}: Instance i-0abc failed health "
        "checks.; Failed to deploy configuration."
    )


def test_eb_that_never_reports_ok_fails_after_the_bound():
    eb = eb_client()
    with Stubber(eb) as stubber:
        expect_update(stubber)
        for _ in range(3):
            expect_poll(stubber, [], environment("Ready", "Red", "Severe"))
        with pytest.raises(RolloutFailed) as failed:
            rollout.deploy_eb(
                "insurance-charges-prod", URI, eb=eb, wait_s=20, poll_s=10, sleep=lambda s: None
            )
        stubber.assert_no_pending_responses()
    assert str(failed.value).startswith(
        "insurance-charges-prod did not report Ready and Ok within"
        " 0 minutes (status Ready, health Severe)"
    )


@pytest.fixture
def with_champion(capsys, store, committed_dir, data_path):
    """A store whose champion is the committed model (set directly, as a test may)."""
    assert run(capsys, store, "publish", committed_dir, "--reference-data", data_path)[0] == 0
    champion.promote(
        Store(parse_store(store)),
        VERSION,
        by="test",
        gate=None,
        forced=True,
        reason="set up by a test",
    )
    return store


@pytest.mark.parametrize("ends, status", [("Ok", 0), ("failed", 4)])
def test_promote_deploy_eb_pins_the_environment_to_the_version_and_exits_4_if_it_fails(
    capsys, with_champion, monkeypatch, ends, status
):
    eb = eb_client()
    monkeypatch.setattr(rollout, "client", lambda service: eb)
    pinned = parse_store(with_champion).model_uri(VERSION)
    with Stubber(eb) as stubber:
        expect_update(stubber, pinned)
        if ends == "Ok":
            expect_poll(stubber, [], environment("Ready", "Green", "Ok"))
        else:
            expect_poll(stubber, [event("Failed to deploy configuration.", 3)], None)
        got, out, err = run(
            capsys, with_champion, "promote", VERSION, "--deploy-eb", "insurance-charges-prod"
        )
        stubber.assert_no_pending_responses()
    assert got == status and out.startswith(f"{VERSION} is already the champion\n")
    if status:
        assert err == (
            f"Error: insurance-charges-prod failed to take MODEL_URI={pinned}: "
            "Failed to deploy configuration.\n"
        )


@pytest.fixture
def ecs_service(aws, request):
    """A cluster and a service running a task definition whose container reads MODEL_URI."""
    ecs = boto3.client("ecs")
    cluster = f"cluster-{request.node.name[-20:].strip('[]')}"
    ecs.create_cluster(clusterName=cluster)

    def define(*containers):
        arn = ecs.register_task_definition(
            family=f"{cluster}-task",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="2048",
            containerDefinitions=list(containers),
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=arn, desiredCount=1)
        return ecs, cluster

    return define


def container(name, **environment):
    return {
        "name": name,
        "image": "insurance-charges:1",
        "essential": True,
        "environment": [{"name": k, "value": v} for k, v in environment.items()],
    }


def environment_of(ecs, cluster):
    arn = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return (
        arn,
        definition,
        {
            c["name"]: {e["name"]: e["value"] for e in c.get("environment", [])}
            for c in definition["containerDefinitions"]
        },
    )


def test_ecs_gets_a_new_task_definition_revision_with_the_new_model_uri(ecs_service):
    ecs, cluster = ecs_service(
        container("web", MODEL_URI="s3://releases/insurance/old", WEB_CONCURRENCY="2"),
        container("log-router"),
    )
    said = rollout.deploy_ecs(cluster, "web", URI, sleep=lambda s: None)
    arn, definition, env = environment_of(ecs, cluster)
    assert arn.endswith(f"{cluster}-task:2") and said == (
        f"ECS service {cluster}/web runs {arn} with MODEL_URI={URI}"
    )
    assert env == {"web": {"MODEL_URI": URI, "WEB_CONCURRENCY": "2"}, "log-router": {}}
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == (
        "1024",
        "2048",
        "awsvpc",
    )


def test_ecs_with_one_container_gets_model_uri_even_if_it_had_none(ecs_service):
    ecs, cluster = ecs_service(container("web", LOG_LEVEL="info"))
    rollout.deploy_ecs(cluster, "web", URI, sleep=lambda s: None)
    assert environment_of(ecs, cluster)[2] == {"web": {"LOG_LEVEL": "info", "MODEL_URI": URI}}


def test_ecs_refuses_to_guess_which_of_several_containers_serves(ecs_service):
    ecs, cluster = ecs_service(container("web"), container("sidecar"))
    with pytest.raises(RegistryError, match="runs 2 containers and none sets MODEL_URI"):
        rollout.deploy_ecs(cluster, "web", URI, sleep=lambda s: None)
    assert environment_of(ecs, cluster)[0].endswith(f"{cluster}-task:1")


def test_an_ecs_deployment_the_circuit_breaker_failed_is_reported():
    ecs = botocore.session.get_session().create_client(
        "ecs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    old = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"
    new = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
    with Stubber(ecs) as stubber:
        stubber.add_response(
            "describe_services",
            {"services": [{"taskDefinition": old}]},
            {"cluster": "prod", "services": ["web"]},
        )
        stubber.add_response(
            "describe_task_definition",
            {"taskDefinition": {"family": "web", "containerDefinitions": [container("web")]}},
            {"taskDefinition": old, "include": ["TAGS"]},
        )
        stubber.add_response(
            "register_task_definition",
            {"taskDefinition": {"taskDefinitionArn": new}},
            {
                "family": "web",
                "containerDefinitions": [
                    {**container("web"), "environment": [{"name": "MODEL_URI", "value": URI}]}
                ],
            },
        )
        stubber.add_response(
            "update_service", {}, {"cluster": "prod", "service": "web", "taskDefinition": new}
        )
        stubber.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "taskDefinition": new,
                        "deployments": [
                            {
                                "status": "PRIMARY",
                                "taskDefinition": new,
                                "rolloutState": "FAILED",
                                "rolloutStateReason": (
                                    "ECS deployment circuit breaker: tasks failed to start."
                                ),
                                "runningCount": 0,
                                "desiredCount": 2,
                            }
                        ],
                    }
                ]
            },
            {"cluster": "prod", "services": ["web"]},
        )
        with pytest.raises(RolloutFailed) as failed:
            rollout.deploy_ecs("prod", "web", URI, ecs=ecs, sleep=lambda s: None)
        stubber.assert_no_pending_responses()
    assert str(failed.value) == (
        f"ECS service prod/web did not roll out {new}: ECS deployment "
        "circuit breaker: tasks failed to start."
    )
