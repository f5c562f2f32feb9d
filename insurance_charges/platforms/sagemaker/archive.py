"""model.tar.gz for SageMaker: the pipeline, its card and signature at the archive's top level.

SageMaker extracts ``ModelDataUrl`` into /opt/ml/model before the container starts, so the
image finds /opt/ml/model/insurance-charges.pkl with its .card.json and .sig.json beside it:
the names the committed model has, whatever the source files are called (the signature covers
the bytes, not the names). Only a model that loads as the service loads it is archived
(signature, card, versions, a known record estimated), and the archived bytes are checked
against its signature again.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from ...core import model_card, model_signing
from ...paths import DEFAULT_MODEL_PATH, PROJECT_ROOT
from ...serving.model import Model, load_model
from .launch import LaunchError, require_bucket

DEFAULT_ARCHIVE = PROJECT_ROOT / "dist" / "model.tar.gz"
PIPELINE_NAME = DEFAULT_MODEL_PATH.name


def members(model_path: Path) -> list[tuple[Path, str]]:
    """(source file, name in the archive) for the pipeline, its card and its signature."""
    canonical = Path(PIPELINE_NAME)
    return [
        (model_path, PIPELINE_NAME),
        (model_card.path_for(model_path), model_card.path_for(canonical).name),
        (model_signing.signature_path(model_path), model_signing.signature_path(canonical).name),
    ]


def _tar_bytes(files: list[tuple[bytes, str]]) -> bytes:
    """The gzipped tar, byte-for-byte the same for the same model (no times, owners or names)."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
        with tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for data, name in files:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def write_archive(model_path: Path, target: Path, trusted_keys: tuple) -> Model:
    """Write ``target`` from a model that loads as the service loads it; return that model."""
    model_path = Path(model_path)
    model = load_model(model_path, trusted_keys)  # its errors name the files and the fix
    try:
        files = [(source.read_bytes(), name) for source, name in members(model_path)]
    except OSError as exc:
        raise LaunchError(f"cannot read {exc.filename} ({exc.strerror}); run again") from None
    (pipeline, _), (card, _), (signature, _) = files
    try:  # the bytes archived are the bytes just verified, not a file replaced since
        model_signing.verify(signature, pipeline, card, trusted_keys)
    except model_signing.SignatureError:
        raise LaunchError(f"{model_path} changed while it was being archived; run again") from None
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: an interrupted run never leaves a file that looks finished.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(_tar_bytes(files))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return model


def upload(s3, archive: Path, uri: str) -> None:
    """Put the archive at ``uri`` (s3://bucket/key/model.tar.gz)."""
    bucket, key = require_bucket(s3, uri, "--upload")
    if not key.endswith(".tar.gz"):
        raise LaunchError(
            f"--upload {uri!r}: SageMaker takes a .tar.gz; name the key …/model.tar.gz"
        )
    with open(archive, "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/gzip")
