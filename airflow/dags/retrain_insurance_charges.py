"""Weekly retraining of the insurance-charges model, every step in the released image.

check_data >> train >> publish >> promote >> outcome;  outcomes >> outcome

Every step runs in the project's released image, never on Airflow's workers: this file imports
only Airflow and its providers (it parses on MWAA's Python 3.12 with nothing installed). The
Airflow Variable ``insurance_charges_runner`` chooses where the image runs:

- ``aws`` (the default, on Amazon MWAA): ``train`` is a SageMaker training job
  (``docker run IMAGE train``, SageMaker's training contract), the short steps are ECS Fargate
  tasks (``docker run IMAGE retrain STEP``);
- ``docker`` (local runs, the tests): the same image and the same commands through the local
  Docker engine; ``train`` gets /opt/ml laid out as SageMaker lays it out, and its model.tar.gz
  is put where SageMaker would put it.

The Variable ``insurance_charges`` (JSON) says where: the image, the run's WORK prefix in S3,
the registry, the signing key's secret, and each runner's own settings (docs/retraining.md).
A bad value of either is one line in the DAG's import error.

Nothing local crosses a step: check_data puts the data's training and holdout parts under
WORK/RUN/ in S3 with their SHA-256; training reads them as its channel, checked against that
SHA-256 again; promote reads the holdout back refused unless it has it. The newest data's
holdout is never trained on: the gate judges the challenger and the champion on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, TriggerRule, Variable, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

DAG_ID = "retrain_insurance_charges"
RUNNER_VARIABLE, SETTINGS_VARIABLE = "insurance_charges_runner", "insurance_charges"
RUNNERS = ("aws", "docker")
log = logging.getLogger(__name__)

# The steps' exit statuses the DAG acts on (python -m insurance_charges.retraining): refused
# data (1), a wrong setting (2) and a rollout that failed after the champion moved (4) fail at
# once; the gate's refusal (3) skips promote; anything else (75: S3, the network) is retried.
REFUSED, WRONG, GATE_REFUSED, ROLLOUT_FAILED = 1, 2, 3, 4
PERMANENT_CHECK = {REFUSED: "the data was refused (checksum, columns or refused rows)"}
PERMANENT = {WRONG: "the source or a setting is wrong"}
PERMANENT_PROMOTE = {
    **PERMANENT,
    REFUSED: "the holdout is not the one the data check recorded",
    ROLLOUT_FAILED: "the champion moved but the rollout did not come up healthy; read the "
    "environment's events, then retry this task or `registry rollback --deploy-eb ENVIRONMENT`",
}
# SageMaker's limit on a training job's name (^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$).
JOB_NAME_MAX = 63
JOB_PREFIX = "insurance-charges-"
# Training's own limit: a full run took 322 s on a busy 2-core machine; an hour stops a stuck
# job (docs/deploy/sagemaker-training.md#the-launcher uses the same).
TRAINING_MAX_S = 3600
TRAINING_VOLUME_GB = 5  # the channels and the model are a few MB
TRAINING_INSTANCE = "ml.m5.large"  # measured: docs/deploy/sagemaker-training.md#instance-type
SAGEMAKER_POLL_S = 30  # between DescribeTrainingJob calls: 120 an hour


class SettingsError(ValueError):
    """The runner or the settings Variable is unusable; the message says what to set."""


def _text(raw: dict, name: str, where: str, pattern: str = r".+", default: str | None = None):
    value = raw.get(name, default)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise SettingsError(
            f"Variable {SETTINGS_VARIABLE}: {where}{name}={value!r}; give a string "
            f"matching {pattern} (docs/retraining.md#settings)"
        )
    return value


def _hyperparameters(value: object) -> dict:
    # Training's own, as strings (SageMaker's form): e.g. candidates, folds. The image checks
    # each against its table (docs/deploy/sagemaker-training.md#hyperparameters).
    if not (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise SettingsError(
            f"Variable {SETTINGS_VARIABLE}: hyperparameters must map names to strings"
        )
    return value


S3_PREFIX = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?"
IMAGE = r"[a-z0-9][^\s@]*(@sha256:[0-9a-f]{64}|:[\w.-]+)"


def read_settings(runner: str, raw: object) -> dict:
    """The settings for ``runner``, checked; SettingsError naming the first bad one."""
    if runner not in RUNNERS:
        raise SettingsError(
            f"Variable {RUNNER_VARIABLE}={runner!r}: give aws (SageMaker and ECS Fargate, the "
            "default) or docker (the local Docker engine: local runs and the tests)"
        )
    if not isinstance(raw, dict):
        raise SettingsError(
            f"Variable {SETTINGS_VARIABLE} is not set to a JSON object; set it to the image, "
            "the work prefix and the runner's settings (docs/retraining.md#settings)"
        )
    settings = {
        "runner": runner,
        "image": _text(raw, "image", "", IMAGE),
        "work": _text(raw, "work", "", S3_PREFIX).rstrip("/"),
        "store": _text(raw, "store", "", f"({S3_PREFIX})?", ""),
        "signing_key_secret": _text(raw, "signing_key_secret", "", r"[\w/+=.@:-]{1,2048}"),
        "captures": _text(raw, "captures", "", f"({S3_PREFIX})?", ""),
        "hyperparameters": _hyperparameters(raw.get("hyperparameters", {})),
        "actuals": _text(raw, "actuals", "", f"({S3_PREFIX})?", ""),
    }
    own = raw.get(runner, {})
    if not isinstance(own, dict):
        raise SettingsError(f"Variable {SETTINGS_VARIABLE}: {runner} must be a JSON object")
    if runner == "aws":
        where = "aws."
        ids = r"[\w-]{1,255}"
        lists = {}
        for name, pattern in (
            ("subnets", r"subnet-[0-9a-f]+"),
            ("security_groups", r"sg-[0-9a-f]+"),
        ):
            value = own.get(name)
            if not (
                isinstance(value, list)
                and value
                and all(isinstance(v, str) and re.fullmatch(pattern, v) for v in value)
            ):
                raise SettingsError(
                    f"Variable {SETTINGS_VARIABLE}: aws.{name}={value!r}; give a list of "
                    f"ids matching {pattern} (docs/retraining.md#settings)"
                )
            lists[name] = value
        settings["aws"] = {
            "cluster": _text(own, "cluster", where, ids),
            "task_definition": _text(own, "task_definition", where, r"[\w:/.-]{1,255}"),
            "container": _text(own, "container", where, ids, "insurance-charges"),
            "role_arn": _text(
                own, "role_arn", where, r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+"
            ),
            "instance_type": _text(
                own, "instance_type", where, r"ml\.[a-z0-9.]+", TRAINING_INSTANCE
            ),
            "log_group": _text(own, "log_group", where, r"[\w/.#-]{1,512}"),
            "log_prefix": _text(own, "log_prefix", where, r"[\w/.#-]{1,512}", "retrain"),
            "assign_public_ip": own.get("assign_public_ip") is True,
            **lists,
        }
    else:
        environment = own.get("environment", {})
        mounts = own.get("mounts", [])
        if not (
            isinstance(environment, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in environment.items())
        ):
            raise SettingsError(
                f"Variable {SETTINGS_VARIABLE}: docker.environment must map names to strings"
            )
        if not (
            isinstance(mounts, list)
            and all(isinstance(m, str) and re.fullmatch(r"/[^:]+:/[^:]+", m) for m in mounts)
        ):
            raise SettingsError(
                f"Variable {SETTINGS_VARIABLE}: docker.mounts must be a list of "
                "HOST_PATH:CONTAINER_PATH (mounted read-only)"
            )
        settings["docker"] = {
            "url": _text(own, "url", "docker.", r"(unix|tcp)://\S+", "unix://var/run/docker.sock"),
            "network_mode": _text(own, "network_mode", "docker.", r"[\w.-]+", "bridge"),
            "environment": environment,
            "mounts": mounts,
        }
    return settings


def run_key(run_id: str) -> str:
    """A name for the run that S3 keys and SageMaker job names accept, unique per run id."""
    # 24 + 9 characters, so that JOB_PREFIX, this and a retry's "-<unix time>" fit in 63.
    readable = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")[:24].strip("-")
    return f"{readable}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def last_json(result: object) -> dict:
    """The step's last line (its XCom) as the JSON object it prints."""
    line = result[-1] if isinstance(result, list) else result
    if isinstance(line, bytes):
        line = line.decode()
    try:
        found = json.loads(str(line))
    except ValueError:
        raise AirflowFailException(
            f"the step's last line is not its JSON result: {line!r}"
        ) from None
    if not isinstance(found, dict):
        raise AirflowFailException(f"the step's last line is not a JSON object: {line!r}")
    return found


