"""Weekly retraining of the insurance-charges model: check the data, train, publish, promote.

check_data >> train_and_publish >> promote >> outcome

Every step is one of the project's own commands, run by bash in the PROJECT's virtual
environment (PyCaret's pins), never in Airflow's: this file imports nothing but Airflow. The
workers need the project checkout and its venv (airflow/README.md shows how on Amazon MWAA):

- INSURANCE_CHARGES_HOME    the project checkout (required)
- INSURANCE_CHARGES_PYTHON  its interpreter (default: $INSURANCE_CHARGES_HOME/.venv/bin/python)
- MODEL_SIGNING_KEY         path of the Ed25519 key that signs new models (required)
- MODEL_STORE               the registry, s3://bucket/prefix (or the run's `store` param)
- AWS credentials and region from boto3's own chain (on MWAA, the execution role)

Tasks may run on different workers, so no file crosses a task boundary: each task fetches the
data again and checks it against the SHA-256 check_data recorded, and the model goes from the
training to the registry inside one task, published atomically by the registry. The newest
data's holdout (a stable fifth of the records, chosen by a hash of each record) is never
trained on: the promotion gate judges the challenger and the champion on it and on the store's
frozen reference set.

check_data also compares the new data's inputs with the champion's training data (the card's
distribution, fetched from the registry): per input its PSI and status in the task log and in
the report's ``drift`` (XCom). Drift never stops the run: a shifted population is why one retrains.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import cached_property

from airflow.providers.standard.hooks.subprocess import SubprocessHook
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

DAG_ID = "retrain_insurance_charges"
# `python -m insurance_charges.registry` exit statuses the DAG acts on.
GATE_REFUSED, ROLLOUT_FAILED = 3, 4
log = logging.getLogger(__name__)

# Shared by every task: the project's checkout and interpreter, a private scratch directory.
# (No "{#" anywhere in these scripts: Jinja would read it as the start of a comment.)
PRELUDE = """set -euo pipefail
cd "${INSURANCE_CHARGES_HOME:?set INSURANCE_CHARGES_HOME to the project checkout on the workers}"
PY="${INSURANCE_CHARGES_PYTHON:-$INSURANCE_CHARGES_HOME/.venv/bin/python}"
[ -x "$PY" ] || { echo "no project interpreter at $PY; see airflow/README.md" >&2; exit 2; }
export MODEL_STORE="${STORE:-${MODEL_STORE:-}}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"""
# The data again, on this worker, refused unless it has the digest check_data recorded; split
# into train.csv and holdout.csv exactly as check_data split it.
REFETCH = """"$PY" -m insurance_charges.training.data_checks "$DATA_SOURCE" --out "$WORK/data" \\
  --sha256 "$CHECKED_SHA256" --max-rejected "$MAX_REJECTED" --holdout > /dev/null
"""
# The new data's inputs are compared with the champion's training data (a drift report: never a
# refusal, drift is why one retrains). No champion yet is said so in the report; any other
# failure to fetch its card (S3, the signature) exits 75, retried like an unreadable source.
# The registry's only words for "no champion" are its error line, matched here.
CHECK_DATA = (
    PRELUDE
    + """NO_CHAMPION="no champion in the store yet: nothing to compare with"
REFERENCE=(--no-reference-card "$NO_CHAMPION")
if "$PY" -m insurance_charges.registry fetch champion "$WORK/champion" >&2 2> "$WORK/fetch.err"
then
  REFERENCE=(--reference-card "$(ls "$WORK"/champion/*.card.json)")
elif ! grep -q "has no champion yet" "$WORK/fetch.err"; then
  cat "$WORK/fetch.err" >&2
  echo "could not fetch the champion's card to compare the data with; retried later" >&2
  exit 75
fi
"$PY" -m insurance_charges.training.data_checks "$DATA_SOURCE" --out "$WORK/data" \\
  --max-rejected "$MAX_REJECTED" --holdout ${DATA_SHA256:+--sha256 "$DATA_SHA256"} \\
  "${REFERENCE[@]}"
"""
)
# A version is named by its date and pipeline SHA-256: a rerun the same day on the same data (or
# a retry after a publish whose success was not reported) trains the very same pipeline, which
# is already published; it is kept, not published again with a new card.
TRAIN_AND_PUBLISH = (
    PRELUDE
    + REFETCH
    + """"$PY" -m insurance_charges.training \\
  --data "$WORK/data/train.csv" --out "$WORK/model" \\
  --signing-key "${MODEL_SIGNING_KEY:?set MODEL_SIGNING_KEY to the signing key on the workers}"
VERSION="$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_version"])' \\
  "$WORK"/model/*.card.json)"
if "$PY" -m insurance_charges.registry show "$VERSION" > /dev/null 2>&1; then
  echo "$VERSION is already published (the same pipeline, trained on the same data): kept"
else
  "$PY" -m insurance_charges.registry publish "$WORK/model"
fi
echo "$VERSION"
"""
)
PROMOTE = (
    PRELUDE
    + REFETCH
    + """ROLLOUT=()
if [ -n "$EB_ENVIRONMENT" ]; then ROLLOUT=(--deploy-eb "$EB_ENVIRONMENT"); fi
status=0
"$PY" -m insurance_charges.registry promote "$VERSION" \\
  --evaluation-data "$WORK/data/holdout.csv" "${ROLLOUT[@]}" || status=$?
if [ "$status" -eq 3 ]; then
  echo "NOT PROMOTED: the gate refused $VERSION; the champion is unchanged"
fi
[ "$status" -eq 0 ] || exit "$status"
echo "promoted $VERSION"
"""
)

