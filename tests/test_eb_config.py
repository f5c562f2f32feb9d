"""The Elastic Beanstalk configuration: documented names and values, and the rules between them."""

from __future__ import annotations

import re

import pytest

from insurance_charges.settings import ENVIRONMENT, MAX_CONTENT_LENGTH

from .deploy_files import (
    EB_OPTIONS,
    allowed,
    dockerrun,
    exposed_port,
    gunicorn_settings,
    image_env,
    nginx_directives,
    nginx_seconds,
    nginx_size,
    option_settings,
    settings,
)

SETTINGS = option_settings()
EB = settings()
TRIGGER = EB["aws:autoscaling:trigger"]
ASG = EB["aws:autoscaling:asg"]
PROCESS = EB["aws:elasticbeanstalk:environment:process:default"]
ENV_PROPERTIES = EB["aws:elasticbeanstalk:application:environment"]
GUNICORN = gunicorn_settings({**image_env(), **ENV_PROPERTIES})
# What a new instance waits for before it serves, in seconds, when it pulls the released
# image (02-capacity.config gives the measurements): EB's own boot; the pull by digest, 27 s
# at worst from a registry on 127.0.0.1 into an empty engine plus the 300 MB compressed at
# t3.small's 0.128 Gbit/s baseline (19 s); start-up to the first 200 from /health, 8.1 s at
# worst on a loaded machine.
BOOT_SECONDS, PULL_SECONDS, START_SECONDS = 90, 27 + 19, 8.1
# A cooldown longer than this beyond that only slows the answer to a second surge.
COOLDOWN_MARGIN_SECONDS = 60


def number(namespace: str, option: str) -> int:
    """A numeric option's value."""
    return int(EB[namespace][option])


@pytest.mark.parametrize("source, namespace, option, value", SETTINGS)
def test_every_option_is_one_elastic_beanstalk_documents(source, namespace, option, value):
    assert namespace in EB_OPTIONS["namespaces"], f"{source}: undocumented namespace {namespace}"
    options = EB_OPTIONS["namespaces"][namespace]["options"]
    assert options == "any" or option in options, f"{source}: {namespace} has no option {option}"


@pytest.mark.parametrize("source, namespace, option, value", SETTINGS)
def test_every_value_is_a_string_the_documentation_allows(source, namespace, option, value):
    assert isinstance(value, str), f"{source}: quote {option}: {value!r} as the guide does"
    rule = EB_OPTIONS["namespaces"][namespace]["options"]
    assert rule == "any" or allowed(rule[option], value), f"{source}: {option}: {value!r}"


def test_no_option_is_set_in_two_files_where_the_later_would_silently_win():
    seen = {}
    for source, namespace, option, _ in SETTINGS:
        assert (namespace, option) not in seen, f"{option}: {seen[(namespace, option)]}, {source}"
        seen[(namespace, option)] = source


def test_options_eb_create_sets_itself_have_the_same_values_here():
    for namespace, options in EB_OPTIONS["eb_create_sets"].items():
        for option, value in options.items():
            assert EB.get(namespace, {}).get(option) == value, (namespace, option)


def test_environment_is_load_balanced_by_an_application_load_balancer():
    environment = EB["aws:elasticbeanstalk:environment"]
    assert environment == {"EnvironmentType": "LoadBalanced", "LoadBalancerType": "application"}


def test_at_least_two_instances_and_a_larger_maximum():
    assert 2 <= number("aws:autoscaling:asg", "MinSize") < number("aws:autoscaling:asg", "MaxSize")
    assert ASG["Availability Zones"] in ("Any", "Any 2", "Any 3")


def test_scaling_triggers_on_average_cpu_percent():
    assert (TRIGGER["MeasureName"], TRIGGER["Statistic"], TRIGGER["Unit"]) == (
        "CPUUtilization",
        "Average",
        "Percent",
    )


def test_breach_duration_equals_period_times_evaluation_periods():
    period, periods = int(TRIGGER["Period"]), int(TRIGGER["EvaluationPeriods"])
    assert int(TRIGGER["BreachDuration"]) == period * periods


def test_one_minute_periods_come_with_one_minute_metrics():
    if TRIGGER["Period"] == "1":
        assert EB["aws:autoscaling:launchconfiguration"]["MonitoringInterval"] == "1 minute"


def test_thresholds_and_increments_never_make_the_group_flap():
    lower, upper = int(TRIGGER["LowerThreshold"]), int(TRIGGER["UpperThreshold"])
    out, back = int(TRIGGER["UpperBreachScaleIncrement"]), int(TRIGGER["LowerBreachScaleIncrement"])
    assert 0 <= lower < upper <= 100 and out >= 1 and back <= -1
    for size in range(int(ASG["MinSize"]), int(ASG["MaxSize"]) + 1):
        grown, shrunk = min(size + out, int(ASG["MaxSize"])), max(size + back, int(ASG["MinSize"]))
        assert upper * size / grown > lower, f"scaling out from {size} lands below {lower} %"
        assert lower * size / shrunk < upper, f"scaling in from {size} lands above {upper} %"


def test_cooldown_lasts_until_a_new_instance_pulling_the_released_image_serves():
    admitted = int(PROCESS["HealthyThresholdCount"]) * int(PROCESS["HealthCheckInterval"])
    serving = BOOT_SECONDS + PULL_SECONDS + START_SECONDS + admitted
    assert serving <= int(ASG["Cooldown"]) < serving + COOLDOWN_MARGIN_SECONDS


