"""The new data's inputs against the champion's training data, before retraining.

``data_checks --reference-card CARD`` compares the six inputs of the rows it accepted with the
``distribution`` section of a model card (the champion's, fetched from the registry) using the
service's own drift functions (``monitoring/drift.py``: the same bins, PSI and thresholds as
``GET /api/v1/drift``) and writes ``drift.json``. Drift never refuses the data: a shifted
population is the reason to retrain, so it is reported, not enforced. The estimates' own
distribution needs a model to estimate the rows, so it is left to the service.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..core.schema import BY_NAME, FIELD_NAMES, typed_from_text, validate_record
from ..errors import UsageError
from ..monitoring.drift import DRIFT, MIN_RECORDS, WATCH, Reference, assess, read_reference, worst

DRIFT_REPORT = "drift.json"
NO_DISTRIBUTION = "no training distribution in the champion's card"
NOT_COMPARED = "not_compared"
ESTIMATE_SKIPPED = (
    "not compared here: the estimates need a model to make them; the service "
    "compares its own (GET /api/v1/drift)"
)


@dataclass(frozen=True)
class Baseline:
    """What the new data is compared with: a card's training distribution, or why nothing."""

    version: str | None = None
    reference: Reference | None = None
    note: str | None = None


def read_card(path: Path) -> Baseline:
    """The card's training distribution; an older card without one gives a Baseline saying so."""
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(
            f"--reference-card {path}: cannot read it as a model card ({exc})"
        ) from None
    if not isinstance(card, dict):
        raise UsageError(f"--reference-card {path}: a model card is a JSON object")
    version = card.get("model_version")
    if card.get("distribution") is None:
        return Baseline(version, note=NO_DISTRIBUTION + (f" ({version})" if version else ""))
    try:
        return Baseline(version, read_reference(card["distribution"]))
    except ValueError as exc:
        raise UsageError(f"--reference-card {path}: {exc}") from None


def columns_of(path: Path) -> dict[str, list]:
    """Each input's values in the accepted rows, typed as the service receives them."""
    columns: dict[str, list] = {name: [] for name in FIELD_NAMES}
    with open(path, newline="", encoding="utf-8-sig") as source:
        for row in csv.DictReader(source):
            record, errors = validate_record(
                {name: typed_from_text(BY_NAME[name], row[name]) for name in FIELD_NAMES}
            )
            if record is None:  # not data_checks' own output: say so rather than fail on None
                raise ValueError(f"{path}: a row is not a valid record ({errors[0].message})")
            for name in FIELD_NAMES:  # accepted rows are valid: validate only canonicalises
                columns[name].append(record[name])
    return columns


def compare(baseline: Baseline, accepted: Path) -> dict:
    """The drift report: per input its PSI, status and bins, and the worst status."""
    report = {
        "reference_version": baseline.version,
        "thresholds": {"watch": WATCH, "drift": DRIFT, "min_records": MIN_RECORDS},
        "estimate": ESTIMATE_SKIPPED,
    }
    if baseline.reference is None:
        return {**report, "status": NOT_COMPARED, "note": baseline.note, "fields": {}}
    columns = columns_of(accepted)
    fields = {
        name: assess(bins, bins.count(columns[name]))
        for name, bins in baseline.reference.fields.items()
    }
    return {
        **report,
        "status": worst([f["status"] for f in fields.values()]),
        "records": len(columns[FIELD_NAMES[0]]),
        "training_rows": baseline.reference.rows,
        "fields": fields,
    }


def summary(report: dict) -> dict:
    """The report without its bins: what the check's own report and the task's XCom carry."""
    short = {k: v for k, v in report.items() if k not in ("fields", "thresholds", "estimate")}
    return {
        **short,
        "fields": {
            name: {"psi": f["psi"], "status": f["status"]} for name, f in report["fields"].items()
        },
    }


def log_report(log: logging.Logger, report: dict) -> None:
    """One line per input, then the worst status; watch and drift are warnings."""
    if report["status"] == NOT_COMPARED:
        log.warning(
            "input drift not compared: %s",
            report["note"],
            extra={"fields": {"step": "drift", "status": NOT_COMPARED, "note": report["note"]}},
        )
        return
    for name, field in report["fields"].items():
        psi = "n/a" if field["psi"] is None else f"{field['psi']:.4f}"
        level = logging.INFO if field["status"] in ("ok", "too_few_records") else logging.WARNING
        log.log(
            level,
            "drift %s: PSI %s, %s (%d records)",
            name,
            psi,
            field["status"],
            field["records"],
            extra={
                "fields": {
                    "step": "drift",
                    "field": name,
                    "psi": field["psi"],
                    "status": field["status"],
                }
            },
        )
    log.info(
        "input drift against %s's training data (%d rows): %s over %d records; not a "
        "reason to refuse the data",
        report["reference_version"],
        report["training_rows"],
        report["status"],
        report["records"],
        extra={
            "fields": {
                "step": "drift",
                "status": report["status"],
                "reference_version": report["reference_version"],
            }
        },
    )
