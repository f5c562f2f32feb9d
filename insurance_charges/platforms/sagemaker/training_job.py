"""SageMaker's training-container contract: `docker run IMAGE train` reads /opt/ml, writes a model.

SageMaker (docs/deploy/sagemaker-training.md, which cites AWS's pages) puts each input channel's
files in ``/opt/ml/input/data/<channel>/``, the job's hyperparameters (every value a string) in
``/opt/ml/input/config/hyperparameters.json`` and its channels in ``inputdataconfig.json``; it
tars ``/opt/ml/model`` to S3 as ``model.tar.gz`` when the process exits 0, and shows the first
1,024 characters of ``/opt/ml/output/failure`` as the job's ``FailureReason`` when it does not.

This module translates that contract into the training command's own steps: the ``training``
channel's CSV files are checked row by row (``data_checks.run``, the same checks as the weekly
DAG's), trained on (``train.train``) and signed with the key read from AWS Secrets Manager
(``MODEL_SIGNING_KEY_SECRET``); an optional ``holdout`` channel is checked and kept beside the
model's output for the promotion gate, never trained on. The launcher (``container/``) runs it
in a child process so that SIGTERM stops it, its joblib workers included, at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import cli_runner
from ...aws.clients import client
from ...aws.errors import code, explain, failures
from ...errors import UserError
from ...training.options import TrainingOptions, read_candidates, read_folds, whole_number

log = logging.getLogger("insurance_charges.platforms.sagemaker.training_job")

OPT_ML = Path("/opt/ml")  # SageMaker's fixed root for a training container's inputs and outputs
TRAINING, HOLDOUT = "training", "holdout"
CHANNELS = (TRAINING, HOLDOUT)
SECRET_VARIABLE = "MODEL_SIGNING_KEY_SECRET"
# DescribeTrainingJob's FailureReason is the first 1,024 characters of the failure file.
FAILURE_REASON_CHARS = 1024
# CreateTrainingJob takes keys of up to 256 characters; quoting more of a refused one helps no one.
QUOTED_CHARS = 80
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The user the image runs as (Dockerfile's USER), named in lines about what it cannot write.
IMAGE_USER = 10001


class TrainingJobError(UserError):
    """The training job's inputs or mounts cannot be used; the message says what to change."""


@dataclass(frozen=True)
class JobPaths:
    """Where SageMaker mounts a training job's inputs and collects its outputs."""

    root: Path = OPT_ML

    @property
    def config(self) -> Path:
        """The directory of hyperparameters.json and inputdataconfig.json."""
        return self.root / "input" / "config"

    def channel(self, name: str) -> Path:
        """The directory SageMaker copies one input channel's S3 objects into."""
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        """What SageMaker tars to S3 as model.tar.gz."""
        return self.root / "model"

    @property
    def output(self) -> Path:
        """The failure file's directory; ``data/`` in it goes to S3 as output.tar.gz."""
        return self.root / "output"

    @property
    def failure(self) -> Path:
        """The file whose first 1,024 characters become the job's FailureReason."""
        return self.output / "failure"


@dataclass(frozen=True)
class JobSettings:
    """The hyperparameters, read and checked: training's options and the data checks' rules."""

    seed: int
    folds: int
    candidates: tuple[str, ...]
    interval_level: float
    max_rejected: int
    data_sha256: str | None


def _integer(name: str, text: str, low: int, high: int) -> int:
    return whole_number(f"hyperparameter {name}", text, low, high)


def _level(text: str) -> float:
    try:
        level = float(text) if re.fullmatch(r"0?\.[0-9]{1,4}", text) else None
    except ValueError:
        level = None
    if level is None or not 0.5 <= level <= 0.99:
        raise TrainingJobError(
            f"hyperparameter interval_level={text[:QUOTED_CHARS]!r}: give "
            "the share of estimates the likely range should cover, from "
            "0.5 to 0.99 (e.g. 0.8)"
        )
    return level


def read_settings(path: Path) -> JobSettings:
    """hyperparameters.json, checked (``check_hyperparameters``); none at all: the defaults."""
    return check_hyperparameters(_json_object(path) if path.exists() else {})


