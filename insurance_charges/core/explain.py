"""What drives an estimate: what-ifs and curves for one person, all from one batch prediction.

No Flask here: ``explain(model, estimates)`` takes the core's answer for one person and returns
plain data that the form and charts render.
"""

from __future__ import annotations

from dataclasses import dataclass

from .estimates import Estimates, Estimator, estimate_valid
from .schema import BY_NAME, INTEGER

CURVE_FIELDS = ("bmi", "age")  # the numeric facts a person can picture changing
# Enough points for a smooth line on a 200-pixel-wide plot, few enough to stay one small batch.
CURVE_POINTS = 24
SMOKER = "smoker"
# A change a person can picture: about one clothing size of BMI, one decade of age.
BMI_STEP, AGE_STEP = 5, 10
BMI_DECIMALS = 1  # as the form shows and people quote a BMI


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
    # (x, estimate, smoker choice) for the person as they are; None for the model page's
    # averages over the training data, which show no one person
    you: tuple[float, float, str] | None


@dataclass(frozen=True)
class Explanation:
    """The estimate, its likely range, what-ifs and curves."""

    estimate: float
    interval: dict | None
    whatifs: list
    curves: list


def _grid(field: str, low: float, high: float, own: float) -> tuple:
    """Evenly spread points over the range, rounded as people read them, plus the person's own.

    A point that rounds to the person's own value is replaced by it, so BMI 27.93 is charted
    once, not as both 27.9 and 27.93.
    """
    low, high = min(low, own), max(high, own)
    step = (high - low) / (CURVE_POINTS - 1)
    whole = BY_NAME[field].kind == INTEGER
    shown = {
        round(low + i * step) if whole else round(low + i * step, BMI_DECIMALS)
        for i in range(CURVE_POINTS)
    }
    near_own = round(own) if whole else round(own, BMI_DECIMALS)
    return tuple(sorted((shown - {near_own}) | {own}))


def _what_if_changes(record: dict, ranges: dict) -> list[tuple[str, dict]]:
    """A few one-fact changes, each kept inside the range the model saw in training."""
    other = "no" if record[SMOKER] == "yes" else "yes"
    bmi, age = record["bmi"], record["age"]
    new_bmi = round(
        bmi - BMI_STEP if bmi - BMI_STEP >= ranges["bmi"]["min"] else bmi + BMI_STEP, BMI_DECIMALS
    )
    new_age = age + AGE_STEP if age + AGE_STEP <= ranges["age"]["max"] else age - AGE_STEP
    return [
        ("as a non-smoker" if other == "no" else "as a smoker", {SMOKER: other}),
        (f"with a BMI of {new_bmi:g} instead of {bmi:g}", {"bmi": new_bmi}),
        (f"at age {new_age} instead of {age}", {"age": new_age}),
    ]


def explain(model: Estimator, person: Estimates) -> Explanation:
    """What-ifs and curves for the one person ``person`` estimates, in one more batch call."""
    record, estimate = person.records[0], float(person.amounts[0])
    ranges = model.training_ranges
    changes = _what_if_changes(record, ranges)
    grids = {f: _grid(f, ranges[f]["min"], ranges[f]["max"], record[f]) for f in CURVE_FIELDS}
    smokers = BY_NAME[SMOKER].choices
    batch = [{**record, **change} for _, change in changes]
    batch += [
        {**record, field: x, SMOKER: s}
        for field in CURVE_FIELDS
        for s in smokers
        for x in grids[field]
    ]
    amounts = iter(estimate_valid(model, batch).amounts.tolist())
    whatifs = []
    for text, _ in changes:
        amount = next(amounts)
        whatifs.append(WhatIf(text, amount, amount - estimate))
    curves = []
    for field in CURVE_FIELDS:
        series = {s: [next(amounts) for _ in grids[field]] for s in smokers}
        curves.append(
            Curve(
                field,
                BY_NAME[field].label,
                grids[field],
                series,
                (record[field], estimate, record[SMOKER]),
            )
        )
    lower, upper = person.lower, person.upper
    span = (
        None
        if lower is None or upper is None
        else {"lower": float(lower[0]), "upper": float(upper[0]), "level": person.level}
    )
    return Explanation(estimate, span, whatifs, curves)
