#!/bin/bash
# Amazon MWAA startup script (the environment's StartupScriptS3Path). MWAA sources it with bash
# on every component (scheduler, web server, worker), as the airflow user, before Airflow
# starts; what it exports reaches the tasks. It is stopped after 5 minutes.
#
# On the workers it builds what the retraining DAG runs: the project at the deployed commit and
# its own Python 3.11 virtual environment (PyCaret 3.3 refuses the 3.12 Airflow runs on), from
# a wheelhouse in S3 so no package index is needed; and the model-signing key, from Secrets
# Manager. The other components need none of it. airflow/README.md says how to build the two
# archives and which IAM rights the execution role needs. Not run on MWAA by this project's
# tests (no AWS here): see airflow/README.md, "What is verified, and what comes from documentation".

# --- Your account's locations -----------------------------------------------------------------
INSURANCE_CHARGES_RELEASE="s3://YOUR-MWAA-BUCKET/insurance-charges/release.tar.gz"
INSURANCE_CHARGES_WHEELHOUSE="s3://YOUR-MWAA-BUCKET/insurance-charges/wheelhouse.tar"
INSURANCE_CHARGES_KEY_SECRET="insurance-charges/model-signing-key"  # the PEM, as SecretString
export MODEL_STORE="s3://YOUR-MODEL-BUCKET/insurance-charges"
# -----------------------------------------------------------------------------------------------

export INSURANCE_CHARGES_HOME="/usr/local/airflow/insurance-charges"
export INSURANCE_CHARGES_PYTHON="$INSURANCE_CHARGES_HOME/.venv/bin/python"
export MODEL_SIGNING_KEY="$INSURANCE_CHARGES_HOME/model-signing.key"

# A subshell, so `set -e` and pipefail stay out of the shell MWAA sources this file in. Call it
# as a plain command: in an `if` or before `||`, bash would ignore `set -e` inside it.
insurance_charges_setup() (
  set -euo pipefail
  # Amazon Linux 2023 packages Python 3.11 beside the system's; libgomp (LightGBM) is in
  # MWAA's image already. tar is not, so archives are read with Python's tarfile.
  sudo dnf install -y -q python3.11 python3.11-pip
  rm -rf "$INSURANCE_CHARGES_HOME"
  mkdir -p "$INSURANCE_CHARGES_HOME/wheelhouse"
  cd "$INSURANCE_CHARGES_HOME"
  aws s3 cp --only-show-errors "$INSURANCE_CHARGES_RELEASE" release.tar.gz
  aws s3 cp --only-show-errors "$INSURANCE_CHARGES_WHEELHOUSE" wheelhouse.tar
  python3.11 -m tarfile -e release.tar.gz .
  python3.11 -m tarfile -e wheelhouse.tar wheelhouse
  python3.11 -m venv .venv
  .venv/bin/python -m pip install --quiet --no-deps --no-index --find-links wheelhouse \
    -r requirements.txt
  .venv/bin/python -m pip check
  rm -rf release.tar.gz wheelhouse.tar wheelhouse
  umask 077
  aws secretsmanager get-secret-value --secret-id "$INSURANCE_CHARGES_KEY_SECRET" \
    --query SecretString --output text > "$MODEL_SIGNING_KEY"
)

case "${MWAA_AIRFLOW_COMPONENT:-}" in
  worker | hybrid)
    started=$SECONDS
    insurance_charges_setup
    status=$?
    if [ "$status" -eq 0 ]; then
      echo "insurance-charges: project venv ready in $((SECONDS - started)) s"
    else
      rm -rf "$INSURANCE_CHARGES_HOME/.venv"  # half built: tasks say "no project interpreter"
      echo "insurance-charges: setup FAILED (status $status) after $((SECONDS - started)) s;" \
           "retraining tasks fail until this worker is replaced" >&2
    fi
    ;;
esac