def check_hyperparameters(given: dict) -> JobSettings:
    """Known keys only, each value a string in its range; what is not given, training's default."""
    defaults = TrainingOptions()
    readers: dict[str, Callable[[str], Any]] = {
        "seed": lambda text: _integer("seed", text, 0, 2**32 - 1),  # numpy's seed range
        "folds": lambda text: read_folds(text, "hyperparameter folds"),
        "candidates": lambda text: read_candidates(text, "hyperparameter candidates"),
        "interval_level": _level,
        "max_rejected": lambda text: _integer("max_rejected", text, 0, 10**9),
        "data_sha256": _sha256,
    }
    unknown = sorted(set(given) - set(readers))
    if unknown:
        raise TrainingJobError(
            f"unknown hyperparameter {unknown[0][:QUOTED_CHARS]!r}; this "
            f"image takes {', '.join(readers)}"
        )
    values: dict[str, Any] = {
        "seed": defaults.seed,
        "folds": defaults.folds,
        "candidates": defaults.candidates,
        "interval_level": defaults.interval_level,
        "max_rejected": 0,
        "data_sha256": None,
    }
    for name, value in given.items():
        if not isinstance(value, str):  # SageMaker passes strings; anything else is not its file
            raise TrainingJobError(
                f"hyperparameter {name}: {type(value).__name__} value; "
                "SageMaker passes every value as a string"
            )
        values[name] = readers[name](value)
    return JobSettings(**values)


def _sha256(text: str) -> str:
    if not _SHA256.fullmatch(text):
        raise TrainingJobError(
            f"hyperparameter data_sha256={text[:QUOTED_CHARS]!r}: give the "
            "training data's SHA-256 as 64 lower-case hex digits"
        )
    return text


def _json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingJobError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(value, dict):
        raise TrainingJobError(f"{path} holds a JSON {type(value).__name__}, not an object")
    return value


def read_channels(paths: JobPaths) -> tuple[str, ...]:
    """The channels the job was given (inputdataconfig.json): ``training``, maybe ``holdout``."""
    path = paths.config / "inputdataconfig.json"
    channels = (
        _json_object(path)
        if path.exists()
        else {name: {} for name in CHANNELS if paths.channel(name).is_dir()}
    )
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise TrainingJobError(
            f"unknown input channel {unknown[0][:QUOTED_CHARS]!r}; give a "
            f"{TRAINING!r} channel and, optionally, a {HOLDOUT!r} one"
        )
    if TRAINING not in channels:
        raise TrainingJobError(
            f"no {TRAINING!r} input channel; give the job one holding the training CSV files"
        )
    for name, config in channels.items():
        mode = config.get("TrainingInputMode", "File") if isinstance(config, dict) else "File"
        if mode != "File":
            raise TrainingJobError(
                f"channel {name!r}: input mode {str(mode)[:QUOTED_CHARS]!r};"
                " this image reads files: use File mode"
            )
    return tuple(name for name in CHANNELS if name in channels)


