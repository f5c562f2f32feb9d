"""Elastic Beanstalk's health rules, the CloudWatch metrics they publish and the alarms on them."""
from __future__ import annotations

import json

from .deploy_files import option_settings, settings

EB = settings()
HEALTH = EB["aws:elasticbeanstalk:healthreporting:system"]
DOCUMENT = json.loads(HEALTH["ConfigDocument"])
# What the alarms need and the health alarm explains (01-environment.config says why).
WATCHED = {"ApplicationRequests5xx", "ApplicationRequestsTotal", "ApplicationLatencyP99",
           "InstancesDegraded", "InstancesSevere"}


def test_the_health_document_is_json_of_version_1_with_rules_and_metrics_only():
    assert DOCUMENT["Version"] == 1
    assert set(DOCUMENT) == {"Version", "Rules", "CloudWatchMetrics"}


def test_one_health_document_sits_beside_the_enhanced_health_switch():
    sources = {source for source, namespace, option, _ in option_settings()
               if namespace == "aws:elasticbeanstalk:healthreporting:system"}
    assert len(sources) == 1 and HEALTH["SystemType"] == "enhanced"


def test_both_4xx_rules_are_off_and_nothing_else_is_ignored():
    assert DOCUMENT["Rules"] == {"Environment": {
        "Application": {"ApplicationRequests4xx": {"Enabled": False}},
        "ELB": {"ELBRequests4xx": {"Enabled": False}}}}


def test_only_the_environment_metrics_that_matter_are_published_each_minute():
    metrics = DOCUMENT["CloudWatchMetrics"]
    assert set(metrics) == {"Environment"}, "instance metrics multiply the bill by instances"
    assert metrics["Environment"] == dict.fromkeys(sorted(WATCHED), 60)
