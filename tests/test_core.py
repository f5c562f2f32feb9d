"""The estimator core: parsed JSON in, estimates, likely ranges and warnings out, no Flask."""

import base64
import hashlib
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from insurance_charges.core import model_card, model_signing
from insurance_charges.core.estimates import (
    Estimates,
    InvalidRecords,
    TooManyRecords,
    estimate,
    estimate_valid,
    self_check,
)
from insurance_charges.core.model_signing import signature_path
from insurance_charges.core.schema import EXAMPLE_RECORD, FieldError
from insurance_charges.core.validation import (
    ValidRecords,
    alone,
    column_of,
    columns_of,
    how_many,
    in_batch,
    validate_each,
    validate_records,
)
from insurance_charges.paths import DEFAULT_MODEL_PATH
from insurance_charges.serving import fastpath
from insurance_charges.serving.model import FIX, Model, ModelLoadError, load_model, read_card

from .conftest import ROOT, sign_with, vouch_for

SPEC = {
    "level": 0.8,
    "group_by": "smoker",
    "scale": "dollars",
    "floor": 1000.0,
    "offsets": {
        "yes": {"lower": -100.004, "upper": 200.004},
        "no": {"lower": -50.0, "upper": 25.0},
    },
}
RANGES = {
    "age": {"min": 18, "max": 64},
    "bmi": {"min": 15.96, "max": 53.13},
    "children": {"min": 0, "max": 5},
}


class Fixed:
    """A stand-in model: each record's estimate is its age × 100.0049 dollars."""

    version, training_ranges, likely_range = "fixed-1", RANGES, SPEC

    def __init__(self, likely_range=SPEC):
        self.likely_range = likely_range

    def predict(self, records):
        return [r["age"] * 100.0049 for r in records]


def person(**changes):
    return {**EXAMPLE_RECORD, **changes}


def test_one_record_gets_one_estimate_its_range_and_no_warnings():
    got = estimate(Fixed(), person(age=20))
    assert isinstance(got, Estimates) and got.batch is False
    assert got.records == [person(age=20)] and got.model_version == "fixed-1"
    # Rounded once, to the cent, after adding the offsets to the unrounded estimate.
    assert got.amounts.tolist() == [2000.1] and got.lower.tolist() == [1900.09]
    assert got.upper.tolist() == [2200.1] and got.level == 0.8 and got.warnings == []
    assert got.to_json() == {
        "prediction": 2000.1,
        "model_version": "fixed-1",
        "warnings": [],
        "interval": {"lower": 1900.09, "upper": 2200.1, "level": 0.8},
    }


def test_a_batch_keeps_input_order_and_gives_each_record_its_groups_range():
    got = estimate(Fixed(), [person(age=30, smoker="no"), person(age=20)])
    assert got.batch is True
    assert got.to_json() == {
        "predictions": [3000.15, 2000.1],
        "model_version": "fixed-1",
        "warnings": [],
        "intervals": [
            {"lower": 2950.15, "upper": 3025.15, "level": 0.8},
            {"lower": 1900.09, "upper": 2200.1, "level": 0.8},
        ],
    }


def test_the_range_never_goes_below_the_floor():
    got = estimate(Fixed(), person(age=18, smoker="no"))  # 1800.09 - 50 is above 1000
    assert got.lower.tolist() == [1750.09]
    low = estimate(Fixed({**SPEC, "floor": 1800.0}), person(age=18, smoker="no"))
    assert low.lower.tolist() == [1800.0] and low.upper.tolist() == [1825.09]


def test_without_a_calibrated_range_the_answer_has_none():
    got = estimate(Fixed(None), [person()])
    assert got.lower is None and got.upper is None and got.level is None
    assert list(got.to_json()) == ["predictions", "model_version", "warnings"]
    assert list(estimate(Fixed(None), person()).to_json()) == [
        "prediction",
        "model_version",
        "warnings",
    ]


def test_values_outside_training_are_served_with_a_pointer_to_each():
    one = estimate(Fixed(), person(age=70))
    assert [w.as_dict()["pointer"] for w in one.warnings] == ["/age"]
    batch = estimate(Fixed(), [person(), person(age=70, children=6)])
    assert [w.pointer for w in batch.warnings] == ["/1/age", "/1/children"]
    assert batch.to_json()["warnings"][0]["message"].startswith("age 70 is outside the range")


def test_invalid_values_are_refused_with_a_pointer_each_and_nothing_is_predicted():
    with pytest.raises(InvalidRecords) as raised:
        estimate(Fixed(), [person(), person(age="19", smoker="maybe"), 7])
    assert [e.pointer for e in raised.value.errors] == ["/1/age", "/1/smoker", "/2"]
    assert raised.value.detail == "3 invalid value(s); see errors"
    with pytest.raises(InvalidRecords) as single:
        estimate(Fixed(), person(bmi=None))
    assert [e.pointer for e in single.value.errors] == ["/bmi"]


def test_an_empty_batch_is_invalid_and_an_oversized_one_too_many():
    with pytest.raises(InvalidRecords) as empty:
        estimate(Fixed(), [], max_batch=3)
    assert empty.value.detail == "a batch holds 1 to 3 records; got none"
    assert [e.as_dict() for e in empty.value.errors] == [
        {"pointer": "", "message": "the array is empty"}
    ]
    with pytest.raises(TooManyRecords) as many:
        estimate(Fixed(), [person()] * 4, max_batch=3)
    assert (many.value.limit, many.value.got) == (3, 4)
    assert str(many.value) == "a batch holds at most 3 records; got 4"
    assert len(estimate(Fixed(), [person()] * 3, max_batch=3).amounts) == 3


