"""The Dockerfile and what it leaves out of the image, read without a Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from .deploy_files import ROOT, copy_sources, dockerfile, image_env, stages

BUILD, RUNTIME = stages()[0], stages()[-1]
UNUSED = ROOT / "docker" / "unused-at-serving.txt"


def runs(stage) -> str:
    """All RUN commands of a stage, as one text."""
    return "\n".join(rest for word, rest in stage if word == "RUN")


def exec_form(word: str) -> list[str]:
    """The JSON (exec form) arguments of the final stage's ENTRYPOINT or HEALTHCHECK CMD."""
    rest = next(rest for w, rest in RUNTIME if w == word)
    return json.loads(rest[rest.index("[") :])


def names(path) -> list[str]:
    """Normalised distribution names listed one per line (comments skipped)."""
    lines = path.read_text().splitlines()
    return [
        re.sub(r"[-_.]+", "-", ln.split("==")[0].strip()).lower()
        for ln in lines
        if ln.strip() and not ln.startswith("#")
    ]


def test_base_image_is_python_3_11_slim_unless_a_build_arg_says_otherwise():
    assert dockerfile()[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    bases = [rest.split()[0] for word, rest in dockerfile() if word == "FROM"]
    assert bases == ["${BASE_IMAGE}"] * 2


def test_build_tools_and_pip_stay_in_the_build_stage():
    assert "binutils" in runs(BUILD) and "binutils" not in runs(RUNTIME)
    assert "pip install" not in runs(RUNTIME) and "pip uninstall -y pip" in runs(BUILD)


def test_the_venv_holds_the_whole_lock_installed_without_dependencies_and_checked():
    assert re.search(r"pip install --no-deps -r \S*requirements\.txt", runs(BUILD))
    assert "pip check" in runs(BUILD)


def test_requirements_are_copied_before_any_app_code_so_code_changes_keep_the_venv_layer():
    copied = [rest for word, rest in BUILD if word == "COPY"]
    assert len(copied) == 1 and copied[0].startswith("requirements.txt")
    runtime_steps = [(w, r) for w, r in RUNTIME if w in ("COPY", "RUN")]
    assert runtime_steps[1] == ("COPY", "--from=build /opt/venv /opt/venv")


def test_runtime_installs_libgomp_which_lightgbm_needs_to_import():
    assert re.search(r"apt-get install -y --no-install-recommends libgomp1\b", runs(RUNTIME))


def test_the_app_and_the_committed_model_are_baked_in():
    baked = {"model", "application.py", "gunicorn.conf.py", "insurance_charges"}
    assert baked <= set(copy_sources())


def test_the_image_runs_as_a_numeric_non_root_user():
    user = [rest for word, rest in RUNTIME if word == "USER"][-1]
    assert re.fullmatch(r"\d+:\d+", user) and not user.startswith("0:")


def test_the_launcher_is_pid_1_in_exec_form_and_nginx_is_installed():
    # An exec-form ENTRYPOINT and no CMD: `docker run IMAGE serve` (SageMaker) hands the
    # launcher `serve`; no argument (EB, ECS) runs it as before.
    assert not [w for w, _ in RUNTIME if w == "CMD"]
    assert exec_form("ENTRYPOINT") == ["python", "-m", "insurance_charges.container"]
    assert re.search(r"apt-get install -y --no-install-recommends [^&]*\bnginx\b", runs(RUNTIME))


def test_sagemaker_may_bind_the_image_to_another_port_than_8080():
    labels = [rest for word, rest in RUNTIME if word == "LABEL"]
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in labels


def test_healthcheck_probes_health_with_the_venvs_python_and_no_curl():
    command = exec_form("HEALTHCHECK")
    assert command[0] == "python" and "/health" in command[-1]
    assert image_env()["PATH"].split(":")[0] == "/opt/venv/bin"


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines.index("*") < min(i for i, ln in enumerate(lines) if ln.startswith("!"))
    kept = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert kept == set(copy_sources())


def test_packages_removed_from_the_image_are_pinned_in_the_lock():
    assert set(names(UNUSED)) <= set(names(ROOT / "requirements.txt"))
    assert f"-r /tmp/build/{UNUSED.name}" in runs(BUILD)


SERVE_EVERYTHING = """
import importlib.metadata, json, sys
from insurance_charges.web import create_app
from insurance_charges.core.schema import EXAMPLE_RECORD
import gunicorn.app.wsgiapp, gunicorn.workers.sync, gunicorn.glogging
client = create_app().test_client()
old = dict(EXAMPLE_RECORD, age=90, bmi=70)
form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
answers = [client.get(p).status_code for p in ("/", "/health", "/docs", "/openapi.json",
                                                "/api/v1/model", "/nowhere")]
answers += [client.post("/", data=form).status_code, client.post("/", data={}).status_code,
            client.post("/api/v1/predict", json=EXAMPLE_RECORD).status_code,
            client.post("/api/v1/predict", json=[EXAMPLE_RECORD, old] * 50).status_code,
            client.post("/api/v1/predict", json={"age": "x"}).status_code,
            client.post("/predict_api", json=EXAMPLE_RECORD).status_code]
dists = importlib.metadata.packages_distributions()
used = sorted({d for m in sys.modules for d in dists.get(m.split(".")[0], [])})
in_tests = sorted(m for m, mod in sys.modules.items()
                  if "/tests/" in (getattr(mod, "__file__", None) or ""))
print(json.dumps({"answers": answers, "used": used, "in_tests": in_tests}))
"""


@pytest.fixture(scope="module")
def serving():
    """What serving every page and API answer imports, in a fresh interpreter."""
    run = subprocess.run(
        [sys.executable, "-c", SERVE_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_serving_never_imports_a_package_the_image_leaves_out(serving):
    assert 200 in serving["answers"] and 500 not in serving["answers"]
    used = {re.sub(r"[-_.]+", "-", d).lower() for d in serving["used"]}
    assert used & set(names(UNUSED)) == set()


@pytest.mark.slow
def test_serving_imports_nothing_from_the_test_suites_the_image_leaves_out(serving):
    assert "find /opt/venv/lib -type d -name tests -prune -exec rm -rf" in runs(BUILD)
    assert serving["in_tests"] == []