def decide(status: int, permanent: dict[int, str], skip: dict[int, str]) -> None:
    """Act on a step's non-zero exit status: skip, fail for good, or leave it to retry."""
    if status in skip:
        raise AirflowSkipException(f"exit status {status}: {skip[status]}")
    if status in permanent:
        raise AirflowFailException(f"exit status {status}: {permanent[status]}; not retried")


# Where the step's result comes from and which statuses end it; shared by both runners.
STEP_OPTIONS = ("permanent", "skip", "needs")


def _runner() -> str:
    return Variable.get(RUNNER_VARIABLE, default="aws")


def _settings_raw() -> object:
    text = Variable.get(SETTINGS_VARIABLE, default=None)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"Variable {SETTINGS_VARIABLE} is not JSON: {exc}") from None


SETTINGS = read_settings(_runner(), _settings_raw())
WORK = SETTINGS["work"] + "/{{ run_key(run_id) }}"
JOB_NAME = JOB_PREFIX + "{{ run_key(run_id) }}"
STORE = "{{ params.store or '" + SETTINGS["store"] + "' }}"
CHECK = "ti.xcom_pull(task_ids='check_data')"
# Where the training job put its model.tar.gz: SageMaker's DescribeTrainingJob, or the same
# shape from the Docker runner.
TRAINED = "ti.xcom_pull(task_ids='train')['Training']['ModelArtifacts']['S3ModelArtifacts']"


