"""The EB worker environment's bundle (deploy/eb-worker/, dist/eb-worker-<tag>.zip).

Its timeouts fit each other, sqsd sends no more at once than gunicorn has workers, the
destination left unset stops start-up, scaling follows the measured rate, the IAM policy grants
what the worker does and nothing more, and the EB CLI takes the bundle as a worker environment.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile

import pytest
import yaml

from insurance_charges.aws.messages import parse_destination
from insurance_charges.container.launcher import write_config
from insurance_charges.release import eb_files, outputs
from insurance_charges.settings import WORKER_MAX_FILE_MB, SettingsError, from_environ
from insurance_charges.startup import gunicorn_environ
from insurance_charges.web.worker import RETRY_AFTER_S

from .conftest import ROOT, require
from .deploy_files import (
    EB_OPTIONS,
    EBCLI_PYTHON,
    EBCLI_VENV,
    WORKER,
    allowed,
    cfn_lint,
    dockerrun,
    ebextensions_resources,
    gunicorn_settings,
    image_env,
    nginx_directives,
    nginx_seconds,
    nginx_size,
    option_settings,
    settings,
)

SETTINGS = option_settings(WORKER)
MANIFEST = yaml.safe_load((WORKER / "env.yaml").read_text())


def effective() -> dict[str, dict[str, str]]:
    """The worker's settings as EB applies them: env.yaml's OptionSettings over .ebextensions."""
    merged = settings(WORKER)
    for namespace, options in (MANIFEST.get("OptionSettings") or {}).items():
        merged.setdefault(namespace, {}).update(options)  # a saved configuration ranks higher
    return merged


EB = effective()
SQSD = EB["aws:elasticbeanstalk:sqsd"]
ASG = EB["aws:autoscaling:asg"]
TRIGGER = EB["aws:autoscaling:trigger"]
PROPERTIES = EB["aws:elasticbeanstalk:application:environment"]
RESULTS = "https://sqs.eu-west-1.amazonaws.com/123456789012/estimates"
CONFIGURED = {**PROPERTIES, "WORKER_RESULTS": RESULTS}  # as after `eb create --envvars ...`
GUNICORN_TIMEOUT = gunicorn_environ.request_timeout(PROPERTIES)
MEASURED = json.loads((ROOT / "bench" / "results" / "worker.json").read_text())
POLICY = json.loads((WORKER / "iam-policy.json").read_text())
IMAGE = "registry.example.com/insurance-charges@sha256:" + "0" * 64
TAG = "2026.11.22-gbr-586c9afb-37de2a3"
# The largest file sizing gunicorn's timeout: WORKER_MAX_FILE_MB's default (MiB, as the
# setting reads it).
MAX_FILE_MIB = WORKER_MAX_FILE_MB
# docs/scoring.md: 1,000,000 rows of CSV are 36 MiB; the slowest rate measured, rows that each
# carry warnings, 143,000 rows/s with 2 processes, so half that on one sync worker's core.
BYTES_PER_ROW = 36 * 2**20 / 1_000_000
SLOWEST_ROWS_PER_S = 143_000 / 2
# Read the file, write the output and rejects (at most twice the input), at t3.small's
# baseline 0.128 Gbit/s.
TRANSFERRED_MIB, BYTES_PER_S = 3 * MAX_FILE_MIB, 0.128e9 / 8


RESOURCES = ebextensions_resources(WORKER)
ALARMS = {
    name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"
}
POLICIES = {
    name: r["Properties"]
    for name, r in RESOURCES.items()
    if r["Type"] == "AWS::AutoScaling::ScalingPolicy"
}


def queue_dimension(queue: str) -> list[dict]:
    """The dimension naming one of EB's own queues in an AWS/SQS metric."""
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]


# ---- the options and the manifest --------------------------------------------------------


@pytest.mark.parametrize("source, namespace, option, value", SETTINGS)
def test_every_worker_option_is_one_elastic_beanstalk_documents_with_a_value_it_allows(
    source, namespace, option, value
):
    assert namespace in EB_OPTIONS["namespaces"], f"{source}: undocumented namespace {namespace}"
    options = EB_OPTIONS["namespaces"][namespace]["options"]
    assert options == "any" or option in options, f"{source}: {namespace} has no option {option}"
    assert isinstance(value, str), f"{source}: quote {option}: {value!r} as the guide does"
    assert options == "any" or allowed(options[option], value), f"{source}: {option}: {value!r}"