def gather_csv(channel: Path, dest: Path) -> Path:
    """One CSV of every ``.csv`` file in ``channel`` (sorted by path), each with the same header."""
    files = sorted(p for p in channel.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise TrainingJobError(f"{channel} holds no files; the channel's S3 prefix is empty")
    others = [p for p in files if p.suffix.lower() != ".csv"]
    if others:
        raise TrainingJobError(
            f"{others[0].relative_to(channel)} in channel {channel.name!r} "
            "is not a .csv file; give the channel only CSV files"
        )
    if len(files) == 1:
        return files[0]  # read in place: the digest check then sees the object's own bytes
    header = _first_line(files[0])
    with open(dest, "wb") as out:
        for index, path in enumerate(files):
            with open(path, "rb") as source:
                first = source.readline()
                if first.rstrip(b"\r\n") != header:
                    raise TrainingJobError(
                        f"{path.relative_to(channel)} starts with another header than "
                        f"{files[0].relative_to(channel)}; every file of a channel needs the "
                        "same columns in the same order"
                    )
                if index == 0:
                    out.write(first if first.endswith(b"\n") else first + b"\n")
                rest = source.read()
                out.write(rest if not rest or rest.endswith(b"\n") else rest + b"\n")
    return dest


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as source:
        return source.readline().rstrip(b"\r\n")


def check_writable(directory: Path) -> None:
    """Raise with one line unless this user can create files in ``directory``."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".writable-"):
            pass
    except OSError as exc:
        raise TrainingJobError(
            f"{directory} cannot be written by user {os.getuid()} ({exc.strerror}); the image "
            f"runs as {IMAGE_USER}: mount it owned by (or open to) that user"
        ) from None


def signing_key(environ: Mapping[str, str], secrets_client: Callable[[], Any]):
    """The Ed25519 key that signs the model, read from Secrets Manager; never shown anywhere."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    secret_id = environ.get(SECRET_VARIABLE, "").strip()
    if not secret_id:
        raise TrainingJobError(
            f"{SECRET_VARIABLE} is not set; set it (the training job's "
            "Environment) to the Secrets Manager secret holding the "
            "model-signing key (PEM)"
        )
    shown = secret_id[:QUOTED_CHARS]
    try:
        answer = secrets_client().get_secret_value(SecretId=secret_id)
    except failures() as exc:  # worded without the secret, which the error never holds
        raise TrainingJobError(f"{SECRET_VARIABLE}={shown!r}: {_secret_reason(exc)}") from None
    pem = answer.get("SecretBinary") or answer.get("SecretString", "").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = None  # the library's message may quote the bytes: say nothing of them
    if not isinstance(key, Ed25519PrivateKey):
        raise TrainingJobError(
            f"{SECRET_VARIABLE}={shown!r}: the secret is not an Ed25519 "
            "private key in PEM; store the output of `openssl genpkey "
            "-algorithm ed25519` (docs/security.md#model-signing)"
        )
    return key


def _secret_reason(exc: BaseException) -> str:
    """aws.errors' line, with Secrets Manager's own word for a secret that is not there."""
    if code(exc) == "ResourceNotFoundException":
        return "no such secret in this account and region; create it or fix the id"
    return explain(
        exc,
        "reading the signing key's secret",
        "secretsmanager:GetSecretValue on this secret",
        service="Secrets Manager",
        guide="docs/deploy/sagemaker-training.md#iam",
    )


def _secrets_client():
    return client("secretsmanager")


def run_job(
    paths: JobPaths, environ: Mapping[str, str], secrets_client: Callable[[], Any] = _secrets_client
) -> dict:
    """Check the mounts, the inputs and the data; train and sign into /opt/ml/model."""
    from ...training import train

    check_writable(paths.output)  # the failure file's place first: the rest can then be told
    check_writable(paths.model)
    settings = read_settings(paths.config / "hyperparameters.json")
    channels = read_channels(paths)
    key = signing_key(environ, secrets_client)  # before minutes of training, not after
    options = TrainingOptions(
        seed=settings.seed,
        folds=settings.folds,
        candidates=settings.candidates,
        interval_level=settings.interval_level,
    )
    with tempfile.TemporaryDirectory(prefix="training-job-") as scratch:
        work = Path(scratch)
        checked = _check_channel(paths, TRAINING, work, settings.max_rejected, settings.data_sha256)
        if HOLDOUT in channels:
            # The gate's records: checked like the training rows, kept beside the model's
            # output (output.tar.gz), never trained on.
            held = _check_channel(paths, HOLDOUT, work, settings.max_rejected, None)
            (paths.output / "data").mkdir(exist_ok=True)
            shutil.copyfile(held, paths.output / "data" / "holdout.csv")
        # Trained into scratch and moved once signed: a stopped job leaves no half a model.
        card = train.train(checked, work / "model", key, options)
        for produced in sorted((work / "model").iterdir()):
            shutil.copyfile(produced, paths.model / produced.name)
    return card


def _check_channel(
    paths: JobPaths, channel: str, work: Path, max_rejected: int, sha256: str | None
) -> Path:
    from ...core.model_card import sha256_of
    from ...training import data_checks

    source = gather_csv(paths.channel(channel), work / f"{channel}-gathered.csv")
    # SageMaker copied the channel from S3 itself (TLS, and S3's own checksums): without a
    # data_sha256 hyperparameter the copy vouches for itself and every row is still checked.
    out = work / f"{channel}-checks"
    data_checks.run(str(source), out, sha256 or sha256_of(source), max_rejected)
    return out / data_checks.ACCEPTED


def write_failure(paths: JobPaths, line: str) -> None:
    """Put the one ``Error:`` line where SageMaker reads FailureReason (best effort)."""
    try:
        paths.failure.write_text(line[:FAILURE_REASON_CHARS] + "\n", encoding="utf-8")
    except OSError:
        pass  # the same line is on stderr, in the job's CloudWatch log


def main(root: Path = OPT_ML) -> int:
    """Run the training job; on failure one ``Error:`` line on stderr and in the failure file."""
    from ...command_logs import log_to

    paths = JobPaths(root)
    log_to(logging.getLogger("insurance_charges"))

    def say(line: str) -> None:
        cli_runner.to_stderr(line)
        write_failure(paths, line)

    def job() -> int:
        card = run_job(paths, os.environ)
        log.info(
            "trained %s (%s); the model, its card and signature are in %s",
            card["model_version"],
            card["estimator"],
            paths.model,
        )
        return 0

    return cli_runner.run(job, say=say, explain=_as_error)


def _as_error(exc: BaseException) -> UserError | None:
    """Every failure under the one heading SageMaker's FailureReason shows: ``Error:``."""
    if isinstance(exc, UserError) and exc.heading != UserError.heading:
        return TrainingJobError(str(exc), exc.status)  # e.g. the data checks' "Refused"
    return None


if __name__ == "__main__":
    sys.exit(main())