def _needs(context, needs: tuple[str, ...]) -> None:
    """Skip a step whose inputs are not configured, saying which."""
    missing = [name for name in needs if not context["params"].get(name)]
    if missing:
        raise AirflowSkipException(
            f"not configured: {', '.join(missing)} empty; set the run's params or the "
            f"Variable {SETTINGS_VARIABLE}'s captures and actuals (docs/retraining.md#outcomes)"
        )


if SETTINGS["runner"] == "docker":
    from airflow.providers.docker.exceptions import DockerContainerFailedException
    from airflow.providers.docker.operators.docker import DockerOperator
    from docker.types import Mount

    DOCKER = SETTINGS["docker"]

    def _mounts(extra: list | None = None) -> list:
        read_only = [
            Mount(target=m.split(":")[1], source=m.split(":")[0], type="bind", read_only=True)
            for m in DOCKER["mounts"]
        ]
        return read_only + (extra or [])

    class Step(DockerOperator):
        """``docker run IMAGE retrain STEP ...`` on the local engine; its JSON line is the XCom."""

        def __init__(self, *, permanent=None, skip=None, needs=(), **kwargs):
            super().__init__(
                image=SETTINGS["image"],
                docker_url=DOCKER["url"],
                network_mode=DOCKER["network_mode"],
                environment=dict(DOCKER["environment"]),
                mounts=_mounts(),
                mount_tmp_dir=False,
                auto_remove="force",  # a failed step leaves no container behind
                **kwargs,
            )
            self.permanent, self.skip, self.needs = permanent or {}, skip or {}, needs

        def execute(self, context):
            _needs(context, self.needs)
            try:
                return last_json(super().execute(context))
            except DockerContainerFailedException as exc:
                found = re.search(r"'StatusCode': (\d+)", str(exc))
                decide(int(found[1]) if found else -1, self.permanent, self.skip)
                raise

    def _opt_ml(root: Path) -> dict[str, Path]:
        parts = {
            "training": root / "input" / "data" / "training",
            "config": root / "input" / "config",
            "model": root / "model",
            "output": root / "output",
        }
        for path in parts.values():
            path.mkdir(parents=True)
        root.chmod(0o755)
        for sub in (root / "input", root / "input" / "data", parts["training"], parts["config"]):
            sub.chmod(0o755)  # the image's user 10001 reads what SageMaker would have copied in
        for sub in (parts["model"], parts["output"]):
            sub.chmod(0o777)  # and writes the model and the failure file
        return parts

    class Training(DockerOperator):
        """``docker run IMAGE train`` with /opt/ml laid out as SageMaker lays it out.

        The training channel is copied in from S3, hyperparameters.json and
        inputdataconfig.json written, and on success /opt/ml/model is tarred to
        ``OUTPUT/JOB/output/model.tar.gz`` as SageMaker does; the XCom has SageMaker's shape
        (``Training.ModelArtifacts.S3ModelArtifacts``). On failure, the failure file's line.
        """

        template_fields = (*DockerOperator.template_fields, "config")

        def __init__(self, *, config: dict, **kwargs):
            super().__init__(
                image=SETTINGS["image"],
                command=["train"],
                docker_url=DOCKER["url"],
                network_mode=DOCKER["network_mode"],
                environment=dict(DOCKER["environment"]),
                mount_tmp_dir=False,
                auto_remove="force",  # a failed step leaves no container behind
                **kwargs,
            )
            self.config = config

        def execute(self, context):
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            s3 = S3Hook(aws_conn_id=None).get_conn()
            config, job = self.config, self.config["TrainingJobName"]
            with tempfile.TemporaryDirectory() as name:
                parts = _opt_ml(Path(name) / "opt-ml")
                channels = {}
                for channel in config["InputDataConfig"]:
                    source = channel["DataSource"]["S3DataSource"]["S3Uri"]
                    bucket, _, prefix = source.removeprefix("s3://").partition("/")
                    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                    for found in listed:
                        target = parts["training"] / Path(found["Key"]).name
                        s3.download_file(bucket, found["Key"], str(target))
                        target.chmod(0o644)
                    channels[channel["ChannelName"]] = {
                        "ContentType": channel["ContentType"],
                        "TrainingInputMode": "File",
                        "S3DistributionType": "FullyReplicated",
                    }
                for file, body in (
                    ("hyperparameters.json", config["HyperParameters"]),
                    ("inputdataconfig.json", channels),
                ):
                    (parts["config"] / file).write_text(json.dumps(body))
                    (parts["config"] / file).chmod(0o644)
                self.environment = {**self.environment, **config["Environment"]}
                self.mounts = _mounts(
                    [
                        Mount(
                            target="/opt/ml/input",
                            source=str(parts["training"].parents[1]),
                            type="bind",
                            read_only=True,
                        ),
                        Mount(target="/opt/ml/model", source=str(parts["model"]), type="bind"),
                        Mount(target="/opt/ml/output", source=str(parts["output"]), type="bind"),
                    ]
                )
                try:
                    super().execute(context)
                except DockerContainerFailedException:
                    failure = parts["output"] / "failure"
                    reason = failure.read_text()[:1024] if failure.is_file() else "no failure file"
                    raise RuntimeError(f"training job {job} failed: {reason}") from None
                archive = Path(name) / "model.tar.gz"
                with tarfile.open(archive, "w:gz") as tar:
                    for path in sorted(parts["model"].iterdir()):
                        tar.add(path, arcname=path.name)
                output = config["OutputDataConfig"]["S3OutputPath"].rstrip("/")
                bucket, _, prefix = output.removeprefix("s3://").partition("/")
                key = f"{prefix}/{job}/output/model.tar.gz".lstrip("/")
                s3.upload_file(str(archive), bucket, key)
            uri = f"s3://{bucket}/{key}"
            return {
                "Training": {"TrainingJobName": job, "ModelArtifacts": {"S3ModelArtifacts": uri}}
            }

