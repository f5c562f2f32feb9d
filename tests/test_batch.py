"""Whole-batch validation and JSON parsing give exactly the per-record and json.loads answers."""

import gc
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.core import strict_json, validation
from insurance_charges.core.schema import CATEGORY, FIELDS, RepeatedKeys, record_problems
from insurance_charges.core.strict_json import _finite_float, _object, _reject_constant, parse_json
from insurance_charges.core.validation import (
    alone,
    in_batch,
    range_warnings,
    validate_each,
    validate_records,
)
from insurance_charges.web import json_body

from .json_strategies import json_values

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RANGES = {
    "age": {"min": 18, "max": 64},
    "bmi": {"min": 15.96, "max": 53.13},
    "children": {"min": 0, "max": 5},
}
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.sampled_from([30.0, 27, "male", "yes", "southwest", ""])
    | st.text(max_size=8)
)
valid = st.sampled_from(valid_records(300, seed=11))
# Mostly valid records, some with one value replaced, a field dropped or a key added.
records = st.one_of(
    valid,
    valid,
    st.builds(
        lambda r, k, v: {**r, k: v}, valid, st.sampled_from([f.name for f in FIELDS]), scalars
    ),
    st.builds(
        lambda r, k: {n: v for n, v in r.items() if n != k},
        valid,
        st.sampled_from([f.name for f in FIELDS]),
    ),
    st.builds(lambda r, v: {**r, "extra": v}, valid, scalars),
    scalars,
)


one_by_one = validate_each


@pytest.fixture
def columns_always(monkeypatch):
    """Take the column-at-a-time path even for the short lists generated here."""
    monkeypatch.setattr(validation, "COLUMNS_FROM", 1)


@SETTINGS
@given(items=st.lists(records, min_size=1, max_size=6), batch=st.booleans())
def test_batch_validation_equals_validating_each_record(columns_always, items, batch):
    locate = in_batch if batch else alone
    fast, fast_errors = validate_records(items, locate)
    slow, slow_errors = one_by_one(items, locate)
    assert fast_errors == slow_errors
    assert fast == slow
    if fast is not None:  # same values and the same Python types (int vs float)
        assert [[type(r[f.name]) for f in FIELDS] for r in fast] == [
            [type(r[f.name]) for f in FIELDS] for r in slow
        ]


def test_batch_validation_turns_whole_numbers_for_bmi_into_floats(columns_always):
    item = {**valid_records(1)[0], "bmi": 30}
    records, errors = validate_records([item], alone)
    assert errors == [] and records[0]["bmi"] == 30.0 and isinstance(records[0]["bmi"], float)


def test_range_warnings_list_each_value_outside_training_by_record_then_field():
    inside = {"age": 30, "bmi": 30.0, "children": 1}
    records = [inside, {**inside, "children": 6, "age": 70}, inside, {**inside, "bmi": 15.9}]
    got = range_warnings(records, RANGES, in_batch)
    assert [(w.pointer, w.field, w.reason) for w in got] == [
        ("/1/age", "age", "extrapolated"),
        ("/1/children", "children", "extrapolated"),
        ("/3/bmi", "bmi", "extrapolated"),
    ]
    assert got[0].message == (
        "age 70 is outside the range seen in training (18 to 64); the estimate is an extrapolation"
    )


@pytest.mark.parametrize(
    "name, value, flagged",
    [
        ("age", 18, False),
        ("age", 64, False),
        ("age", 65, True),
        ("bmi", 15.96, False),
        ("bmi", 15.95, True),
        ("bmi", 53.14, True),
        ("children", 5, False),
        ("children", 6, True),
    ],
)
def test_the_training_range_includes_both_of_its_ends(name, value, flagged):
    record = {"age": 30, "bmi": 30.0, "children": 1, name: value}
    assert bool(range_warnings([record], RANGES, alone)) is flagged


def stdlib(raw: bytes):
    return json.loads(
        raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
    )


def outcome(parse, raw):
    try:
        return "ok", repr(parse(raw))
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