def test_valid_records_can_be_estimated_without_validating_them_again():
    got = estimate_valid(Fixed(), [person(age=20), person(age=30)])
    assert got.batch is True and got.amounts.tolist() == [2000.1, 3000.15]


def test_estimating_reuses_validated_records_and_builds_each_column_once():
    valid = ValidRecords([person(age=20), person(age=30, smoker="no")])
    got = estimate_valid(Fixed(), valid)
    assert got.records is valid
    assert column_of(valid, "smoker") is valid.column("smoker")
    assert columns_of(valid)["age"] is valid.column("age")
    plain = estimate_valid(Fixed(), [person(age=20)])
    assert isinstance(plain.records, ValidRecords) and plain.records == [person(age=20)]


def test_a_column_holds_floats_for_numbers_and_the_values_themselves_for_categories():
    columns = columns_of([person(age=20, bmi=30), person(age=31, smoker="no")])
    assert list(columns) == ["age", "sex", "bmi", "children", "smoker", "region"]
    assert [(c.dtype, c.tolist()) for c in columns.values()] == [
        (np.float64, [20.0, 31.0]),
        (object, ["female", "female"]),
        (np.float64, [30.0, 27.9]),
        (np.float64, [0.0, 0.0]),
        (object, ["yes", "no"]),
        (object, ["southwest", "southwest"]),
    ]


def test_a_category_is_also_held_as_its_positions_in_the_schemas_choices():
    records = [person(region="northeast", smoker="no"), person(region="southwest")]
    checked, _ = validate_records(records * 4, in_batch)  # 8 records: the column-at-a-time path
    assert checked.codes("region").tolist() == [0, 3] * 4
    assert checked.codes("smoker").tolist() == [1, 0] * 4
    assert checked.column("region").tolist() == ["northeast", "southwest"] * 4
    plain = ValidRecords(records)  # codes built on demand, once
    assert plain.codes("sex").tolist() == [0, 0] and plain.codes("sex") is plain.codes("sex")
    from_column = ValidRecords(
        [None, None], {"region": np.array(["southeast", "northwest"], dtype=object)}
    )
    assert from_column.codes("region").tolist() == [2, 1]  # records made on demand not read


@pytest.mark.parametrize("value", ["Northeast", 1, None, ["northeast"], True])
def test_a_value_that_is_not_a_choice_has_no_code(value):
    with pytest.raises((KeyError, TypeError)):
        ValidRecords([person(region=value)]).codes("region")


def test_valid_records_estimated_directly_are_located_as_in_a_batch():
    got = estimate_valid(Fixed(), [person(), person(age=70)])
    assert [w.pointer for w in got.warnings] == ["/1/age"]
    lone = estimate_valid(Fixed(), [person(age=70)], batch=False, locate=alone)
    assert lone.batch is False and [w.pointer for w in lone.warnings] == ["/age"]


def test_whole_dollar_predictions_are_answered_as_numbers_with_cents():
    model = Fixed(None)
    model.predict = lambda records: [2000] * len(records)
    got = estimate(model, [person(), person()])
    assert got.amounts.dtype == np.float64
    assert [type(v) for v in got.to_json()["predictions"]] == [float, float]


def test_the_committed_model_passes_the_start_up_check(real_model):
    assert self_check(real_model) is None


