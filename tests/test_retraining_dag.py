"""The weekly retraining DAG (airflow/dags/), run by Airflow from its own virtual environment.

It imports cleanly (DagBag, no import errors) with each runner without ever importing the
project; a bad runner or setting is one line. With the `aws` runner, the training job's
CreateTrainingJob and each step's ECS RunTask, rendered as a run renders them, pass botocore's
own validation against SageMaker's and ECS's service models (Stubber: moto lacks neither call's
checks). With the `docker` runner, `airflow dags test` runs it end to end in the session's
image against moto's S3 and Secrets Manager on the shared data set: a good week is checked,
trained (`docker run IMAGE train` on /opt/ml laid out as SageMaker lays it out), published and
promoted; a week of damaged data is trained and published but refused by the gate, so the run
ends "not promoted" and the champion stays; data failing its checksum stops the run before any
training, and nothing is published.
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
from datetime import UTC, datetime, timedelta
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
TASKS = ["check_data", "train", "publish", "promote", "outcomes", "outcome"]
RUN_TIMEOUT = 1800  # seconds; one run trains once (about 1 minute on 2 idle cores)
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/insurance-charges:v1"
AWS_SETTINGS = {
    "image": IMAGE,
    "work": "s3://retraining-work/runs",
    "store": STORE,
    "signing_key_secret": "insurance-charges/model-signing-key",
    "aws": {
        "cluster": "insurance-charges",
        "task_definition": "insurance-charges-retrain:3",
        "role_arn": "arn:aws:iam::123456789012:role/insurance-charges-training",
        "log_group": "/ecs/insurance-charges-retrain",
        "subnets": ["subnet-0a1b2c3d"],
        "security_groups": ["sg-0a1b2c3d"],
    },
}
DOCKER_SETTINGS = {
    "image": "insurance-charges:local",
    "work": "s3://retraining-work/runs",
    "signing_key_secret": "insurance-charges/model-signing-key",
}

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def airflow_env(home: Path, runner: str | None, settings: dict | None) -> dict:
    """An Airflow home, and the two Variables as Airflow reads them from the environment."""
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if runner is not None:
        env["AIRFLOW_VAR_INSURANCE_CHARGES_RUNNER"] = runner
    if settings is not None:
        env["AIRFLOW_VAR_INSURANCE_CHARGES"] = json.dumps(settings)
    return env


def airflow_python(script: str, env: dict | None = None) -> dict:
    """Run ``script`` in Airflow's interpreter; it prints one JSON object, returned here."""
    require(
        AIRFLOW.exists(),
        f"needs Airflow's virtual environment {AIRFLOW_VENV} (`make test` creates it)",
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")}
    done = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**clean, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


BAG = """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=__DAGS__)
    dag = bag.dags.get(__DAG_ID__)
    tasks = {t.task_id: {"upstream": sorted(t.upstream_task_ids), "type": type(t).__name__,
                         "trigger_rule": str(t.trigger_rule.value), "retries": t.retries,
                         "skip": sorted(getattr(t, "skip", {})),
                         "permanent": sorted(getattr(t, "permanent", {}))}
             for t in dag.tasks} if dag else {}
    print(json.dumps({
        "import_errors": [v.strip().splitlines()[-1] for v in bag.import_errors.values()],
        "dags": sorted(bag.dags), "tasks": tasks,
        "schedule": dag and str(dag.schedule), "catchup": dag and dag.catchup,
        "max_active_runs": dag and dag.max_active_runs,
        "params": dag and {k: dag.params[k] for k in dag.params},
        "project_imported": sorted(m for m in sys.modules
                                   if m.split(".")[0] in ("insurance_charges", "pycaret",
                                                          "sklearn", "pandas"))}))
"""


def dag_bag(home: Path, runner: str | None, settings: dict | None) -> dict:
    """What Airflow's DagBag makes of the dags folder with these Variables, as plain data."""
    script = BAG.replace("__DAGS__", repr(str(DAGS))).replace("__DAG_ID__", repr(DAG_ID))
    return airflow_python(script, airflow_env(home, runner, settings))


@pytest.fixture(scope="module", params=["aws", "docker"])
def bag(request, tmp_path_factory) -> dict:
    """The DAG as each runner builds it."""
    settings = AWS_SETTINGS if request.param == "aws" else DOCKER_SETTINGS
    return dag_bag(tmp_path_factory.mktemp("airflow-home"), request.param, settings)


def test_the_dag_imports_without_errors(bag):
    assert bag["import_errors"] == []
    assert bag["dags"] == [DAG_ID]


def test_the_dag_never_imports_the_project_so_airflows_pins_never_meet_pycarets(bag):
    assert bag["project_imported"] == []


def test_the_steps_run_in_order_and_promote_only_after_a_successful_publish(bag):
    tasks = bag["tasks"]
    assert sorted(tasks) == sorted(TASKS)
    assert {t: tasks[t]["upstream"] for t in TASKS} == {
        "check_data": [],
        "train": ["check_data"],
        "publish": ["train"],
        "promote": ["publish"],
        "outcomes": [],  # beside the retraining: its failure never stops it
        "outcome": ["outcomes", "promote"],
    }
    assert {tasks[t]["trigger_rule"] for t in ("train", "publish", "promote")} == {"all_success"}
    assert tasks["outcome"]["trigger_rule"] == "none_failed"


def test_each_runner_runs_the_image_its_own_way(bag):
    types = {t: bag["tasks"][t]["type"] for t in TASKS}
    if types["train"] == "SageMakerTrainingOperator":
        steps = {"check_data", "publish", "promote", "outcomes"}
        assert {types[t] for t in steps} == {"Step"}
        assert bag["tasks"]["check_data"]["type"] == "Step"
    else:
        assert types["train"] == "Training"


def test_a_gate_refusal_skips_promote_and_a_failed_rollout_is_not_retried(bag):
    promote = bag["tasks"]["promote"]
    assert promote["skip"] == [3]  # registry: the gate refused
    assert promote["permanent"] == [1, 2, 4]  # a holdout not the checked one, a setting, rollout


def test_refused_data_fails_at_once_and_unreadable_data_is_retried(bag):
    check = bag["tasks"]["check_data"]
    assert check["permanent"] == [1, 2] and check["retries"] >= 2  # 75 is retried
    assert bag["tasks"]["train"]["retries"] == 1  # it trains again from scratch


def test_it_runs_weekly_one_run_at_a_time_without_catching_up(bag):
    assert bag["schedule"] == "0 3 * * 1"
    assert (bag["max_active_runs"], bag["catchup"]) == (1, False)
    assert bag["params"] == {
        "data_source": "canonical",
        "data_sha256": "",
        "max_rejected_rows": 0,
        "store": "",
        "eb_environment": "",
        "captures": "",
        "actuals": "",
    }


def _with(settings: dict, path: str, value) -> dict:
    """A deep copy of ``settings`` with the dotted ``path`` set to ``value``."""
    changed = json.loads(json.dumps(settings))
    *parents, last = path.split(".")
    node = changed
    for name in parents:
        node = node[name]
    node[last] = value
    return changed


@pytest.mark.parametrize(
    "runner, settings, line",
    [
        ("ecs", AWS_SETTINGS, "Variable insurance_charges_runner='ecs': give aws (SageMaker"),
        ("aws", None, "Variable insurance_charges is not set to a JSON object"),
        ("aws", _with(AWS_SETTINGS, "work", "work-bucket/runs"), "work='work-bucket/runs'"),
        ("aws", _with(AWS_SETTINGS, "image", "insurance-charges"), "image='insurance-charges'"),
        ("aws", _with(AWS_SETTINGS, "aws.subnets", []), "aws.subnets=[]; give a list of ids"),
        ("aws", _with(AWS_SETTINGS, "aws.role_arn", "training"), "aws.role_arn='training'"),
        ("docker", _with(DOCKER_SETTINGS, "docker", {"mounts": ["keys"]}), "docker.mounts"),
        (
            "docker",
            _with(DOCKER_SETTINGS, "hyperparameters", {"folds": 3}),
            "hyperparameters must map names to strings",
        ),
    ],
)
def test_a_bad_runner_or_setting_is_one_line_naming_it(tmp_path, runner, settings, line):
    found = dag_bag(tmp_path, runner, settings)
    assert found["dags"] == [] and len(found["import_errors"]) == 1
    assert line in found["import_errors"][0]


def test_only_the_exit_statuses_retrying_cannot_change_fail_for_good(tmp_path):
    result = airflow_python(
        f"""
        import json, sys
        sys.path.insert(0, {str(DAGS)!r})
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
        from retrain_insurance_charges import decide
        got = {{}}
        for status in (1, 3, 75):
            try:
                decide(status, {{1: "refused"}}, {{3: "the gate refused"}})
                got[status] = "retried"
            except (AirflowFailException, AirflowSkipException) as exc:
                got[status] = type(exc).__name__ + ": " + str(exc)
        print(json.dumps(got))
    """,
        airflow_env(tmp_path, "docker", DOCKER_SETTINGS),
    )
    assert result == {
        "1": "AirflowFailException: exit status 1: refused; not retried",
        "3": "AirflowSkipException: exit status 3: the gate refused",
        "75": "retried",
    }


# The aws runner: what SageMaker and ECS are asked --------------------------------------------

RENDER = """
    import json, sys
    import botocore.session
    from botocore.stub import Stubber
    from airflow.dag_processing.dagbag import DagBag
    dag = DagBag(dag_folder=__DAGS__).dags[__DAG_ID__]
    XCOM = {
        "check_data": {"train_sha256": "a" * 64, "holdout": "s3://retraining-work/runs/k/data/"
                       "holdout/holdout.csv", "holdout_sha256": "b" * 64},
        "train": {"Training": {"ModelArtifacts": {"S3ModelArtifacts":
                  "s3://retraining-work/runs/k/model/job/output/model.tar.gz"}}},
        "publish": {"version": "2026-12-07-0a1b2c3d"},
    }
    class TI:
        def xcom_pull(self, task_ids):
            return XCOM[task_ids]
    import pendulum
    when = pendulum.datetime(2026, 12, 7, 3, tz="UTC")
    session = botocore.session.get_session()
    def client(service):
        return session.create_client(service, region_name="eu-west-1",
                                     aws_access_key_id="x", aws_secret_access_key="x")
    out = {}
    for task in dag.tasks:
        if task.task_id == "outcome":
            continue
        params = {name: __PARAMS__.get(name, dag.params[name]) for name in dag.params}
        context = {"params": params, "run_id": "scheduled__2026-12-07", "ti": TI(),
                   "data_interval_end": when, "run_after": when}
        task.render_template_fields(context)
        if task.task_id == "train":
            sagemaker = client("sagemaker")
            with Stubber(sagemaker) as stub:
                stub.add_response("create_training_job", {"TrainingJobArn":
                    "arn:aws:sagemaker:eu-west-1:123456789012:training-job/x"}, task.config)
                sagemaker.create_training_job(**task.config)
            out["train"] = task.config
        else:
            ecs = client("ecs")
            task.__dict__["client"] = ecs
            with Stubber(ecs) as stub:
                stub.add_response("run_task", {"tasks": [{"taskArn":
                    "arn:aws:ecs:eu-west-1:123456789012:task/insurance-charges/0a1b"}],
                    "failures": []})
                task._start_task()
            out[task.task_id] = {"overrides": task.overrides, "launch": task.launch_type,
                                 "network": task.network_configuration,
                                 "logs": [task.awslogs_group, task.awslogs_stream_prefix]}
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """Every AWS call the aws runner's tasks make, rendered and validated by botocore."""
    params = {"captures": "s3://captures/insurance-charges", "actuals": "s3://bills/2026-12.csv"}
    script = (
        RENDER.replace("__DAGS__", repr(str(DAGS)))
        .replace("__DAG_ID__", repr(DAG_ID))
        .replace("__PARAMS__", repr(params))
    )
    home = tmp_path_factory.mktemp("airflow-home")
    return airflow_python(script, airflow_env(home, "aws", AWS_SETTINGS))


def test_training_is_a_sagemaker_job_of_the_image_on_the_checked_training_part(rendered):
    job = rendered["train"]
    assert re.fullmatch(
        r"insurance-charges-scheduled-2026-12-07-[0-9a-f]{8}", job["TrainingJobName"]
    )
    key = job["TrainingJobName"].removeprefix("insurance-charges-")
    assert job["AlgorithmSpecification"] == {"TrainingImage": IMAGE, "TrainingInputMode": "File"}
    assert job["RoleArn"] == AWS_SETTINGS["aws"]["role_arn"]
    channel = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://retraining-work/runs/{key}/data/train/"
    assert job["HyperParameters"] == {"data_sha256": "a" * 64, "max_rejected": "0"}
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://retraining-work/runs/{key}/model/"}
    assert job["Environment"] == {"MODEL_SIGNING_KEY_SECRET": "insurance-charges/model-signing-key"}
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"


def test_each_short_step_is_a_fargate_task_of_the_image_with_its_command(rendered):
    commands = {
        step: rendered[step]["overrides"]["containerOverrides"][0]["command"]
        for step in ("check_data", "publish", "promote", "outcomes")
    }
    key = rendered["train"]["TrainingJobName"].removeprefix("insurance-charges-")
    work = f"s3://retraining-work/runs/{key}"
    store = ["retrain", "--store", STORE]
    assert commands == {
        "check_data": [
            *store,
            "check",
            "--source",
            "canonical",
            "--work",
            work,
            "--sha256",
            "",
            "--max-rejected",
            "0",
        ],
        "publish": [
            *store,
            "publish",
            "--model",
            "s3://retraining-work/runs/k/model/job/output/model.tar.gz",
        ],
        "promote": [
            *store,
            "promote",
            "--version",
            "2026-12-07-0a1b2c3d",
            "--holdout",
            "s3://retraining-work/runs/k/data/holdout/holdout.csv",
            "--holdout-sha256",
            "b" * 64,
            "--deploy-eb",
            "",
        ],
        "outcomes": [
            *store,
            "outcomes",
            "--captures",
            "s3://captures/insurance-charges",
            "--actuals",
            "s3://bills/2026-12.csv",
            "--work",
            work,
            "--until",
            "2026-12-07T03:00:00+00:00",
        ],
    }
    for step in commands:
        assert rendered[step]["launch"] == "FARGATE"
        assert rendered[step]["overrides"]["containerOverrides"][0]["name"] == "insurance-charges"
        assert rendered[step]["network"] == {
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d"],
                "securityGroups": ["sg-0a1b2c3d"],
                "assignPublicIp": "DISABLED",
            }
        }
        assert rendered[step]["logs"] == [
            "/ecs/insurance-charges-retrain",
            "retrain/insurance-charges",
        ]


