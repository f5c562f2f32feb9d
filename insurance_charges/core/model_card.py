"""The model card as serving reads it: where it is, its checksum, versions and structure.

Training writes it (``training/card_writer.py``); the service refuses one it cannot serve.
"""

from __future__ import annotations

import hashlib
import math
from importlib import metadata
from pathlib import Path
from typing import Any

from .interval import ALL
from .schema import BY_NAME, CATEGORY, FIELDS

# The libraries whose versions must match between training and serving: a pickled
# PyCaret/scikit-learn pipeline is only trustworthy in the versions that wrote it.
MUST_MATCH = ("pycaret", "scikit-learn")
RECORDED = (*MUST_MATCH, "pandas", "numpy", "lightgbm")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, hashlib.sha256).hexdigest()  # reads in blocks


def path_for(pipeline_path: Path) -> Path:
    """The card's path beside a pipeline file: ``name.pkl`` -> ``name.card.json``."""
    return pipeline_path.with_name(pipeline_path.stem + ".card.json")


def installed_versions(names=RECORDED) -> dict[str, str]:
    """Versions of the named distributions installed here."""
    return {name: metadata.version(name) for name in names}


def version_mismatches(card: dict) -> list[str]:
    """Describe each must-match library whose installed version differs from the card's."""
    recorded = card.get("versions", {})
    here = installed_versions(MUST_MATCH)
    return [
        f"{name} {recorded.get(name, '(not recorded)')} (installed: {here[name]})"
        for name in MUST_MATCH
        if recorded.get(name) != here[name]
    ]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no count


def _get(card: dict, path: str, within: str = "") -> Any:
    """The value at a dotted path, or raise CardError naming the first missing part in full."""
    value: Any = card
    for i, part in enumerate(path.split(".")):
        if not isinstance(value, dict) or part not in value:
            raise CardError(f"lacks {within}{'.'.join(path.split('.')[: i + 1])}")
        value = value[part]
    return value


class CardError(ValueError):
    """The card cannot describe a servable model; the message names the faulty entry."""


def check_structure(card: Any) -> None:
    """Check every entry the service reads, with its type; raise CardError on the first fault."""
    if not isinstance(card, dict):
        raise CardError("is not a JSON object")
    for path in ("model_version", "pipeline_sha256", "estimator"):
        if not isinstance(_get(card, path), str) or not _get(card, path):
            raise CardError(f"{path} must be a non-empty string")
    if not card["model_version"].endswith("-" + card["pipeline_sha256"][:8]):
        raise CardError(
            f"model_version {card['model_version']!r} does not end with the first "
            "8 characters of pipeline_sha256 (was the card edited by hand?)"
        )
    versions = _get(card, "versions")
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        raise CardError("versions must map each library to a version string")
    if not _whole(_get(card, "data.rows")) or _get(card, "data.rows") < 1:
        raise CardError("data.rows must be a positive whole number")
    if not _number(_get(card, "metrics.holdout.mae")):
        raise CardError("metrics.holdout.mae must be a number")
    _check_ranges(_get(card, "schema.training_ranges"))
    if card.get("interval") is not None:
        _check_interval(card["interval"])


def _check_ranges(ranges: Any) -> None:
    numeric = sorted(f.name for f in FIELDS if f.kind != CATEGORY)
    if not isinstance(ranges, dict) or sorted(ranges) != numeric:
        raise CardError("schema.training_ranges must give min and max for " + ", ".join(numeric))
    for name, span in ranges.items():
        if not (
            isinstance(span, dict)
            and _number(span.get("min"))
            and _number(span.get("max"))
            and span["min"] <= span["max"]
        ):
            raise CardError(f"schema.training_ranges.{name} must hold numbers min <= max")


def _check_interval(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise CardError("interval must be an object (or null for a model without one)")
    for key in (
        "level",
        "group_by",
        "floor",
        "scale",
        "offsets",
        "holdout.rows",
        "holdout.coverage",
    ):
        _get(spec, key, within="interval.")
    if not (_whole(spec["holdout"]["rows"]) and _number(spec["holdout"]["coverage"])):
        raise CardError("interval.holdout must give rows (a whole number) and coverage")
    if not (_number(spec["level"]) and 0 < spec["level"] < 1):
        raise CardError("interval.level must be a number between 0 and 1")
    if not _number(spec["floor"]) or spec["scale"] not in ("dollars", "log"):
        raise CardError("interval.floor must be a number and interval.scale dollars or log")
    group_by = spec["group_by"]  # null: one pair of offsets for everyone
    if group_by is not None and (group_by not in BY_NAME or BY_NAME[group_by].kind != CATEGORY):
        raise CardError(f"interval.group_by {group_by!r} is not a category field")
    groups = sorted(BY_NAME[group_by].choices) if group_by else [ALL]
    offsets = spec["offsets"]
    if not isinstance(offsets, dict) or sorted(offsets) != groups:
        raise CardError("interval.offsets must have one entry for each of " + ", ".join(groups))
    for key, offset in offsets.items():
        if not (
            isinstance(offset, dict)
            and _number(offset.get("lower"))
            and _number(offset.get("upper"))
            and offset["lower"] <= offset["upper"]
        ):
            raise CardError(f"interval.offsets.{key} must hold numbers lower <= upper")