def test_the_manifest_makes_a_worker_environment_and_sets_nothing_else():
    assert MANIFEST == {
        "AWSConfigurationTemplateVersion": "1.1.0.0",
        "EnvironmentTier": {"Name": "Worker", "Type": "SQS/HTTP"},
    }


def test_the_web_tiers_files_are_not_the_workers():
    web = {p.name: p.read_bytes() for p in (ROOT / ".ebextensions").glob("*.config")}
    assert all(
        web.get(p.name) != p.read_bytes() for p in (WORKER / ".ebextensions").glob("*.config")
    )
    assert "aws:elasticbeanstalk:sqsd" not in settings()


# ---- timeouts and connections -------------------------------------------------------------


def test_the_timeouts_fit_each_other_from_gunicorn_to_the_queue(tmp_path):
    write_config(8000, tmp_path, request_timeout_s=GUNICORN_TIMEOUT)
    text = re.sub(r"#[^\n]*", "", (tmp_path / "proxy.conf").read_text())
    container = dict(re.findall(r"^\s*(\w+)\s+([^;{]+);", text, re.MULTILINE))
    instance = nginx_directives(WORKER)
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        assert GUNICORN_TIMEOUT < nginx_seconds(container[name]), name
        assert nginx_seconds(container[name]) == nginx_seconds(instance[name]), name
    assert (
        nginx_seconds(instance["proxy_read_timeout"])
        < int(SQSD["InactivityTimeout"])
        < int(SQSD["VisibilityTimeout"])
    )


def test_gunicorn_in_the_worker_environment_outlasts_the_largest_file_twice_over():
    scoring_s = MAX_FILE_MIB * 2**20 / BYTES_PER_ROW / SLOWEST_ROWS_PER_S
    transfer_s = TRANSFERRED_MIB * 2**20 / BYTES_PER_S
    assert GUNICORN_TIMEOUT >= 2 * (scoring_s + transfer_s) * 0.99  # 2 x 59.3 s, in whole seconds
    assert GUNICORN_TIMEOUT > gunicorn_environ.REQUEST_TIMEOUT_S  # raised for files, not left


def test_sqsd_sends_no_more_messages_at_once_than_gunicorn_has_workers():
    workers = gunicorn_settings({**image_env(), **CONFIGURED})["workers"]
    assert int(SQSD["HttpConnections"]) == int(PROPERTIES["WEB_CONCURRENCY"]) == workers
    assert (
        EB_OPTIONS["instance_types"][EB["aws:ec2:instances"]["InstanceTypes"]]["vcpus"] == workers
    )


def test_sqsd_posts_json_to_the_worker_route_the_app_serves(real_model):
    from insurance_charges.web import create_app

    app = create_app(
        {"TESTING": True, "MODEL": real_model, "WORKER_RESULTS": parse_destination(RESULTS)}
    )
    routes = {rule.rule: rule.methods for rule in app.url_map.iter_rules()}
    assert "POST" in routes[SQSD["HttpPath"]]
    assert SQSD["MimeType"] == "application/json"


def test_every_message_sqsd_may_send_fits_the_bodies_nginx_takes():
    from insurance_charges.settings import MAX_CONTENT_LENGTH

    largest_sqs_message = 2**20  # 1 MiB, a queue's MaximumMessageSize raised to its limit
    assert (
        nginx_size(nginx_directives(WORKER)["client_max_body_size"])
        == MAX_CONTENT_LENGTH
        >= largest_sqs_message
    )


def test_failed_deliveries_ride_out_five_minutes_then_wait_in_the_dead_letters_for_14_days():
    assert int(SQSD["ErrorVisibilityTimeout"]) * int(SQSD["MaxRetries"]) >= 5 * 60
    fourteen_days = 14 * 24 * 3600  # SQS's longest retention
    assert int(SQSD["RetentionPeriod"]) == fourteen_days
    assert RESOURCES["AWSEBWorkerDeadLetterQueue"] == {
        "Type": "AWS::SQS::Queue",
        "Properties": {"MessageRetentionPeriod": fourteen_days},
    }


