"""GET /model: the model card as a page for people, with live drift."""

from __future__ import annotations

import logging
from itertools import pairwise

from flask import Blueprint, current_app, render_template
from flask.blueprints import BlueprintSetupState

from ..core.interval import LEVEL
from ..core.schema import BY_NAME, CATEGORY, FIELDS, INTEGER
from ..monitoring import drift
from ..outcomes.latest import Reader, Unavailable
from . import model_charts, served_model
from .formatting import money
from .observe import watch_of

log = logging.getLogger(__name__)
bp = Blueprint("model", __name__)
_OUTCOMES = "insurance_charges.outcomes_report"  # the app's Reader; None: none configured
STATUS_WORDS = {
    "ok": "OK",
    "watch": "Watch",
    "drift": "Drift",
    drift.TOO_FEW: "Too few records yet",
}


def _whole_names(edges: tuple, low: float) -> list[str]:
    """Whole-number bins as people read them: "18–19", "20–24", ..., "60 or more"."""
    names, start = [], low
    for edge in edges:
        names.append(f"{start}" if start == edge else f"{start}–{edge}")
        start = edge + 1
    return names + [f"{start} or more"]


def bin_names(bins: drift.Bins) -> list[str]:
    """Each bin's name for the page."""
    if bins.kind == CATEGORY:
        return [c.capitalize() for c in bins.categories]
    field = BY_NAME.get(bins.name)
    if field is not None and field.kind == INTEGER:
        if field.minimum is None:  # the schema gives every whole-number field its limits
            raise ValueError(f"whole-number field {field.name} has no minimum")
        return _whole_names(bins.edges, field.minimum)
    shown = money if bins.name == drift.ESTIMATE else (lambda v: f"{v:g}")
    e = [shown(edge) for edge in bins.edges]
    return [f"{e[0]} or less", *(f"{a}–{b}" for a, b in pairwise(e)), f"over {e[-1]}"]


def label_of(name: str) -> str:
    """A field's label, or "Estimate" for the estimates."""
    return BY_NAME[name].label if name in BY_NAME else "Estimate"


def drivers(card: dict) -> list[dict]:
    """What drives estimates overall, largest average change first, with charts for numbers."""
    section = card.get("drivers") or {}
    out = []
    for name in section.get("order", []):
        item, field = section["fields"][name], BY_NAME[name]
        entry = {
            "name": name,
            "label": field.label,
            "item": item,
            "rows": list(zip(item["values"], item["mean_estimate"], strict=True)),
        }
        if field.kind != CATEGORY and "by_smoker" in item:
            entry["svg"] = model_charts.driver_chart(
                name, field.label, item["values"], item["by_smoker"], f"driver-{name}"
            )
            entry["title"] = model_charts.driver_title(
                model_charts.Curve(name, field.label, (), {}, None)
            )
        out.append(entry)
    return out


def training_data(reference: drift.Reference | None, card: dict) -> list[dict]:
    """Each input in brief: its training range, or the share of each category."""
    ranges = card["schema"]["training_ranges"]
    out = []
    for f in FIELDS:
        if f.kind == CATEGORY:
            shares = reference.fields[f.name].shares if reference else None
            text = (
                ", ".join(f"{c} {s:.0%}" for c, s in zip(f.choices, shares, strict=True))
                if shares
                else ", ".join(f.choices)
            )
        else:
            text = f"{ranges[f.name]['min']:g} to {ranges[f.name]['max']:g}"
        out.append({"label": f.label, "text": text})
    return out


def live_drift(watch) -> dict | None:
    """The drift document with page names and charts (for periods with enough records)."""
    doc = watch.drift() if watch is not None else None
    if doc is None:
        return None
    reference = watch.reference.all_bins()
    charts_ = []
    part = doc["since_start"]
    if part["records"] >= drift.MIN_RECORDS:
        for name, item in {**part["fields"], drift.ESTIMATE: part["estimate"]}.items():
            rows = [
                {"name": n, "training": b["training"], "served": b["served"]}
                for n, b in zip(bin_names(reference[name]), item["bins"], strict=True)
            ]
            charts_.append(
                {
                    "label": label_of(name),
                    "rows": rows,
                    "status": item["status"],
                    "svg": model_charts.share_chart(
                        label_of(name), rows, f"drift-{name}", "served since start"
                    ),
                }
            )
    return {"doc": doc, "charts": charts_, "labels": {n: label_of(n) for n in reference}}


@bp.record_once
def _outcomes_reader(state: BlueprintSetupState) -> None:
    """One reader of OUTCOMES_REPORT_URI's report per app (it keeps its own S3 client)."""
    location = state.app.config.get("OUTCOMES_REPORT")
    state.app.extensions[_OUTCOMES] = None if location is None else Reader(location)


def latest_outcomes() -> dict | None:
    """The latest outcome report, or why it is unavailable; None when none is configured."""
    reader = current_app.extensions.get(_OUTCOMES)
    if reader is None:
        return None
    try:
        return {"report": reader.read(), "unavailable": None}
    except Unavailable as exc:
        log.warning("outcome report unavailable: %s", exc)
        return {"report": None, "unavailable": exc.brief}
    except Exception:  # noqa: BLE001 - the rest of the page must render whatever the report is
        log.exception("outcome report unavailable: reading %s failed", reader.location)
        return {"report": None, "unavailable": "it could not be read just now"}


@bp.get("/model")
def model_page():
    """The model card as a page: what, how trained, how good, what drives it, drift."""
    model = served_model()
    watch = watch_of()
    card = model.card
    return render_template(
        "model.html",
        card=card,
        drivers=drivers(card),
        data=training_data(watch.reference if watch else None, card),
        drift=live_drift(watch),
        outcomes=latest_outcomes(),
        level=card["interval"]["level"] if card.get("interval") else LEVEL,
        words=STATUS_WORDS,
        min_records=drift.MIN_RECORDS,
        thresholds=(drift.WATCH, drift.DRIFT),
    )
