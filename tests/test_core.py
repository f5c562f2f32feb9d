"""The estimator core: parsed JSON in, estimates, likely ranges and warnings out, no Flask."""
import subprocess
import sys

import numpy as np
import pytest

from insurance_charges.core.estimates import (Estimates, InvalidRecords, TooManyRecords, estimate,
                                              estimate_valid, self_check)
from insurance_charges.core.schema import EXAMPLE_RECORD

from .conftest import ROOT

SPEC = {"level": 0.8, "group_by": "smoker", "scale": "dollars", "floor": 1000.0,
        "offsets": {"yes": {"lower": -100.004, "upper": 200.004},
                    "no": {"lower": -50.0, "upper": 25.0}}}
RANGES = {"age": {"min": 18, "max": 64}, "bmi": {"min": 15.96, "max": 53.13},
          "children": {"min": 0, "max": 5}}


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
    assert got.to_json() == {"prediction": 2000.1, "model_version": "fixed-1", "warnings": [],
                             "interval": {"lower": 1900.09, "upper": 2200.1, "level": 0.8}}


def test_a_batch_keeps_input_order_and_gives_each_record_its_groups_range():
    got = estimate(Fixed(), [person(age=30, smoker="no"), person(age=20)])
    assert got.batch is True
    assert got.to_json() == {
        "predictions": [3000.15, 2000.1], "model_version": "fixed-1", "warnings": [],
        "intervals": [{"lower": 2950.15, "upper": 3025.15, "level": 0.8},
                      {"lower": 1900.09, "upper": 2200.1, "level": 0.8}]}


def test_the_range_never_goes_below_the_floor():
    got = estimate(Fixed(), person(age=18, smoker="no"))  # 1800.09 - 50 is above 1000
    assert got.lower.tolist() == [1750.09]
    low = estimate(Fixed({**SPEC, "floor": 1800.0}), person(age=18, smoker="no"))
    assert low.lower.tolist() == [1800.0] and low.upper.tolist() == [1825.09]


def test_without_a_calibrated_range_the_answer_has_none():
    got = estimate(Fixed(None), [person()])
    assert got.lower is None and got.upper is None and got.level is None
    assert list(got.to_json()) == ["predictions", "model_version", "warnings"]
    assert list(estimate(Fixed(None), person()).to_json()) == ["prediction", "model_version",
                                                               "warnings"]


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
    assert [e.as_dict() for e in empty.value.errors] == [{"pointer": "",
                                                          "message": "the array is empty"}]
    with pytest.raises(TooManyRecords) as many:
        estimate(Fixed(), [person()] * 4, max_batch=3)
    assert (many.value.limit, many.value.got) == (3, 4)
    assert str(many.value) == "a batch holds at most 3 records; got 4"
    assert len(estimate(Fixed(), [person()] * 3, max_batch=3).amounts) == 3


def test_valid_records_can_be_estimated_without_validating_them_again():
    got = estimate_valid(Fixed(), [person(age=20), person(age=30)])
    assert got.batch is True and got.amounts.tolist() == [2000.1, 3000.15]


def test_the_committed_model_passes_the_start_up_check(real_model):
    assert self_check(real_model) is None


@pytest.mark.parametrize("predict, problem", [
    (lambda records: [float("nan")], "the estimate is nan, not a positive number of dollars"),
    (lambda records: [-5.0], "the estimate is -5.0, not a positive number of dollars"),
    (lambda records: [0.0], "the estimate is 0.0, not a positive number of dollars"),
    (lambda records: 1 / 0, "ZeroDivisionError: division by zero"),
])
def test_the_start_up_check_says_what_is_wrong(predict, problem):
    model = Fixed()
    model.predict = predict
    assert self_check(model) == problem


def test_the_start_up_check_refuses_a_range_whose_bounds_are_reversed():
    reversed_spec = {**SPEC, "offsets": {"yes": {"lower": 10.0, "upper": -10.0},
                                         "no": {"lower": 0.0, "upper": 0.0}}}
    assert self_check(Fixed(reversed_spec)) == ("its likely range has a lower bound above the "
                                                 "upper one")


@pytest.mark.subprocess
def test_the_core_imports_no_web_framework():
    code = ("import sys; import insurance_charges.core.estimates, insurance_charges.core.explain,"
            " insurance_charges.core.estimator; assert 'flask' not in sys.modules, 'flask'; "
            "assert 'werkzeug' not in sys.modules, 'werkzeug'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_amounts_are_numpy_arrays_for_the_whole_batch():
    got = estimate(Fixed(), [person()] * 5)
    assert isinstance(got.amounts, np.ndarray) and got.amounts.shape == (5,)