else:
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    AWS = SETTINGS["aws"]

    class Step(EcsRunTaskOperator):
        """``retrain STEP ...`` as an ECS Fargate task of the image; its JSON line is the XCom.

        The task definition's container runs the image with its own ENTRYPOINT; the command
        is overridden per step. The last line comes back through the container's CloudWatch
        log (awslogs), which the task definition must send to ``log_group``.
        """

        def __init__(self, *, command: list[str], permanent=None, skip=None, needs=(), **kwargs):
            super().__init__(
                cluster=AWS["cluster"],
                task_definition=AWS["task_definition"],
                launch_type="FARGATE",
                overrides={"containerOverrides": [{"name": AWS["container"], "command": command}]},
                network_configuration={
                    "awsvpcConfiguration": {
                        "subnets": AWS["subnets"],
                        "securityGroups": AWS["security_groups"],
                        "assignPublicIp": "ENABLED" if AWS["assign_public_ip"] else "DISABLED",
                    }
                },
                container_name=AWS["container"],
                awslogs_group=AWS["log_group"],
                awslogs_stream_prefix=f"{AWS['log_prefix']}/{AWS['container']}",
                reattach=True,  # a worker replaced mid-task finds the task, not a second one
                **kwargs,
            )
            self.permanent, self.skip, self.needs = permanent or {}, skip or {}, needs

        def execute(self, context):
            _needs(context, self.needs)
            return last_json(super().execute(context))

        def _check_success_task(self) -> None:
            if self.client and self.arn:
                described = self.client.describe_tasks(cluster=self.cluster, tasks=[self.arn])
                for found in described.get("tasks", []):
                    for container in found.get("containers", []):
                        status = container.get("exitCode")
                        if container.get("lastStatus") == "STOPPED" and status:
                            decide(status, self.permanent, self.skip)
            super()._check_success_task()

    class Training(SageMakerTrainingOperator):
        """``docker run IMAGE train`` as a SageMaker training job, followed to its end."""

        def __init__(self, *, config: dict, **kwargs):
            super().__init__(
                config=config,
                wait_for_completion=True,
                print_log=True,
                check_interval=SAGEMAKER_POLL_S,
                max_ingestion_time=TRAINING_MAX_S,
                # A retry trains again as NAME-<unix time> (the operator keeps it within 63).
                action_if_job_exists="timestamp",
                **kwargs,
            )


