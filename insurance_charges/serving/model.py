"""The served estimator: load and verify a trained pipeline with its card, then predict.

No Flask here. ``load_model`` refuses, with one line saying how to fix it, anything that could
make a request fail later: a missing, unreadable, replaced or foreign file, a card of the wrong
shape or from other library versions, or a model that cannot estimate a known record.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Unpickling the pipeline imports PyCaret, which otherwise opens ./logs.log.
os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)

import numpy as np
import pandas as pd

from ..core import model_card, model_signing
from ..core.estimates import self_check
from ..core.schema import FIELD_NAMES
from ..errors import UserError
from . import fastpath

log = logging.getLogger(__name__)
FIX = "run `make train` to rebuild it, or set MODEL_PATH to a trained pipeline"


class ModelLoadError(UserError, RuntimeError):
    """The model cannot be served; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Model:
    """A fitted pipeline with the card that describes it."""

    pipeline: Any
    card: dict
    path: Path
    # The compiled twin of ``pipeline`` (insurance_charges.serving.fastpath), proven equal at load;
    # None serves through pipeline.predict.
    fast: Any = field(default=None, repr=False, compare=False)

    @property
    def version(self) -> str:
        """The card's model version."""
        return self.card["model_version"]

    @property
    def training_ranges(self) -> dict:
        """Per numeric feature, the min and max seen in training."""
        return self.card["schema"]["training_ranges"]

    @property
    def likely_range(self) -> dict | None:
        """The card's interval spec (offsets per group), or None if it has no calibration."""
        return self.card.get("interval")

    def predict(self, records: Sequence[dict]) -> np.ndarray:
        """Predict yearly charges for validated records, in order."""
        if self.fast is not None:
            return self.fast.predict(records)
        frame = pd.DataFrame.from_records(records, columns=list(FIELD_NAMES))
        return np.asarray(self.pipeline.predict(frame), dtype=np.float64)


def read_card(path: Path, text: bytes) -> dict:
    """Parse the bytes of the card beside a pipeline file and check its structure."""
    card_path = model_card.path_for(path)
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise ModelLoadError(f"model card {card_path} is unreadable ({exc}); {FIX}") from None
    try:
        model_card.check_structure(card)
    except model_card.CardError as exc:
        raise ModelLoadError(f"model card {card_path} {exc}; {FIX}") from None
    return card


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{what} {path} is missing; {FIX}") from None
    except OSError as exc:
        raise ModelLoadError(f"{what} {path} is unreadable ({exc.strerror}); {FIX}") from None


def _verified_bytes(path: Path, trusted: tuple) -> tuple[bytes, dict, str]:
    """The pipeline's bytes and its card, once the signature over both is proven; the key id.

    Everything is read once, into memory: what is verified is exactly what gets unpickled.
    """
    pipeline = _read(path, "model file")
    card_bytes = _read(model_card.path_for(path), "model card")
    signature = model_signing.signature_path(path)
    if not signature.exists():
        raise ModelLoadError(
            f"model {path} is not signed (no {signature.name}); sign it with "
            "the training key (docs/security.md#model-signing) or set "
            "MODEL_PATH to a signed model"
        )
    try:
        signer = model_signing.verify(
            _read(signature, "model signature"), pipeline, card_bytes, trusted
        )
    except model_signing.SignatureError as exc:
        raise ModelLoadError(
            f"model {path} is refused: {exc}; set MODEL_PATH to a model signed "
            "by a trusted key, or MODEL_PUBLIC_KEY to the key that signed it"
        ) from None
    card = read_card(path, card_bytes)
    mismatches = model_card.version_mismatches(card)
    if mismatches:
        raise ModelLoadError(
            f"model {path} was made with "
            + ", ".join(mismatches)
            + "; install the pinned versions (`make run` does) or retrain with `make train`"
        )
    if hashlib.sha256(pipeline).hexdigest() != card["pipeline_sha256"]:
        raise ModelLoadError(
            f"model file {path} does not match its card's SHA-256 (truncated or replaced?); {FIX}"
        )
    return pipeline, card, signer


def _unpickle(path: Path, pipeline: bytes, card: dict) -> Any:
    import joblib

    try:
        loaded = joblib.load(io.BytesIO(pipeline))
    except Exception as exc:  # noqa: BLE001 - a corrupt pickle can raise almost anything
        raise ModelLoadError(
            f"model file {path} cannot be loaded ({type(exc).__name__}); {FIX}"
        ) from None
    steps = getattr(loaded, "steps", None)
    if not callable(getattr(loaded, "predict", None)) or not steps:
        raise ModelLoadError(f"model file {path} holds no pipeline with predict(); {FIX}")
    estimator = type(steps[-1][1]).__name__
    if estimator != card["estimator"]:
        raise ModelLoadError(
            f"model file {path} holds a {estimator}, but its card says {card['estimator']}; {FIX}"
        )
    return loaded


def load_model(path: str | os.PathLike, trusted_keys: tuple | None = None) -> Model:
    """Load and verify the pipeline at ``path`` (the caller names it: settings, a store fetch).

    ``trusted_keys`` are the public keys whose signatures are accepted (default: the image's).
    """
    path = Path(path).resolve()
    if not path.exists():
        raise ModelLoadError(f"model file {path} not found; {FIX}")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} is not a regular file; {FIX}")
    if trusted_keys is None:
        trusted_keys = model_signing.read_public_keys(model_signing.TRUSTED_KEYS.read_bytes())
    pipeline_bytes, card, signer = _verified_bytes(path, trusted_keys)
    pipeline = _unpickle(path, pipeline_bytes, card)
    log.info(
        "loaded model %s (%s) from %s, signed by key %s",
        card["model_version"],
        card["estimator"],
        path,
        signer,
    )
    fast, note = fastpath.build(pipeline)
    (log.info if fast is not None else log.warning)("%s", note)
    model = Model(pipeline=pipeline, card=card, path=path, fast=fast)
    problem = self_check(model)
    if problem:
        raise ModelLoadError(f"model {path} cannot estimate a known record ({problem}); {FIX}")
    return model
