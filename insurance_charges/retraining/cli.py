"""``python -m insurance_charges.retraining STEP``: one step of the weekly retraining DAG.

The image runs it as ``docker run IMAGE retrain STEP ...`` (an ECS task or Airflow's
DockerOperator); the training itself is ``docker run IMAGE train`` (SageMaker's contract).
Each step prints one JSON line on stdout, last: the task's XCom.

Exit status: 0 done; 1 refused (the data, or a file that is not what the check recorded) or a
registry failure; 2 a usage error or a wrong setting; 3 the promotion gate refused the
version; 4 the champion moved but the rollout failed; 75 try again later (S3, the network).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from .. import cli_runner
from ..aws.errors import AwsError
from ..errors import UserError
from ..training.data_fetch import parse_sha256
from . import steps

# AWS failures that a later attempt may not meet again: Airflow's retry is worth it.
TRANSIENT_KINDS = frozenset({"unreachable", "busy"})


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more")
    return value


def _days(text: str) -> int:
    value = int(text)
    # A report covers at least one day and at most a quarter: captures older than that are
    # the bills' business, not a weekly run's.
    if not 1 <= value <= 92:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole days from 1 to 92")
    return value


def _until(text: str) -> dt.datetime:
    try:
        found = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time (2026-11-30 or 2026-11-30T03:00:00+00:00)"
        ) from None
    return found.replace(tzinfo=dt.UTC) if found.tzinfo is None else found.astimezone(dt.UTC)


def parser() -> cli_runner.Parser:
    """The command's arguments."""
    p = cli_runner.Parser(
        prog="python -m insurance_charges.retraining",
        description="One step of the weekly retraining, in the image.",
        epilog="Exit status: 0 done, 1 refused, 2 usage, 3 the gate refused, 4 rollout "
        "failed, 75 try again later. See docs/retraining.md.",
    )
    p.add_argument("--store", help="the registry s3://bucket/prefix (default: MODEL_STORE)")
    commands = p.add_subparsers(dest="step", required=True, metavar="STEP")
    c = commands.add_parser("check", help="check the data; put train and holdout under WORK")
    c.add_argument("--source", required=True, help="canonical, https://..., s3://bucket/key")
    c.add_argument("--work", required=True, help="this run's s3://bucket/prefix")
    c.add_argument("--sha256", default="", help="the SHA-256 the data must have")
    c.add_argument("--max-rejected", type=_count, default=0, metavar="N")
    u = commands.add_parser("publish", help="publish the training job's model.tar.gz")
    u.add_argument("--model", required=True, help="s3://.../output/model.tar.gz")
    r = commands.add_parser("promote", help="promote a version through the gate")
    r.add_argument("--version", required=True)
    r.add_argument("--holdout", required=True, help="s3://... holdout.csv of the check")
    r.add_argument("--holdout-sha256", required=True, help="its SHA-256, from the check")
    r.add_argument("--deploy-eb", default="", help="roll out to this EB environment")
    o = commands.add_parser("outcomes", help="join last week's captures and bills; report")
    o.add_argument("--captures", required=True, help="the capture s3://bucket/prefix")
    o.add_argument("--actuals", required=True, help="the bills, s3://.../FILE.csv|.parquet")
    o.add_argument("--work", required=True, help="this run's s3://bucket/prefix")
    o.add_argument("--until", type=_until, required=True, help="the window's end (UTC)")
    o.add_argument("--days", type=_days, default=steps.OUTCOME_DAYS)
    return p


def _step(args: argparse.Namespace) -> dict:
    store = args.store or None
    if args.step == "check":
        sha = parse_sha256(args.sha256) if args.sha256 else None
        return steps.check(args.source, steps.work_at(args.work), sha, args.max_rejected, store)
    if args.step == "publish":
        return steps.publish(args.model, store)
    if args.step == "promote":
        sha = parse_sha256(args.holdout_sha256)
        return steps.promote(args.version, args.holdout, sha, store, args.deploy_eb or None)
    return steps.outcomes(
        args.captures, args.actuals, steps.work_at(args.work), args.until, args.days, store
    )


def _explain(exc: BaseException) -> UserError | None:
    """An AWS failure: retried later when it may pass, a wrong setting (2) when not."""
    if isinstance(exc, AwsError):
        transient = exc.kind in TRANSIENT_KINDS
        return UserError(str(exc), steps.TRY_LATER if transient else steps.USAGE)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one step; print its result as one JSON line; return its exit status."""

    def command() -> int:
        args = parser().parse_args(argv)
        result = _step(args)
        print(json.dumps(result, sort_keys=True), flush=True)
        return 0

    # The steps' own progress; boto3's and botocore's INFO lines (credentials found) are noise.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("insurance_charges").setLevel(logging.INFO)
    return cli_runner.run(command, explain=_explain)