# The run's choices reach bash as environment variables, never spliced into the script, so a
# value cannot inject shell code.
PARAMS_ENV = {
    "DATA_SOURCE": "{{ params.data_source }}",
    "DATA_SHA256": "{{ params.data_sha256 }}",
    "MAX_REJECTED": "{{ params.max_rejected_rows }}",
    "STORE": "{{ params.store }}",
    "EB_ENVIRONMENT": "{{ params.eb_environment }}",
}
CHECKED_ENV = {"CHECKED_SHA256": "{{ ti.xcom_pull(task_ids='check_data')['sha256'] }}"}


class _PermanentFailures(SubprocessHook):
    """Runs the command; an exit status that retrying cannot change fails the task for good."""

    def __init__(self, permanent: dict[int, str]):
        super().__init__()
        self.permanent = permanent

    def run_command(self, *args, **kwargs):
        result = super().run_command(*args, **kwargs)
        if result.exit_code in self.permanent:
            raise AirflowFailException(
                f"exit status {result.exit_code}: {self.permanent[result.exit_code]}; not retried"
            )
        return result


class ProjectCommand(BashOperator):
    """A project command in bash; ``permanent`` exit statuses fail at once, others retry."""

    def __init__(self, *, permanent: dict[int, str] | None = None, **kwargs):
        super().__init__(append_env=True, **kwargs)
        self.permanent = permanent or {}

    @cached_property
    def subprocess_hook(self):
        return _PermanentFailures(self.permanent)


with DAG(
    dag_id=DAG_ID,
    description="Weekly: check the data, train, publish, promote through the gate",
    doc_md=__doc__,
    # Mondays 03:00 UTC: the week's bills are in and nobody is waiting on the workers.
    schedule="0 3 * * 1",
    start_date=datetime(2026, 11, 2, tzinfo=UTC),
    catchup=False,  # after a pause, one run on the newest data, not one per missed week
    max_active_runs=1,  # two runs must never race to promote
    # Above the worst case of every attempt and wait below (about 5 h), far below a week: a run
    # stuck in a queue ends, so next week's run (max_active_runs=1) is not blocked.
    dagrun_timeout=timedelta(hours=6),
    default_args={
        # Reading S3 or the URL, and S3 or Elastic Beanstalk calls, fail transiently (5xx,
        # throttling, DNS), and MWAA can replace a worker under a running task (scale-in,
        # maintenance); a weekly job can wait 5, then 10 minutes for them to pass.
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
            description="canonical (the published file), https://..., "
            "s3://bucket/key or a path on the workers",
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
            description="registry s3://bucket/prefix (empty: MODEL_STORE)",
        ),
        "eb_environment": Param(
            "",
            type="string",
            pattern="^([A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9])?$",
            description="Elastic Beanstalk environment to roll a promoted "
            "model out to (empty: promote only)",
        ),
    },
    tags=["insurance-charges", "retraining"],
) as dag:
    check_data = ProjectCommand(
        task_id="check_data",
        bash_command=CHECK_DATA,
        env=PARAMS_ENV,
        permanent={
            1: "the data was refused (checksum, columns or refused rows)",
            2: "the source or a setting is wrong",
        },
        output_processor=json.loads,  # the report, as the XCom later tasks read
        execution_timeout=timedelta(minutes=10),  # a 55 KB file; 10 minutes means stuck
    )
    train_and_publish = ProjectCommand(
        task_id="train_and_publish",
        bash_command=TRAIN_AND_PUBLISH,
        env={**PARAMS_ENV, **CHECKED_ENV},
        permanent={2: "the source or a setting is wrong"},
        # Training takes about a minute on 2 cores; a run past 30 minutes is stuck. One retry
        # only: it retrains from scratch, which a lost worker needs and nothing else does.
        retries=1,
        execution_timeout=timedelta(minutes=30),
    )
    promote = ProjectCommand(
        task_id="promote",
        bash_command=PROMOTE,
        env={
            **PARAMS_ENV,
            **CHECKED_ENV,
            "VERSION": "{{ ti.xcom_pull(task_ids='train_and_publish') }}",
        },
        permanent={
            2: "the source or a setting is wrong",
            ROLLOUT_FAILED: "the champion moved but the rollout did not come up healthy; "
            "read the environment's events, then retry this task or "
            "`registry rollback --deploy-eb ENVIRONMENT`",
        },
        skip_on_exit_code=GATE_REFUSED,  # "not promoted" is an outcome, not a failure
        # Scoring is seconds; with a rollout the registry waits for Elastic Beanstalk's
        # rolling deployment to report Ok, which can take most of an hour.
        execution_timeout=timedelta(minutes=60),
    )

    @task(trigger_rule=TriggerRule.NONE_FAILED, retries=0)
    def outcome(ti=None) -> dict:
        """Say what the run did: the data it checked, the version it trained, its fate."""
        report = ti.xcom_pull(task_ids="check_data")
        version = ti.xcom_pull(task_ids="train_and_publish")
        promoted = ti.xcom_pull(task_ids="promote") is not None
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
            "version": version,
            "promoted": promoted,
            "data_sha256": report["sha256"],
            "rows": report["rows"],
            "rejected_rows": report["rejected"],
            "train_rows": report["train_rows"],
            "holdout_rows": report["holdout_rows"],
            "input_drift": drift.get("status"),
        }

    check_data >> train_and_publish >> promote >> outcome()