@pytest.mark.parametrize(
    "predict, problem",
    [
        (lambda records: [float("nan")], "the estimate is nan, not a positive number of dollars"),
        (lambda records: [-5.0], "the estimate is -5.0, not a positive number of dollars"),
        (lambda records: [0.0], "the estimate is 0.0, not a positive number of dollars"),
        (lambda records: [float("inf")], "the estimate is inf, not a positive number of dollars"),
        (lambda records: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_the_start_up_check_says_what_is_wrong(predict, problem):
    model = Fixed()
    model.predict = predict
    assert self_check(model) == problem


def test_the_start_up_check_refuses_a_range_whose_bounds_are_reversed():
    reversed_spec = {
        **SPEC,
        "offsets": {"yes": {"lower": 10.0, "upper": -10.0}, "no": {"lower": 0.0, "upper": 0.0}},
    }
    assert self_check(Fixed(reversed_spec)) == (
        "its likely range has a lower bound above the upper one"
    )


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_core_imports_no_web_framework():
    code = (
        "import sys; import insurance_charges.core.estimates, insurance_charges.core.explain,"
        " insurance_charges.serving.model; assert 'flask' not in sys.modules, 'flask'; "
        "assert 'werkzeug' not in sys.modules, 'werkzeug'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_amounts_are_numpy_arrays_for_the_whole_batch():
    got = estimate(Fixed(), [person()] * 5)
    assert isinstance(got.amounts, np.ndarray) and got.amounts.shape == (5,)


# --- Refusals carry their numbers --------------------------------------------------------------


def test_a_refusal_counts_every_problem_and_says_so_unless_told_otherwise():
    errors = [FieldError("/age", "bad"), FieldError("/bmi", "bad")]
    counted = InvalidRecords(errors)
    assert (counted.errors, counted.total, counted.complete, counted.detail, str(counted)) == (
        errors,
        2,
        True,
        "2 invalid value(s); see errors",
        "2 invalid value(s); see errors",
    )
    capped = InvalidRecords(errors, total=7)
    assert (capped.total, capped.detail) == (7, "7 invalid value(s); see errors")
    bounded = InvalidRecords(errors, total=101, complete=False)
    assert (bounded.total, bounded.complete, bounded.detail) == (
        101,
        False,
        "at least 101 invalid value(s); see errors",
    )
    worded = InvalidRecords(errors, "a batch holds 1 to 3 records; got none", total=0)
    assert (worded.total, worded.detail, str(worded)) == (
        0,
        "a batch holds 1 to 3 records; got none",
        "a batch holds 1 to 3 records; got none",
    )


@pytest.mark.parametrize("count", [1, 99, 100])
def test_a_request_with_at_most_a_hundred_problems_lists_and_counts_them_all(count):
    unknown = {f"k{i:03}": 1 for i in range(count)}
    with pytest.raises(InvalidRecords) as raised:
        estimate(Fixed(), {**person(), **unknown})
    assert [e.pointer for e in raised.value.errors] == [f"/k{i:03}" for i in range(count)]
    assert (raised.value.total, raised.value.complete) == (count, True)
    assert raised.value.detail == f"{count} invalid value(s); see errors"


@pytest.mark.parametrize("count", [101, 150, 200_000])
def test_a_request_lists_its_first_hundred_problems_and_stops_looking_at_the_next(count):
    unknown = {f"k{i:06}": 1 for i in range(count)}
    with pytest.raises(InvalidRecords) as raised:
        estimate(Fixed(), {**person(), **unknown})
    assert [e.pointer for e in raised.value.errors] == [f"/k{i:06}" for i in range(100)]
    assert (raised.value.total, raised.value.complete) == (101, False)
    assert raised.value.detail == "at least 101 invalid value(s); see errors"


def test_a_batch_refused_on_its_first_records_reads_no_further():
    read = []

    def records():  # a hundred thousand records missing every field, read one by one
        for i in range(100_000):
            read.append(i)
            yield {}

    checked, refused = validate_each(records(), in_batch)
    # Six problems each: the 101st is the fifth of record 16, where reading stops.
    assert checked is None and read == list(range(17))
    assert (len(refused), refused.total, refused.complete) == (100, 101, False)
    assert [e.pointer for e in refused[-2:]] == ["/16/bmi", "/16/children"]


@pytest.mark.parametrize(
    "listed, total, complete", [(0, 1, False), (5, 6, False), (12, 12, True), (1000, 12, True)]
)
def test_the_problems_listed_are_as_many_as_asked_and_one_more_means_at_least(
    listed, total, complete
):
    checked, refused = validate_each([{}, {}], in_batch, listed=listed)
    assert checked is None and len(refused) == min(listed, 12)
    assert (refused.total, refused.complete) == (total, complete)


@pytest.mark.parametrize(
    "total, complete, said", [(0, True, "0"), (6, True, "6"), (101, False, "at least 101")]
)
def test_a_count_of_problems_says_when_it_is_a_lower_bound(total, complete, said):
    assert how_many(total, complete) == said


def test_a_batch_of_many_valid_records_is_served_as_one_by_one_would_be():
    batch = [person(age=20 + i, bmi=30, smoker=("yes", "no")[i % 2]) for i in range(10)]
    got = estimate(Fixed(), batch)
    assert got.records == [{**r, "bmi": 30.0} for r in batch]
    assert {tuple(type(v) for v in r.values()) for r in got.records} == {
        (int, str, float, int, str, str)
    }
    assert got.amounts.tolist() == [round((20 + i) * 100.0049, 2) for i in range(10)]
    assert got.lower.tolist() == [
        round((20 + i) * 100.0049 + (-100.004, -50.0)[i % 2], 2) for i in range(10)
    ]


@pytest.mark.parametrize(
    "bad, pointer",
    [
        ({"smoker": "maybe"}, "/9/smoker"),
        ({"age": 17}, "/9/age"),
        ({"bmi": 80.5}, "/9/bmi"),
        ({"age": 30.5}, "/9/age"),
        ({"age": True}, "/9/age"),
        ({"bmi": float("nan")}, "/9/bmi"),
        ({"children": 11}, "/9/children"),
        ({"region": 3}, "/9/region"),
    ],
)
def test_one_bad_value_in_a_long_batch_is_still_refused(bad, pointer):
    with pytest.raises(InvalidRecords) as raised:
        estimate(Fixed(), [person()] * 9 + [person(**bad)])
    assert [e.pointer for e in raised.value.errors] == [pointer]


@pytest.mark.parametrize(
    "bad, pointer", [({"age": 30.5}, "/9/age"), ({"children": 1.5}, "/9/children")]
)
def test_a_fraction_where_a_whole_number_belongs_is_refused_even_with_whole_bmis(bad, pointer):
    with pytest.raises(InvalidRecords) as raised:
        estimate(Fixed(), [person(bmi=30)] * 9 + [person(bmi=30, **bad)])
    assert [e.pointer for e in raised.value.errors] == [pointer]


def test_the_default_batch_limit_is_ten_thousand_records():
    with pytest.raises(TooManyRecords) as many:
        estimate(Fixed(), [person()] * 10_001)
    assert str(many.value) == "a batch holds at most 10000 records; got 10001"


def test_warnings_come_record_by_record_then_in_the_cards_field_order():
    got = estimate(Fixed(), [person(bmi=60.0), person(age=70, bmi=12.0)])
    assert [(w.pointer, w.field, w.reason) for w in got.warnings] == [
        ("/0/bmi", "bmi", "extrapolated"),
        ("/1/age", "age", "extrapolated"),
        ("/1/bmi", "bmi", "extrapolated"),
    ]
    assert got.to_json()["warnings"] == [
        {
            "pointer": "/0/bmi",
            "message": "bmi 60 is outside the range seen in training "
            "(15.96 to 53.13); the estimate is an extrapolation",
        },
        {
            "pointer": "/1/age",
            "message": "age 70 is outside the range seen in training "
            "(18 to 64); the estimate is an extrapolation",
        },
        {
            "pointer": "/1/bmi",
            "message": "bmi 12 is outside the range seen in training "
            "(15.96 to 53.13); the estimate is an extrapolation",
        },
    ]


def test_a_lone_records_warning_points_into_the_body_itself():
    got = estimate(Fixed(), person(children=6))
    assert got.to_json()["warnings"] == [
        {
            "pointer": "/children",
            "message": (
                "children 6 is outside the range seen in training (0 to 5); "
                "the estimate is an extrapolation"
            ),
        }
    ]


def test_a_range_without_groups_applies_one_offset_to_every_record():
    spec = {
        "level": 0.9,
        "group_by": None,
        "scale": "dollars",
        "floor": 0.0,
        "offsets": {"all": {"lower": -10.0, "upper": 10.0}},
    }
    got = estimate(Fixed(spec), [person(age=20), person(age=30, smoker="no")])
    assert got.to_json()["intervals"] == [
        {"lower": 1990.1, "upper": 2010.1, "level": 0.9},
        {"lower": 2990.15, "upper": 3010.15, "level": 0.9},
    ]


def test_the_start_up_check_accepts_a_range_of_no_width():
    zero = {
        **SPEC,
        "offsets": {"yes": {"lower": 0.0, "upper": 0.0}, "no": {"lower": 0.0, "upper": 0.0}},
    }
    assert self_check(Fixed(zero)) is None
    assert self_check(Fixed(None)) is None


def test_the_start_up_check_estimates_the_example_person_as_a_lone_record():
    seen = []
    model = Fixed()
    model.predict = lambda records: seen.append(list(records)) or [0.01]
    assert self_check(model) is None and seen == [[EXAMPLE_RECORD]]


# --- The card: every entry the service reads, checked at load ----------------------------------

DIGEST = "0123abcd" + "e" * 56
DROP = object()


def card(**changes):
    """A servable card, with dotted paths set to new values (or removed when given DROP)."""
    base = {
        "model_version": "2026.01.01-gbr-0123abcd",
        "pipeline_sha256": DIGEST,
        "estimator": "GradientBoostingRegressor",
        "versions": {"pycaret": "3.3.2", "scikit-learn": "1.4.2"},
        "data": {"rows": 1},
        "metrics": {"holdout": {"mae": 0}},
        "schema": {
            "training_ranges": {
                "age": {"min": 18, "max": 64},
                "bmi": {"min": 15.96, "max": 53.13},
                "children": {"min": 0, "max": 0},
            }
        },
        "interval": {
            "level": 0.8,
            "group_by": "smoker",
            "scale": "dollars",
            "floor": 1000.0,
            "offsets": {"no": {"lower": -5.0, "upper": 5.0}, "yes": {"lower": 0, "upper": 0}},
            "holdout": {"rows": 268, "coverage": 0.81},
        },
    }
    for path, value in changes.items():
        *parents, name = path.split("__")
        here = base
        for part in parents:
            here = here[part]
        if value is DROP:
            del here[name]
        else:
            here[name] = value
    return base


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"interval": None},
        {"interval": DROP},
        {"data__rows": 1},
        {"versions": {}},
        {"interval__scale": "log"},
        {"interval__level": 0.01},
        {"interval__level": 0.99},
        {"interval__group_by": None, "interval__offsets": {"all": {"lower": -1, "upper": 1}}},
        {
            "interval__group_by": "sex",
            "interval__offsets": {
                "male": {"lower": -1, "upper": 1},
                "female": {"lower": 0.5, "upper": 2},
            },
        },
        {"interval__offsets__no": {"lower": 3, "upper": 3}},
        {"metrics__holdout__mae": 2188.8},
    ],
)
def test_a_card_describing_a_servable_model_passes_the_check(changes):
    assert model_card.check_structure(card(**changes)) is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model_version": DROP}, "lacks model_version"),
        ({"pipeline_sha256": DROP}, "lacks pipeline_sha256"),
        ({"estimator": DROP}, "lacks estimator"),
        ({"model_version": 2026}, "model_version must be a non-empty string"),
        ({"pipeline_sha256": ""}, "pipeline_sha256 must be a non-empty string"),
        ({"estimator": ""}, "estimator must be a non-empty string"),
        ({"estimator": None}, "estimator must be a non-empty string"),
        (
            {"model_version": "2026.01.01-gbr0123abcd"},
            "model_version '2026.01.01-gbr0123abcd' does not end with the first 8 characters of "
            "pipeline_sha256 (was the card edited by hand?)",
        ),
        (
            {"pipeline_sha256": "f" + DIGEST[1:]},
            "model_version '2026.01.01-gbr-0123abcd' does not end with the first 8 characters of "
            "pipeline_sha256 (was the card edited by hand?)",
        ),
        ({"versions": DROP}, "lacks versions"),
        ({"versions": ["3.3.2"]}, "versions must map each library to a version string"),
        ({"versions__numpy": 1.26}, "versions must map each library to a version string"),
        ({"data": DROP}, "lacks data"),
        ({"data__rows": DROP}, "lacks data.rows"),
        ({"data": 1338}, "lacks data.rows"),
        ({"data__rows": 0}, "data.rows must be a positive whole number"),
        ({"data__rows": 1.0}, "data.rows must be a positive whole number"),
        ({"data__rows": "1338"}, "data.rows must be a positive whole number"),
        ({"metrics": {}}, "lacks metrics.holdout"),
        ({"metrics__holdout": {}}, "lacks metrics.holdout.mae"),
        ({"metrics__holdout__mae": "2188"}, "metrics.holdout.mae must be a number"),
        ({"metrics__holdout__mae": True}, "metrics.holdout.mae must be a number"),
        ({"metrics__holdout__mae": float("nan")}, "metrics.holdout.mae must be a number"),
        ({"metrics__holdout__mae": float("inf")}, "metrics.holdout.mae must be a number"),
        ({"schema": {}}, "lacks schema.training_ranges"),
        (
            {"schema__training_ranges": [18, 64]},
            "schema.training_ranges must give min and max for age, bmi, children",
        ),
        (
            {"schema__training_ranges__bmi": DROP},
            "schema.training_ranges must give min and max for age, bmi, children",
        ),
        (
            {"schema__training_ranges__sex": {"min": 0, "max": 1}},
            "schema.training_ranges must give min and max for age, bmi, children",
        ),
        (
            {"schema__training_ranges__bmi": [15.96, 53.13]},
            "schema.training_ranges.bmi must hold numbers min <= max",
        ),
        (
            {"schema__training_ranges__bmi": {"max": 53.13}},
            "schema.training_ranges.bmi must hold numbers min <= max",
        ),
        (
            {"schema__training_ranges__bmi": {"min": 15.96}},
            "schema.training_ranges.bmi must hold numbers min <= max",
        ),
        (
            {"schema__training_ranges__children": {"min": 1, "max": 0}},
            "schema.training_ranges.children must hold numbers min <= max",
        ),
        (
            {"schema__training_ranges__age": {"min": 18, "max": float("inf")}},
            "schema.training_ranges.age must hold numbers min <= max",
        ),
        ({"interval": "none"}, "interval must be an object (or null for a model without one)"),
        (
            {"interval__holdout__rows": 268.0},
            "interval.holdout must give rows (a whole number) and coverage",
        ),
        (
            {"interval__holdout__coverage": "81%"},
            "interval.holdout must give rows (a whole number) and coverage",
        ),
        ({"interval__level": 0}, "interval.level must be a number between 0 and 1"),
        ({"interval__level": 1}, "interval.level must be a number between 0 and 1"),
        ({"interval__level": "0.8"}, "interval.level must be a number between 0 and 1"),
        (
            {"interval__floor": None},
            "interval.floor must be a number and interval.scale dollars or log",
        ),
        (
            {"interval__scale": "percent"},
            "interval.floor must be a number and interval.scale dollars or log",
        ),
        ({"interval__group_by": "bmi"}, "interval.group_by 'bmi' is not a category field"),
        ({"interval__group_by": "weight"}, "interval.group_by 'weight' is not a category field"),
        (
            {"interval__offsets": {"yes": {"lower": -1, "upper": 1}}},
            "interval.offsets must have one entry for each of no, yes",
        ),
        (
            {"interval__offsets": [{"lower": -1, "upper": 1}] * 2},
            "interval.offsets must have one entry for each of no, yes",
        ),
        ({"interval__group_by": None}, "interval.offsets must have one entry for each of all"),
        (
            {"interval__offsets__no": {"lower": 6, "upper": 5}},
            "interval.offsets.no must hold numbers lower <= upper",
        ),
        (
            {"interval__offsets__no": {"lower": -5}},
            "interval.offsets.no must hold numbers lower <= upper",
        ),
        (
            {"interval__offsets__no": {"upper": 5}},
            "interval.offsets.no must hold numbers lower <= upper",
        ),
        (
            {"interval__offsets__yes": [0, 0]},
            "interval.offsets.yes must hold numbers lower <= upper",
        ),
    ],
)
def test_a_card_the_service_could_not_serve_is_refused_naming_the_entry(changes, message):
    with pytest.raises(model_card.CardError) as raised:
        model_card.check_structure(card(**changes))
    assert str(raised.value) == message


