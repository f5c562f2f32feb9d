"""The one input schema: the six features, their types, limits and allowed values.

The web form, the JSON API, the OpenAPI document, training and the tests all derive from
``FIELDS``; nothing else in the project spells out a feature's rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

INTEGER, NUMBER, CATEGORY = "integer", "number", "category"


@dataclass(frozen=True)
class Field:
    """One model input: its JSON type, limits or choices, and how people see it."""

    name: str
    kind: str
    label: str
    help: str
    example: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def rule(self) -> str:
        """Say in words what a valid value is."""
        if self.kind == CATEGORY:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        what = "a whole number" if self.kind == INTEGER else "a number"
        return f"{what} from {_fmt(self.minimum)} to {_fmt(self.maximum)}"


@dataclass(frozen=True)
class FieldError:
    """A problem with one value, located by a JSON Pointer into the request body.

    ``field`` names the schema field (or the unknown key) and ``reason`` says what kind of
    problem it is, so an adapter (the form) can word it for its own users.
    """

    pointer: str
    message: str
    field: str | None = None
    # "missing", "unknown", "repeated", "invalid", "not-an-object" or "extrapolated"
    reason: str = "invalid"

    def as_dict(self) -> dict:
        """Render for a problem+json ``errors`` list."""
        return {"pointer": self.pointer, "message": self.message}


FIELDS: tuple[Field, ...] = (
    Field("age", INTEGER, "Age", "Age of the insured person, in whole years.", 19, 18, 100),
    Field(
        "sex", CATEGORY, "Sex", "Sex of the insured person.", "female", choices=("female", "male")
    ),
    Field(
        "bmi",
        NUMBER,
        "Body-mass index (BMI)",
        "Weight in kilograms divided by the square of height in metres.",
        27.9,
        10,
        80,
    ),
    Field(
        "children",
        INTEGER,
        "Children covered",
        "Number of children or dependants covered by the policy.",
        0,
        0,
        10,
    ),
    Field("smoker", CATEGORY, "Smoker", "Does the person smoke?", "yes", choices=("yes", "no")),
    Field(
        "region",
        CATEGORY,
        "Region",
        "Residential area in the United States.",
        "southwest",
        choices=("northeast", "northwest", "southeast", "southwest"),
    ),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
EXAMPLE_RECORD: dict[str, Any] = {f.name: f.example for f in FIELDS}


def _fmt(x: float | None) -> str:
    # Integers stay exact; a huge one would overflow a float format (and is unreadable).
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x) if abs(x) < 10**15 else "a number too large to show"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"{json.dumps(value)} (a string)" if len(value) <= 40 else "a long string"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return _fmt(value)


def pointer_token(name: str) -> str:
    """Escape one JSON Pointer reference token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


# Text (a form field, a CSV cell) is typed as JSON would carry it: plain decimal notation in
# ASCII digits only; no exponents, no "nan"/"inf", no other scripts' digits (Python's \d would
# accept "١٩" and "１９", which JSON and so the API refuse).
_WHOLE_TEXT = re.compile(r"[+-]?[0-9]{1,6}")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]{1,6}(\.[0-9]*)?|\.[0-9]+)")


def typed_from_text(field: Field, text: str) -> Any:
    """A text value as JSON would carry it: an int or float where it is one, else the text."""
    if field.kind == INTEGER and _WHOLE_TEXT.fullmatch(text):
        return int(text)
    if field.kind == NUMBER and _DECIMAL_TEXT.fullmatch(text):
        return float(text)
    return text


_INVALID = object()


def _coerce(field: Field, value: Any) -> Any:
    if field.kind == CATEGORY:
        return value if isinstance(value, str) and value in field.choices else _INVALID
    # bool is an int subclass in Python but not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _INVALID
    # Check the limits before converting: a huge JSON integer would overflow float().
    if isinstance(value, float) and not math.isfinite(value):
        return _INVALID
    # Every number in FIELDS has both limits; only a category's are None (mypy cannot see it).
    if not cast(float, field.minimum) <= value <= cast(float, field.maximum):
        return _INVALID
    if field.kind == INTEGER:
        return int(value) if float(value).is_integer() else _INVALID
    return float(value)


def check_value(field: Field, value: Any) -> tuple[Any, str | None]:
    """Coerce one JSON value for ``field``; return ``(value, None)`` or ``(None, message)``."""
    coerced = _coerce(field, value)
    if coerced is _INVALID:
        # The message is built only for a bad value: a full batch checks 60,000 good ones.
        return None, f"{field.name} must be {field.rule()}; got {_describe(value)}"
    return coerced, None


class RepeatedKeys(dict):
    """A JSON object that named a key more than once; ``repeated`` lists those keys.

    JSON parsers keep the last value silently; the web layer's parser marks such objects so
    validation can refuse them instead of guessing which value the client meant.
    """

    repeated: tuple[str, ...] = ()


def _shown_key(key: str) -> str:
    return repr(key) if len(key) <= 40 else repr(key[:40]) + "..."  # keys can be megabytes


def record_problems(body: Any, pointer: str, record: dict) -> Iterator[FieldError]:
    """Yield each problem of one JSON record, filling ``record`` with the coerced values."""
    if not isinstance(body, dict):
        yield FieldError(
            pointer,
            "a record must be a JSON object with the fields "
            + ", ".join(FIELD_NAMES)
            + f"; got {_describe(body)}",
            reason="not-an-object",
        )
        return
    for key in getattr(body, "repeated", ()):
        yield FieldError(
            f"{pointer}/{pointer_token(str(key))}",
            f"{_shown_key(str(key))} appears more than once in the object; send each field once",
            str(key),
            "repeated",
        )
    for key in body:
        if key not in BY_NAME:
            yield FieldError(
                f"{pointer}/{pointer_token(str(key))}",
                f"unknown field {_shown_key(str(key))}; the fields are " + ", ".join(FIELD_NAMES),
                str(key),
                "unknown",
            )
    for field in FIELDS:
        if field.name not in body:
            yield FieldError(
                f"{pointer}/{field.name}",
                f"{field.name} is required: {field.rule()}",
                field.name,
                "missing",
            )
            continue
        value, message = check_value(field, body[field.name])
        if message:
            yield FieldError(f"{pointer}/{field.name}", message, field.name)
        record[field.name] = value


def validate_record(body: Any, pointer: str = "") -> tuple[dict | None, list[FieldError]]:
    """Validate one JSON record strictly: exact fields, exact types, limits and choices."""
    record: dict[str, Any] = {}
    errors = list(record_problems(body, pointer, record))
    return (None, errors) if errors else (record, [])


def extrapolation_warning(name: str, value: Any, low: Any, high: Any, pointer: str) -> FieldError:
    """The warning for a valid value outside the range the model saw in training."""
    return FieldError(
        f"{pointer}/{name}",
        f"{name} {_fmt(value)} is outside the range seen in training "
        f"({_fmt(low)} to {_fmt(high)}); the estimate is an extrapolation",
        name,
        "extrapolated",
    )