def test_the_503s_retry_after_is_when_sqsd_tries_again_the_bundles_error_visibility_timeout():
    assert int(SQSD["ErrorVisibilityTimeout"]) == RETRY_AFTER_S


# ---- the destination, left unset ----------------------------------------------------------


def test_the_unfilled_destination_stops_start_up_in_one_line_saying_what_to_set():
    with pytest.raises(SettingsError) as refused:
        from_environ(PROPERTIES)
    assert str(refused.value) == (
        f"WORKER_RESULTS={PROPERTIES['WORKER_RESULTS']!r}: neither an SNS topic ARN nor an SQS "
        "queue URL; set an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) or an "
        "SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
    )


def test_filled_in_every_property_is_a_setting_the_container_accepts():
    assert from_environ(CONFIGURED).worker_results == parse_destination(RESULTS)
    assert gunicorn_environ.check(CONFIGURED) == ()


def test_the_release_reads_the_worker_properties_as_pyyaml_does():
    assert eb_files.environment_properties(WORKER) == PROPERTIES


# ---- scaling on the backlog ----------------------------------------------------------------


def test_ebs_own_trigger_can_never_fire_so_the_backlog_alone_scales():
    assert (TRIGGER["MeasureName"], TRIGGER["Unit"]) == ("CPUUtilization", "Percent")
    assert (int(TRIGGER["UpperThreshold"]), int(TRIGGER["LowerThreshold"])) == (100, 0)
    assert int(TRIGGER["BreachDuration"]) == int(TRIGGER["Period"]) * int(
        TRIGGER["EvaluationPeriods"]
    )


@pytest.mark.parametrize("alarm, step", [("BacklogHighAlarm", 1), ("BacklogEmptyAlarm", -1)])
def test_each_backlog_alarm_reads_the_worker_queue_each_minute_and_moves_the_group_one_step(
    alarm, step
):
    properties = ALARMS[alarm]
    assert (properties["Namespace"], properties["MetricName"], properties["Period"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        60,
    )
    assert properties["Dimensions"] == queue_dimension("AWSEBWorkerQueue")
    [action] = properties["AlarmActions"]
    policy = POLICIES[action["Ref"]]
    assert policy["AutoScalingGroupName"] == {"Ref": "AWSEBAutoScalingGroup"}
    assert (policy["AdjustmentType"], policy["ScalingAdjustment"]) == ("ChangeInCapacity", step)
    assert int(policy["Cooldown"]) == int(ASG["Cooldown"])


def test_scale_out_starts_at_the_backlog_one_instance_clears_while_another_starts():
    rate = MEASURED["one_record"]["messages_per_s"]
    backlog = rate * int(ASG["Cooldown"])
    threshold = ALARMS["BacklogHighAlarm"]["Threshold"]
    # Within a factor of 2 of the measured figure: a re-run on a busier or quieter machine
    # moves it, a threshold unrelated to it (10 or 100,000 messages) fails here.
    assert backlog / 2 <= threshold <= backlog * 2
    assert ALARMS["BacklogHighAlarm"]["ComparisonOperator"] == "GreaterThanThreshold"


def test_scale_in_waits_for_an_empty_queue_much_longer_than_scale_out_waits():
    high, empty = ALARMS["BacklogHighAlarm"], ALARMS["BacklogEmptyAlarm"]
    assert (empty["ComparisonOperator"], empty["Threshold"]) == ("LessThanOrEqualToThreshold", 0)
    assert empty["EvaluationPeriods"] == empty["DatapointsToAlarm"] >= 5 * high["EvaluationPeriods"]
    assert (high["TreatMissingData"], empty["TreatMissingData"]) == ("notBreaching", "breaching")
    assert 1 <= int(ASG["MinSize"]) < int(ASG["MaxSize"])


def test_a_message_on_the_dead_letter_queue_mails_the_declared_address():
    alarm = ALARMS["DeadLettersAlarm"]
    assert alarm["Dimensions"] == queue_dimension("AWSEBWorkerDeadLetterQueue")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    [topic] = alarm["AlarmActions"]
    subscription = RESOURCES["DeadLettersEmailSubscription"]["Properties"]
    assert subscription["TopicArn"] == topic and subscription["Protocol"] == "email"
    option = subscription["Endpoint"]["Fn::GetOptionSetting"]
    assert option["OptionName"] in EB[option["Namespace"]]


def standalone_template() -> dict:
    """The worker's Resources as a template of their own, with EB's resources stood in for.

    EB's stack has AWSEBEnvironmentName (a parameter) and, in a worker environment,
    AWSEBAutoScalingGroup and AWSEBWorkerQueue (resources): here the group is a String
    parameter (only Ref'd), the queue a bare queue; Fn::GetOptionSetting (EB only) becomes a
    Ref to a parameter defaulting to the declared value.
    """
    parameters = {
        "AWSEBEnvironmentName": {"Type": "String"},
        "AWSEBAutoScalingGroup": {"Type": "String"},
    }

    def substitute(node):
        if isinstance(node, dict) and set(node) == {"Fn::GetOptionSetting"}:
            option = node["Fn::GetOptionSetting"]
            parameters[option["OptionName"]] = {
                "Type": "String",
                "Default": EB[option["Namespace"]][option["OptionName"]],
            }
            return {"Ref": option["OptionName"]}
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(value) for value in node]
        return node

    resources = {"AWSEBWorkerQueue": {"Type": "AWS::SQS::Queue"}, **substitute(RESOURCES)}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Resources": resources,
    }