@pytest.mark.parametrize("entry", ["level", "group_by", "floor", "scale", "offsets", "holdout"])
def test_a_card_whose_interval_lacks_an_entry_is_refused(entry):
    with pytest.raises(model_card.CardError, match=f"^lacks interval.{entry}$"):
        model_card.check_structure(card(**{f"interval__{entry}": DROP}))


@pytest.mark.parametrize("entry", ["rows", "coverage"])
def test_a_card_whose_interval_holdout_lacks_an_entry_is_refused(entry):
    with pytest.raises(model_card.CardError, match=f"^lacks interval.holdout.{entry}$"):
        model_card.check_structure(card(**{f"interval__holdout__{entry}": DROP}))


@pytest.mark.parametrize("body", [[], None, "card", 3])
def test_a_card_that_is_not_an_object_is_refused(body):
    with pytest.raises(model_card.CardError, match="^is not a JSON object$"):
        model_card.check_structure(body)


def test_only_pycaret_and_scikit_learn_must_match_the_versions_that_trained_the_model():
    here = model_card.installed_versions()
    assert list(here) == ["pycaret", "scikit-learn", "pandas", "numpy", "lightgbm"]
    same = {"pycaret": here["pycaret"], "scikit-learn": here["scikit-learn"], "numpy": "0.1"}
    assert model_card.version_mismatches({"versions": same}) == []
    assert model_card.version_mismatches({"versions": {"pycaret": "0.0.1"}}) == [
        f"pycaret 0.0.1 (installed: {here['pycaret']})",
        f"scikit-learn (not recorded) (installed: {here['scikit-learn']})",
    ]
    assert model_card.version_mismatches({}) == [
        f"pycaret (not recorded) (installed: {here['pycaret']})",
        f"scikit-learn (not recorded) (installed: {here['scikit-learn']})",
    ]


