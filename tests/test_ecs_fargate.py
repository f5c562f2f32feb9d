"""deploy/ecs-fargate.yaml: cfn-lint finds nothing, its numbers agree with the image, the app,
gunicorn and the Elastic Beanstalk configuration, and the image run with exactly its settings
serves as the tests expect of any container."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from insurance_charges.container.launcher import NGINX_GRACE_S, RUN_DIR
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.settings import ENVIRONMENT, from_environ

from .conftest import ROOT, require
from .containers import docker
from .deploy_files import EB_OPTIONS, dockerfile, exposed_port, gunicorn_settings, image_env
from .deploy_files import settings as eb_settings

TEMPLATE_PATH = ROOT / "deploy" / "ecs-fargate.yaml"
_spec = importlib.util.spec_from_file_location(
    "fargate_local", ROOT / "deploy" / "fargate_local.py"
)
fargate_local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fargate_local)

TEMPLATE = fargate_local.load_template(TEMPLATE_PATH)
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
TASK = fargate_local.task_definition(TEMPLATE)
CONTAINERS = fargate_local.containers(TEMPLATE)
APP = fargate_local.app_container(TEMPLATE)
ENV = fargate_local.environment(APP)
VCPUS = int(TASK["Cpu"]) / 1024
MEASURED_MIB = RESOURCES["TaskDefinition"]["Metadata"]["MeasuredMemoryMiB"]
HEADROOM = 1.5  # memory beyond the measured peak: larger batches of warnings, a noisier host
GUNICORN = gunicorn_settings({**image_env(), **ENV})
EB = eb_settings()
TARGET_GROUP = RESOURCES["TargetGroup"]["Properties"]
SERVICE = RESOURCES["Service"]["Properties"]
# Fargate's task sizes: CPU units -> the memory (MiB) each takes (AWS_Fargate.md; cfn-lint's
# fargate_cpu_memory.json checks the same pairs in the lint test below).
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


def properties(kind: str) -> list[dict]:
    """The properties of every resource of one CloudFormation type."""
    return [r["Properties"] for r in RESOURCES.values() if r["Type"] == kind]


@pytest.mark.slow
def test_cfn_lint_finds_nothing_in_the_template():
    lint = Path(sys.executable).with_name("cfn-lint")
    require(lint.exists(), f"needs cfn-lint beside {sys.executable} (requirements-dev.txt)")
    run = subprocess.run(
        [str(lint), "--include-checks", "I", "--", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr


def test_every_port_in_the_template_is_the_one_the_image_exposes_and_serves():
    port = exposed_port()
    assert int(image_env()["PORT"]) == port  # where the image's nginx listens
    assert [m["ContainerPort"] for m in APP["PortMappings"]] == [port]
    assert TARGET_GROUP["Port"] == port
    assert [b["ContainerPort"] for b in SERVICE["LoadBalancers"]] == [port]
    for rule in ("LoadBalancerToTasks", "TasksFromLoadBalancer"):
        assert (
            RESOURCES[rule]["Properties"]["FromPort"]
            == RESOURCES[rule]["Properties"]["ToPort"]
            == port
        )


def test_the_load_balancers_health_path_answers_200_in_the_app(client):
    assert TARGET_GROUP["TargetType"] == "ip"  # awsvpc: every task has its own address
    response = client.get(TARGET_GROUP["HealthCheckPath"])
    assert str(response.status_code) == TARGET_GROUP["Matcher"]["HttpCode"] == "200"
    assert "/health'" in fargate_local.health_command(APP)[-1]


def test_the_containers_health_check_is_the_images_own_command_and_timing():
    healthcheck = next(rest for word, rest in dockerfile() if word == "HEALTHCHECK")
    options, command = healthcheck.split("CMD", 1)
    assert fargate_local.health_command(APP) == json.loads(command)
    timing = dict(re.findall(r"--([\w-]+)=(\d+)s?", options))
    check = APP["HealthCheck"]
    assert (check["Interval"], check["Timeout"], check["StartPeriod"], check["Retries"]) == (
        int(timing["interval"]),
        int(timing["timeout"]),
        int(timing["start-period"]),
        int(timing["retries"]),
    )


def test_the_health_check_timings_are_elastic_beanstalks():
    process = EB["aws:elasticbeanstalk:environment:process:default"]
    assert TARGET_GROUP["HealthCheckIntervalSeconds"] == int(process["HealthCheckInterval"])
    assert TARGET_GROUP["HealthCheckTimeoutSeconds"] == int(process["HealthCheckTimeout"])
    assert TARGET_GROUP["HealthyThresholdCount"] == int(process["HealthyThresholdCount"])
    assert TARGET_GROUP["UnhealthyThresholdCount"] == int(process["UnhealthyThresholdCount"])
    check = APP["HealthCheck"]
    assert (
        check["Timeout"] < check["Interval"]
        and SERVICE["HealthCheckGracePeriodSeconds"] == check["StartPeriod"]
    )


def test_stop_timeout_outlasts_gunicorns_graceful_timeout_within_fargates_limit():
    assert GUNICORN["graceful_timeout"] + NGINX_GRACE_S < APP["StopTimeout"] <= 120


def test_draining_outlasts_any_request_gunicorn_allows_as_on_elastic_beanstalk():
    attributes = {a["Key"]: a["Value"] for a in TARGET_GROUP["TargetGroupAttributes"]}
    delay = int(attributes["deregistration_delay.timeout_seconds"])
    assert delay > GUNICORN["timeout"]
    assert delay == int(
        EB["aws:elasticbeanstalk:environment:process:default"]["DeregistrationDelay"]
    )


def test_one_worker_per_vcpu_within_the_bound_settings_enforces():
    assert VCPUS == int(VCPUS) >= 1
    assert int(ENV["WEB_CONCURRENCY"]) == VCPUS == GUNICORN["workers"]
    assert from_environ(ENV, cpus=int(VCPUS)).workers == VCPUS  # raises past 4 per CPU


def test_cpu_and_memory_are_a_fargate_size_that_holds_the_measured_peak_with_headroom():
    cpu, memory = int(TASK["Cpu"]), int(TASK["Memory"])
    assert memory in FARGATE_SIZES[cpu]
    assert MEASURED_MIB > 0 and memory >= HEADROOM * MEASURED_MIB
    # ...and no larger than needed: the least memory Fargate pairs with this CPU that holds it.
    assert memory == min(m for m in FARGATE_SIZES[cpu] if m >= HEADROOM * MEASURED_MIB)


def test_the_environment_is_settings_the_container_reads_and_never_port():
    assert set(ENV) <= set(ENVIRONMENT) and "PORT" not in ENV
    assert from_environ(ENV, cpus=int(VCPUS)).log_level == ENV["LOG_LEVEL"]
    secrets = APP["Secrets"]["Fn::If"][1]
    assert [s["Name"] for s in secrets] == ["API_KEYS"] and "API_KEYS" in ENVIRONMENT


def test_the_app_runs_as_the_images_own_user_with_no_capabilities():
    user = next(rest for word, rest in dockerfile() if word == "USER")
    assert APP["User"] == user and not APP["User"].startswith("0")
    assert APP["LinuxParameters"]["Capabilities"]["Drop"] == ["ALL"]


def test_every_container_has_a_read_only_root_and_the_one_volume_at_tmp():
    volumes = [v["Name"] for v in TASK["Volumes"]]
    for container in CONTAINERS.values():
        assert container["ReadonlyRootFilesystem"] is True
        assert [
            (m["SourceVolume"], m["ContainerPath"], m["ReadOnly"]) for m in container["MountPoints"]
        ] == [(volumes[0], "/tmp", False)]
    assert image_env()["MPLCONFIGDIR"].startswith("/tmp/")  # what the image writes is under it


def test_the_app_starts_only_once_tmp_is_made_writable_by_a_container_with_no_capabilities():
    (helper,) = [c for c in CONTAINERS.values() if c is not APP]
    assert helper["Essential"] is False and helper["User"] == "0"
    assert helper["LinuxParameters"]["Capabilities"]["Drop"] == ["ALL"]
    assert helper["EntryPoint"] + helper["Command"] == ["chmod", "1777", "/tmp"]
    assert APP["DependsOn"] == [{"ContainerName": helper["Name"], "Condition": "SUCCESS"}]


def test_logs_go_to_a_log_group_kept_as_long_as_elastic_beanstalks():
    (group,) = properties("AWS::Logs::LogGroup")
    assert group["RetentionInDays"] == int(
        EB["aws:elasticbeanstalk:cloudwatch:logs"]["RetentionInDays"]
    )
    for container in CONTAINERS.values():
        logging = container["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        assert logging["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
        assert logging["Options"]["awslogs-stream-prefix"]
    assert APP["LogConfiguration"]["Options"]["mode"] == "non-blocking"


def test_deployments_keep_full_capacity_and_roll_back_on_failure():
    deployment = SERVICE["DeploymentConfiguration"]
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert deployment["MinimumHealthyPercent"] == 100 and deployment["MaximumPercent"] == 200
    assert SERVICE["DeploymentController"] == {"Type": "ECS"} and SERVICE["LaunchType"] == "FARGATE"
    assert TASK["NetworkMode"] == "awsvpc" and TASK["RequiresCompatibilities"] == ["FARGATE"]


def test_scaling_tracks_average_cpu_as_elastic_beanstalk_scales_out():
    (policy,) = properties("AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "ECSServiceAverageCPUUtilization"
    )
    assert tracking["TargetValue"] == int(EB["aws:autoscaling:trigger"]["UpperThreshold"])
    assert tracking["ScaleInCooldown"] > tracking["ScaleOutCooldown"]


def test_task_counts_give_elastic_beanstalks_availability_and_vcpus():
    asg = EB["aws:autoscaling:asg"]
    instance = EB["aws:ec2:instances"]["InstanceTypes"].split(",")[0].strip()
    eb_vcpus = EB_OPTIONS["instance_types"][instance]["vcpus"]
    assert PARAMETERS["MinCount"]["Default"] == int(asg["MinSize"]) >= 2
    assert PARAMETERS["MaxCount"]["Default"] * VCPUS == int(asg["MaxSize"]) * eb_vcpus
    assert (
        PARAMETERS["MinCount"]["Default"]
        <= PARAMETERS["DesiredCount"]["Default"]
        <= PARAMETERS["MaxCount"]["Default"]
    )
    (target,) = properties("AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Ref": "MinCount"},
        {"Ref": "MaxCount"},
    )


def test_the_load_balancer_reaches_only_the_task_port_and_only_it_reaches_the_tasks():
    tasks = RESOURCES["TaskSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in tasks
    assert [e["FromPort"] for e in tasks["SecurityGroupEgress"]] == [443]  # ECR, logs, secrets
    ingress = RESOURCES["TasksFromLoadBalancer"]["Properties"]
    egress = RESOURCES["LoadBalancerToTasks"]["Properties"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    assert egress["DestinationSecurityGroupId"] == {"Ref": "TaskSecurityGroup"}
    assert [r["Type"] for r in RESOURCES.values()].count("AWS::EC2::SecurityGroupEgress") == 1


@pytest.mark.parametrize(
    "uri, accepted",
    [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/insurance-charges@sha256:" + "0f" * 32,
            True,
        ),
        ("127.0.0.1:5000/insurance-charges@sha256:" + "0f" * 32, True),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/insurance-charges:latest", False),
        ("insurance-charges@sha256:" + "0f" * 31, False),
    ],
)
def test_the_image_is_taken_only_by_digest(uri, accepted):
    assert bool(re.fullmatch(PARAMETERS["ImageUri"]["AllowedPattern"], uri)) is accepted


def test_the_task_role_holds_no_permission_and_the_execution_role_pulls_and_logs():
    task_role = RESOURCES["TaskRole"]["Properties"]
    assert set(task_role) == {"AssumeRolePolicyDocument"}
    execution = RESOURCES["ExecutionRole"]["Properties"]
    assert execution["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AmazonECSTaskExecutionRolePolicy"
        }
    ]


# ---- the image, run with exactly the template's settings ------------------------------------


@pytest.fixture(scope="module")
def task(image):
    """The image run as the template defines the task (deploy/fargate_local.py): its user,
    read-only root, the /tmp volume as Fargate makes it (root's, 0755) after the helper
    container, its environment, port, health check, stop timeout, CPU and memory."""
    require(os.geteuid() == 0, "emulating Fargate's root-owned bind mount needs root")
    volumes = docker("image", "inspect", "-f", "{{json .Config.Volumes}}", image).stdout
    assert "/tmp" not in (json.loads(volumes) or {}), (
        "the image declares VOLUME /tmp: Fargate then copies its mode, and run_task must too"
    )
    with fargate_local.run_task(image, TEMPLATE, prefix=f"ecs-test-{os.getpid()}") as (name, url):
        fargate_local.wait_healthy(name)
        from .containers import Container

        yield Container(name, url)


@pytest.mark.slow
def test_the_task_reports_healthy_through_the_templates_own_check(task):
    assert task.inspect("{{.State.Health.Status}}") == "healthy"
    docker("exec", task.name, *fargate_local.health_command(APP))  # exit 0, or docker() fails


@pytest.mark.slow
def test_the_task_runs_with_the_templates_user_read_only_root_and_limits(task):
    assert task.inspect("{{.Config.User}}") == APP["User"]
    assert task.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert task.inspect("{{json .HostConfig.CapDrop}}") == '["ALL"]'
    assert int(task.inspect("{{.HostConfig.Memory}}")) == int(TASK["Memory"]) * 1024**2
    assert int(task.inspect("{{.HostConfig.NanoCpus}}")) == VCPUS * 1e9
    assert int(task.inspect("{{.Config.StopTimeout}}")) == APP["StopTimeout"]
    table = docker("top", task.name, "-eo", "pid,uid,args").stdout.splitlines()[1:]
    assert table and all(line.split()[1] != "0" for line in table)
    gunicorns = [line for line in table if "gunicorn" in line]
    assert len(gunicorns) == 1 + int(ENV["WEB_CONCURRENCY"])  # master + workers


@pytest.mark.slow
def test_the_task_serves_health_and_the_estimate_the_app_gives(task, client):
    status, _, body = task.request(TARGET_GROUP["HealthCheckPath"])
    assert status == 200 and json.loads(body)["status"] == "ok"
    # One request id for both, so the inference ids it derives are equal too.
    same_id = {"X-Request-ID": "ecs-estimate-check"}
    status, _, body = task.request("/api/v1/predict", body=EXAMPLE_RECORD, headers=same_id)
    expected = client.post("/api/v1/predict", json=EXAMPLE_RECORD, headers=same_id).get_json()
    assert status == 200 and json.loads(body) == expected


@pytest.mark.slow
def test_without_the_helper_container_the_app_could_not_start_on_fargates_tmp(image, tmp_path):
    require(os.geteuid() == 0, "emulating Fargate's root-owned bind mount needs root")
    volume = tmp_path / "tmp"
    volume.mkdir(mode=0o755)
    os.chown(volume, 0, 0)
    name = f"ecs-test-no-helper-{os.getpid()}"
    args = fargate_local.docker_args(APP, TASK, image, name, {TASK["Volumes"][0]["Name"]: volume})
    try:
        docker("run", "-d", *args)
        exit_code = docker("wait", name, timeout=120).stdout.strip()
        logs = docker("logs", name).stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
    # It stops at once, saying in one line what it needs: nothing it writes is writable.
    assert exit_code != "0" and logs.strip().splitlines() == [
        f"Error: {RUN_DIR} cannot be written (Permission denied); give the container a "
        "writable /tmp owned by (or open to) its user 10001, e.g. `--tmpfs /tmp` or a volume "
        "with mode 1777"
    ]