@pytest.mark.slow
def test_the_resources_pass_cfn_lint_as_a_template_of_their_own(tmp_path):
    assert cfn_lint(standalone_template(), tmp_path) == []


@pytest.mark.slow
def test_cfn_lint_catches_a_scaling_policy_on_no_group(tmp_path):
    template = standalone_template()
    del template["Resources"]["BacklogScaleOutPolicy"]["Properties"]["AutoScalingGroupName"]
    assert cfn_lint(template, tmp_path) != []


# ---- the IAM policy ------------------------------------------------------------------------


def test_the_instance_policy_grants_what_the_worker_does_and_nothing_more():
    granted = {s["Sid"]: (sorted(s["Action"]), s["Resource"]) for s in POLICY["Statement"]}
    assert granted == {
        "TakeMessagesFromTheWorkerQueue": (
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "arn:aws:sqs:REGION:ACCOUNT:WORKER-QUEUE-NAME",
        ),
        "PublishResultsToTheResultsQueue": (
            ["sqs:SendMessage"],
            "arn:aws:sqs:REGION:ACCOUNT:RESULTS-QUEUE-NAME",
        ),
        "OrPublishResultsToTheResultsTopic": (
            ["sns:Publish"],
            "arn:aws:sns:REGION:ACCOUNT:RESULTS-TOPIC-NAME",
        ),
        "ReadArrivingFiles": (["s3:GetObject"], "arn:aws:s3:::BUCKET/incoming/*"),
        "WriteScoredFiles": (["s3:PutObject"], "arn:aws:s3:::BUCKET/scored/*"),
    }
    assert POLICY["Version"] == "2012-10-17"
    assert all(
        s["Effect"] == "Allow" and set(s) == {"Sid", "Effect", "Action", "Resource"}
        for s in POLICY["Statement"]
    )


def test_the_events_page_shows_exactly_the_policy_file():
    page = (ROOT / "docs" / "events.md").read_text()
    section = page[page.index("### The instance profile") :]
    shown = section[section.index("```json\n") + 8 : section.index("```\n", 8)]
    assert json.loads(shown) == POLICY


# ---- the bundle ----------------------------------------------------------------------------


def test_the_worker_bundle_pulls_the_image_with_the_worker_files_at_its_root(tmp_path):
    path = tmp_path / outputs.worker_bundle_name(TAG)
    outputs.write_worker_bundle(IMAGE, ROOT, path)
    expected = {
        p.relative_to(WORKER).as_posix()
        for name in (".ebextensions", ".platform")
        for p in (WORKER / name).rglob("*")
        if p.is_file()
    } | {"env.yaml"}
    with zipfile.ZipFile(path) as bundle:
        assert set(bundle.namelist()) == expected | {"Dockerrun.aws.json"}
        for name in expected:
            assert bundle.read(name) == (WORKER / name).read_bytes(), name
        assert json.loads(bundle.read("Dockerrun.aws.json")) == {
            "AWSEBDockerrunVersion": "1",
            "Image": {"Name": IMAGE, "Update": "true"},
            "Ports": dockerrun()["Ports"],
            "Logging": dockerrun()["Logging"],
        }
    # No Dockerfile (EB pulls, never builds) and no IAM policy (for IAM, not for EB).
    assert not {"Dockerfile", "iam-policy.json"} & expected