def test_the_card_lives_beside_the_pipeline_and_its_checksum_covers_every_byte(tmp_path):
    assert model_card.path_for(tmp_path / "m.v2.pkl") == tmp_path / "m.v2.card.json"
    data = bytes(range(256)) * 5000  # more than one read block
    (tmp_path / "m.pkl").write_bytes(data)
    assert model_card.sha256_of(tmp_path / "m.pkl") == hashlib.sha256(data).hexdigest()


# --- Loading: each refusal says what is wrong and how to fix it --------------------------------


@pytest.fixture
def signed(model_copy, signing_key, test_keys):
    """A copy of the committed model, signed by the tests' key: (path, resign, load)."""
    sign_with(signing_key, model_copy)
    return (
        model_copy,
        lambda: sign_with(signing_key, model_copy),
        lambda: load_model(model_copy, test_keys),
    )


def rewrite_card(model_path, **changes):
    path = model_card.path_for(model_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def refusal(load):
    with pytest.raises(ModelLoadError) as raised:
        load()
    return str(raised.value)


def test_a_model_path_that_does_not_exist_is_refused_with_the_fix(tmp_path):
    assert refusal(lambda: load_model(tmp_path / "absent.pkl")) == (
        f"model file {tmp_path / 'absent.pkl'} not found; {FIX}"
    )
    assert FIX == "run `make train` to rebuild it, or set MODEL_PATH to a trained pipeline"


def test_a_directory_is_refused_as_not_a_regular_file(tmp_path):
    assert refusal(lambda: load_model(tmp_path)) == (
        f"model file {tmp_path} is not a regular file; {FIX}"
    )


def test_a_missing_card_is_refused_naming_where_it_should_be(model_copy, test_keys):
    card_path = model_card.path_for(model_copy)
    card_path.unlink()
    assert refusal(lambda: load_model(model_copy, test_keys)) == (
        f"model card {card_path} is missing; {FIX}"
    )


def test_a_card_is_parsed_from_the_bytes_given_not_read_again(model_copy):
    card_path = model_card.path_for(model_copy)
    text = card_path.read_bytes()
    card_path.unlink()
    assert read_card(model_copy, text) == json.loads(text)


def test_the_card_served_is_the_one_whose_signature_was_checked(signed, monkeypatch):
    path, _, load = signed
    signed_card = json.loads(model_card.path_for(path).read_text())
    verify = model_signing.verify

    def verify_then_swap_the_card(*args):
        signer = verify(*args)
        model_card.path_for(path).write_text("{}")  # replaced after the check
        return signer

    monkeypatch.setattr(model_signing, "verify", verify_then_swap_the_card)
    assert load().card == signed_card


def test_a_model_file_that_cannot_be_read_is_refused_saying_why(model_copy, test_keys, monkeypatch):
    read_bytes = Path.read_bytes

    def denied(self):
        if self == model_copy:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert refusal(lambda: load_model(model_copy, test_keys)) == (
        f"model file {model_copy} is unreadable (Permission denied); {FIX}"
    )


@pytest.mark.parametrize("part, what", [("card", "model card"), ("signature", "model signature")])
def test_a_card_or_signature_that_cannot_be_read_is_refused_saying_why(
    model_copy, test_keys, part, what
):
    target = (model_card.path_for if part == "card" else signature_path)(model_copy)
    target.unlink()
    target.mkdir()
    assert refusal(lambda: load_model(model_copy, test_keys)) == (
        f"{what} {target} is unreadable (Is a directory); {FIX}"
    )


def test_a_model_without_a_signature_is_refused_saying_how_to_sign_it(model_copy, test_keys):
    signature_path(model_copy).unlink()
    assert refusal(lambda: load_model(model_copy, test_keys)) == (
        f"model {model_copy} is not signed (no insurance-charges.sig.json); sign it with the "
        "training key (docs/security.md#model-signing) or set MODEL_PATH to a signed model"
    )


def test_a_model_signed_by_a_key_not_trusted_here_is_refused_naming_both(model_copy, test_keys):
    signer = json.loads(signature_path(model_copy).read_text())["key_id"]
    assert refusal(lambda: load_model(model_copy, test_keys)) == (
        f"model {model_copy} is refused: it is signed by key {signer}, which this "
        f"service does not trust (trusted: {test_keys[0].key_id}); set MODEL_PATH to a model "
        "signed by a trusted key, or MODEL_PUBLIC_KEY to the key that signed it"
    )


def test_by_default_only_the_key_that_signed_the_committed_model_is_trusted(signed, test_keys):
    path, _, _ = signed  # now signed by the tests' key
    committed = model_signing.read_public_keys(model_signing.TRUSTED_KEYS.read_bytes())
    assert refusal(lambda: load_model(path)) == (
        f"model {path} is refused: it is signed by key {test_keys[0].key_id}, which this service "
        f"does not trust (trusted: {', '.join(k.key_id for k in committed)}); set MODEL_PATH to a "
        "model signed by a trusted key, or MODEL_PUBLIC_KEY to the key that signed it"
    )


@pytest.mark.parametrize(
    "text, why",
    [
        (
            b"{not json",
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (b"\xff{}", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ],
)
def test_an_unreadable_card_is_refused_saying_why(signed, text, why):
    path, resign, load = signed
    model_card.path_for(path).write_bytes(text)
    resign()
    assert refusal(load) == f"model card {model_card.path_for(path)} is unreadable ({why}); {FIX}"


def test_a_card_of_the_wrong_shape_is_refused_naming_the_entry(signed):
    path, resign, load = signed
    model_card.path_for(path).write_text("[]")
    resign()
    assert refusal(load) == f"model card {model_card.path_for(path)} is not a JSON object; {FIX}"


def test_a_model_from_other_library_versions_is_refused_listing_each(signed):
    path, resign, load = signed
    here = model_card.installed_versions()
    rewrite_card(path, versions={"pycaret": "0.0.1", "scikit-learn": "0.0.2"})
    resign()
    assert refusal(load) == (
        f"model {path} was made with pycaret 0.0.1 (installed: {here['pycaret']}), "
        f"scikit-learn 0.0.2 (installed: {here['scikit-learn']}); install the pinned versions "
        "(`make run` does) or retrain with `make train`"
    )


def test_a_signed_model_file_that_is_not_the_one_its_card_describes_is_refused(signed):
    path, resign, load = signed
    path.write_bytes(path.read_bytes()[:-1])
    resign()
    assert refusal(load) == (
        f"model file {path} does not match its card's SHA-256 (truncated or replaced?); {FIX}"
    )


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"this is not a pickle", "cannot be loaded (IndexError)"),
        ({"predict": "not callable"}, "holds no pipeline with predict()"),
        (Fixed(), "holds no pipeline with predict()"),  # it predicts, but has no steps
    ],
)
def test_a_signed_file_that_holds_no_pipeline_is_refused(signed, signing_key, content, problem):
    path, _, load = signed
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        joblib.dump(content, path)
    vouch_for(path, signing_key)
    assert refusal(load) == f"model file {path} {problem}; {FIX}"