ECS_EXIT = """
    import json, sys
    import botocore.session
    from botocore.stub import Stubber
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
    dag = DagBag(dag_folder=__DAGS__).dags[__DAG_ID__]
    ARN = "arn:aws:ecs:eu-west-1:123456789012:task/insurance-charges/0a1b"
    got = {}
    for task_id, status in (("promote", 3), ("promote", 4), ("promote", 75), ("check_data", 1)):
        task = dag.get_task(task_id)
        ecs = botocore.session.get_session().create_client(
            "ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
        task.__dict__["client"] = ecs
        task.arn = ARN
        with Stubber(ecs) as stub:
            for _ in range(2):  # ours, then the operator's own look
                stub.add_response("describe_tasks", {"tasks": [{"taskArn": ARN, "containers": [
                    {"name": "insurance-charges", "lastStatus": "STOPPED", "exitCode": status}]}],
                    "failures": []}, {"cluster": "insurance-charges", "tasks": [ARN]})
            try:
                task._check_success_task()
                got[f"{task_id} {status}"] = "success"
            except (AirflowFailException, AirflowSkipException) as exc:
                got[f"{task_id} {status}"] = type(exc).__name__
            except AirflowException as exc:
                got[f"{task_id} {status}"] = "retried"
    print(json.dumps(got))
"""


