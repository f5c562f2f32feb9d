"""The web form: six fields, a readable estimate, every problem shown beside its field."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from .schema import FIELDS, parse_form, training_range_warnings

bp = Blueprint("views", __name__)


def _page(values: dict, errors: dict, result: dict | None = None, status: int = 200):
    model = current_app.extensions["insurance_model"]
    return render_template("index.html", fields=FIELDS, values=values, errors=errors,
                           result=result, card=model.card), status


@bp.get("/")
def form():
    """The empty form."""
    return _page(values={}, errors={})


@bp.post("/")
def estimate():
    """Validate the form and show the estimate, or the problems, with every value kept."""
    values = {f.name: request.form.get(f.name, "") for f in FIELDS}
    record, errors = parse_form(request.form)
    if errors:
        return _page(values, errors, status=422)
    model = current_app.extensions["insurance_model"]
    charges = model.predict([record])[0]
    notes = [w.message for w in training_range_warnings(record, model.training_ranges)]
    return _page(values, {}, result={"amount": money(charges), "warnings": notes,
                                        "record": record})


@bp.app_template_filter("money")
def money(value: float) -> str:
    """Format dollars with thousands separators and no cents."""
    return f"${value:,.0f}"
