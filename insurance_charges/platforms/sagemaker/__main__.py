"""``python -m insurance_charges.platforms.sagemaker endpoint|transform|archive|train``.

endpoint   create (or update) the SageMaker model, endpoint configuration and endpoint
transform  start a Batch Transform job over every object under an S3 prefix
archive    write model.tar.gz (pipeline, card, signature) and optionally upload it to S3
train      run a SageMaker training job on the image; optionally publish its model

Prints what it did as one JSON object; any failure is one ``Error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ... import cli_runner
from ...aws.clients import client
from ...aws.errors import explain, failures
from ...errors import UserError
from . import launch, training_launch

NOT_DONE = 2  # any failure: nothing was made (docs/deploy/sagemaker.md)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m insurance_charges.platforms.sagemaker",
        description="SageMaker endpoints and Batch Transform jobs "
        "for the released image, and the model archive they load.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def model_options(sub):
        sub.add_argument(
            "--image", required=True, help="the released image by digest (dist/release.json)"
        )
        sub.add_argument(
            "--model-data",
            required=True,
            metavar="S3_URI",
            help="s3://bucket/key/model.tar.gz (make model-archive)",
        )
        sub.add_argument(
            "--role",
            required=True,
            metavar="ARN",
            help="execution role: pulls the image, reads the archive, writes logs",
        )
        sub.add_argument("--wait", action="store_true", help="return only once it is done")

    endpoint = commands.add_parser("endpoint", help="create or update a real-time endpoint")
    endpoint.add_argument("name", help="endpoint name (1 to 50 letters, digits, hyphens)")
    model_options(endpoint)
    endpoint.add_argument("--instance-type", default=launch.ENDPOINT_INSTANCE_TYPE)
    endpoint.add_argument("--instance-count", type=int, default=launch.ENDPOINT_INSTANCE_COUNT)

    transform = commands.add_parser("transform", help="start a Batch Transform job")
    model_options(transform)
    transform.add_argument(
        "--input",
        required=True,
        metavar="S3_PREFIX",
        help="every object under this prefix is scored, line by line",
    )
    transform.add_argument(
        "--output",
        required=True,
        metavar="S3_PREFIX",
        help="where <input file>.out goes, one line per input line",
    )
    transform.add_argument("--name", default=None, help="job name (default: dated)")
    transform.add_argument("--instance-type", default=launch.TRANSFORM_INSTANCE_TYPE)
    transform.add_argument("--instance-count", type=int, default=launch.TRANSFORM_INSTANCE_COUNT)
    transform.add_argument("--max-payload-mb", type=int, default=launch.MAX_PAYLOAD_MB)
    transform.add_argument(
        "--max-concurrent-transforms",
        type=int,
        default=None,
        help="default: the instance's vCPUs (its workers), within 100 MB",
    )
    transform.add_argument("--content-type", choices=launch.CONTENT_TYPES, default="text/csv")
    transform.add_argument("--accept", choices=launch.CONTENT_TYPES, default="text/csv")

    train = commands.add_parser("train", help="train on the image as a SageMaker training job")
    train.add_argument(
        "--image", required=True, help="the released image by digest (dist/release.json)"
    )
    train.add_argument(
        "--data",
        required=True,
        metavar="S3_PREFIX",
        help="the training CSV files (the `training` channel)",
    )
    train.add_argument(
        "--output",
        required=True,
        metavar="S3_PREFIX",
        help="where SageMaker writes JOB/output/model.tar.gz",
    )
    train.add_argument(
        "--holdout",
        metavar="S3_PREFIX",
        default=None,
        help="records for the promotion gate, checked, never trained on",
    )
    train.add_argument(
        "--role",
        default=None,
        metavar="ARN",
        help="execution role (default: SAGEMAKER_ROLE_ARN); see the docs' IAM",
    )
    train.add_argument(
        "--signing-key-secret",
        default=None,
        metavar="SECRET_ID",
        help="the Secrets Manager secret holding the signing key (default: "
        "MODEL_SIGNING_KEY_SECRET)",
    )
    train.add_argument("--instance-type", default=training_launch.TRAINING_INSTANCE_TYPE)
    train.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="seed, folds, candidates, interval_level, max_rejected, data_sha256",
    )
    train.add_argument("--name", default=None, help="job name (default: dated)")
    train.add_argument(
        "--wait", action="store_true", help="follow the job until it ends, a line per new status"
    )
    train.add_argument(
        "--publish",
        metavar="STORE",
        default=None,
        help="once it Completed, `registry publish` its model to s3://bucket/prefix"
        " (implies --wait)",
    )
    train.add_argument(
        "--reference-data",
        type=Path,
        default=None,
        metavar="CSV",
        help="with --publish to a store without one: its frozen reference set",
    )

    archive = commands.add_parser("archive", help="write model.tar.gz for SageMaker")
    archive.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the pipeline .pkl (default: MODEL_PATH, else the committed one)",
    )
    archive.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="where to write it (default: dist/model.tar.gz)",
    )
    archive.add_argument(
        "--upload",
        metavar="S3_URI",
        default=None,
        help="also put it at s3://bucket/key/model.tar.gz",
    )
    return parser


def _clients(*names: str):
    import boto3

    session = boto3.session.Session()  # one session: one credential lookup for both
    return [client(name, session=session) for name in names]


def _endpoint(options) -> dict:
    launch.check_endpoint(options.name, options.instance_count)
    sm, s3 = _clients("sagemaker", "s3")
    model = launch.ensure_model(sm, s3, options.image, options.model_data, options.role)
    config = launch.ensure_endpoint_config(
        sm, options.name, model, options.instance_type, options.instance_count
    )
    action = launch.deploy_endpoint(sm, options.name, config)
    if options.wait:
        launch.wait_endpoint(sm, options.name)
    status = sm.describe_endpoint(EndpointName=options.name)["EndpointStatus"]
    return {
        "endpoint": options.name,
        "action": action,
        "status": status,
        "endpoint_config": config,
        "model": model,
    }


def _transform(options) -> dict:
    sm, s3 = _clients("sagemaker", "s3")
    job = options.name or launch.default_job_name()
    request = launch.start_transform(
        sm,
        s3,
        job,
        {"image": options.image, "model_data": options.model_data, "role": options.role},
        options.input,
        options.output,
        instance_type=options.instance_type,
        count=options.instance_count,
        payload_mb=options.max_payload_mb,
        concurrency=options.max_concurrent_transforms,
        content_type=options.content_type,
        accept=options.accept,
    )
    if options.wait:
        launch.wait_transform(sm, job)
    status = sm.describe_transform_job(TransformJobName=job)["TransformJobStatus"]
    return {
        "transform_job": job,
        "status": status,
        "model": request["ModelName"],
        "max_concurrent_transforms": request["MaxConcurrentTransforms"],
        "max_payload_mb": request["MaxPayloadInMB"],
        "output": options.output,
    }


def _archive(options) -> dict:
    from ...settings import from_environ
    from .archive import DEFAULT_ARCHIVE, upload, write_archive

    settings = from_environ()
    target = options.output or DEFAULT_ARCHIVE
    model = write_archive(options.model or settings.model_path, target, settings.trusted_keys)
    done = {"archive": str(target), "model_version": model.version}
    if options.upload:
        (s3,) = _clients("s3")
        upload(s3, target, options.upload)
        done["uploaded"] = options.upload
    return done


def _train(options) -> dict:
    import os

    role = options.role or os.environ.get("SAGEMAKER_ROLE_ARN", "")
    if not role:
        raise UserError("no execution role; pass --role ARN or set SAGEMAKER_ROLE_ARN", NOT_DONE)
    secret = options.signing_key_secret or os.environ.get("MODEL_SIGNING_KEY_SECRET", "")
    hyperparameters = training_launch.parse_hyperparameters(options.hyperparameter)
    sm, s3 = _clients("sagemaker", "s3")
    job = options.name or training_launch.default_training_job_name()
    training_launch.start_training(
        sm,
        s3,
        job,
        image=options.image,
        role=role,
        data=options.data,
        output=options.output,
        holdout=options.holdout,
        instance_type=options.instance_type,
        secret_id=secret,
        hyperparameters=hyperparameters,
    )
    done = {"training_job": job}
    if not (options.wait or options.publish):
        done["status"] = sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
        return done
    found = training_launch.wait_training(sm, job, cli_runner.to_stderr)
    done.update(
        status=found["TrainingJobStatus"], model_data=found["ModelArtifacts"]["S3ModelArtifacts"]
    )
    if options.publish:
        done["published"] = _publish(
            s3, done["model_data"], options.publish, options.reference_data
        )
    return done


def _publish(s3, model_data: str, store: str, reference_data: Path | None) -> str:
    """``registry publish`` of the job's model; the store's URI of it."""
    import contextlib
    import tempfile

    from ...registry import cli as registry_cli

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = training_launch.fetch_model(s3, model_data, Path(tmp))
        # Its "published ..." line is progress here: stdout is this command's one JSON object.
        with contextlib.redirect_stdout(sys.stderr):
            status = registry_cli.main(
                ["--store", store, "publish", str(model_dir)]
                + (["--reference-data", str(reference_data)] if reference_data else [])
            )
    if status != 0:  # the registry said why, in its own line
        raise UserError(
            f"the training job's model ({model_data}) was not published to {store}", NOT_DONE
        )
    return store


def _aws_reason(exc: BaseException) -> UserError | None:
    """One line for what boto3 raises (None for anything else): aws.errors' line."""
    if not isinstance(exc, failures()):
        return None
    operation = getattr(exc, "operation_name", "")
    return UserError(
        explain(exc, f"calling {operation}" if operation else "calling SageMaker", service="AWS"),
        NOT_DONE,
    )


def _command(argv: list[str] | None) -> int:
    options = _parser().parse_args(argv)
    run = {"endpoint": _endpoint, "transform": _transform, "archive": _archive, "train": _train}[
        options.command
    ]
    print(json.dumps(run(options)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; print its result as JSON, or one ``Error:`` line and return 2."""
    return cli_runner.run(
        lambda: _command(argv), explain=_aws_reason, statuses={Exception: NOT_DONE}
    )


if __name__ == "__main__":
    sys.exit(main())
