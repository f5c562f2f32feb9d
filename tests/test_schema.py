"""Unit tests of the one input schema."""

import math

import pytest

from insurance_charges.core.schema import (
    BY_NAME,
    EXAMPLE_RECORD,
    FIELD_NAMES,
    FIELDS,
    FieldError,
    RepeatedKeys,
    check_value,
    extrapolation_warning,
    pointer_token,
    typed_from_text,
    validate_record,
)
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


@pytest.mark.parametrize(
    "name, value",
    [
        ("age", 18),
        ("age", 100),
        ("age", 40.0),
        ("bmi", 10),
        ("bmi", 80),
        ("bmi", 33.77),
        ("children", 0),
        ("children", 10),
        ("sex", "male"),
        ("smoker", "no"),
        ("region", "northeast"),
    ],
)
def test_values_at_and_inside_the_limits_are_accepted(name, value):
    record, errors = validate_record(with_value(name, value))
    assert errors == [] and record[name] == value


def test_whole_number_given_as_float_becomes_an_int():
    record, _ = validate_record(with_value("age", 40.0))
    assert record["age"] == 40 and type(record["age"]) is int


@pytest.mark.parametrize(
    "name, value",
    [
        ("age", "30"),
        ("age", 17),
        ("age", 101),
        ("age", 30.5),
        ("age", True),
        ("age", None),
        ("age", math.nan),
        ("age", math.inf),
        ("age", [30]),
        ("bmi", "27.9"),
        ("bmi", 9.99),
        ("bmi", 80.01),
        ("bmi", False),
        ("bmi", -math.inf),
        ("bmi", {"v": 1}),
        ("children", -1),
        ("children", 11),
        ("children", 1.5),
        ("sex", "Female"),
        ("sex", "f"),
        ("sex", 1),
        ("smoker", True),
        ("smoker", "YES"),
        ("region", "north"),
        ("region", " southwest"),
        ("region", None),
        ("age", 10**400),
        ("bmi", 10**400),
        ("children", -(10**400)),
    ],
)
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


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("age", "", "Enter age"),
        ("age", "abc", "whole number"),
        ("age", "30.5", "whole number"),
        ("age", "1e3", "whole number"),
        ("bmi", "nan", "number from 10 to 80"),
        ("bmi", "inf", "number"),
        ("bmi", "200", "10 to 80"),
        ("children", "-1", "0 to 10"),
        ("sex", "", "Choose sex from the list"),
        ("region", "mars", '"southwest"'),
        ("age", "\u0661\u0669", "whole number"),
        ("age", "\uff11\uff19", "whole number"),
        ("bmi", "\u0662\u0667.5", "number from 10 to 80"),
        ("age", "19\n", None),
    ],
)
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
    assert (
        client.post("/api/v1/predict", json={**EXAMPLE_RECORD, "age": "\uff11\uff19"}).status_code
        == 422
    )


def test_fields_a_browser_never_sends_are_one_message_for_the_whole_form():
    form = {k: str(v) for k, v in EXAMPLE_RECORD.items()}
    record, errors = parse_form({**form, "zz": "1", "aa": "2"})
    assert record is None and list(errors) == ["form"]
    assert errors["form"] == (
        "The form held unexpected fields (aa, zz); reload the page and try again."
    )


def test_the_fields_have_these_kinds_limits_choices_and_examples():
    assert [(f.name, f.kind, f.minimum, f.maximum, f.choices, f.example) for f in FIELDS] == [
        ("age", "integer", 18, 100, (), 19),
        ("sex", "category", None, None, ("female", "male"), "female"),
        ("bmi", "number", 10, 80, (), 27.9),
        ("children", "integer", 0, 10, (), 0),
        ("smoker", "category", None, None, ("yes", "no"), "yes"),
        (
            "region",
            "category",
            None,
            None,
            ("northeast", "northwest", "southeast", "southwest"),
            "southwest",
        ),
    ]
    assert EXAMPLE_RECORD == {
        "age": 19,
        "sex": "female",
        "bmi": 27.9,
        "children": 0,
        "smoker": "yes",
        "region": "southwest",
    }


def test_the_fields_are_labelled_and_explained_in_words_people_use():
    assert [(f.label, f.help) for f in FIELDS] == [
        ("Age", "Age of the insured person, in whole years."),
        ("Sex", "Sex of the insured person."),
        ("Body-mass index (BMI)", "Weight in kilograms divided by the square of height in metres."),
        ("Children covered", "Number of children or dependants covered by the policy."),
        ("Smoker", "Does the person smoke?"),
        ("Region", "Residential area in the United States."),
    ]