def test_a_release_writes_the_worker_bundle_beside_the_web_bundle_and_records_it(tmp_path):
    release = outputs.ReleaseRecord(
        image=IMAGE,
        repository=IMAGE.split("@")[0],
        tag=TAG,
        digest=IMAGE.split("@")[1],
        model_version="2026.11.22-gbr-586c9afb",
        git_sha="37de2a3" + "0" * 33,
        bundle=outputs.bundle_name(TAG),
        worker_bundle=outputs.worker_bundle_name(TAG),
    )
    record, bundle = outputs.write(release, ROOT, tmp_path)
    assert json.loads(record.read_text())["worker_bundle"] == f"eb-worker-{TAG}.zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [bundle.name, f"eb-worker-{TAG}.zip", "release.json"]
    )
    with zipfile.ZipFile(tmp_path / f"eb-worker-{TAG}.zip") as worker:
        assert "env.yaml" in worker.namelist()
    with zipfile.ZipFile(bundle) as web:
        assert "env.yaml" not in web.namelist()


EB_CLI_WORKER = """
import json, sys
from botocore.session import get_session
from botocore.validate import validate_parameters
from ebcli.controllers.create import get_and_validate_envars
from ebcli.objects.requests import CreateEnvironmentRequest
from ebcli.objects.tier import Tier
from ebcli.operations import commonops
sent = {}
def upload(app, bucket, key, file_name, file_path, label, description, process, *rest, **kw):
    sent.update(file_name=file_name, file_path=file_path, label=label, process=process)
commonops.handle_upload_target = upload
commonops.create_app_version('insurance-charges', process=True, label=sys.argv[1])
request = CreateEnvironmentRequest(
    app_name='insurance-charges', env_name='insurance-charges-worker',
    tier=Tier.from_raw_string('worker'), version_label=sys.argv[1],
    platform=None)
request.option_settings += get_and_validate_envars(sys.argv[2])
kwargs = request.convert_to_kwargs()
model = get_session().get_service_model('elasticbeanstalk')
validate_parameters(kwargs, model.operation_model('CreateEnvironment').input_shape)
print(json.dumps({'upload': sent, 'create': kwargs}))
"""


@pytest.mark.slow
def test_the_eb_cli_uploads_the_worker_bundle_for_processing_and_asks_for_a_worker_tier(tmp_path):
    require(
        EBCLI_PYTHON.exists(),
        f"needs the EB CLI's virtual environment {EBCLI_VENV} (`make test` creates it)",
    )
    (tmp_path / "dist").mkdir()
    outputs.write_worker_bundle(IMAGE, ROOT, tmp_path / "dist" / outputs.worker_bundle_name(TAG))
    (tmp_path / ".elasticbeanstalk").mkdir()
    (tmp_path / ".elasticbeanstalk" / "config.yml").write_text(
        "global:\n  application_name: insurance-charges\n  default_region: eu-west-1\n"
        "  default_platform: Docker running on 64bit Amazon Linux 2023\n"
        f"deploy:\n  artifact: dist/{outputs.worker_bundle_name(TAG)}\n"
    )
    # `eb create NAME --tier worker --process --envvars WORKER_RESULTS=... --label TAG`, up to
    # the AWS calls: what it would upload, and the CreateEnvironment request it would send,
    # checked against botocore's model of the API.
    run = subprocess.run(
        [str(EBCLI_PYTHON), "-c", EB_CLI_WORKER, TAG, f"WORKER_RESULTS={RESULTS}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["upload"] == {
        "file_name": f"{TAG}.zip",
        "file_path": f"dist/{outputs.worker_bundle_name(TAG)}",
        "label": TAG,
        "process": True,
    }
    create = seen["create"]
    assert create["Tier"]["Name"] == "Worker" and create["Tier"]["Type"] == "SQS/HTTP"
    assert create["VersionLabel"] == TAG
    assert {
        "Namespace": "aws:elasticbeanstalk:application:environment",
        "OptionName": "WORKER_RESULTS",
        "Value": RESULTS,
    } in create["OptionSettings"]