@SETTINGS
@given(value=json_values)
def test_parse_json_equals_json_loads_on_any_json(value):
    raw = json.dumps(value).encode()
    assert outcome(lambda b: parse_json(b, b.decode()), raw) == outcome(stdlib, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"age": 18446744073709551616}',
        b'{"age": -9223372036854775809}',
        b'{"age": 1' + b"0" * 400 + b"}",
        b'{"bmi": 1e999}',
        b'{"bmi": 1e-999}',
        b"[NaN]",
        b'{"sex": "\\ud800"}',
        b"[" * 1100 + b"]" * 1100,
        b'{"a": 1, "a": 2}',
        b'"\\u0000"',
        b'{"bmi": 0.0001234567890123456789}',
        b"\xef\xbb\xbf{}",
        b"[1,]",
        b"01",
        b" 7 ",
    ],
)
def test_parse_json_equals_json_loads_at_the_edges(raw):
    assert outcome(lambda b: parse_json(b, b.decode()), raw) == outcome(stdlib, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"age": 30, "age": 31}',
        b'[{"age": 30}, {"age": 30, "age": 31}]',
        b'{"at": "10:30", "at": "11:00"}',
        # One colon in a string and orjson's one key: counting any text longer than ":" (as
        # b"XX:XX") would find as many as keys and take orjson's reduced object.
        b'{"at": "XX:XX", "at": 1}',
    ],
)
def test_parse_json_marks_an_object_that_repeats_a_key_however_colons_fall_in_strings(raw):
    value = parse_json(raw, raw.decode())
    marked = value[-1] if isinstance(value, list) else value
    assert isinstance(marked, RepeatedKeys) and len(marked.repeated) == 1


@pytest.mark.parametrize(
    "raw, by_json",
    [
        (b'{"age": 30, "sex": "male"}', False),
        (b'[{"age": 30}, {"age": 31, "bmi": 27.9}]', False),
        (b'{"age": 30, "age": 31}', True),  # orjson keeps one "age" of two
        (b'{"note": "a: b"}', True),  # more colons than keys: a key may repeat
        (b'{"age": 1234567890123456789}', True),  # 19 digits: orjson may read a float
        (b'{"sex": "\\ud800"}', True),  # a lone surrogate, which orjson refuses
    ],
)
def test_parse_json_leaves_to_json_only_a_body_orjson_may_read_otherwise(monkeypatch, raw, by_json):
    # orjson reads a batch about three times faster than json: json is the fallback, so a
    # plain body never reaches json's per-object hook.
    objects = []

    def counted(pairs):
        objects.append(pairs)
        return _object(pairs)

    monkeypatch.setattr(strict_json, "_object", counted)
    parse_json(raw, raw.decode())
    assert bool(objects) is by_json


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"bmi": 1e999}', "number 1e999 is out of range"),
        (b'{"bmi": -1e999}', "number -1e999 is out of range"),
        # A number of 400 digits is quoted by its first 20 characters.
        (b'{"bmi": 1' + b"0" * 400 + b".5}", "number 1" + "0" * 19 + " is out of range"),
    ],
)
def test_a_number_beyond_a_float_is_refused_quoting_its_first_20_characters(raw, message):
    with pytest.raises(ValueError) as refused:
        parse_json(raw, raw.decode())
    assert str(refused.value) == message


@pytest.mark.parametrize("keys", [1_000, 5_000])
def test_finding_repeated_keys_compares_each_key_a_few_times_not_with_every_other(keys):
    comparisons = []

    class Key(str):
        """A key that counts how often it is compared for equality."""

        __hash__ = str.__hash__

        def __eq__(self, other):
            comparisons.append(1)
            return str.__eq__(self, other)

    names = [f"k{i}" for i in range(keys)]
    marked = _object([(Key(n), 1) for n in names] + [(Key(n), 2) for n in names])
    compared = len(comparisons)
    assert marked == {n: 2 for n in names} and marked.repeated == tuple(names)
    # A lookup or two per key, not a scan of the keys found so far (10^5 keys sent twice
    # took minutes).
    assert compared <= 4 * keys


@pytest.mark.parametrize(
    "body, status",
    [
        (b'[{"age": 19}]', 422),
        (b"[" * 5000 + b"]" * 5000, 400),
        (b'{"age": NaN}', 400),
        (b"[" + b"[]," * 100_000 + b"[]]", 413),
    ],
    ids=["a record", "nested too deeply", "not JSON", "100,000 arrays"],
)
def test_a_body_is_parsed_with_the_cycle_collector_paused_and_resumed_after(
    client, monkeypatch, body, status
):
    # Parsed JSON holds no cycles, but every container it makes would count towards the
    # collector's next pass over all of them: 2 MiB of [] cost 1.5 s instead of 0.2 s.
    enabled = []

    def watched(raw, text):
        enabled.append(gc.isenabled())
        return parse_json(raw, text)

    monkeypatch.setattr(json_body, "parse_json", watched)
    assert gc.isenabled()
    assert (
        client.post("/api/v1/predict", data=body, content_type="application/json").status_code
        == status
    )
    assert enabled == [False] and gc.isenabled()


def test_the_cycle_collector_stays_off_after_a_parse_when_it_was_off_before():
    gc.disable()
    try:
        with strict_json.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_predictions_are_answered_with_the_bytes_jsonify_would_give(app, client):
    import flask

    batch = valid_records(300, seed=8)  # schema corners: warnings included
    for body in (batch, batch[0]):
        response = client.post("/api/v1/predict", json=body)
        assert response.status_code == 200 and response.mimetype == "application/json"
        with app.app_context():
            expected = flask.jsonify(**response.get_json()).get_data()
        assert response.get_data() == expected