@pytest.mark.parametrize(
    "name, rule",
    [
        ("age", "a whole number from 18 to 100"),
        ("bmi", "a number from 10 to 80"),
        ("children", "a whole number from 0 to 10"),
        ("sex", 'one of "female", "male"'),
        ("smoker", 'one of "yes", "no"'),
        ("region", 'one of "northeast", "northwest", "southeast", "southwest"'),
    ],
)
def test_each_field_says_in_words_what_a_valid_value_is(name, rule):
    assert BY_NAME[name].rule() == rule


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("age", "30", 'age must be a whole number from 18 to 100; got "30" (a string)'),
        ("age", 17, "age must be a whole number from 18 to 100; got 17"),
        ("age", 30.5, "age must be a whole number from 18 to 100; got 30.5"),
        ("age", True, "age must be a whole number from 18 to 100; got a boolean"),
        ("age", None, "age must be a whole number from 18 to 100; got null"),
        ("age", [30], "age must be a whole number from 18 to 100; got an array"),
        ("age", math.nan, "age must be a whole number from 18 to 100; got nan"),
        ("age", 10**15 - 1, "age must be a whole number from 18 to 100; got 999999999999999"),
        (
            "age",
            10**15,
            "age must be a whole number from 18 to 100; got a number too large to show",
        ),
        (
            "age",
            -(10**15),
            "age must be a whole number from 18 to 100; got a number too large to show",
        ),
        ("bmi", {"v": 1}, "bmi must be a number from 10 to 80; got an object"),
        ("bmi", 80.01, "bmi must be a number from 10 to 80; got 80.01"),
        ("bmi", 1e300, "bmi must be a number from 10 to 80; got 1e+300"),
        ("bmi", -math.inf, "bmi must be a number from 10 to 80; got -inf"),
        ("sex", "x" * 40, f'sex must be one of "female", "male"; got "{"x" * 40}" (a string)'),
        ("sex", "x" * 41, 'sex must be one of "female", "male"; got a long string'),
        ("sex", 'say "hi"', 'sex must be one of "female", "male"; got "say \\"hi\\"" (a string)'),
        ("smoker", 1, 'smoker must be one of "yes", "no"; got 1'),
    ],
)
def test_a_refused_value_is_quoted_in_the_message_as_it_was_sent(name, value, message):
    record, errors = validate_record(with_value(name, value))
    assert record is None
    assert errors == [FieldError(f"/{name}", message, name, "invalid")]
    assert check_value(BY_NAME[name], value) == (None, message)


@pytest.mark.parametrize(
    "name, value, coerced",
    [
        ("age", 40.0, 40),
        ("age", 18, 18),
        ("bmi", 30, 30.0),
        ("bmi", 27.9, 27.9),
        ("children", 10.0, 10),
        ("region", "southeast", "southeast"),
    ],
)
def test_a_valid_value_comes_back_with_its_json_type_and_no_message(name, value, coerced):
    got, message = check_value(BY_NAME[name], value)
    assert (got, type(got), message) == (coerced, type(coerced), None)


def test_a_body_that_is_not_an_object_is_one_problem_listing_the_fields():
    assert validate_record([1, 2], pointer="/4") == (
        None,
        [
            FieldError(
                "/4",
                "a record must be a JSON object with the fields age, sex, bmi, children, smoker, "
                "region; got an array",
                None,
                "not-an-object",
            )
        ],
    )


def test_a_missing_field_says_it_is_required_and_what_it_takes():
    body = {k: v for k, v in EXAMPLE_RECORD.items() if k not in ("sex", "bmi")}
    assert validate_record(body, pointer="/2")[1] == [
        FieldError("/2/sex", 'sex is required: one of "female", "male"', "sex", "missing"),
        FieldError("/2/bmi", "bmi is required: a number from 10 to 80", "bmi", "missing"),
    ]


@pytest.mark.parametrize(
    "key, shown",
    [
        ("weight", "'weight'"),
        ("k" * 40, repr("k" * 40)),
        ("k" * 41, repr("k" * 40) + "..."),
    ],
)
def test_an_unknown_field_is_named_shortened_when_long_with_the_fields_listed(key, shown):
    assert validate_record({**EXAMPLE_RECORD, key: 1})[1] == [
        FieldError(
            f"/{key}",
            f"unknown field {shown}; the fields are age, sex, bmi, children, smoker, region",
            key,
            "unknown",
        )
    ]