def retrain(step: str, *argv: str) -> list[str]:
    """The image's command for one step (``docker run IMAGE retrain STEP ...``)."""
    return ["retrain", "--store", STORE, step, *argv]


TRAINING_CONFIG = {
    "TrainingJobName": JOB_NAME,
    "AlgorithmSpecification": {"TrainingImage": SETTINGS["image"], "TrainingInputMode": "File"},
    "RoleArn": SETTINGS.get("aws", {}).get("role_arn", "arn:aws:iam::000000000000:role/local"),
    "InputDataConfig": [
        {
            "ChannelName": "training",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": WORK + "/data/train/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
            "InputMode": "File",
        }
    ],
    # train.csv holds only the rows the check accepted; its SHA-256 is checked again inside.
    "HyperParameters": {
        **SETTINGS["hyperparameters"],
        "data_sha256": "{{ " + CHECK + "['train_sha256'] }}",
        "max_rejected": "0",
    },
    "OutputDataConfig": {"S3OutputPath": WORK + "/model/"},
    "ResourceConfig": {
        "InstanceType": SETTINGS.get("aws", {}).get("instance_type", TRAINING_INSTANCE),
        "InstanceCount": 1,
        "VolumeSizeInGB": TRAINING_VOLUME_GB,
    },
    "StoppingCondition": {"MaxRuntimeInSeconds": TRAINING_MAX_S},
    "Environment": {"MODEL_SIGNING_KEY_SECRET": SETTINGS["signing_key_secret"]},
}