def test_a_signed_pipeline_of_another_kind_than_its_card_says_is_refused(signed, signing_key):
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import Pipeline

    path, _, load = signed
    joblib.dump(Pipeline([("scale", None), ("model", DummyRegressor())]), path)
    vouch_for(path, signing_key)
    assert refusal(load) == (
        f"model file {path} holds a DummyRegressor, but its card says "
        f"GradientBoostingRegressor; {FIX}"
    )


def test_loading_logs_the_model_its_signer_and_that_the_fast_path_is_on(signed, test_keys, caplog):
    path, _, load = signed
    caplog.set_level(logging.INFO, logger="insurance_charges.serving.model")
    model = load()
    assert model.path == path and model.fast is not None
    assert [(r.levelname, r.getMessage()) for r in caplog.records][:1] == [
        (
            "INFO",
            f"loaded model {model.version} (GradientBoostingRegressor) from {path}, "
            f"signed by key {test_keys[0].key_id}",
        )
    ]
    assert caplog.records[1].levelname == "INFO"
    assert caplog.records[1].getMessage().startswith("fast path on: ")


def test_without_a_fast_path_the_pipeline_serves_and_a_warning_says_why(
    signed, caplog, monkeypatch, real_model
):
    _, _, load = signed
    monkeypatch.setattr(fastpath, "build", lambda pipeline: (None, "fast path off: a test"))
    caplog.set_level(logging.INFO, logger="insurance_charges.serving.model")
    model = load()
    assert model.fast is None
    assert [(r.levelname, r.getMessage()) for r in caplog.records][1:] == [
        ("WARNING", "fast path off: a test")
    ]
    records = [EXAMPLE_RECORD, person(age=50, smoker="no")]
    assert model.predict(records).tolist() == pytest.approx(real_model.predict(records).tolist())