def test_a_repeated_key_is_refused_before_unknown_and_invalid_ones():
    body = RepeatedKeys({**EXAMPLE_RECORD, "age": 5, "a/b": 1})
    body.repeated = ("age", "sex")
    assert validate_record(body) == (
        None,
        [
            FieldError(
                "/age",
                "'age' appears more than once in the object; send each field once",
                "age",
                "repeated",
            ),
            FieldError(
                "/sex",
                "'sex' appears more than once in the object; send each field once",
                "sex",
                "repeated",
            ),
            FieldError(
                "/a~1b",
                "unknown field 'a/b'; the fields are age, sex, bmi, children, smoker, region",
                "a/b",
                "unknown",
            ),
            FieldError(
                "/age", "age must be a whole number from 18 to 100; got 5", "age", "invalid"
            ),
        ],
    )


def test_a_repeated_key_is_pointed_at_escaped_and_shortened_when_long():
    body = RepeatedKeys(EXAMPLE_RECORD)
    body.repeated = ("x/" + "y" * 50,)
    assert validate_record(body, pointer="/1")[1] == [
        FieldError(
            "/1/x~1" + "y" * 50,
            repr("x/" + "y" * 38) + "... appears more than once in the object; "
            "send each field once",
            "x/" + "y" * 50,
            "repeated",
        )
    ]


@pytest.mark.parametrize(
    "name, token",
    [
        ("plain", "plain"),
        ("a/b", "a~1b"),
        ("a~b", "a~0b"),
        ("~1", "~01"),
        ("/~", "~1~0"),
    ],
)
def test_pointer_tokens_escape_tilde_before_slash(name, token):
    assert pointer_token(name) == token


def test_an_error_renders_as_its_pointer_and_message_only():
    error = FieldError("/1/age", "age is required", "age", "missing")
    assert error.as_dict() == {"pointer": "/1/age", "message": "age is required"}
    assert (FieldError("", "x").field, FieldError("", "x").reason) == (None, "invalid")


@pytest.mark.parametrize(
    "name, value, low, high, message",
    [
        (
            "age",
            70,
            18,
            64,
            "age 70 is outside the range seen in training (18 to 64); "
            "the estimate is an extrapolation",
        ),
        (
            "bmi",
            53.5,
            15.96,
            53.13,
            "bmi 53.5 is outside the range seen in training "
            "(15.96 to 53.13); the estimate is an extrapolation",
        ),
    ],
)
def test_an_extrapolation_warning_quotes_the_value_and_the_training_range(
    name, value, low, high, message
):
    assert extrapolation_warning(name, value, low, high, "/3") == FieldError(
        f"/3/{name}", message, name, "extrapolated"
    )


@pytest.mark.parametrize(
    "name, text, typed",
    [
        ("age", "19", 19),
        ("age", "+19", 19),
        ("age", "-1", -1),
        ("age", "123456", 123456),
        ("children", "0", 0),
        ("bmi", "27.9", 27.9),
        ("bmi", "27.", 27.0),
        ("bmi", ".5", 0.5),
        ("bmi", "-.5", -0.5),
        ("bmi", "+30", 30.0),
        ("bmi", "123456.125", 123456.125),
    ],
)
def test_text_that_is_a_plain_decimal_number_is_typed_as_json_would_carry_it(name, text, typed):
    got = typed_from_text(BY_NAME[name], text)
    assert (got, type(got)) == (typed, type(typed))


@pytest.mark.parametrize(
    "name, text",
    [
        ("age", "1234567"),
        ("age", "19.0"),
        ("age", "1e3"),
        ("age", " 19"),
        ("age", ""),
        ("age", "\u0661\u0669"),
        ("age", "\uff11\uff19"),
        ("children", "12a"),
        ("bmi", "1234567"),
        ("bmi", "1e3"),
        ("bmi", "nan"),
        ("bmi", "inf"),
        ("bmi", "."),
        ("bmi", "27.9\n"),
        ("bmi", "\u0662\u0667.5"),
        ("sex", "19"),
        ("smoker", "yes"),
    ],
)
def test_any_other_text_stays_text_for_validation_to_refuse_or_accept(name, text):
    assert typed_from_text(BY_NAME[name], text) == text
