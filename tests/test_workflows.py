"""GitHub Actions: CI runs the tests on every push and pull request; main releases the image
once and deploys it with a role; every action is pinned, and no job holds more than it uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .deploy_files import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # pinned in requirements-dev.txt
ZIZMOR = Path(sys.executable).parent / "zizmor"  # pinned in requirements-dev.txt
# `uses: owner/repo[/path]@<full commit SHA>  # vX.Y.Z`: a tag can be moved, a commit cannot.
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+(\.\d+)*\s*$")


def jobs() -> dict:
    """Every job of every workflow, by name."""
    found = {}
    for path in WORKFLOWS:
        found.update(yaml.safe_load(path.read_text())["jobs"])
    return found


def scripts(job: dict) -> str:
    """The shell of all a job's run steps."""
    return "\n".join(step.get("run", "") for step in job["steps"])


@pytest.mark.slow
def test_workflows_pass_actionlint():
    assert WORKFLOWS and ACTIONLINT.exists(), "install requirements-dev.txt"
    run = subprocess.run(
        [str(ACTIONLINT), "-color=false", *map(str, WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_ci_runs_make_test_through_ci_run_on_every_push_and_pull_request():
    for path in WORKFLOWS:
        triggers = yaml.safe_load(path.read_text())[True]  # YAML 1.1 reads the key `on` as True
        if {"push", "pull_request"} <= set(triggers):
            break
    else:
        raise AssertionError("no workflow runs on both push and pull_request")
    testing = [job for job in jobs().values() if "bash .ci/run" in scripts(job)]
    assert testing and "make test" in (ROOT / ".ci" / "run").read_text()


def test_deploy_runs_eb_deploy_on_main_after_the_tests_with_an_assumed_role():
    name, deploy = next((n, j) for n, j in jobs().items() if "eb deploy" in scripts(j))
    tests = next(n for n, j in jobs().items() if "bash .ci/run" in scripts(j))
    assert deploy["needs"] == tests and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"]["id-token"] == "write"
    role = next(s for s in deploy["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert role["with"]["role-to-assume"]
    assert "requirements-ebcli.txt" in scripts(deploy), f"{name} must use the pinned EB CLI"


def test_no_workflow_holds_long_lived_aws_keys():
    for path in WORKFLOWS:
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path


@pytest.mark.slow
def test_workflows_pass_zizmor_offline():
    assert WORKFLOWS and ZIZMOR.exists(), "install requirements-dev.txt"
    run = subprocess.run(
        [str(ZIZMOR), "--offline", "--no-progress", ".github/workflows/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_tag_in_a_comment():
    for path in WORKFLOWS:
        lines = [
            line for line in path.read_text().splitlines() if re.match(r"\s*(-\s+)?uses:", line)
        ]
        assert lines, path
        for line in lines:
            assert PINNED.match(line), f"{path.name}: {line.strip()}"


def test_no_checkout_leaves_its_token_in_the_git_config():
    checkouts = [
        step
        for job in jobs().values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts and all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_nothing_is_granted_by_default_and_only_the_deploy_job_may_request_a_token():
    for path in WORKFLOWS:
        assert yaml.safe_load(path.read_text())["permissions"] == {}, path
    for name, job in jobs().items():
        granted = job.get("permissions", {})
        assert granted.get("contents", "read") == "read", name
        assert set(granted) <= {"contents", "id-token"}, name
        assert ("id-token" in granted) == ("eb deploy" in scripts(job)), name


def test_main_releases_once_to_ecr_and_deploys_the_bundle_of_that_image():
    deploy = next(job for job in jobs().values() if "eb deploy" in scripts(job))
    names = [step.get("uses", "").split("@")[0] or step["run"] for step in deploy["steps"]]
    role = names.index("aws-actions/configure-aws-credentials")
    release = next(i for i, n in enumerate(names) if n.startswith("make release"))
    deploying = next(i for i, n in enumerate(names) if "eb deploy" in n)
    assert role < release < deploying, "assume the role, release, then deploy"
    assert all("pip install" not in n and ".runtime" not in n for n in names[role:]), (
        "install everything before the credentials exist"
    )
    assert "ECR_REPOSITORY=" in names[release] and "AWS_REGION=" in names[release]
    script = names[deploying]
    assert "dist/release.json" in script and "artifact: dist/eb-%s.zip" in script
    assert "docker build" not in scripts(deploy), "only make release builds the image"
