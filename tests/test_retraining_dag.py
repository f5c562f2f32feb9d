"""The weekly retraining DAG (airflow/dags/), run by Airflow from its own virtual environment.

It imports cleanly (DagBag, no import errors) without ever importing the project, and
`airflow dags test` runs it end to end against moto's S3 server on the shared data set, the
project's commands running in the project's own venv: a good week is trained, published and
promoted (its data check saying there is no champion to compare the inputs with); a week of
damaged data is compared with the champion's training data (no drift: the same people), trained
and published but refused by the gate, so the run ends "not promoted" and the champion stays;
data failing its checksum stops the run before any training, and nothing is published.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from .aws import moto_server
from .conftest import ROOT, require

# Airflow's own virtual environment (made by `make test`; AIRFLOW_VENV names another).
AIRFLOW_VENV = ROOT / os.environ.get("AIRFLOW_VENV", ".venv-airflow")  # absolute stays as is
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"
DAGS = ROOT / "airflow" / "dags"
DAG_ID = "retrain_insurance_charges"
STORE = "s3://model-store/insurance-charges"
TASKS = ["check_data", "train_and_publish", "promote", "outcome"]
RUN_TIMEOUT = 1800  # seconds; one run trains once (about 1 minute on 2 idle cores)

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def airflow_python(script: str, env: dict | None = None) -> dict:
    """Run ``script`` in Airflow's interpreter; it prints one JSON object, returned here."""
    require(
        AIRFLOW.exists(),
        f"needs Airflow's virtual environment {AIRFLOW_VENV} (`make test` creates it)",
    )
    done = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> dict:
    """What Airflow's DagBag makes of the dags folder, as plain data."""
    return airflow_python(
        f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        dag = bag.dags.get({DAG_ID!r})
        tasks = {{t.task_id: {{"upstream": sorted(t.upstream_task_ids),
                              "trigger_rule": str(t.trigger_rule.value), "retries": t.retries,
                              "skip_on_exit_code": sorted(getattr(t, "skip_on_exit_code", ())),
                              "permanent": sorted(getattr(t, "permanent", {{}}))}}
                 for t in dag.tasks}} if dag else {{}}
        print(json.dumps({{
            "import_errors": {{str(k): v for k, v in bag.import_errors.items()}},
            "dags": sorted(bag.dags), "tasks": tasks,
            "schedule": dag and str(dag.schedule), "catchup": dag and dag.catchup,
            "max_active_runs": dag and dag.max_active_runs,
            "params": dag and {{k: dag.params[k] for k in dag.params}},
            "project_imported": sorted(m for m in sys.modules
                                       if m.split(".")[0] in ("insurance_charges", "pycaret",
                                                              "sklearn", "pandas"))}}))
    """,
        {
            "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
    )


def test_the_dag_imports_without_errors(bag):
    assert bag["import_errors"] == {}
    assert bag["dags"] == [DAG_ID]


def test_the_dag_never_imports_the_project_so_airflows_pins_never_meet_pycarets(bag):
    assert bag["project_imported"] == []


def test_the_steps_run_in_order_and_promote_only_after_a_successful_publish(bag):
    tasks = bag["tasks"]
    assert list(tasks) == TASKS
    assert [tasks[t]["upstream"] for t in TASKS] == [
        [],
        ["check_data"],
        ["train_and_publish"],
        ["promote"],
    ]
    assert tasks["train_and_publish"]["trigger_rule"] == "all_success"
    assert tasks["promote"]["trigger_rule"] == "all_success"


def test_a_gate_refusal_skips_promote_and_a_failed_rollout_is_not_retried(bag):
    promote = bag["tasks"]["promote"]
    assert promote["skip_on_exit_code"] == [3]  # registry: the gate refused
    assert 4 in promote["permanent"]  # registry: the champion moved, the rollout failed


def test_refused_data_fails_at_once_and_unreadable_data_is_retried(bag):
    check = bag["tasks"]["check_data"]
    assert check["permanent"] == [1, 2] and check["retries"] >= 2  # 75 is retried


def test_it_runs_weekly_one_run_at_a_time_without_catching_up(bag):
    assert bag["schedule"] == "0 3 * * 1"
    assert (bag["max_active_runs"], bag["catchup"]) == (1, False)
    assert bag["params"] == {
        "data_source": "canonical",
        "data_sha256": "",
        "max_rejected_rows": 0,
        "store": "",
        "eb_environment": "",
    }


def test_only_the_exit_statuses_retrying_cannot_change_fail_for_good(tmp_path):
    result = airflow_python(
        f"""
        import json, sys
        sys.path.insert(0, {str(DAGS)!r})
        from airflow.sdk.exceptions import AirflowFailException
        from retrain_insurance_charges import _PermanentFailures
        hook = _PermanentFailures({{1: "refused"}})
        got = {{}}
        for status in (0, 1, 75):
            try:
                got[status] = hook.run_command(["bash", "-c", f"exit {{status}}"]).exit_code
            except AirflowFailException as exc:
                got[status] = str(exc)
        print(json.dumps(got))
    """,
        {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
    )
    assert result == {"0": 0, "1": "exit status 1: refused; not retried", "75": 75}


# End to end ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One `airflow dags test` run: its exit status, its log, each task's final state."""

    status: int
    log: str
    states: dict


class Week:
    """moto's S3 server with a bucket of weekly data and a model store, and an Airflow home."""

    def __init__(self, tmp: Path, env: dict, s3):
        self.tmp, self.env, self.s3 = tmp, env, s3

    def upload(self, key: str, body: bytes) -> str:
        """Put weekly data in S3 as an uploader should: with S3's SHA-256 checksum."""
        self.s3.put_object(Bucket="weekly-data", Key=key, Body=body, ChecksumAlgorithm="SHA256")
        return f"s3://weekly-data/{key}"

    def registry(self, *argv) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "insurance_charges.registry", "--store", STORE, *map(str, argv)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def champion(self) -> str | None:
        done = self.registry("fetch", "champion", self.tmp / "champion")
        if done.returncode:
            return None
        card = next((self.tmp / "champion").glob("*.card.json"))
        return json.loads(card.read_text())["model_version"]

    def airflow(self, *argv, timeout=300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(AIRFLOW), *argv],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run(self, **conf) -> Run:
        done = self.airflow("dags", "test", DAG_ID, "--conf", json.dumps(conf), timeout=RUN_TIMEOUT)
        log = done.stdout + done.stderr
        run_id = re.search(r"DagRun Finished: .*?run_id=([^,]+),", log)
        assert run_id, log[-3000:]
        states = self.airflow("tasks", "states-for-dag-run", DAG_ID, run_id[1], "-o", "json")
        assert states.returncode == 0, states.stderr[-2000:]
        rows = json.loads(states.stdout.strip().splitlines()[-1])
        return Run(done.returncode, log, {r["task_id"]: r["state"] for r in rows})


@pytest.fixture(scope="module")
def weeks(data_path, private_key_file, signing_key, tmp_path_factory):
    """A store whose reference set is frozen (the operator's one-time first publish), weekly
    data in S3, and an Airflow home with its database migrated and the DAG serialized."""
    require(
        AIRFLOW.exists(),
        f"needs Airflow's virtual environment {AIRFLOW_VENV} (`make test` creates it)",
    )
    require(
        (ROOT / "insurance_charges" / "registry").is_dir(),
        "needs the model registry (insurance_charges/registry)",
    )
    from cryptography.hazmat.primitives import serialization

    tmp = tmp_path_factory.mktemp("weeks")
    # The shipped key (the committed model, published once to freeze the reference set) and
    # the tests' key (the models the DAG trains).
    trusted = tmp / "trusted.pem"
    trusted.write_bytes(
        (ROOT / "insurance_charges" / "core" / "trusted-model-keys.pem").read_bytes()
        + signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with moto_server() as aws:
        env = {
            **os.environ,
            **aws,
            "MODEL_PUBLIC_KEY": str(trusted),
            "MODEL_SIGNING_KEY": str(private_key_file),
            "INSURANCE_CHARGES_HOME": str(ROOT),
            "INSURANCE_CHARGES_PYTHON": sys.executable,
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for bucket in ("weekly-data", "model-store"):
            s3.create_bucket(Bucket=bucket)
        week = Week(tmp, env, s3)
        week.upload("week-1.csv", data_path.read_bytes())
        checked = subprocess.run(
            [
                sys.executable,
                "-m",
                "insurance_charges.training.data_checks",
                str(data_path),
                "--out",
                str(tmp / "first"),
                "--holdout",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert checked.returncode == 0, checked.stderr
        first = week.registry(
            "publish", ROOT / "model", "--reference-data", tmp / "first" / "holdout.csv"
        )
        assert first.returncode == 0, first.stderr
        for step in (("db", "migrate"), ("dags", "reserialize")):
            done = week.airflow(*step)
            assert done.returncode == 0, done.stderr[-3000:]
        yield week


def _charges_shuffled(data_path) -> bytes:
    """The data set with every bill given to someone else: a model trained on it is useless."""
    rows = list(csv.reader(io.StringIO(data_path.read_text())))
    charges = [r[-1] for r in rows[1:]]
    random.Random(12).shuffle(charges)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [rows[0], *[[*r[:-1], c] for r, c in zip(rows[1:], charges, strict=True)]]
    )
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def good_week(weeks):
    return weeks.run(data_source="s3://weekly-data/week-1.csv", store=STORE), weeks.champion()


@pytest.fixture(scope="module")
def damaged_week(weeks, good_week, data_path):
    source = weeks.upload("week-2.csv", _charges_shuffled(data_path))
    listed = weeks.registry("list").stdout
    return weeks.run(data_source=source, store=STORE), weeks.champion(), listed


@pytest.fixture(scope="module")
def tampered_week(weeks, damaged_week):
    listed = weeks.registry("list").stdout
    run = weeks.run(data_source="s3://weekly-data/week-1.csv", store=STORE, data_sha256="0" * 64)
    return run, listed, weeks.registry("list").stdout, weeks.champion()


def test_a_good_week_is_trained_published_and_promoted(good_week):
    run, champion = good_week
    assert run.status == 0, run.log[-3000:]
    assert run.states == dict.fromkeys(TASKS, "success")
    version = re.search(r"PROMOTED (\S+): trained on (\d+) of 1338 rows", run.log)
    assert version and champion == version[1]


def test_training_progress_shows_in_the_task_log(good_week):
    run, _ = good_week
    assert '"step": "fetch"' in run.log and '"step": "holdout"' in run.log  # data check
    assert "holdout MAE" in run.log  # training's own summary
    assert "PASS  interval coverage" in run.log  # the gate's table


def test_the_data_check_compares_the_inputs_with_the_champions_training_data(
    good_week, damaged_week
):
    first, _ = good_week  # the store's first model was published, never promoted
    assert "input drift not compared: no champion in the store yet" in first.log
    assert (
        "input drift against the champion's training data: no champion in the store yet"
        in first.log
    )  # outcome, from check_data's report (XCom)
    run, _, _ = damaged_week  # the same people as the champion's, their bills shuffled
    fields = re.findall(r"drift (\w+): PSI [0-9.]+, ok \(1338 records\)", run.log)
    assert fields == ["age", "sex", "bmi", "children", "smoker", "region"]
    assert "input drift against the champion's training data: ok" in run.log


def test_a_damaged_week_is_refused_by_the_gate_and_the_champion_stays(good_week, damaged_week):
    _, champion = good_week
    run, after, _ = damaged_week
    assert run.status == 0, run.log[-3000:]  # "not promoted" is an outcome, not a failure
    assert run.states == {
        "check_data": "success",
        "train_and_publish": "success",
        "promote": "skipped",
        "outcome": "success",
    }
    assert "FAIL  MAE within" in run.log and "NOT PROMOTED: the gate refused" in run.log
    assert "NOT PROMOTED (the gate refused it):" in run.log
    assert after == champion


def test_data_failing_its_checksum_stops_the_run_and_publishes_nothing(good_week, tampered_week):
    run, before, after, champion = tampered_week
    assert run.status != 0
    assert run.states == {
        "check_data": "failed",
        "train_and_publish": "upstream_failed",
        "promote": "upstream_failed",
        "outcome": "upstream_failed",
    }
    assert "but the SHA-256 given (--sha256) is 0000" in run.log
    assert "not retried" in run.log
    assert after == before and champion == good_week[1]
