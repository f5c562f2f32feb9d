"""make's variables reach commands as arguments: no value is ever make or shell code.

Each target is run for real with hostile values (quotes, ;, $(...), backticks, blanks,
newlines, and make's own $(shell ...)); each payload would create a marker file if any part of
it ran, and each test checks the marker was never made.
"""

from __future__ import annotations

import csv
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from devtools import make_targets
from devtools.gunicorn_server import free_port
from insurance_charges.settings import SettingsError

from .conftest import ROOT, run_in_session

VENV = ROOT / os.environ.get("VENV", ".venv")  # `make test` exports the one it runs in
# What ran would leave a file named by the payload in make's directory, or beside the marker.
PAYLOADS = [
    "x'; touch {m}; echo '",
    '"; touch {m}; echo "',
    "$(touch {m})",
    "`touch {m}`",
    "a\ntouch {m}",
    "$(shell touch {m})",
    "${{PWD:+$(touch {m})}}",
    "x && touch {m}",
]


@pytest.fixture
def marker(tmp_path):
    """A path that exists only if some part of a payload ran (in the project or in tmp_path)."""
    name = f"pwned-{uuid.uuid4().hex[:8]}"
    yield tmp_path / name
    ran_in_project = (ROOT / name).exists()
    (ROOT / name).unlink(missing_ok=True)
    assert not ran_in_project, f"a payload ran in {ROOT}"


def make(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """make TARGET NAME=value ... in the project, as a person types it (values as arguments)."""
    return run_in_session(["make", "--no-print-directory", *args], {**os.environ, **env}, timeout)


def payloads(marker: Path) -> list[str]:
    """Every payload, aimed at ``marker``."""
    return [p.format(m=marker) for p in PAYLOADS]


def one_error_line(run: subprocess.CompletedProcess) -> str:
    """The one ``Error:`` line; besides it only make's own ``make: ***`` line."""
    lines = [line for line in run.stderr.splitlines() if not line.startswith("make: *** ")]
    assert run.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: "), run.stderr
    return lines[0]


# ---- paths with blanks and worse are the one path they are --------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "my file.csv",
        'it\'s "q" $(touch {m}) `touch {m}`; touch {m} &.csv',
        "two\nlines $(shell touch {m}).csv",
    ],
)
def test_make_score_takes_a_path_with_blanks_quotes_and_shell_syntax_as_that_one_path(
    tmp_path, marker, name
):
    folder = tmp_path / "a folder with blanks"
    folder.mkdir()
    given = folder / name.format(m=marker.name)
    given.write_text(
        "age,sex,bmi,children,smoker,region\n19,female,27.9,0,yes,southwest\n"
        "33,male,22.7,0,no,northwest\n"
    )
    out = folder / ("out " + name.format(m=marker.name))
    run = make("score", f"IN={given}", f"OUT={out}", "ARGS=--max-rejects 0 --jobs 1")
    assert run.returncode == 0, run.stderr
    with out.open(newline="") as scored:
        rows = list(csv.DictReader(scored))
    assert [row["age"] for row in rows] == ["19", "33"] and all(row["estimate"] for row in rows)
    assert not marker.exists() and sorted(p.name for p in folder.iterdir()) == sorted(
        [given.name, out.name, out.name[:-4] + ".rejects.csv"]
    )


@pytest.mark.slow
def test_make_score_without_in_or_out_is_one_line():
    assert one_error_line(make("score", "IN=x.csv")) == (
        "Error: make score needs IN and OUT: make score IN=path|s3://bucket/key|- "
        "OUT=path|s3://bucket/key|- [ARGS='--max-rejects 10']"
    )


# ---- values that would be code are arguments ---------------------------------------------------


@pytest.mark.slow
def test_make_release_with_a_registry_that_would_run_a_command_is_one_line(marker):
    for registry in payloads(marker):
        line = one_error_line(make("release", f"REGISTRY={registry}"))
        assert line.startswith("Error: argument --registry: ") and repr(registry)[1:-1] in line, (
            line
        )
    assert not marker.exists()


@pytest.mark.slow
def test_make_registry_takes_args_as_its_arguments_never_as_commands(marker):
    for args in payloads(marker):
        run = make("registry", f"ARGS=list {args}")  # list takes no argument but --history
        assert run.returncode != 0 and "unrecognized arguments" in run.stderr
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, text", [("ARGS", 'list "my versions'), ("ARGS", "list \\"), ("PYTEST_ARGS", "-k 'x")]
)
def test_a_multi_argument_variable_that_a_shell_could_not_split_is_one_line(name, text):
    with pytest.raises(
        SettingsError,
        match=rf"^{name}=.*: no (closing quotation|escaped "
        r"character); quote an argument that holds blanks",
    ):
        make_targets.command({"ARGS": "registry", "PYTEST_ARGS": "test"}[name], {name: text})
    if name == "ARGS":  # the same through make, as one line
        assert one_error_line(make("registry", f"ARGS={text}")).startswith("Error: ARGS=")