def test_deployments_keep_full_capacity_and_roll_on_health():
    command = EB["aws:elasticbeanstalk:command"]
    rolling = EB["aws:autoscaling:updatepolicy:rollingupdate"]
    assert command["DeploymentPolicy"] in ("RollingWithAdditionalBatch", "Immutable")
    assert rolling["RollingUpdateEnabled"] == "true" and rolling["RollingUpdateType"] == "Health"
    assert int(rolling["MinInstancesInService"]) >= int(ASG["MinSize"])
    assert int(rolling["MinInstancesInService"]) < int(ASG["MaxSize"])


def test_enhanced_health_and_logs_streamed_with_a_retention():
    assert EB["aws:elasticbeanstalk:healthreporting:system"]["SystemType"] == "enhanced"
    logs = EB["aws:elasticbeanstalk:cloudwatch:logs"]
    assert logs["StreamLogs"] == "true" and int(logs["RetentionInDays"]) >= 7


def test_health_check_path_answers_the_matcher_code_from_the_app(client):
    assert PROCESS["HealthCheckPath"] == "/health"
    response = client.get(PROCESS["HealthCheckPath"])
    assert str(response.status_code) == PROCESS["MatcherHTTPCode"] == "200"


def test_health_check_timeout_is_shorter_than_its_interval():
    assert int(PROCESS["HealthCheckTimeout"]) < int(PROCESS["HealthCheckInterval"])


def test_deregistration_delay_outlasts_any_request_gunicorn_allows():
    assert int(PROCESS["DeregistrationDelay"]) > GUNICORN["timeout"]


def test_instance_type_has_one_core_per_gunicorn_worker():
    first = EB["aws:ec2:instances"]["InstanceTypes"].split(",")[0].strip()
    assert int(ENV_PROPERTIES["WEB_CONCURRENCY"]) == EB_OPTIONS["instance_types"][first]["vcpus"]
    assert GUNICORN["workers"] == int(ENV_PROPERTIES["WEB_CONCURRENCY"])


def test_environment_properties_are_settings_the_container_reads():
    for name in ENV_PROPERTIES:
        assert name in ENVIRONMENT, name
    assert "PORT" not in ENV_PROPERTIES, "a PORT property would move gunicorn off the mapped port"


def test_dockerrun_maps_the_exposed_port_that_gunicorn_binds_and_sets_no_image():
    run = dockerrun()
    assert run["AWSEBDockerrunVersion"] == "1" and "Image" not in run
    assert run["Ports"][0]["ContainerPort"] == exposed_port()
    assert GUNICORN["bind"].rsplit(":", 1)[1] == str(exposed_port())
    assert run["Logging"].startswith("/") and set(run) <= {
        "AWSEBDockerrunVersion",
        "Ports",
        "Volumes",
        "Logging",
        "Authentication",
    }


def test_nginx_accepts_every_body_the_app_accepts():
    assert nginx_size(nginx_directives()["client_max_body_size"]) >= MAX_CONTENT_LENGTH


def test_nginx_waits_for_every_request_gunicorn_would_finish():
    directives = nginx_directives()
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        assert nginx_seconds(directives[name]) > GUNICORN["timeout"], name


def container_nginx(tmp_path) -> dict[str, str]:
    """Directive -> value of the nginx the image runs, rendered as the launcher renders it."""
    from insurance_charges.container.launcher import write_config

    config = write_config(8000, tmp_path)
    text = config.read_text() + (tmp_path / "proxy.conf").read_text()
    # SageMaker's /invocations has its own body limit (tests/test_sagemaker_contract.py).
    text = re.sub(r"location = /invocations \{[^}]*\}", "", text)
    return dict(re.findall(r"^\s*(\w+)\s+([^;{]+);", re.sub(r"#[^\n]*", "", text), re.M))


def test_the_images_nginx_limits_bodies_exactly_as_the_app_and_eb_do(tmp_path):
    inner, outer = container_nginx(tmp_path), nginx_directives()
    assert nginx_size(inner["client_max_body_size"]) == MAX_CONTENT_LENGTH
    assert nginx_size(outer["client_max_body_size"]) == nginx_size(inner["client_max_body_size"])


def test_the_images_nginx_outwaits_gunicorn_and_stops_inside_dockers_grace(tmp_path):
    from insurance_charges.container.launcher import NGINX_GRACE_S

    inner, outer = container_nginx(tmp_path), nginx_directives()
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        assert nginx_seconds(inner[name]) > GUNICORN["timeout"], name
        assert nginx_seconds(inner[name]) == nginx_seconds(outer[name]), name  # not limited twice
    # Docker waits 10 s after SIGTERM; gunicorn needs about 1.3 s once nginx has gone.
    assert nginx_seconds(inner["worker_shutdown_timeout"]) < NGINX_GRACE_S <= 10 - 3
    assert nginx_seconds(inner["keepalive_timeout"]) > 60  # the ALB's default idle timeout
    assert (
        inner["listen"].split()[0] == "0.0.0.0:8000"
        and "unix:" in (tmp_path / "nginx.conf").read_text()
    )