class Doubling:
    """A stand-in pipeline: twice each age, from a frame with the schema's columns in order."""

    def predict(self, frame):
        assert list(frame.columns) == ["age", "sex", "bmi", "children", "smoker", "region"]
        return (frame["age"] * 2).tolist()


def test_a_model_reads_its_version_ranges_and_likely_range_from_its_card():
    card_ = {"model_version": "v-1", "schema": {"training_ranges": RANGES}, "interval": SPEC}
    model = Model(pipeline=Doubling(), card=card_, path=Path("m.pkl"))
    assert (model.version, model.training_ranges, model.likely_range) == ("v-1", RANGES, SPEC)
    assert Model(pipeline=None, card={}, path=Path("m.pkl")).likely_range is None


def test_a_model_without_a_fast_path_predicts_through_its_pipeline():
    model = Model(pipeline=Doubling(), card={}, path=Path("m.pkl"))
    backwards = dict(reversed(person(age=31).items()))  # the frame keeps the schema's order
    got = model.predict([backwards, person(age=20)])
    assert got.dtype == np.float64 and got.tolist() == [62.0, 40.0]


def test_a_model_with_a_fast_path_predicts_through_it():
    class Fast:
        def predict(self, records):
            return np.array([r["age"] * 3.0 for r in records])

    model = Model(pipeline=Doubling(), card={}, path=Path("m.pkl"), fast=Fast())
    assert model.predict([person(age=20)]).tolist() == [60.0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data__rows": True}, "data.rows must be a positive whole number"),
        ({"interval__holdout__rows": True}, "interval.holdout must give rows (a whole number)"),
    ],
)
def test_json_true_is_not_a_count_in_a_card(change, message):
    with pytest.raises(model_card.CardError, match=re.escape(message)):
        model_card.check_structure(card(**change))


