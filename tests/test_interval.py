"""The likely range: split-conformal offsets per group, served by the API beside each estimate."""

import dataclasses
import math

import pytest
from jsonschema import Draft202012Validator

from insurance_charges.core import interval
from insurance_charges.training import calibrate, conformal
from insurance_charges.web import create_app


def test_conformal_quantile_takes_the_finite_sample_rank():
    values = list(range(1, 11))  # n = 10: rank ceil(11 * 0.8) = 9
    assert conformal.conformal_quantile(values, 0.8) == 9
    assert conformal.conformal_quantile(values, 0.95) == 10  # rank 11 is capped at n


def test_each_group_gets_its_own_lopsided_offsets():
    # Group "a" errs mostly upward, group "b" evenly and ten times wider.
    residuals = {"a": [-1, 0, 0, 1, 1, 2, 3, 5, 8, 20], "b": list(range(-50, 51, 10))}
    truths = [r for g in residuals for r in residuals[g]]
    groups = [g for g in residuals for _ in residuals[g]]
    spec = conformal.fit(truths, [0.0] * len(truths), groups, group_by="smoker")
    assert spec["offsets"]["a"] == {"lower": -1, "upper": 20, "n": 10}
    assert spec["offsets"]["b"] == {"lower": -50, "upper": 50, "n": 11}
    constant = conformal.fit(truths, [0.0] * len(truths), groups, symmetric=True)
    assert list(constant["offsets"]) == [interval.ALL]


def test_bounds_add_the_group_offsets_and_stop_at_the_floor():
    spec = {
        "level": 0.8,
        "group_by": "smoker",
        "scale": "dollars",
        "floor": 1000.0,
        "offsets": {"yes": {"lower": -500, "upper": 900}, "no": {"lower": -3000, "upper": 10}},
    }
    records = [{"smoker": "yes"}, {"smoker": "no"}, {"smoker": "no"}]
    lower, upper = interval.bounds(spec, records, [20000.0, 2500.0, 500.0])
    assert lower.tolist() == [19500.0, 1000.0, 1000.0]
    # Both ends stop at the floor: 500 + 10 would put the upper bound below any bill seen.
    assert upper.tolist() == [20900.0, 2510.0, 1000.0]


def test_log_scale_offsets_are_ratios_of_the_estimate():
    spec = {
        "level": 0.8,
        "group_by": None,
        "scale": "log",
        "floor": 0.0,
        "offsets": {interval.ALL: {"lower": math.log(0.5), "upper": math.log(2.0)}},
    }
    lower, upper = interval.bounds(spec, [{}, {}], [100.0, 3000.0])
    assert lower.tolist() == pytest.approx([50.0, 1500.0])
    assert upper.tolist() == pytest.approx([200.0, 6000.0])


def test_coverage_counts_truths_inside_their_range_overall_and_per_group():
    spec = conformal.fit([0, 0], [0, 0], ["yes", "no"], floor=-10)
    spec["offsets"][interval.ALL].update(lower=-1, upper=1)
    got = conformal.coverage(
        spec, [{"smoker": "yes"}, {"smoker": "no"}], [0.0, 0.0], [0.5, 3.0], by="smoker"
    )
    assert got == {
        "coverage": 0.5,
        "by_group": {"smoker=no": 0.0, "smoker=yes": 1.0},
        "rows": 2,
        "mean_width": 2.0,
    }


def test_cross_fitting_checks_each_row_against_a_range_set_without_it():
    # Residuals 1..10 in each group; with ten folds each row's range comes from the other nine.
    records = [{"smoker": g} for g in ("yes", "no") for _ in range(10)]
    truths = [float(r) for _ in ("yes", "no") for r in range(1, 11)]
    predictions = [0.0] * len(truths)
    in_sample = calibrate._fit(records, truths, predictions, -100.0, 0.8)
    assert conformal.coverage(in_sample, records, predictions, truths, "smoker")["coverage"] == 1
    # The largest residual now meets an upper offset of 9 and the smallest a lower one of 2.
    got = calibrate.cross_fitted(records, truths, predictions, -100.0, 0.8, folds=10, repeats=3)
    assert got["coverage"] == 0.8
    assert got["by_group"] == {"smoker=no": 0.8, "smoker=yes": 0.8}
    assert (got["rows"], got["folds"], got["repeats"]) == (20, 10, 3)


