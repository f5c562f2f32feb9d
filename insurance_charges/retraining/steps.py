"""The weekly retraining's short steps, each one container run: check, publish, promote, outcomes.

Each step runs the project's own commands (``data_checks``, ``registry``, ``outcomes``) as
child processes with argument lists, their progress on stderr (the task's log), and ends by
printing one JSON line on stdout: what Airflow keeps as the task's XCom (the Docker and ECS
operators both keep a container's last line). Nothing local crosses a step: what one step
hands to the next lives under the run's WORK prefix in S3, written with S3's SHA-256 checksum
and read back refused unless it has the SHA-256 the report recorded.

WORK/ (one per run)
  data/train/train.csv         the training channel (SageMaker's, or the Docker run's)
  data/holdout/holdout.csv     the records the gate judges on, never trained on
  report.json, drift.json      check's report and the inputs' drift against the champion
  model/JOB/output/model.tar.gz  the training job's model (SageMaker's OutputDataConfig)
  outcomes/joined.csv, outcomes/report.json   last week's estimates joined with their bills
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..aws import clients
from ..aws.errors import call
from ..aws.objects import download
from ..aws.uri import S3Uri, parse_s3
from ..errors import UserError
from ..platforms.sagemaker.training_launch import fetch_model

log = logging.getLogger(__name__)

TRAIN_KEY, HOLDOUT_KEY = "data/train/train.csv", "data/holdout/holdout.csv"
OUTCOMES_KEY = "outcomes/"
# The exit statuses the steps end with, beyond a command's own: data_checks' refusal (1) and
# its "try again later" (75, sysexits' EX_TEMPFAIL), the registry's gate refusal (3).
REFUSED, USAGE, GATE_REFUSED, TRY_LATER = 1, 2, 3, 75
# The registry's only words for "no champion" are its error line, matched here.
NO_CHAMPION = "has no champion yet"
NO_CHAMPION_NOTE = "no champion in the store yet: nothing to compare with"
# Whole hours of captures a report covers by default: one week, the DAG's schedule.
OUTCOME_DAYS = 7
# An hour partition's path under the capture prefix: YYYY/MM/DD/HH/ (capture's layout).
PARTITION_PARTS = 4


class StepError(UserError):
    """A step cannot go on; the message is the one line, the status the step's exit status."""


@dataclass(frozen=True)
class Work:
    """The run's WORK prefix in S3 and the client that reads and writes it."""

    uri: S3Uri
    s3: object

    def key(self, name: str) -> str:
        """The object key of ``name`` under WORK."""
        return self.uri.key.rstrip("/") + "/" + name if self.uri.key else name

    def url(self, name: str) -> str:
        """``s3://bucket/WORK/name``."""
        return str(S3Uri(self.uri.bucket, self.key(name)))

    def put(self, name: str, path: Path) -> str:
        """Upload ``path`` as WORK/name with S3's SHA-256 checksum; its URI."""
        key = self.key(name)

        def upload() -> None:
            with open(path, "rb") as body:
                self.s3.put_object(  # type: ignore[attr-defined]
                    Bucket=self.uri.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256"
                )

        call(upload, f"writing {self.url(name)}", "s3:PutObject")
        return self.url(name)


def work_at(text: str) -> Work:
    """The WORK prefix ``text`` (``s3://bucket/prefix``); a StepError naming the form if not."""
    try:
        uri = parse_s3(text)
    except ValueError as exc:
        raise StepError(f"--work {text[:120]!r}: {exc}", USAGE) from None
    return Work(uri, clients.client("s3"))


def project(module: str, *argv: str, stdout=None) -> subprocess.CompletedProcess:
    """``python -m insurance_charges.MODULE ARGV`` here; its stderr is the step's log."""
    return subprocess.run(  # an argument list, never a shell
        [sys.executable, "-m", f"insurance_charges.{module}", *argv],
        stdout=stdout if stdout is not None else subprocess.PIPE,
        text=True,
        check=False,
    )


