"""GitHub Actions: CI runs the tests on every push and pull request; main deploys with a role."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from .deploy_files import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = Path(sys.executable).parent / "actionlint"  # pinned in requirements-dev.txt


def jobs() -> dict:
    """Every job of every workflow, by name."""
    found = {}
    for path in WORKFLOWS:
        found.update(yaml.safe_load(path.read_text())["jobs"])
    return found


def scripts(job: dict) -> str:
    """The shell of all a job's run steps."""
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_workflows_pass_actionlint():
    assert WORKFLOWS and ACTIONLINT.exists(), "install requirements-dev.txt"
    run = subprocess.run([str(ACTIONLINT), "-color=false", *map(str, WORKFLOWS)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
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
