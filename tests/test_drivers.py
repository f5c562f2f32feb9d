"""What drives an estimate: the likely range, what-ifs and charts on the result page."""

import re

import numpy as np
import pytest

from insurance_charges import drawing
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
    assert re.search(
        rf"As a non-smoker: <strong class=\"amount\">\${flipped:,.0f}</strong>", result_html
    )
    thinner = real_model.predict([{**EXAMPLE_RECORD, "bmi": 22.9}])[0]
    assert (
        f'With a BMI of 22.9 instead of 27.9: <strong class="amount">${thinner:,.0f}' in result_html
    )
    older = real_model.predict([{**EXAMPLE_RECORD, "age": 29}])[0]
    assert f'At age 29 instead of 19: <strong class="amount">${older:,.0f}' in result_html


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
        assert curve.series["no"] == cents(
            real_model.predict(
                [{**EXAMPLE_RECORD, curve.field: x, "smoker": "no"} for x in curve.xs]
            )
        )


def test_curves_stretch_to_a_value_outside_the_training_range(real_model):
    why = explained(real_model, {**EXAMPLE_RECORD, "age": 90})
    age = next(c for c in why.curves if c.field == "age")
    assert age.xs[0] == 18 and age.xs[-1] == 90


@pytest.mark.parametrize(
    "field, own, absent", [("bmi", 27.93, 27.9), ("bmi", 35.0, None), ("age", 40, None)]
)
def test_the_persons_own_value_is_charted_once_not_beside_its_rounded_twin(field, own, absent):
    xs = explain._grid(field, 15.96 if field == "bmi" else 18, 53.13 if field == "bmi" else 64, own)
    assert xs.count(own) == 1 and absent not in xs
    assert len(xs) == len(set(round(x, 1) for x in xs))  # no two points read the same


def test_charts_are_labelled_svg_with_a_text_alternative(result_html):
    svgs = re.findall(r"<svg .*?</svg>", result_html, re.S)
    assert len(svgs) == 2
    for svg, field in zip(svgs, ("bmi", "age"), strict=True):
        assert (
            f'role="img" aria-labelledby="chart-{field}-title" '
            f'aria-describedby="chart-{field}-desc"'
        ) in svg
        assert re.search(
            rf'<title id="chart-{field}-title">How .+ changes the estimate</title>', svg
        )
        assert re.search(rf'<desc id="chart-{field}-desc">.*As a smoker, from \$[\d,]+', svg)
        # Not colour alone: the lines differ in dash pattern and marker shape and are named.
        assert svg.count("stroke-dasharray") == 1 and "<circle" in svg and "<rect" in svg
        assert ">Smoker</text>" in svg and ">Non-smoker</text>" in svg and "You: $" in svg
    assert result_html.count('<table class="figures">') == 2
    assert '<th scope="row">27.9 (you)</th>' in result_html


def test_result_page_needs_no_inline_style_or_script(result_html):
    # A Content-Security-Policy without 'unsafe-inline' must not break the page.
    assert not re.search(r"<style|\sstyle=|<script|\son[a-z]+=|javascript:", result_html, re.I)


@pytest.mark.parametrize(
    "span, most, step",
    [(50000, 5, 10000), (37, 6, 10), (46, 6, 10), (21000, 5, 5000), (1.2, 5, 0.5)],
)
def test_chart_ticks_use_round_steps(span, most, step):
    assert drawing.round_step(span, most) == pytest.approx(step)


def test_end_labels_are_nudged_apart_when_lines_end_close_together():
    assert charts._end_labels({"yes": 100.0, "no": 104.0}) == {"yes": 94.5, "no": 109.5}
    assert charts._end_labels({"yes": 20.0, "no": 200.0}) == {"yes": 20.0, "no": 200.0}


RANGES = {
    "age": {"min": 18, "max": 64},
    "bmi": {"min": 15.96, "max": 53.13},
    "children": {"min": 0, "max": 5},
}
SPEC = {
    "level": 0.8,
    "group_by": None,
    "scale": "dollars",
    "floor": 0.0,
    "offsets": {"all": {"lower": -100.0, "upper": 300.0}},
}


class Linear:
    """A stand-in model: $100 a year of age, $10 a unit of BMI and $5,000 for smoking."""

    version, training_ranges = "linear-1", RANGES

    def __init__(self, likely_range=SPEC):
        self.likely_range = likely_range

    def predict(self, records):
        return [
            r["age"] * 100 + r["bmi"] * 10 + (5000 if r["smoker"] == "yes" else 0) for r in records
        ]


def linear(record):
    return round(
        record["age"] * 100 + record["bmi"] * 10 + (5000 if record["smoker"] == "yes" else 0), 2
    )