def last_json(output: str) -> dict:
    """The JSON object a command printed last; a StepError if it printed none."""
    for line in reversed(output.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    raise StepError(f"no JSON report in the command's output: {output[-300:]!r}")


def sha256_file(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):  # 1 MiB reads
            digest.update(block)
    return digest.hexdigest()


def _store(store: str | None) -> list[str]:
    return ["--store", store] if store else []


def champion_card(tmp: Path, store: str | None) -> Path | None:
    """The champion's card fetched from the registry; None when there is no champion yet.

    Any other failure (S3, the signature) is a StepError of status 75: retried later.
    """
    fetched = subprocess.run(  # an argument list, never a shell
        [sys.executable, "-m", "insurance_charges.registry", *_store(store), "fetch"]
        + ["champion", str(tmp / "champion")],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(fetched.stdout + fetched.stderr)
    if fetched.returncode == 0:
        return next((tmp / "champion").glob("*.card.json"))
    if NO_CHAMPION in fetched.stderr:
        return None
    raise StepError(
        "could not fetch the champion's card from the registry; retried later", TRY_LATER
    )


def check(
    source: str, work: Work, sha256: str | None, max_rejected: int, store: str | None
) -> dict:
    """Check the data, compare it with the champion's, and put its two parts under WORK."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        card = champion_card(tmp, store)
        reference = (
            ["--reference-card", str(card)] if card else ["--no-reference-card", NO_CHAMPION_NOTE]
        )
        argv = [source, "--out", str(tmp / "data"), "--max-rejected", str(max_rejected)]
        checked = project(
            "training.data_checks",
            *argv,
            "--holdout",
            *(["--sha256", sha256] if sha256 else []),
            *reference,
        )
        if checked.returncode:
            raise StepError(
                f"the data check ended with status {checked.returncode} (its line above)",
                checked.returncode,
            )
        report = last_json(checked.stdout)
        report["training_data"] = work.put(TRAIN_KEY, tmp / "data" / "train.csv")
        report["holdout"] = work.put(HOLDOUT_KEY, tmp / "data" / "holdout.csv")
        for extra in ("report.json", "drift.json"):
            if (tmp / "data" / extra).is_file():
                work.put(extra, tmp / "data" / extra)
        report["work"] = str(work.uri)
        return report


def publish(model: str, store: str | None) -> dict:
    """Publish the training job's model.tar.gz, or keep the same version already published.

    A version is named by its date and pipeline SHA-256: a rerun the same day on the same
    data (or a retry after a publish whose success was not reported) trained the very same
    pipeline, which is kept, not published again with a new card.
    """
    with tempfile.TemporaryDirectory() as name:
        model_dir = fetch_model(clients.client("s3"), model, Path(name))
        card = json.loads(next(model_dir.glob("*.card.json")).read_text())
        version = str(card["model_version"])
        shown = project("registry", *_store(store), "show", version)
        if shown.returncode == 0:
            log.info("%s is already published (the same pipeline, the same data): kept", version)
            return {"version": version, "published": False}
        published = project(
            "registry", *_store(store), "publish", str(model_dir), stdout=sys.stderr
        )
        if published.returncode:
            raise StepError(
                f"registry publish ended with status {published.returncode} (its line above)",
                published.returncode,
            )
        return {"version": version, "published": True}


def promote(
    version: str,
    holdout: str,
    holdout_sha256: str,
    store: str | None,
    deploy_eb: str | None,
) -> dict:
    """Promote ``version`` through the gate on the run's holdout; status 3 when it refuses."""
    with tempfile.TemporaryDirectory() as name:
        local = Path(name) / "holdout.csv"
        uri = parse_s3(holdout)
        download(clients.client("s3"), uri, local)
        found = sha256_file(local)
        if found != holdout_sha256.lower():
            raise StepError(
                f"{holdout} has SHA-256 {found}, not the {holdout_sha256} the data check "
                "recorded; run the retraining again from its check",
                REFUSED,
            )
        rollout = ["--deploy-eb", deploy_eb] if deploy_eb else []
        argv = ["promote", version, "--evaluation-data", str(local), *rollout]
        promoted = project("registry", *_store(store), *argv, stdout=sys.stderr)
        if promoted.returncode == GATE_REFUSED:
            log.warning("NOT PROMOTED: the gate refused %s; the champion is unchanged", version)
        if promoted.returncode:
            raise StepError(
                f"registry promote ended with status {promoted.returncode} (its line above)",
                promoted.returncode,
            )
        log.info("promoted %s", version)
        return {"version": version, "promoted": True}


def in_window(key: str, prefix: str, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the capture object ``key`` lies in an hour partition in [start, end)."""
    parts = key[len(prefix) :].lstrip("/").split("/")
    if len(parts) <= PARTITION_PARTS:
        return False
    try:
        year, month, day, at = (int(p) for p in parts[:PARTITION_PARTS])
        hour = dt.datetime(year, month, day, at, tzinfo=dt.UTC)
    except ValueError:
        return False
    return start <= hour < end


def fetch_captures(s3, captures: str, dest: Path, end: dt.datetime, days: int) -> int:
    """Download the capture files of the ``days`` before ``end`` into ``dest``; how many."""
    uri = parse_s3(captures)
    prefix = uri.key if not uri.key or uri.key.endswith("/") else uri.key + "/"
    start = end - dt.timedelta(days=days)

    def listed() -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=uri.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    keys = [
        k
        for k in call(listed, f"listing {captures}", "s3:ListBucket")
        if k.endswith(".jsonl") and in_window(k, prefix, start, end)
    ]
    for key in keys:
        target = dest / key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        download(s3, S3Uri(uri.bucket, key), target)
    return len(keys)


def outcomes(
    captures: str,
    actuals: str,
    work: Work,
    end: dt.datetime,
    days: int,
    store: str | None,
) -> dict:
    """Join the week's captures with the bills that arrived and report; never a failure.

    The report's own exit status 3 (a check failed) is carried in the result, not raised: a
    failing report must not stop the retraining, it is the run's headline.
    """
    s3 = work.s3
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        found = fetch_captures(s3, captures, tmp / "captures", end, days)
        if not found:
            raise StepError(
                f"no capture files under {captures} for the {days} days before "
                f"{end:%Y-%m-%d %H:00} UTC; is CAPTURE_URI set on the service?",
                USAGE,
            )
        bills_uri = parse_s3(actuals)
        bills = tmp / ("actuals" + Path(bills_uri.key).suffix.lower())
        download(s3, bills_uri, bills)
        joined = tmp / "joined.csv"
        join = project(
            "outcomes",
            "join",
            "--captures",
            str(tmp / "captures"),
            "--actuals",
            str(bills),
            "-o",
            str(joined),
            stdout=sys.stderr,
        )
        if join.returncode not in (0, 1):  # 1: lines rejected, listed, still joined
            raise StepError(f"outcomes join ended with status {join.returncode}", join.returncode)
        card = champion_card(tmp, store)
        reported = project(
            "outcomes", "report", str(joined), *(["--card", str(card)] if card else [])
        )
        if reported.returncode not in (0, 3):
            raise StepError(
                f"outcomes report ended with status {reported.returncode}", reported.returncode
            )
        sys.stderr.write(reported.stdout)  # the whole report in the task's log
        report = json.loads(reported.stdout)
        (tmp / "report.json").write_text(reported.stdout)
        work.put(OUTCOMES_KEY + "joined.csv", joined)
        return {
            "status": "failed" if reported.returncode == 3 else "passed",
            "exit_status": reported.returncode,
            "failures": report.get("failures", []),
            "overall": report.get("overall", {}),
            "capture_files": found,
            "join_rejected_lines": join.returncode == 1,
            "report": work.put(OUTCOMES_KEY + "report.json", tmp / "report.json"),
        }
