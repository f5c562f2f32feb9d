"""Unit tests of the one input schema."""
import math

import pytest

from insurance_charges.core.schema import (BY_NAME, EXAMPLE_RECORD, FIELD_NAMES, FIELDS,
                                           pointer_token, validate_record)
from insurance_charges.core.validation import alone, validate_records
from insurance_charges.web.form_parsing import messages, typed_values


def parse_form(form):
    """What the form's view does before estimating: type the text, validate, word the errors."""
    records, errors = validate_records([typed_values(form)], alone)
    return (records[0], {}) if records else (None, messages(errors, form))


def with_value(name, value):
    return {**EXAMPLE_RECORD, name: value}


def test_schema_has_the_six_features_in_order():
    assert FIELD_NAMES == ("age", "sex", "bmi", "children", "smoker", "region")


def test_example_record_is_valid():
    record, errors = validate_record(dict(EXAMPLE_RECORD))
    assert errors == [] and record == EXAMPLE_RECORD


@pytest.mark.parametrize("name, value", [
    ("age", 18), ("age", 100), ("age", 40.0), ("bmi", 10), ("bmi", 80), ("bmi", 33.77),
    ("children", 0), ("children", 10), ("sex", "male"), ("smoker", "no"), ("region", "northeast"),
])
def test_values_at_and_inside_the_limits_are_accepted(name, value):
    record, errors = validate_record(with_value(name, value))
    assert errors == [] and record[name] == value


def test_whole_number_given_as_float_becomes_an_int():
    record, _ = validate_record(with_value("age", 40.0))
    assert record["age"] == 40 and type(record["age"]) is int


@pytest.mark.parametrize("name, value", [
    ("age", "30"), ("age", 17), ("age", 101), ("age", 30.5), ("age", True), ("age", None),
    ("age", math.nan), ("age", math.inf), ("age", [30]), ("bmi", "27.9"), ("bmi", 9.99),
    ("bmi", 80.01), ("bmi", False), ("bmi", -math.inf), ("bmi", {"v": 1}), ("children", -1),
    ("children", 11), ("children", 1.5), ("sex", "Female"), ("sex", "f"), ("sex", 1),
    ("smoker", True), ("smoker", "YES"), ("region", "north"), ("region", " southwest"),
    ("region", None), ("age", 10**400), ("bmi", 10**400), ("children", -10**400),
])
def test_wrong_type_or_out_of_limits_value_is_rejected_naming_the_field(name, value):
    record, errors = validate_record(with_value(name, value))
    assert record is None
    assert [e.pointer for e in errors] == [f"/{name}"]
    assert errors[0].message.startswith(name)


@pytest.mark.parametrize("name", ["sex", "smoker", "region"])
def test_category_message_lists_the_allowed_values(name):
    _, errors = validate_record(with_value(name, "other"))
    assert all(f'"{c}"' in errors[0].message for c in BY_NAME[name].choices)


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_missing_field_is_required(name):
    body = {k: v for k, v in EXAMPLE_RECORD.items() if k != name}
    _, errors = validate_record(body)
    assert [(e.pointer, "required" in e.message) for e in errors] == [(f"/{name}", True)]


def test_unknown_field_is_an_error_with_an_escaped_pointer():
    _, errors = validate_record({**EXAMPLE_RECORD, "a/b~c": 1}, pointer="/3")
    assert [e.pointer for e in errors] == ["/3/a~1b~0c"]
    assert pointer_token("x/y") == "x~1y"


@pytest.mark.parametrize("body", [None, [], "record", 5, True])
def test_a_record_must_be_an_object(body):
    record, errors = validate_record(body, pointer="/0")
    assert record is None and errors[0].pointer == "/0" and "object" in errors[0].message


def test_every_field_has_a_label_help_and_a_valid_example():
    for field in FIELDS:
        assert field.label and field.help
        assert validate_record(with_value(field.name, field.example))[1] == []


def test_form_text_is_parsed_into_a_typed_record():
    form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
    record, errors = parse_form({**form, "age": " 19 "})
    assert errors == {} and record == EXAMPLE_RECORD


@pytest.mark.parametrize("name, text, fragment", [
    ("age", "", "Enter age"), ("age", "abc", "whole number"), ("age", "30.5", "whole number"),
    ("age", "1e3", "whole number"), ("bmi", "nan", "number from 10 to 80"),
    ("bmi", "inf", "number"), ("bmi", "200", "10 to 80"), ("children", "-1", "0 to 10"),
    ("sex", "", "Choose sex from the list"), ("region", "mars", '"southwest"'),
    ("age", "\u0661\u0669", "whole number"), ("age", "\uff11\uff19", "whole number"),
    ("bmi", "\u0662\u0667.5", "number from 10 to 80"), ("age", "19\n", None),
])
def test_form_errors_are_keyed_by_field_and_say_what_is_allowed(name, text, fragment):
    form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
    record, errors = parse_form({**form, name: text})
    if fragment is None:  # surrounding white space is not an error
        assert errors == {} and record == EXAMPLE_RECORD
        return
    assert record is None and list(errors) == [name] and fragment in errors[name]


def test_digits_of_other_scripts_are_refused_by_the_form_as_by_the_api(client):
    form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
    page = client.post("/", data={**form, "age": "\uff11\uff19"})
    assert page.status_code == 422
    assert client.post("/api/v1/predict", json={**EXAMPLE_RECORD, "age": "\uff11\uff19"}
                       ).status_code == 422


def test_fields_a_browser_never_sends_are_one_message_for_the_whole_form():
    form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
    record, errors = parse_form({**form, "zz": "1", "aa": "2"})
    assert record is None and list(errors) == ["form"]
    assert errors["form"] == ("The form held unexpected fields (aa, zz); reload the page and "
                              "try again.")