def test_each_what_if_gives_its_estimate_and_the_change_from_the_persons_own():
    why = explained(Linear(), EXAMPLE_RECORD)  # 19 years, BMI 27.9, smoker: $7,179
    assert why.estimate == 7179.0
    assert why.whatifs == [
        explain.WhatIf("as a non-smoker", 2179.0, -5000.0),
        explain.WhatIf("with a BMI of 22.9 instead of 27.9", 7129.0, -50.0),
        explain.WhatIf("at age 29 instead of 19", 8179.0, 1000.0),
    ]


@pytest.mark.parametrize(
    "changes, texts",
    [
        (
            {"bmi": 20.96, "age": 54},
            ["as a non-smoker", "with a BMI of 16 instead of 20.96", "at age 64 instead of 54"],
        ),
        (
            {"bmi": 20.95, "age": 55},
            ["as a non-smoker", "with a BMI of 25.9 instead of 20.95", "at age 45 instead of 55"],
        ),
        (
            {"bmi": 27.93, "smoker": "no"},
            ["as a smoker", "with a BMI of 22.9 instead of 27.93", "at age 29 instead of 19"],
        ),
    ],
)
def test_what_ifs_step_down_in_bmi_and_up_in_age_unless_that_leaves_the_training_range(
    changes, texts
):
    why = explained(Linear(), {**EXAMPLE_RECORD, **changes})
    assert [w.text for w in why.whatifs] == texts


def test_a_non_smokers_what_if_is_the_estimate_as_a_smoker():
    why = explained(Linear(), {**EXAMPLE_RECORD, "smoker": "no"})  # $2,179 as a non-smoker
    assert why.whatifs[0] == explain.WhatIf("as a smoker", 7179.0, 5000.0)


def test_curves_chart_bmi_then_age_for_the_person_as_smoker_and_non_smoker():
    why = explained(Linear(), EXAMPLE_RECORD)
    bmi, age = why.curves
    assert (bmi.field, bmi.label, bmi.you) == (
        "bmi",
        "Body-mass index (BMI)",
        (27.9, 7179.0, "yes"),
    )
    assert (age.field, age.label, age.you) == ("age", "Age", (19, 7179.0, "yes"))
    assert age.xs == (18, 19) + tuple(range(20, 65, 2))
    for curve in why.curves:
        assert list(curve.series) == ["yes", "no"]
        assert curve.series == {
            s: [linear({**EXAMPLE_RECORD, curve.field: x, "smoker": s}) for x in curve.xs]
            for s in ("yes", "no")
        }


def test_the_explanation_carries_the_likely_range_when_the_model_has_one():
    assert explained(Linear(), EXAMPLE_RECORD).interval == {
        "lower": 7079.0,
        "upper": 7479.0,
        "level": 0.8,
    }
    assert explained(Linear(None), EXAMPLE_RECORD).interval is None


STEPS_OF_TWO = tuple(range(18, 65, 2))
WHOLE_BMIS = tuple(float(x) for x in range(10, 34))


@pytest.mark.parametrize(
    "field, low, high, own, xs",
    [
        ("age", 18, 64, 20, STEPS_OF_TWO),
        ("age", 18, 64, 19, STEPS_OF_TWO[:1] + (19,) + STEPS_OF_TWO[1:]),
        ("age", 41, 64, 18, STEPS_OF_TWO),  # stretched down to the person
        ("age", 18, 41, 64, STEPS_OF_TWO),  # and up
        ("bmi", 10.0, 33.0, 12.34, WHOLE_BMIS[:3] + (12.34,) + WHOLE_BMIS[3:]),
        ("bmi", 10.0, 33.0, 12.04, WHOLE_BMIS[:2] + (12.04,) + WHOLE_BMIS[3:]),  # not beside 12.0
    ],
)
def test_a_curves_points_spread_evenly_over_the_range_and_the_persons_own_value(
    field, low, high, own, xs
):
    assert explain._grid(field, low, high, own) == xs


def test_curve_points_are_read_as_whole_years_of_age_and_tenths_of_bmi():
    ages = explain._grid("age", 18, 64, 90)  # steps of 72 / 23 years, rounded
    assert ages == (
        18,
        21,
        24,
        27,
        31,
        34,
        37,
        40,
        43,
        46,
        49,
        52,
        56,
        59,
        62,
        65,
        68,
        71,
        74,
        77,
        81,
        84,
        87,
        90,
    )
    assert {type(x) for x in ages} == {int}
    bmis = explain._grid("bmi", 15.96, 53.13, 30.1)
    assert bmis == (
        16.0,
        17.6,
        19.2,
        20.8,
        22.4,
        24.0,
        25.7,
        27.3,
        28.9,
        30.1,
        30.5,
        32.1,
        33.7,
        35.4,
        37.0,
        38.6,
        40.2,
        41.8,
        43.4,
        45.0,
        46.7,
        48.3,
        49.9,
        51.5,
        53.1,
    )
    assert {type(x) for x in bmis} == {float}
