"""The web form's text values, parsed into a record with the one schema's rules."""
from __future__ import annotations

import re
from typing import Any, Mapping

from .schema import CATEGORY, FIELDS, INTEGER, NUMBER, check_value, validate_record

# Form values are text: accept plain decimal notation only (no exponents, no "nan"/"inf").
_WHOLE = re.compile(r"^[+-]?\d{1,6}$")
_DECIMAL = re.compile(r"^[+-]?(\d{1,6}(\.\d*)?|\.\d+)$")


def parse_form(form: Mapping[str, str]) -> tuple[dict | None, dict[str, str]]:
    """Validate the web form's text values; return the record or a message per field name."""
    typed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        text = (form.get(field.name) or "").strip()
        if not text:
            errors[field.name] = (f"Choose {field.label.lower()} from the list."
                                  if field.kind == CATEGORY else
                                  f"Enter {field.label.lower()}: {field.rule()}.")
            continue
        if field.kind == INTEGER and _WHOLE.match(text):
            typed[field.name] = int(text)
        elif field.kind == NUMBER and _DECIMAL.match(text):
            typed[field.name] = float(text)
        else:
            typed[field.name] = text
        _, message = check_value(field, typed[field.name])
        if message:
            shown = f'"{text}"' if len(text) <= 20 else "that"
            errors[field.name] = f"{field.label} must be {field.rule()}; {shown} is not."
    if errors:
        return None, errors
    return validate_record(typed)[0], {}