def test_an_ecs_steps_exit_status_skips_fails_for_good_or_retries_as_the_dag_says(tmp_path):
    script = ECS_EXIT.replace("__DAGS__", repr(str(DAGS))).replace("__DAG_ID__", repr(DAG_ID))
    assert airflow_python(script, airflow_env(tmp_path, "aws", AWS_SETTINGS)) == {
        "promote 3": "AirflowSkipException",  # the gate refused
        "promote 4": "AirflowFailException",  # the rollout failed after the champion moved
        "promote 75": "retried",  # S3 or the network: try again
        "check_data 1": "AirflowFailException",  # refused data
    }


# End to end: the docker runner ---------------------------------------------------------------

# moto keeps its state per process: this module's secret has a name of its own.
SECRET = "insurance-charges/dag-tests-signing-key"
# Two candidates and three folds: the whole pipeline in a fraction of the full 18 x 10 folds'.
QUICK = {"folds": "3", "candidates": "gbr,dummy"}
IMAGE_USER_READS = 0o755  # directories the image's user 10001 reads through a mount


@dataclass
class Run:
    """One `airflow dags test` run: its exit status, its log, each task's final state."""

    status: int
    log: str
    states: dict


class Week:
    """moto's S3 and Secrets Manager with weekly data and a model store; an Airflow home."""

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


