"""Load the trained pipeline and its model card once, and predict with it (no Flask here)."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

# Unpickling the pipeline imports PyCaret, which otherwise opens ./logs.log.
os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)

import pandas as pd  # noqa: E402

from . import card as model_card  # noqa: E402
from . import parity  # noqa: E402
from .schema import FIELD_NAMES  # noqa: E402

log = logging.getLogger(__name__)
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "model" / "insurance-charges.pkl"
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

    def predict(self, records: Sequence[dict]) -> list[float]:
        """Predict yearly charges for validated records, in order."""
        if self.fast is not None:
            return self.fast.predict(records).tolist()
        frame = pd.DataFrame.from_records(records, columns=list(FIELD_NAMES))
        return [float(x) for x in self.pipeline.predict(frame)]


def read_card(path: Path) -> dict:
    """Read and sanity-check the model card beside a pipeline file."""
    card_path = model_card.path_for(path)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"model card {card_path} is missing; {FIX}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model card {card_path} is unreadable ({exc}); {FIX}") from None
    required = ("model_version", "pipeline_sha256", "versions", "schema")
    if not isinstance(card, dict) or any(k not in card for k in required):
        raise ModelLoadError(f"model card {card_path} lacks {', '.join(required)}; {FIX}")
    return card


def load_model(path: str | os.PathLike | None = None) -> Model:
    """Load and verify the pipeline at ``path`` (default: the committed model)."""
    path = Path(path or DEFAULT_MODEL_PATH).resolve()
    if not path.is_file():
        raise ModelLoadError(f"model file {path} not found; {FIX}")
    card = read_card(path)
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
    log.info("loaded model %s (%s) from %s", card["model_version"], card.get("estimator"), path)
    fast, note = parity.build(pipeline)
    (log.info if fast is not None else log.warning)("%s", note)
    return Model(pipeline=pipeline, card=card, path=path, fast=fast)