with DAG(
    dag_id=DAG_ID,
    description="Weekly: check the data, train, publish, promote through the gate; outcomes",
    doc_md=__doc__,
    # Mondays 03:00 UTC: the week's bills are in and nobody is waiting on the workers.
    schedule="0 3 * * 1",
    start_date=datetime(2026, 11, 2, tzinfo=UTC),
    catchup=False,  # after a pause, one run on the newest data, not one per missed week
    max_active_runs=1,  # two runs must never race to promote
    # Above the worst case of every attempt and wait below (about 5 h), far below a week: a run
    # stuck in a queue ends, so next week's run (max_active_runs=1) is not blocked.
    dagrun_timeout=timedelta(hours=6),
    user_defined_macros={"run_key": run_key},
    default_args={
        # Reading S3 or the URL, S3, ECS, SageMaker or Elastic Beanstalk calls fail transiently
        # (5xx, throttling, DNS), and MWAA can replace a worker under a running task; a weekly
        # job can wait 5, then 10 minutes for them to pass.
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    },
    params={
        "data_source": Param(
            "canonical",
            type="string",
            minLength=1,
            description="canonical (the published file), https://... or s3://bucket/key",
        ),
        "data_sha256": Param(
            "",
            type="string",
            pattern="^([0-9a-fA-F]{64})?$",
            description="SHA-256 the data must have (empty: the canonical "
            "digest, or S3's stored SHA-256 checksum)",
        ),
        "max_rejected_rows": Param(
            0,
            type="integer",
            minimum=0,
            description="most rows the schema may refuse; refused rows "
            "are counted and listed, never trained on",
        ),
        "store": Param(
            "",
            type="string",
            pattern="^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?)?$",
            description="registry s3://bucket/prefix (empty: the settings' store, "
            "else the image's MODEL_STORE)",
        ),
        "eb_environment": Param(
            "",
            type="string",
            pattern="^([A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9])?$",
            description="Elastic Beanstalk environment to roll a promoted "
            "model out to (empty: promote only)",
        ),
        "captures": Param(
            SETTINGS["captures"],
            type="string",
            pattern="^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?)?$",
            description="the service's CAPTURE_URI (s3://...); empty: no outcomes report",
        ),
        "actuals": Param(
            SETTINGS["actuals"],
            type="string",
            pattern="^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+)?$",
            description="the bills that arrived (s3://.../FILE.csv or .parquet, with "
            "inference_id and charges); empty: no outcomes report",
        ),
    },
    tags=["insurance-charges", "retraining"],
) as dag:
    check_data = Step(
        task_id="check_data",
        command=retrain(
            "check",
            "--source",
            "{{ params.data_source }}",
            "--work",
            WORK,
            "--sha256",
            "{{ params.data_sha256 }}",
            "--max-rejected",
            "{{ params.max_rejected_rows }}",
        ),
        permanent={**PERMANENT, **PERMANENT_CHECK},
        execution_timeout=timedelta(minutes=10),  # a 55 KB file; 10 minutes means stuck
    )
    train = Training(
        task_id="train",
        config=TRAINING_CONFIG,
        # One retry only: it retrains from scratch, which a lost instance needs and nothing
        # else does; a SageMaker job's own limit (StoppingCondition) ends a stuck one.
        retries=1,
        execution_timeout=timedelta(seconds=TRAINING_MAX_S + 1800),  # + SageMaker's start
    )
    publish = Step(
        task_id="publish",
        command=retrain(
            "publish",
            "--model",
            "{{ " + TRAINED + " }}",
        ),
        permanent=PERMANENT,
        execution_timeout=timedelta(minutes=15),  # a download and a signed upload of a few MB
    )
    promote = Step(
        task_id="promote",
        command=retrain(
            "promote",
            "--version",
            "{{ ti.xcom_pull(task_ids='publish')['version'] }}",
            "--holdout",
            "{{ " + CHECK + "['holdout'] }}",
            "--holdout-sha256",
            "{{ " + CHECK + "['holdout_sha256'] }}",
            "--deploy-eb",
            "{{ params.eb_environment }}",
        ),
        permanent=PERMANENT_PROMOTE,
        skip={GATE_REFUSED: "the gate refused the version; the champion is unchanged"},
        # Scoring is seconds; with a rollout the registry waits for Elastic Beanstalk's
        # rolling deployment to report Ok, which can take most of an hour.
        execution_timeout=timedelta(minutes=60),
    )
    outcomes = Step(
        task_id="outcomes",
        command=retrain(
            "outcomes",
            "--captures",
            "{{ params.captures }}",
            "--actuals",
            "{{ params.actuals }}",
            "--work",
            WORK,
            "--until",
            "{{ (data_interval_end or run_after).isoformat() }}",
        ),
        permanent=PERMANENT,
        needs=("captures", "actuals"),
        execution_timeout=timedelta(minutes=30),  # a week of captures: a few hundred MB at most
    )

    @task(trigger_rule=TriggerRule.NONE_FAILED, retries=0)
    def outcome(ti=None) -> dict:
        """Say what the run did: the outcomes report first when it failed, then the model."""
        report = ti.xcom_pull(task_ids="check_data")
        version = (ti.xcom_pull(task_ids="publish") or {}).get("version")
        promoted = ti.xcom_pull(task_ids="promote") is not None
        measured = ti.xcom_pull(task_ids="outcomes")
        if measured and measured.get("status") == "failed":
            log.warning(
                "OUTCOMES FAILED: last week's estimates missed their checks (%s); report %s",
                "; ".join(measured.get("failures", [])),
                measured.get("report"),
            )
        elif measured:
            log.info("outcomes passed: %s", json.dumps(measured.get("overall")))
        else:
            log.info("outcomes: not reported (the step was skipped; its log says why)")
        drift = report.get("drift") or {}
        log.info(
            "%s %s: trained on %d of %d rows (%d refused by the schema, %d held out for "
            "the gate); input drift against the champion's training data: %s",
            "PROMOTED" if promoted else "NOT PROMOTED (the gate refused it):",
            version,
            report["train_rows"],
            report["rows"],
            report["rejected"],
            report["holdout_rows"],
            drift.get("note") or drift.get("status"),
        )
        return {
            "outcomes": measured.get("status") if measured else "not reported",
            "outcome_failures": measured.get("failures", []) if measured else [],
            "version": version,
            "promoted": promoted,
            "data_sha256": report["sha256"],
            "rows": report["rows"],
            "rejected_rows": report["rejected"],
            "train_rows": report["train_rows"],
            "holdout_rows": report["holdout_rows"],
            "input_drift": drift.get("status"),
        }

    check_data >> train >> publish >> promote
    [promote, outcomes] >> outcome()