def _pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def weeks(image, data_path, signing_key, tmp_path_factory):
    """A store whose reference set is frozen (the operator's one-time first publish), weekly
    data in S3, the signing key in Secrets Manager, and an Airflow home with its database
    migrated and the DAG serialized, its steps running in the session's image."""
    require(
        AIRFLOW.exists(),
        f"needs Airflow's virtual environment {AIRFLOW_VENV} (`make test` creates it)",
    )
    from cryptography.hazmat.primitives import serialization

    tmp = tmp_path_factory.mktemp("weeks")
    tmp.chmod(IMAGE_USER_READS)
    # The shipped key (the committed model, published once to freeze the reference set) and
    # the tests' key (the models the DAG trains), mounted read-only where the image reads it.
    keys = tmp / "keys"
    keys.mkdir(mode=IMAGE_USER_READS)
    keys.chmod(IMAGE_USER_READS)
    trusted = keys / "trusted.pem"
    trusted.write_bytes(
        (ROOT / "insurance_charges" / "core" / "trusted-model-keys.pem").read_bytes()
        + signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    trusted.chmod(0o644)
    with moto_server() as aws:
        settings = {
            "image": image,
            "work": "s3://retraining-work/runs",
            "store": STORE,
            "signing_key_secret": SECRET,
            "hyperparameters": QUICK,
            "docker": {
                "network_mode": "host",  # moto listens on the host's 127.0.0.1
                "environment": {**aws, "MODEL_PUBLIC_KEY": "/keys/trusted.pem"},
                "mounts": [f"{keys}:/keys"],
            },
        }
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")},
            **aws,
            **airflow_env(tmp / "airflow", "docker", settings),
            "MODEL_PUBLIC_KEY": str(trusted),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        }
        import boto3

        def client(service: str):
            return boto3.client(
                service,
                endpoint_url=aws["AWS_ENDPOINT_URL"],
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        s3 = client("s3")
        for bucket in ("weekly-data", "model-store", "retraining-work"):
            s3.create_bucket(Bucket=bucket)
        client("secretsmanager").create_secret(Name=SECRET, SecretString=_pem(signing_key))
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
    return weeks.run(data_source="s3://weekly-data/week-1.csv"), weeks.champion()


def _captured_week(weeks, data_path) -> dict:
    """Last week's captured estimates of 200 people, each twice their bill with a range of a
    dollar, and those bills: a report that must fail (coverage 0%, MAE far above the card's)."""
    from insurance_charges.core.captures import utc_text

    card = json.loads((ROOT / "model" / "insurance-charges.card.json").read_text())
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    people = list(csv.DictReader(io.StringIO(data_path.read_text())))[:200]
    lines, bills = [], ["inference_id,charges"]
    for number, person in enumerate(people):
        estimate = round(2 * float(person["charges"]), 2)
        lines.append(
            json.dumps(
                {
                    "inference_id": f"dag-test-{number}",
                    "time": utc_text(hour),
                    "model_version": card["model_version"],
                    "path": "/api/v1/predict",
                    "age": int(person["age"]),
                    "sex": person["sex"],
                    "bmi": float(person["bmi"]),
                    "children": int(person["children"]),
                    "smoker": person["smoker"],
                    "region": person["region"],
                    "estimate": estimate,
                    "low": estimate - 1,
                    "high": estimate + 1,
                }
            )
        )
        bills.append(f"dag-test-{number},{person['charges']}")
    key = f"captures/{hour:%Y/%m/%d/%H}/part-0.jsonl"
    weeks.s3.put_object(Bucket="weekly-data", Key=key, Body="\n".join(lines) + "\n")
    weeks.s3.put_object(Bucket="weekly-data", Key="bills/week.csv", Body="\n".join(bills))
    return {"captures": "s3://weekly-data/captures", "actuals": "s3://weekly-data/bills/week.csv"}


@pytest.fixture(scope="module")
def damaged_week(weeks, good_week, data_path):
    source = weeks.upload("week-2.csv", _charges_shuffled(data_path))
    listed = weeks.registry("list").stdout
    outcomes = _captured_week(weeks, data_path)
    return weeks.run(data_source=source, **outcomes), weeks.champion(), listed


@pytest.fixture(scope="module")
def tampered_week(weeks, damaged_week):
    listed = weeks.registry("list").stdout
    run = weeks.run(data_source="s3://weekly-data/week-1.csv", data_sha256="0" * 64)
    return run, listed, weeks.registry("list").stdout, weeks.champion()


def test_a_good_week_is_trained_published_and_promoted(good_week):
    run, champion = good_week
    assert run.status == 0, run.log[-3000:]
    assert run.states == {**dict.fromkeys(TASKS, "success"), "outcomes": "skipped"}
    version = re.search(r"PROMOTED (\S+): trained on (\d+) of 1338 rows", run.log)
    assert version and champion == version[1]


def test_an_unconfigured_outcomes_report_is_skipped_saying_why(good_week):
    run, _ = good_week
    assert "not configured: captures, actuals empty" in run.log
    assert "outcomes: not reported" in run.log


def test_training_progress_shows_in_the_task_log(good_week):
    run, _ = good_week
    assert '"step": "fetch"' in run.log and '"step": "holdout"' in run.log  # data check
    assert "holdout MAE" in run.log  # training's own summary, from the training container
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
        "train": "success",
        "publish": "success",
        "promote": "skipped",
        "outcomes": "success",  # its report failed: the headline, not a failure
        "outcome": "success",
    }
    assert "FAIL  MAE within" in run.log and "NOT PROMOTED: the gate refused" in run.log
    assert "NOT PROMOTED (the gate refused it):" in run.log
    assert after == champion


def test_a_failing_outcomes_report_is_the_runs_headline_and_retraining_goes_on(damaged_week):
    run, _, _ = damaged_week
    assert "Failed: " in run.log  # the report's own lines, from the container
    assert '"overall": {' in run.log  # and the whole report
    headline = re.search(
        r"OUTCOMES FAILED: last week's estimates missed their checks \((.+)\)", run.log
    )
    assert headline and "the likely range held 0 of 200 bills" in headline[1]
    # The headline comes before the retraining's own line.
    assert run.log.index("OUTCOMES FAILED") < run.log.index("NOT PROMOTED (the gate refused it):")
    assert "s3://retraining-work/runs/" in run.log and "/outcomes/report.json" in run.log


def test_data_failing_its_checksum_stops_the_run_and_publishes_nothing(good_week, tampered_week):
    run, before, after, champion = tampered_week
    assert run.status != 0
    assert run.states == {
        "check_data": "failed",
        "train": "upstream_failed",
        "publish": "upstream_failed",
        "promote": "upstream_failed",
        "outcomes": "skipped",
        "outcome": "upstream_failed",
    }
    assert "but the SHA-256 given (--sha256) is 0000" in run.log
    assert "not retried" in run.log
    assert after == before and champion == good_week[1]