def interval_schema(client):
    doc = client.get("/openapi.json").get_json()
    return Draft202012Validator(
        {"$ref": "#/components/schemas/Interval", "components": doc["components"]}
    )


def test_api_returns_the_likely_range_around_the_estimate(client, record, real_model):
    body = client.post("/api/v1/predict", json=record).get_json()
    span = body["interval"]
    interval_schema(client).validate(span)
    assert span["level"] == 0.8
    assert span["lower"] < body["prediction"] < span["upper"]
    offsets = real_model.card["interval"]["offsets"][record["smoker"]]
    assert span["lower"] == pytest.approx(body["prediction"] + offsets["lower"], abs=0.01)
    assert span["upper"] == pytest.approx(body["prediction"] + offsets["upper"], abs=0.01)


def test_batch_gets_a_parallel_list_of_ranges(client, record):
    batch = [record, {**record, "smoker": "no"}, {**record, "age": 50}]
    body = client.post("/api/v1/predict", json=batch).get_json()
    assert len(body["intervals"]) == len(body["predictions"]) == 3
    validator = interval_schema(client)
    for estimate, span in zip(body["predictions"], body["intervals"], strict=True):
        validator.validate(span)
        assert span["lower"] < estimate < span["upper"]
    widths = [s["upper"] - s["lower"] for s in body["intervals"]]
    assert widths[0] != widths[1]  # smokers and non-smokers have their own offsets


def test_legacy_endpoint_still_answers_with_the_bare_number(client, record):
    assert isinstance(client.post("/predict_api", json=record).get_json(), float)


def test_a_model_whose_card_has_no_interval_answers_without_one(real_model, record):
    card = {k: v for k, v in real_model.card.items() if k != "interval"}
    app = create_app({"TESTING": True, "MODEL": dataclasses.replace(real_model, card=card)})
    client = app.test_client()
    assert list(client.post("/api/v1/predict", json=record).get_json()) == [
        "prediction",
        "model_version",
        "warnings",
        "inference_id",
    ]
    assert "intervals" not in client.post("/api/v1/predict", json=[record]).get_json()
    html = client.post("/", data={k: str(v) for k, v in record.items()}).get_data(as_text=True)
    assert "Estimated yearly charges" in html and "Likely between" not in html


def test_bounds_of_whole_dollar_estimates_are_exact_dollars_and_cents():
    spec = {
        "level": 0.8,
        "group_by": None,
        "scale": "dollars",
        "floor": 0.0,
        "offsets": {interval.ALL: {"lower": -0.5, "upper": 0.25}},
    }
    lower, upper = interval.bounds(spec, [{}, {}], [100, 3000])
    assert lower.tolist() == [99.5, 2999.5] and upper.tolist() == [100.25, 3000.25]


def test_bounds_split_by_a_category_use_each_records_own_group():
    spec = {
        "level": 0.8,
        "group_by": "region",
        "scale": "log",
        "floor": 0.0,
        "offsets": {
            r: {"lower": 0.0, "upper": math.log(i + 2)}
            for i, r in enumerate(("northeast", "northwest", "southeast", "southwest"))
        },
    }
    records = [{"region": "southwest"}, {"region": "northeast"}, {"region": "southeast"}]
    lower, upper = interval.bounds(spec, records, [10.0, 10.0, 10.0])
    assert lower.tolist() == [10.0, 10.0, 10.0]
    assert upper.tolist() == pytest.approx([50.0, 20.0, 40.0])
