"""The served estimator: load and verify a trained pipeline with its card, then predict.

No Flask here. ``load_model`` refuses, with one line saying how to fix it, anything that could
make a request fail later: a missing, unreadable, replaced or foreign file, a card of the wrong
shape or from other library versions, or a model that cannot estimate a known record.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

# Unpickling the pipeline imports PyCaret, which otherwise opens ./logs.log.
os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import fastpath  # noqa: E402
from ..settings import DEFAULT_MODEL_PATH  # noqa: E402
from . import model_card  # noqa: E402
from .estimates import self_check  # noqa: E402
from .schema import FIELD_NAMES  # noqa: E402

log = logging.getLogger(__name__)
FIX = "run `make train` to rebuild it, or set MODEL_PATH to a trained pipeline"


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Model:
    """A fitted pipeline with the card that describes it."""

    pipeline: Any
    card: dict
    path: Path
    # The compiled twin of ``pipeline`` (insurance_charges.fastpath), proven equal at load;
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


def read_card(path: Path) -> dict:
    """Read the model card beside a pipeline file and check its structure."""
    card_path = model_card.path_for(path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"model card {card_path} is missing; {FIX}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model card {card_path} is unreadable ({exc}); {FIX}") from None
    try:
        model_card.check_structure(card)
    except model_card.CardError as exc:
        raise ModelLoadError(f"model card {card_path} {exc}; {FIX}") from None
    return card


def _unpickle(path: Path, card: dict) -> Any:
    mismatches = model_card.version_mismatches(card)
    if mismatches:
        raise ModelLoadError(
            f"model {path} was made with " + ", ".join(mismatches)
            + "; install the pinned versions (`make run` does) or retrain with `make train`")
    try:
        digest = model_card.sha256_of(path)
    except OSError as exc:
        raise ModelLoadError(f"model file {path} is unreadable ({exc}); {FIX}") from None
    if digest != card["pipeline_sha256"]:
        raise ModelLoadError(f"model file {path} does not match its card's SHA-256 "
                             f"(truncated or replaced?); {FIX}")
    import joblib

    try:
        pipeline = joblib.load(path)
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise ModelLoadError(f"model file {path} cannot be loaded ({type(exc).__name__}); "
                             f"{FIX}") from None
    if not callable(getattr(pipeline, "predict", None)):
        raise ModelLoadError(f"model file {path} holds no pipeline with predict(); {FIX}")
    return pipeline


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load and verify the pipeline at ``path`` (default: the committed model)."""
    path = Path(path or DEFAULT_MODEL_PATH).resolve()
    if not path.exists():
        raise ModelLoadError(f"model file {path} not found; {FIX}")
    if not path.is_file():
        raise ModelLoadError(f"model file {path} is not a regular file; {FIX}")
    card = read_card(path)
    pipeline = _unpickle(path, card)
    log.info("loaded model %s (%s) from %s", card["model_version"], card["estimator"], path)
    fast, note = fastpath.build(pipeline)
    (log.info if fast is not None else log.warning)("%s", note)
    model = Model(pipeline=pipeline, card=card, path=path, fast=fast)
    problem = self_check(model)
    if problem:
        raise ModelLoadError(f"model {path} cannot estimate a known record ({problem}); {FIX}")
    return model
