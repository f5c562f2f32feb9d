"""The web form's text values typed as JSON carries them, and the core's problems worded for people.

Validation itself is the core's (the same rules and code path as the JSON API); this module only
translates: text in, typed values out; field errors in, one sentence per form field out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.schema import BY_NAME, CATEGORY, FieldError, typed_from_text

# Up to this many characters of a wrong value are quoted back; longer ones are "that".
QUOTE_LIMIT = 20
UNKNOWN_LIST_LIMIT = 80  # characters of unexpected field names shown


def typed_values(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as a JSON record: numbers where the text is one, blanks left out as missing."""
    typed: dict[str, Any] = {}
    for name, raw in form.items():
        text = raw.strip()
        field = BY_NAME.get(name)
        if field is None:
            typed[name] = text  # the core reports it as an unknown field
        elif text:  # a blank is left out: the core reports it as missing
            typed[name] = typed_from_text(field, text)
    return typed


def messages(errors: list[FieldError], form: Mapping[str, str]) -> dict[str, str]:
    """One message per field name, plus ``form`` for fields a browser never sends."""
    out: dict[str, str] = {}
    unknown = []
    for error in errors:
        if error.field is None:  # only a body that is not one object; the form always sends one
            raise ValueError(f"a form error names no field: {error.message}")
        if error.reason == "unknown":
            unknown.append(error.field)
            continue
        field = BY_NAME[error.field]
        if error.reason == "missing":
            out[field.name] = (
                f"Choose {field.label.lower()} from the list."
                if field.kind == CATEGORY
                else f"Enter {field.label.lower()}: {field.rule()}."
            )
        else:
            text = form.get(field.name, "").strip()
            shown = f'"{text}"' if len(text) <= QUOTE_LIMIT else "that"
            out[field.name] = f"{field.label} must be {field.rule()}; {shown} is not."
    if unknown:  # a crafted post or a stale page
        out["form"] = (
            "The form held unexpected fields ("
            + ", ".join(sorted(unknown))[:UNKNOWN_LIST_LIMIT]
            + "); reload the page and try again."
        )
    return out
