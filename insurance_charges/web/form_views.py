"""The web form: six fields, a readable estimate, every problem shown beside its field."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from ..core.captures import inference_ids
from ..core.estimates import InvalidRecords, estimate
from ..core.explain import explain
from ..core.schema import FIELDS
from . import charts, served_model
from .capturing import capture_estimates
from .form_parsing import messages, typed_values
from .formatting import about, money
from .observe import record_estimates

bp = Blueprint("form", __name__)
bp.add_app_template_filter(money, "money")
bp.add_app_template_filter(about, "about")


def model_facts() -> dict:
    """What the page says about the served model (the card's structure is checked at load)."""
    card = served_model().card
    likely = card.get("interval") or {}
    return {
        "version": card["model_version"],
        "rows": card["data"]["rows"],
        "holdout_mae": card["metrics"]["holdout"]["mae"],
        "interval_rows": likely.get("holdout", {}).get("rows"),
        "interval_coverage": likely.get("holdout", {}).get("coverage"),
    }


def _page(values: dict, errors: dict, result: dict | None = None, status: int = 200):
    return render_template(
        "index.html",
        fields=FIELDS,
        values=values,
        errors=errors,
        result=result,
        facts=model_facts(),
    ), status


@bp.get("/")
def empty_form():
    """The empty form."""
    return _page(values={}, errors={})


@bp.post("/")
def submit():
    """Validate the form and show the estimate, or the problems, with every value kept."""
    if request.files:  # a browser sends this form as text fields; a file part was crafted
        abort(415, "The form takes typed values only; it does not accept files.")
    values = {f.name: request.form.get(f.name, "") for f in FIELDS}
    try:
        person = estimate(served_model(), typed_values(request.form))
    except InvalidRecords as exc:
        return _page(values, messages(exc.errors, request.form), status=422)
    record_estimates(person)
    capture_estimates(person)
    why = explain(served_model(), person)  # what-ifs and curves: one more batch call
    return _page(
        values,
        {},
        result={
            "amount": money(why.estimate),
            "warnings": [w.message for w in person.warnings],
            "record": person.records[0],
            "why": why,
            "inference_id": inference_ids(g.request_id, 1, False)[0],
            "charts": charts.figures(why.curves),
        },
    )
