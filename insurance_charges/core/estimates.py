"""The estimator core: parsed JSON in, everything an answer needs out (no Flask here).

``estimate(model, body)`` takes one record (an object) or a batch (a list), validates every
value against the schema, predicts the whole batch at once, adds each likely range and flags
extrapolations; or raises ``InvalidRecords`` with each problem located by a JSON Pointer.
Every way in (the JSON API, the form, the benchmark) calls it; adapters only translate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import interval
from .captures import inference_ids
from .schema import EXAMPLE_RECORD, FieldError
from .validation import (
    Locate,
    ValidRecords,
    alone,
    how_many,
    in_batch,
    range_warnings,
    validate_records,
)

CENTS = 2  # estimates and ranges are rounded once, to the cent, after all arithmetic

# A batch is answered in one request; 10,000 records take about 0.05 s (bench/README.md).
MAX_BATCH_LIMIT = 10_000


class Estimator(Protocol):
    """What the core needs of a model (serving.model.Model, or a test's stand-in): read only."""

    @property
    def version(self) -> str: ...

    @property
    def training_ranges(self) -> dict: ...

    @property
    def likely_range(self) -> dict | None: ...

    def predict(self, records: Sequence[dict]) -> np.ndarray | Sequence[float]: ...


class InvalidRecords(ValueError):
    """The body holds invalid values; ``errors`` locates the first of them, ``total`` counts
    them (at least that many when ``complete`` is False: looking stopped once the list was full)."""

    def __init__(
        self,
        errors: list[FieldError],
        detail: str | None = None,
        total: int | None = None,
        complete: bool = True,
    ):
        self.total = len(errors) if total is None else total
        self.complete = complete
        detail = detail or f"{how_many(self.total, complete)} invalid value(s); see errors"
        super().__init__(detail)
        self.errors, self.detail = errors, detail


class TooManyRecords(ValueError):
    """A batch holds more records than the service answers in one request."""

    def __init__(self, limit: int, got: int):
        super().__init__(f"a batch holds at most {limit} records; got {got}")
        self.limit, self.got = limit, got


@dataclass(frozen=True)
class Estimates:
    """Validated records with their estimates, likely ranges and warnings, in input order."""

    batch: bool
    records: list[dict]
    amounts: np.ndarray  # US dollars, rounded to the cent
    lower: np.ndarray | None  # the likely range, or None when the card has no calibration
    upper: np.ndarray | None
    level: float | None
    warnings: list[FieldError]
    model_version: str

    def to_json(self, intervals: bool = True, request_id: str | None = None) -> dict[str, Any]:
        """The API's answer: ``prediction`` for one record, ``predictions`` for a batch; with
        ``request_id``, the estimates' ids last (core/captures.inference_ids)."""
        # intervals=False: a batch's answer without its likely ranges (json_bytes adds them)
        warnings = [w.as_dict() for w in self.warnings]
        ids: dict[str, Any] = {}
        if request_id is not None:
            named = inference_ids(request_id, len(self.amounts), self.batch)
            ids = {"inference_ids": named} if self.batch else {"inference_id": named[0]}
        if not self.batch:
            body = {
                "prediction": float(self.amounts[0]),
                "model_version": self.model_version,
                "warnings": warnings,
            }
            if self.lower is not None and self.upper is not None:
                body["interval"] = {
                    "lower": float(self.lower[0]),
                    "upper": float(self.upper[0]),
                    "level": self.level,
                }
            return {**body, **ids}
        body = {
            "predictions": self.amounts.tolist(),
            "model_version": self.model_version,
            "warnings": warnings,
        }
        if self.lower is not None and self.upper is not None and intervals:
            level = self.level
            bounds = zip(self.lower.tolist(), self.upper.tolist(), strict=True)
            body["intervals"] = [
                {"lower": low, "upper": high, "level": level} for low, high in bounds
            ]
        return {**body, **ids}


def estimate(model: Estimator, body: Any, *, max_batch: int = MAX_BATCH_LIMIT) -> Estimates:
    """Validate and estimate one record (an object) or a batch (a list of 1..max_batch)."""
    batch = isinstance(body, list)
    items = items_of(body, max_batch=max_batch)
    locate = in_batch if batch else alone
    records, errors = validate_records(items, locate)
    if records is None:  # None exactly when there are errors
        raise InvalidRecords(errors, total=errors.total, complete=errors.complete)
    return estimate_valid(model, records, batch=batch, locate=locate)


def items_of(body: Any, *, max_batch: int = MAX_BATCH_LIMIT) -> list:
    """The records a body holds, not yet validated: a batch's items, or the one object; refuse
    an empty batch or one over ``max_batch``."""
    items = body if isinstance(body, list) else [body]
    if len(items) > max_batch:
        raise TooManyRecords(max_batch, len(items))
    if not items:
        raise InvalidRecords(
            [FieldError("", "the array is empty")],
            f"a batch holds 1 to {max_batch} records; got none",
        )
    return items


def estimate_valid(
    model: Estimator, records: Sequence[dict], *, batch: bool = True, locate: Locate = in_batch
) -> Estimates:
    """Estimate records that are already valid (the form's what-ifs, a file's chunks)."""
    records = records if isinstance(records, ValidRecords) else ValidRecords(records)
    predicted = np.asarray(model.predict(records), dtype=np.float64)
    spec = model.likely_range
    lower = upper = None
    if spec:  # one rounding call for the estimates and both bounds
        amounts, lower, upper = np.round(
            np.stack((predicted, *interval.bounds(spec, records, predicted))), CENTS
        )
    else:
        amounts = np.round(predicted, CENTS)
    return Estimates(
        batch=batch,
        records=records,
        amounts=amounts,
        lower=lower,
        upper=upper,
        level=spec["level"] if spec else None,
        warnings=range_warnings(records, model.training_ranges, locate),
        model_version=model.version,
    )


def self_check(model: Estimator) -> str | None:
    """Run the example record through the whole core; say what is wrong, or None."""
    try:
        got = estimate(model, dict(EXAMPLE_RECORD))
    except Exception as exc:  # noqa: BLE001 - whatever a broken model raises, said in one line
        return f"{type(exc).__name__}: {exc}"
    amount = float(got.amounts[0])
    if not (math.isfinite(amount) and amount > 0):
        return f"the estimate is {amount}, not a positive number of dollars"
    if (
        got.lower is not None
        and got.upper is not None
        and not float(got.lower[0]) <= float(got.upper[0])
    ):
        return "its likely range has a lower bound above the upper one"
    return None
