"""What a training run may be told, and the checks that turn text into it.

The training command's ``--candidates`` and ``--folds`` and a SageMaker job's hyperparameters
are read by the same functions here, so both refuse the same values with the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import interval
from ..errors import UsageError

SESSION_ID = 123
FOLDS = 10
# PyCaret's CV on 1,338 rows: 20 folds leave 53 rows a fold; fewer rows a fold say little.
MAX_FOLDS = 20
# A refused value is quoted up to here: enough to recognise, never a wall of text.
QUOTED_CHARS = 80
# PyCaret's default (turbo) regressors that are installed; slow kernel models are left out.
CANDIDATES = (
    "lr",
    "lasso",
    "ridge",
    "en",
    "lar",
    "llar",
    "omp",
    "br",
    "huber",
    "par",
    "knn",
    "dt",
    "rf",
    "et",
    "ada",
    "gbr",
    "lightgbm",
    "dummy",
)


@dataclass(frozen=True)
class TrainingOptions:
    """What a training run may be told: the seed, the folds, the candidates, the range's level."""

    seed: int = SESSION_ID
    folds: int = FOLDS
    candidates: tuple[str, ...] = CANDIDATES
    interval_level: float = interval.LEVEL


class TrainingOptionError(UsageError):
    """A training option's value cannot be used; the message names it and what to give."""


def whole_number(label: str, text: str, low: int, high: int) -> int:
    """``text`` as a whole number from ``low`` to ``high``, or an error naming ``label``."""
    digits = text.isascii() and text.isdigit() and len(text) <= 12
    if not digits or not low <= int(text) <= high:
        raise TrainingOptionError(
            f"{label}={text[:QUOTED_CHARS]!r}: give a whole number from {low} to {high}"
        )
    return int(text)


def read_folds(text: str, label: str = "--folds") -> int:
    """The number of cross-validation folds, from 2 to MAX_FOLDS."""
    return whole_number(label, text, 2, MAX_FOLDS)


def read_candidates(text: str, label: str = "--candidates") -> tuple[str, ...]:
    """A comma-separated list of known PyCaret regressors, each named once."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in CANDIDATES]
    if not text.strip() or unknown or len(set(names)) != len(names):
        what = (
            "none given"
            if not text.strip()
            else f"unknown {unknown[0][:QUOTED_CHARS]!r}"
            if unknown
            else "one named twice"
        )
        raise TrainingOptionError(
            f"{label}: {what}; give a comma-separated list "
            f"of PyCaret regressors from {','.join(CANDIDATES)}"
        )
    return names
