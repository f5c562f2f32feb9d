"""What `eb deploy` uploads, built by the EB CLI's own bundling code from a copy of the checkout."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import require
from .deploy_files import (
    EB_FILES,
    EBCLI_PYTHON,
    EBCLI_VENV,
    bundle_files,
    copy_project,
    copy_sources,
    eb_bundle,
    working_tree_files,
)

pytestmark = pytest.mark.slow
MODEL = "model/insurance-charges.pkl"
# What a developer's checkout also holds and no bundle may carry.
DECOYS = {
    ".venv/bin/python": "#!/bin/sh\n",
    ".venv-ebcli/pyvenv.cfg": "home = /usr\n",
    "data/insurance.csv": "age,sex,bmi\n",
    "insurance.csv": "age,sex,bmi\n",
    ".env": "API_KEYS=secret\n",
    "notes.md~": "backup\n",
    "insurance_charges/__pycache__/api.cpython-311.pyc": "bytecode",
}
NEVER = (
    ".git/",
    ".venv",
    "tests/",
    ".github/",
    ".ci/",
    "bench/",
    "data/",
    ".elasticbeanstalk/",
    "docs/",
    ".env",
)


def git(project, *args) -> str:
    """Run git in the copied project."""
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def checkout(tmp_path_factory, name: str):
    """A copy of the checkout, committed to git except the model, which git ignores."""
    require(
        EBCLI_PYTHON.exists(),
        f"needs the EB CLI's virtual environment {EBCLI_VENV} (`make test` creates it)",
    )
    project = copy_project(tmp_path_factory.mktemp(name) / "project")
    for path, text in DECOYS.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    with open(project / ".gitignore", "a") as ignore:
        ignore.write(f"\n{MODEL}\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "everything but the model")
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The copied checkout with its .ebignore."""
    return checkout(tmp_path_factory, "with-ebignore")


@pytest.fixture(scope="module")
def uploaded(project):
    """File names in the bundle `eb deploy` would upload."""
    return bundle_files(eb_bundle(project))


def test_bundle_holds_exactly_the_eb_files_and_what_the_dockerfile_copies(project, uploaded):
    expected = working_tree_files([*EB_FILES, *copy_sources()], root=project)
    assert uploaded == expected


def test_bundle_never_holds_git_venvs_tests_data_or_bytecode(uploaded):
    assert not [name for name in uploaded if name.startswith(NEVER)]
    assert not [
        name for name in uploaded if name.endswith((".csv", ".pyc", "~")) or "__pycache__" in name
    ]


def test_dockerfile_and_dockerrun_sit_at_the_root_of_the_bundle(uploaded):
    assert {"Dockerfile", "Dockerrun.aws.json"} <= uploaded


def test_bundle_carries_a_model_git_does_not_track(project):
    assert git(project, "ls-files", "model/") == (
        "model/insurance-charges.card.json\nmodel/insurance-charges.sig.json\n"
    )
    bundle = eb_bundle(project, "model-check")
    assert bundle.read(MODEL) == (project / MODEL).read_bytes()


def test_without_ebignore_the_eb_cli_uploads_git_head_and_loses_that_model(tmp_path_factory):
    project = checkout(tmp_path_factory, "without-ebignore")
    git(project, "rm", "-q", ".ebignore")
    git(project, "commit", "-q", "-m", "no .ebignore")
    uploaded = bundle_files(eb_bundle(project))
    assert MODEL not in uploaded and "tests/conftest.py" in uploaded