def corners(n):
    """``n`` valid records covering every limit and choice, some BMIs given as whole numbers."""
    ages, bmis, children = (18, 100, 40), (10, 80, 27.9), (0, 10, 2)
    regions = ("northeast", "northwest", "southeast", "southwest")
    return [
        {
            "age": ages[i % 3],
            "sex": ("female", "male")[i % 2],
            "bmi": bmis[i % 3],
            "children": children[i % 3],
            "smoker": ("yes", "no")[i % 2],
            "region": regions[i % 4],
        }
        for i in range(n)
    ]


@pytest.fixture
def per_record_calls(monkeypatch):
    """The pointer of each record checked by the per-record path (the one that words messages)."""
    calls = []

    def counted(body, pointer, record):
        calls.append(pointer)
        return record_problems(body, pointer, record)

    monkeypatch.setattr(validation, "record_problems", counted)
    return calls


def test_a_long_batch_of_valid_records_is_checked_a_column_at_a_time(per_record_calls):
    items = corners(validation.COLUMNS_FROM)
    records, errors = validate_records(items, in_batch)
    assert per_record_calls == [] and errors == [] and errors.total == 0
    assert records == [{**item, "bmi": float(item["bmi"])} for item in items]
    assert [type(r["bmi"]) for r in records] == [float] * len(items)


@pytest.mark.parametrize(
    "items",
    [
        corners(validation.COLUMNS_FROM),
        [{**r, "bmi": 27.9} for r in corners(validation.COLUMNS_FROM)],
    ],
    ids=["some-whole-number-bmis", "float-bmis"],
)
def test_a_long_batchs_columns_are_built_once_by_validation_not_again_when_read(monkeypatch, items):
    # The model, the training-range check and the likely range all read the columns: built
    # again, they would cost what checking a column at a time saved.
    built = []

    def counted(build):
        def counting(*args):
            built.append(build.__name__)
            return build(*args)

        return counting

    monkeypatch.setattr(validation, "_column", counted(validation._column))
    monkeypatch.setattr(validation, "_codes", counted(validation._codes))
    records, _ = validate_records(items, in_batch)
    during = sorted(built)
    columns = validation.columns_of(records)
    codes = {f.name: validation.codes_of(records, f.name) for f in FIELDS if f.kind == CATEGORY}
    assert during == ["_codes"] * 3 + ["_column"] * 3 and sorted(built) == during
    assert [columns[f.name].tolist() for f in FIELDS] == [
        [r[f.name] for r in items] for f in FIELDS
    ]
    assert {name: codes[name].tolist() for name in codes} == {
        name: [validation.CODES[name][r[name]] for r in items] for name in codes
    }


def test_a_short_batch_is_checked_one_record_at_a_time(per_record_calls):
    items = corners(validation.COLUMNS_FROM - 1)
    records, errors = validate_records(items, in_batch)
    assert per_record_calls == [f"/{i}" for i in range(len(items))] and errors == []
    assert records == [{**item, "bmi": float(item["bmi"])} for item in items]


@pytest.mark.parametrize("count", [3, 20])  # one at a time below 8 records, columns from 8
def test_a_batch_lists_as_many_problems_as_asked_and_counts_one_more(count):
    checked, refused = validate_records([{}] * count, in_batch, listed=5)
    assert checked is None and [e.pointer for e in refused] == [
        "/0/age",
        "/0/sex",
        "/0/bmi",
        "/0/children",
        "/0/smoker",
    ]
    assert (refused.total, refused.complete) == (6, False)


@pytest.mark.parametrize("size", [3, 7, 8, 12])  # one at a time below 8 records, columns from 8
def test_range_warnings_are_the_same_one_at_a_time_and_column_at_a_time(size):
    inside = {"age": 30, "bmi": 30.0, "children": 1}
    records = [inside] * (size - 2) + [
        {**inside, "age": 65, "bmi": 15.95},
        {**inside, "children": 6},
    ]
    got = range_warnings(records, RANGES, in_batch)
    assert [w.pointer for w in got] == [
        f"/{size - 2}/age",
        f"/{size - 2}/bmi",
        f"/{size - 1}/children",
    ]


@pytest.mark.parametrize("size", [2, 8])  # one at a time, and column at a time
def test_values_exactly_at_the_training_limits_are_not_extrapolations(size):
    low = {"age": 18, "bmi": 15.96, "children": 0}
    high = {"age": 64, "bmi": 53.13, "children": 5}
    assert range_warnings([low, high] * (size // 2), RANGES, in_batch) == []
