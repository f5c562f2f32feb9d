"""What drives an estimate: what-ifs and curves for one person, all from one batch prediction.

No Flask here: ``explain(model, record)`` returns plain data that the form and charts render.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import interval
from .schema import BY_NAME, INTEGER

CURVE_FIELDS = ("bmi", "age")  # the numeric facts a person can picture changing
CURVE_POINTS = 24
SMOKER = "smoker"
BMI_STEP, AGE_STEP = 5, 10


@dataclass(frozen=True)
class WhatIf:
    """One changed fact and the estimate it gives."""

    text: str
    amount: float
    change: float


@dataclass(frozen=True)
class Curve:
    """The estimate along one field, for this person as a smoker and as a non-smoker."""

    field: str
    label: str
    xs: tuple
    series: dict  # smoker choice ("yes"/"no") -> estimates, parallel to xs
    you: tuple  # (x, estimate, smoker choice) for the person as they are


@dataclass(frozen=True)
class Explanation:
    """The estimate, its likely range, what-ifs and curves."""

    estimate: float
    interval: dict | None
    whatifs: list
    curves: list


def _grid(field: str, low: float, high: float, own: float) -> tuple:
    low, high = min(low, own), max(high, own)
    step = (high - low) / (CURVE_POINTS - 1)
    points = {low + i * step for i in range(CURVE_POINTS)} | {own}
    whole = BY_NAME[field].kind == INTEGER
    return tuple(sorted({round(x) if whole else round(x, 1) for x in points} | {own}))


def _what_if_changes(record: dict, ranges: dict) -> list[tuple[str, dict]]:
    """A few one-fact changes, each kept inside the range the model saw in training."""
    other = "no" if record[SMOKER] == "yes" else "yes"
    bmi, age = record["bmi"], record["age"]
    new_bmi = round(bmi - BMI_STEP if bmi - BMI_STEP >= ranges["bmi"]["min"]
                    else bmi + BMI_STEP, 1)
    new_age = age + AGE_STEP if age + AGE_STEP <= ranges["age"]["max"] else age - AGE_STEP
    return [
        ("as a non-smoker" if other == "no" else "as a smoker", {SMOKER: other}),
        (f"with a BMI of {new_bmi:g} instead of {bmi:g}", {"bmi": new_bmi}),
        (f"at age {new_age} instead of {age}", {"age": new_age}),
    ]


def explain(model, record: dict) -> Explanation:
    """Estimate, likely range, what-ifs and curves for ``record``, in one predict call."""
    ranges = model.training_ranges
    changes = _what_if_changes(record, ranges)
    grids = {f: _grid(f, ranges[f]["min"], ranges[f]["max"], record[f]) for f in CURVE_FIELDS}
    smokers = BY_NAME[SMOKER].choices
    batch = [record] + [{**record, **change} for _, change in changes]
    batch += [{**record, field: x, SMOKER: s}
              for field in CURVE_FIELDS for s in smokers for x in grids[field]]
    predictions = iter(model.predict(batch))  # the one call: the batch path does the work
    estimate = next(predictions)
    whatifs = []
    for text, _ in changes:
        amount = next(predictions)
        whatifs.append(WhatIf(text, amount, amount - estimate))
    curves = []
    for field in CURVE_FIELDS:
        series = {s: [next(predictions) for _ in grids[field]] for s in smokers}
        curves.append(Curve(field, BY_NAME[field].label, grids[field], series,
                            (record[field], estimate, record[SMOKER])))
    spans = interval.bounds(model.card.get("interval"), [record], [estimate])
    return Explanation(estimate, spans[0] if spans else None, whatifs, curves)