# --- The signature document (core/model_signing.py) -------------------------------------------
# Ed25519 signatures are deterministic, so a test can spell out the exact document a key writes
# for given pipeline and card bytes.

PIPELINE_BYTES, CARD_BYTES = b"the pipeline's bytes", b'{"model_version": "1"}'


def expected_document(private_key: Ed25519PrivateKey, pipeline: bytes, card: bytes) -> dict:
    """The signature document as docs/security.md#model-signing describes it, built by hand."""
    pipeline_sha, card_sha = hashlib.sha256(pipeline).hexdigest(), hashlib.sha256(card).hexdigest()
    message = (
        f"insurance-charges-signature/1\npipeline_sha256={pipeline_sha}\ncard_sha256={card_sha}\n"
    )
    return {
        "format": "insurance-charges-signature/1",
        "algorithm": "Ed25519",
        "key_id": model_signing.key_id(private_key.public_key()),
        "pipeline_sha256": pipeline_sha,
        "card_sha256": card_sha,
        "signature": base64.b64encode(private_key.sign(message.encode())).decode(),
    }


def trusted(*keys: Ed25519PrivateKey) -> tuple[model_signing.TrustedKey, ...]:
    """The public halves of ``keys``, as the service holds them."""
    return tuple(
        model_signing.TrustedKey(model_signing.key_id(k.public_key()), k.public_key()) for k in keys
    )


def test_a_signature_document_names_its_format_algorithm_key_and_both_hashes(signing_key):
    assert model_signing.sign(signing_key, PIPELINE_BYTES, CARD_BYTES) == expected_document(
        signing_key, PIPELINE_BYTES, CARD_BYTES
    )


def test_the_signature_file_is_laid_out_as_the_committed_models(signing_key, model_copy):
    card_path = model_copy.with_name(model_copy.stem + ".card.json")
    written = model_signing.write_signature(signing_key, model_copy, card_path)
    document = expected_document(signing_key, model_copy.read_bytes(), card_path.read_bytes())
    # Two-space indents and a final newline: the committed file diffs line by line.
    assert written.read_text(encoding="utf-8") == json.dumps(document, indent=2) + "\n"
    committed = json.loads(signature_path(DEFAULT_MODEL_PATH).read_text())
    assert list(committed) == list(document)


def test_a_document_signed_by_a_trusted_key_verifies_and_names_that_key(signing_key):
    document = json.dumps(model_signing.sign(signing_key, PIPELINE_BYTES, CARD_BYTES)).encode()
    other = Ed25519PrivateKey.generate()
    assert model_signing.verify(
        document, PIPELINE_BYTES, CARD_BYTES, trusted(other, signing_key)
    ) == model_signing.key_id(signing_key.public_key())


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[]",
        b'{"key_id": "0123456789abcdef"}',
        b'{"signature": "AAAA"}',
    ],
)
def test_a_signature_file_that_is_not_a_signature_document_is_refused_as_such(
    signing_key, document
):
    with pytest.raises(model_signing.SignatureError) as refused:
        model_signing.verify(document, PIPELINE_BYTES, CARD_BYTES, trusted(signing_key))
    assert str(refused.value) == "its signature file is not a signature document"


def test_a_signature_with_characters_outside_base64_is_refused_not_read_past_them(signing_key):
    document = model_signing.sign(signing_key, PIPELINE_BYTES, CARD_BYTES)
    # A lenient decoder drops the stray characters and the signature would then verify.
    document["signature"] = "*" + document["signature"]
    with pytest.raises(model_signing.SignatureError) as refused:
        model_signing.verify(
            json.dumps(document).encode(), PIPELINE_BYTES, CARD_BYTES, trusted(signing_key)
        )
    assert str(refused.value) == "its signature file is not a signature document"


def test_a_key_not_trusted_is_named_by_its_first_16_characters_beside_every_trusted_key(
    signing_key,
):
    document = {
        **model_signing.sign(signing_key, PIPELINE_BYTES, CARD_BYTES),
        "key_id": "0123456789abcdef-and-more",
    }
    keys = trusted(signing_key, Ed25519PrivateKey.generate())
    with pytest.raises(model_signing.SignatureError) as refused:
        model_signing.verify(json.dumps(document).encode(), PIPELINE_BYTES, CARD_BYTES, keys)
    assert str(refused.value) == (
        "it is signed by key 0123456789abcdef, which this service does not trust "
        f"(trusted: {keys[0].key_id}, {keys[1].key_id})"
    )


@pytest.mark.parametrize("changed", ["pipeline", "card"])
def test_bytes_changed_after_signing_are_refused_saying_so(signing_key, changed):
    document = json.dumps(model_signing.sign(signing_key, PIPELINE_BYTES, CARD_BYTES)).encode()
    pipeline, card = (
        (PIPELINE_BYTES + b"!", CARD_BYTES)
        if changed == "pipeline"
        else (PIPELINE_BYTES, CARD_BYTES + b" ")
    )
    with pytest.raises(model_signing.SignatureError) as refused:
        model_signing.verify(document, pipeline, card, trusted(signing_key))
    assert str(refused.value) == (
        "its signature does not match the pipeline and card (changed after signing?)"
    )
