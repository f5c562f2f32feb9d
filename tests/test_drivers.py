"""What drives an estimate: the likely range, what-ifs and charts on the result page."""
import re

import pytest

import numpy as np

from insurance_charges.core import explain
from insurance_charges.core.estimates import estimate
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.web import charts, create_app


def explained(model, record):
    """What the form shows for ``record``: the core's estimate, then what drives it."""
    return explain.explain(model, estimate(model, record))


def cents(values):
    return np.round(values, 2).tolist()


def form_data(**changes):
    return {**{k: str(v) for k, v in EXAMPLE_RECORD.items()}, **changes}


class CountingModel:
    """The real model, counting how often it is asked to predict."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict(self, records):
        self.calls += 1
        return self.model.predict(records)


@pytest.fixture
def result_html(client):
    response = client.post("/", data=form_data())
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_result_shows_the_likely_range_in_hundreds(client, real_model, record, result_html):
    span = client.post("/api/v1/predict", json=record).get_json()["interval"]
    low, high = (f"${round(span[k], -2):,.0f}" for k in ("lower", "upper"))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", result_html))
    assert f"Likely between {low} and {high}: about 8 in 10 people" in text
    holdout = real_model.card["interval"]["holdout"]
    assert f"{holdout['coverage'] * 100:.0f}% were inside their range" in text


def test_what_ifs_change_one_fact_each(real_model, result_html):
    flipped = real_model.predict([{**EXAMPLE_RECORD, "smoker": "no"}])[0]
    assert re.search(rf"As a non-smoker: <strong class=\"amount\">\${flipped:,.0f}</strong>",
                     result_html)
    thinner = real_model.predict([{**EXAMPLE_RECORD, "bmi": 22.9}])[0]
    assert (f"With a BMI of 22.9 instead of 27.9: <strong class=\"amount\">${thinner:,.0f}"
            in result_html)
    older = real_model.predict([{**EXAMPLE_RECORD, "age": 29}])[0]
    assert f"At age 29 instead of 19: <strong class=\"amount\">${older:,.0f}" in result_html


def test_what_ifs_stay_inside_the_training_range(real_model):
    record = {**EXAMPLE_RECORD, "age": 60, "bmi": 18.0, "smoker": "no"}
    texts = [w.text for w in explained(real_model, record).whatifs]
    assert texts == ["as a smoker", "with a BMI of 23 instead of 18", "at age 50 instead of 60"]


def test_a_result_page_costs_two_predict_calls_the_estimate_then_one_batch(real_model):
    counting = CountingModel(real_model)
    client = create_app({"TESTING": True, "MODEL": counting}).test_client()
    assert client.post("/", data=form_data()).status_code == 200
    assert counting.calls == 2


def test_curves_pass_through_the_persons_own_estimate(real_model):
    why = explained(real_model, EXAMPLE_RECORD)
    assert why.estimate == cents(real_model.predict([EXAMPLE_RECORD]))[0]
    for curve in why.curves:
        own = curve.xs.index(EXAMPLE_RECORD[curve.field])
        assert curve.series["yes"][own] == why.estimate  # the example person smokes
        assert len(curve.xs) >= explain.CURVE_POINTS - 1 and list(curve.xs) == sorted(curve.xs)
        assert curve.series["no"] == cents(real_model.predict(
            [{**EXAMPLE_RECORD, curve.field: x, "smoker": "no"} for x in curve.xs]))


def test_curves_stretch_to_a_value_outside_the_training_range(real_model):
    why = explained(real_model, {**EXAMPLE_RECORD, "age": 90})
    age = next(c for c in why.curves if c.field == "age")
    assert age.xs[0] == 18 and age.xs[-1] == 90


@pytest.mark.parametrize("field, own, absent", [("bmi", 27.93, 27.9), ("bmi", 35.0, None),
                                                ("age", 40, None)])
def test_the_persons_own_value_is_charted_once_not_beside_its_rounded_twin(field, own, absent):
    xs = explain._grid(field, 15.96 if field == "bmi" else 18, 53.13 if field == "bmi" else 64, own)
    assert xs.count(own) == 1 and absent not in xs
    assert len(xs) == len(set(round(x, 1) for x in xs))  # no two points read the same


def test_charts_are_labelled_svg_with_a_text_alternative(result_html):
    svgs = re.findall(r"<svg .*?</svg>", result_html, re.S)
    assert len(svgs) == 2
    for svg, field in zip(svgs, ("bmi", "age")):
        assert (f'role="img" aria-labelledby="chart-{field}-title" '
                f'aria-describedby="chart-{field}-desc"') in svg
        assert re.search(rf'<title id="chart-{field}-title">How .+ changes the estimate</title>',
                         svg)
        assert re.search(rf'<desc id="chart-{field}-desc">.*As a smoker, from \$[\d,]+', svg)
        # Not colour alone: the lines differ in dash pattern and marker shape and are named.
        assert svg.count("stroke-dasharray") == 1 and "<circle" in svg and "<rect" in svg
        assert ">Smoker</text>" in svg and ">Non-smoker</text>" in svg and "You: $" in svg
    assert result_html.count('<table class="figures">') == 2
    assert "<th scope=\"row\">27.9 (you)</th>" in result_html


def test_result_page_needs_no_inline_style_or_script(result_html):
    # A Content-Security-Policy without 'unsafe-inline' must not break the page.
    assert not re.search(r"<style|\sstyle=|<script|\son[a-z]+=|javascript:", result_html, re.I)


@pytest.mark.parametrize("span, most, step", [(50000, 5, 10000), (37, 6, 10), (46, 6, 10),
                                              (21000, 5, 5000), (1.2, 5, 0.5)])
def test_chart_ticks_use_round_steps(span, most, step):
    assert charts._step(span, most) == pytest.approx(step)


def test_end_labels_are_nudged_apart_when_lines_end_close_together():
    assert charts._end_labels({"yes": 100.0, "no": 104.0}) == {"yes": 94.5, "no": 109.5}
    assert charts._end_labels({"yes": 20.0, "no": 200.0}) == {"yes": 20.0, "no": 200.0}
