"""Elastic Beanstalk's health rules, the CloudWatch metrics they publish and the alarms on them."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from .conftest import ROOT, require
from .deploy_files import (
    EBCLI_PYTHON,
    EBCLI_VENV,
    cfn_lint,
    ebextensions_resources,
    gunicorn_settings,
    image_env,
    option_settings,
    settings,
)

EB = settings()
HEALTH = EB["aws:elasticbeanstalk:healthreporting:system"]
DOCUMENT = json.loads(HEALTH["ConfigDocument"])
# What the alarms need and the health alarm explains (01-environment.config says why).
WATCHED = {
    "ApplicationRequests5xx",
    "ApplicationRequestsTotal",
    "ApplicationLatencyP99",
    "InstancesDegraded",
    "InstancesSevere",
}


def test_the_health_document_is_json_of_version_1_with_rules_and_metrics_only():
    assert DOCUMENT["Version"] == 1
    assert set(DOCUMENT) == {"Version", "Rules", "CloudWatchMetrics"}


def test_one_health_document_sits_beside_the_enhanced_health_switch():
    sources = {
        source
        for source, namespace, option, _ in option_settings()
        if namespace == "aws:elasticbeanstalk:healthreporting:system"
    }
    assert len(sources) == 1 and HEALTH["SystemType"] == "enhanced"


def test_both_4xx_rules_are_off_and_nothing_else_is_ignored():
    assert DOCUMENT["Rules"] == {
        "Environment": {
            "Application": {"ApplicationRequests4xx": {"Enabled": False}},
            "ELB": {"ELBRequests4xx": {"Enabled": False}},
        }
    }


def test_only_the_environment_metrics_that_matter_are_published_each_minute():
    metrics = DOCUMENT["CloudWatchMetrics"]
    assert set(metrics) == {"Environment"}, "instance metrics multiply the bill by instances"
    assert metrics["Environment"] == dict.fromkeys(sorted(WATCHED), 60)


# --- The alarms (.ebextensions Resources) --------------------------------------------------


RESOURCES = ebextensions_resources()
ALARMS = {
    name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"
}
TOPICS = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::SNS::Topic"]
SUBSCRIPTIONS = [
    r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::SNS::Subscription"
]
CUSTOM = "aws:elasticbeanstalk:customoption"
ENVIRONMENT = [{"Name": "EnvironmentName", "Value": {"Ref": "AWSEBEnvironmentName"}}]
# EB publishes EnvironmentHealth for every enhanced-health environment, free; the rest only
# when the health document asks for them.
PUBLISHED = set(DOCUMENT["CloudWatchMetrics"]["Environment"]) | {"EnvironmentHealth"}
# The functions EB resolves in .ebextensions Resources (EB developer guide, ebextensions-functions).
EB_FUNCTIONS = {"Ref", "Fn::GetAtt", "Fn::Join", "Fn::GetOptionSetting"}
CAPACITY = EB["aws:autoscaling:trigger"], EB["aws:autoscaling:asg"]
PROCESS = EB["aws:elasticbeanstalk:environment:process:default"]
GUNICORN = gunicorn_settings({**image_env(), **EB["aws:elasticbeanstalk:application:environment"]})


def standalone_template(resources: dict) -> dict:
    """The Resources as a CloudFormation template of their own, for cfn-lint.

    EB's stack for the environment has a parameter AWSEBEnvironmentName, so the Refs to it stay
    as they are, against a Parameter of that name. Fn::GetOptionSetting exists only in EB: each
    becomes a Ref to a String Parameter named after its option, defaulting to the value the
    option settings declare (so an undeclared option shows up as a Parameter without one).
    """
    parameters = {"AWSEBEnvironmentName": {"Type": "String"}}

    def substitute(node):
        if isinstance(node, dict) and set(node) == {"Fn::GetOptionSetting"}:
            option = node["Fn::GetOptionSetting"]
            declared = EB.get(option.get("Namespace", CUSTOM), {}).get(option["OptionName"])
            parameters[option["OptionName"]] = {
                "Type": "String",
                **({"Default": declared} if declared is not None else {}),
            }
            return {"Ref": option["OptionName"]}
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(value) for value in node]
        return node

    body = substitute(resources)
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters, "Resources": body}


def functions_used(node) -> set[str]:
    """The intrinsic functions (Ref, Fn::...) anywhere in a piece of a template."""
    if isinstance(node, list):
        return set().union(*map(functions_used, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    own = {key for key in node if key == "Ref" or key.startswith("Fn::")}
    return own.union(*map(functions_used, node.values()))


def metrics_read(alarm: dict) -> list[dict]:
    """Each metric an alarm reads: Namespace, MetricName, Dimensions and Period."""
    if "Metrics" in alarm:
        return [
            {**query["MetricStat"]["Metric"], "Period": query["MetricStat"]["Period"]}
            for query in alarm["Metrics"]
            if "MetricStat" in query
        ]
    return [{key: alarm[key] for key in ("Namespace", "MetricName", "Dimensions", "Period")}]


def alarm_on(metric: str) -> dict:
    """The one alarm whose result comes from this metric."""
    found = [
        alarm
        for alarm in ALARMS.values()
        if metric in {m["MetricName"] for m in metrics_read(alarm)}
    ]
    assert len(found) == 1, f"{len(found)} alarms read {metric}"
    return found[0]


def bench_figures() -> dict:
    """`make bench`'s last figures, from which the docs' benchmark table is built."""
    return json.loads((ROOT / "bench" / "results" / "latest.json").read_text())


@pytest.mark.slow
def test_the_resources_pass_cfn_lint_as_a_template_of_their_own(tmp_path):
    assert cfn_lint(standalone_template(RESOURCES), tmp_path) == []


BREAKAGES = {  # property -> a wrong value cfn-lint must catch
    "TreatMissingData": "sometimes",
    "ComparisonOperator": "GreaterThan",
    "Threshold": "one second",
    "EvaluationPeriods": 0,
}


@pytest.mark.slow
def test_cfn_lint_catches_each_broken_alarm_property(tmp_path):
    base = {key: value for key, value in ALARMS[next(iter(ALARMS))].items() if key != "AlarmName"}
    broken = {
        f"Broken{prop}": {"Type": "AWS::CloudWatch::Alarm", "Properties": {**base, prop: value}}
        for prop, value in BREAKAGES.items()
    }
    found = {
        tuple(finding["Location"]["Path"][1:4:2])
        for finding in cfn_lint(standalone_template({**RESOURCES, **broken}), tmp_path)
    }
    assert found == {(name, prop) for name, prop in zip(broken, BREAKAGES, strict=True)}


def test_the_resources_use_only_functions_elastic_beanstalk_resolves():
    assert functions_used(RESOURCES) <= EB_FUNCTIONS


def test_every_alarm_reads_a_metric_this_environment_publishes_each_minute():
    for name, alarm in ALARMS.items():
        for metric in metrics_read(alarm):
            assert metric["MetricName"] in PUBLISHED, f"{name}: nothing publishes it"
            assert metric["Namespace"] == "AWS/ElasticBeanstalk", name
            assert metric["Dimensions"] == ENVIRONMENT, f"{name}: not this environment's"
            assert metric["Period"] == 60, f"{name}: EB publishes once a minute"


def test_the_alarms_watch_errors_latency_and_health():
    read = {m["MetricName"] for alarm in ALARMS.values() for m in metrics_read(alarm)}
    assert read == {
        "ApplicationRequests5xx",
        "ApplicationRequestsTotal",
        "ApplicationLatencyP99",
        "EnvironmentHealth",
    }
    assert WATCHED - read == {"InstancesDegraded", "InstancesSevere"}  # graphs beside them


def test_every_alarm_mails_the_topic_when_it_fires_and_when_it_clears():
    assert len(TOPICS) == 1
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": TOPICS[0]}], name


def test_alarm_names_start_with_the_environment_and_differ():
    joins = [alarm["AlarmName"]["Fn::Join"] for alarm in ALARMS.values()]
    assert all(sep == "-" and parts[0] == {"Ref": "AWSEBEnvironmentName"} for sep, parts in joins)
    assert len({tuple(parts[1:]) for _, parts in joins}) == len(ALARMS)


def test_the_topic_mails_the_address_a_declared_custom_option_holds():
    (subscription,) = SUBSCRIPTIONS
    assert subscription["TopicArn"] == {"Ref": TOPICS[0]} and subscription["Protocol"] == "email"
    option = subscription["Endpoint"]["Fn::GetOptionSetting"]
    assert option["Namespace"] == CUSTOM and "DefaultValue" not in option
    declared = EB[CUSTOM][option["OptionName"]]
    # The repository's default must reach nobody: example.com is reserved (RFC 2606).
    assert re.fullmatch(r"[\w.+-]+@example\.com", declared), declared


def test_the_error_alarm_is_a_rate_of_5xx_among_all_requests():
    alarm = alarm_on("ApplicationRequests5xx")
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    (result,) = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    errors, requests = re.fullmatch(r"100 \* (\w+) / (\w+)", result["Expression"]).groups()
    assert queries[errors]["MetricStat"]["Metric"]["MetricName"] == "ApplicationRequests5xx"
    assert queries[requests]["MetricStat"]["Metric"]["MetricName"] == "ApplicationRequestsTotal"
    assert {queries[i]["MetricStat"]["Stat"] for i in (errors, requests)} == {"Sum"}
    assert 0 < alarm["Threshold"] <= 5 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_one_lost_request_or_a_quiet_minute_never_mails():
    errors, latency = alarm_on("ApplicationRequests5xx"), alarm_on("ApplicationLatencyP99")
    assert 2 <= errors["DatapointsToAlarm"] <= errors["EvaluationPeriods"]
    assert errors["TreatMissingData"] == latency["TreatMissingData"] == "notBreaching"


def test_latency_threshold_sits_far_above_every_measured_request_and_below_the_timeouts():
    alarm = alarm_on("ApplicationLatencyP99")
    assert alarm["MetricName"] == "ApplicationLatencyP99" and alarm["Statistic"] == "Maximum"
    figures = bench_figures()
    one_p99, batch = figures["one_record"]["p99_ms"], figures["batch"]["p50_ms"]
    assert alarm["Threshold"] >= 5 * max(one_p99, batch) / 1000  # seconds
    assert alarm["Threshold"] < int(PROCESS["HealthCheckTimeout"]) < GUNICORN["timeout"]


def test_latency_alarm_waits_out_one_scale_out():
    alarm, (trigger, asg) = alarm_on("ApplicationLatencyP99"), CAPACITY
    # Scale-out trips after BreachDuration minutes; the next scaling waits Cooldown seconds,
    # chosen to outlast a new instance's start (02-capacity.config).
    scale_out = int(trigger["BreachDuration"]) * 60 + int(asg["Cooldown"])
    assert alarm["DatapointsToAlarm"] * alarm["Period"] >= scale_out
    assert alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"]


def test_health_alarm_fires_at_degraded_or_worse_for_longer_than_a_replacement_takes():
    alarm = alarm_on("EnvironmentHealth")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        20,
    )
    assert alarm["Statistic"] == "Maximum" and alarm["TreatMissingData"] == "missing"
    assert alarm["DatapointsToAlarm"] * alarm["Period"] >= int(CAPACITY[1]["Cooldown"])


# --- Setting the address, as the docs say (docs/deploy/elastic-beanstalk.md) ----------------

# Runs inside the EB CLI's own virtual environment: `eb config --update SETTINGS` calls
# configops.modify_environment_configuration, which parses SETTINGS and hands the option
# settings to commonops.update_environment; that last call (the AWS request) is recorded here.
EB_CONFIG_UPDATE = """
import json, sys
from ebcli.operations import commonops, configops
commonops.update_environment = lambda env, changes, nohang, **rest: print(json.dumps(changes))
configops.modify_environment_configuration(sys.argv[1], sys.argv[2], True)
"""


@pytest.mark.slow
def test_the_documented_command_sets_the_alarm_address_the_subscription_reads(tmp_path):
    import boto3
    from botocore.stub import Stubber

    require(EBCLI_PYTHON.exists(), f"needs the EB CLI's virtual environment {EBCLI_VENV}")
    page = ROOT / "docs" / "deploy" / "elastic-beanstalk.md"
    (command,) = re.findall(r"^eb config --update '([^']+)'$", page.read_text(), re.M)
    run = subprocess.run(
        [str(EBCLI_PYTHON), "-c", EB_CONFIG_UPDATE, "insurance-charges-prod", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    changes = json.loads(run.stdout.strip().splitlines()[-1])
    option = SUBSCRIPTIONS[0]["Endpoint"]["Fn::GetOptionSetting"]
    (setting,) = changes
    assert (setting["Namespace"], setting["OptionName"]) == (
        option["Namespace"],
        option["OptionName"],
    )
    assert re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", setting["Value"])
    # The call it becomes is one the Elastic Beanstalk API accepts (the Stubber checks every
    # parameter against botocore's service model).
    client = boto3.client(
        "elasticbeanstalk",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    request = {"EnvironmentName": "insurance-charges-prod", "OptionSettings": changes}
    with Stubber(client) as stub:
        stub.add_response("update_environment", {}, request)
        client.update_environment(**request)