@pytest.mark.slow
def test_make_model_archive_and_train_take_paths_as_arguments(marker):
    for value in payloads(marker):
        archive = make(
            "model-archive",
            f"MODEL=/nonexistent/{value}.pkl",
            f"OUT={marker.parent}/{value}.tar.gz",
            f"UPLOAD=s3://b/{value}",
        )
        # (the model loader's line shows the path as it is: a newline in it is one there too)
        assert (
            archive.returncode != 0
            and "Traceback" not in archive.stderr
            and archive.stderr.startswith("Error: model file /nonexistent/")
        )
        train = make("train", f"SIGNING_KEY=/nonexistent/{value}", f"DATA=/nonexistent/{value}")
        assert train.returncode != 0 and "signing key /nonexistent/" in train.stderr
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["PORT", "HOST", "WEB_CONCURRENCY", "LOG_LEVEL"])
def test_make_run_with_a_setting_that_would_run_a_command_is_one_line(marker, name):
    for value in payloads(marker):
        # (refused before anything starts: a server that started would be a failure)
        run = make(
            "run",
            f"{name}={value}",
            timeout=120,
            **({} if name == "PORT" else {"PORT": str(free_port())}),
        )
        assert one_error_line(run).startswith(f"Error: {name}="), run.stderr
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VENV", "EBCLI", "AIRFLOW_VENV"])
def test_a_virtual_environment_path_make_cannot_use_as_a_file_name_stops_make_in_one_line(
    marker, name
):
    for value in [*payloads(marker), "my venv", ""]:
        run = make("help", f"{name}={value}")
        assert (
            run.returncode != 0
            and run.stdout == ""
            and run.stderr.splitlines()
            == [
                f"Makefile:{run.stderr.split(':')[1]}: *** {name} must be a path of letters, "
                "digits and . _ - / + @ only (make reads a blank or any other character in a file "
                f"name as its own syntax); set {name} to such a path.  Stop."
            ]
        ), run.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_python_is_the_one_command_it_names(tmp_path, marker):
    venv = tmp_path / "new-venv"  # not there yet: make creates it with $PYTHON first
    for python in payloads(marker):
        run = make("run", f"VENV={venv}", f"PYTHON={python}", timeout=120)
        assert run.returncode != 0 and not venv.exists()
    assert not marker.exists()


@pytest.mark.slow
def test_a_variable_the_makefile_does_not_know_is_never_evaluated_by_make(marker):
    run = make("help", f"SOMETHING=$(shell touch {marker})", f"OTHER=`touch {marker}`")
    assert run.returncode == 0 and "make run" in run.stdout and not marker.exists()


@pytest.mark.slow
def test_pytest_args_reach_pytest_as_its_arguments(marker):
    run = make(
        "test",
        "-o",
        f"{VENV}/.dev",
        "-o",
        ".venv-ebcli/.installed",
        "-o",
        ".venv-airflow/.installed",
        f"VENV={VENV}",
        f"PYTEST_ARGS=--collect-only -q -p no:cacheprovider tests/test_schema.py "
        f"-k 'not $(touch {marker}) and not `touch {marker}`'",
    )
    assert f"not $(touch {marker}) and not `touch {marker}`" in run.stdout + run.stderr
    assert not marker.exists()


# ---- the argument lists themselves -------------------------------------------------------------


@pytest.mark.parametrize(
    "target, environ, argv",
    [
        (
            "score",
            {"IN": "-in file.csv", "OUT": "-", "ARGS": "--max-rejects 10 --rejects 'r s.csv'"},
            [
                "insurance_charges.scoring",
                "--max-rejects",
                "10",
                "--rejects",
                "r s.csv",
                "--output=-",
                "--",
                "-in file.csv",
            ],
        ),
        (
            "registry",
            {"ARGS": "list --history"},
            ["insurance_charges.registry", "list", "--history"],
        ),
        ("registry", {}, ["insurance_charges.registry"]),
        ("release", {"REGISTRY": "-x y"}, ["insurance_charges.release", "--registry=-x y"]),
        (
            "release",
            {"ECR_REPOSITORY": "r", "AWS_REGION": "eu-west-1"},
            ["insurance_charges.release", "--ecr-repository=r", "--region=eu-west-1"],
        ),
        (
            "release",
            {"ECR_REPOSITORY": "r"},
            ["insurance_charges.release", "--ecr-repository=r", "--region="],
        ),
        (
            "model-archive",
            {"MODEL": "m m.pkl", "OUT": "-o", "UPLOAD": "s3://b/k"},
            [
                "insurance_charges.platforms.sagemaker",
                "archive",
                "--model=m m.pkl",
                "--output=-o",
                "--upload=s3://b/k",
            ],
        ),
        ("model-archive", {"MODEL": ""}, ["insurance_charges.platforms.sagemaker", "archive"]),
        (
            "train",
            {"SIGNING_KEY": "k k.pem", "DATA": "-d.csv"},
            ["insurance_charges.training", "--signing-key=k k.pem", "--data=-d.csv"],
        ),
        ("test", {"PYTEST_ARGS": "-k 'a and b' -x"}, ["pytest", "-k", "a and b", "-x"]),
        (
            "check",
            {"PYTEST_ARGS": "tests/test_settings.py -k 'not make'"},
            [
                "pytest",
                "-m",
                "not slow",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_settings.py",
                "-k",
                "not make",
            ],
        ),
    ],
)
def test_each_target_builds_its_command_with_one_argument_per_value(target, environ, argv):
    assert make_targets.command(target, environ) == ["-m", *argv]
