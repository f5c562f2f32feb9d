"""The web form: six fields, a readable estimate, every problem shown beside its field."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from . import charts, explain
from .forms import parse_form
from .schema import FIELDS, training_range_warnings

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
    unexpected = sorted(set(request.form) - set(values))
    if unexpected:  # a browser never sends these: the post was crafted or the page is stale
        errors["form"] = "The form held unexpected fields (" + ", ".join(unexpected)[:80] \
            + "); reload the page and try again."
    if errors:
        return _page(values, errors, status=422)
    model = current_app.extensions["insurance_model"]
    why = explain.explain(model, record)  # the estimate and what drives it, one predict call
    notes = [w.message for w in training_range_warnings(record, model.training_ranges)]
    return _page(values, {}, result={"amount": money(why.estimate), "warnings": notes,
                                        "record": record, "why": why,
                                        "charts": charts.figures(why.curves)})


@bp.app_template_filter("money")
def money(value: float) -> str:
    """Format dollars with thousands separators and no cents."""
    return f"${value:,.0f}"


@bp.app_template_filter("about")
def about(value: float) -> str:
    """Dollars to the nearest hundred: a range is not precise to the dollar."""
    return f"${round(value, -2):,.0f}"
