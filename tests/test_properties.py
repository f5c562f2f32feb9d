"""Property-based tests: any JSON value validates to a record or yields 4xx with pointers."""

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insurance_charges.core.schema import CATEGORY, FIELDS, INTEGER, validate_record

from .test_schema import parse_form

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def valid_value(field):
    if field.kind == CATEGORY:
        return st.sampled_from(field.choices)
    if field.kind == INTEGER:
        return st.integers(int(field.minimum), int(field.maximum))
    return st.floats(field.minimum, field.maximum)


valid_records = st.fixed_dictionaries({f.name: valid_value(f) for f in FIELDS})
# Near-valid records: each field valid, hostile or missing, sometimes with extra keys.
near_records = st.builds(
    lambda base, hostile, drop, extra: {
        **{k: v for k, v in {**base, **hostile}.items() if k not in drop},
        **extra,
    },
    valid_records,
    st.dictionaries(st.sampled_from([f.name for f in FIELDS]), json_values, max_size=3),
    st.sets(st.sampled_from([f.name for f in FIELDS]), max_size=2),
    st.dictionaries(st.text(max_size=6), scalars, max_size=2),
)
bodies = json_values | near_records | st.lists(near_records, min_size=1, max_size=5)


@SETTINGS
@given(value=json_values | near_records)
def test_any_json_value_validates_to_a_record_or_errors_with_pointers(value):
    record, errors = validate_record(value, "/7")
    if errors:
        assert record is None
        assert all(e.pointer.startswith("/7") and e.message for e in errors)
    else:
        assert validate_record(record)[1] == [] and list(record) == [f.name for f in FIELDS]


@SETTINGS
@given(body=bodies)
def test_api_answers_any_json_body_with_200_or_a_4xx_problem(client, body):
    response = client.post(
        "/api/v1/predict", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code in (200, 400, 413, 422)
    if response.status_code == 422:
        problem = json.loads(response.data)
        assert response.mimetype == "application/problem+json"
        assert problem["errors"] and all("pointer" in e for e in problem["errors"])
    elif response.status_code == 200:
        payload = response.get_json()
        values = payload["predictions"] if isinstance(body, list) else [payload["prediction"]]
        assert all(math.isfinite(v) for v in values)


@SETTINGS
@given(record=valid_records)
def test_every_valid_record_gets_a_finite_positive_estimate(client, record):
    response = client.post("/api/v1/predict", json=record)
    assert response.status_code == 200 and response.get_json()["prediction"] > 0


@SETTINGS
@given(
    form=st.dictionaries(
        st.sampled_from([f.name for f in FIELDS] + ["x"]), st.text(max_size=12), max_size=7
    )
)
def test_any_form_text_parses_to_a_record_or_field_messages(form):
    record, errors = parse_form(form)
    assert (record is None) == bool(errors)
    assert set(errors) <= {f.name for f in FIELDS} | {"form"}
