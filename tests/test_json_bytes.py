"""The API's JSON answer written from arrays is byte for byte what orjson writes for to_json()."""

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.records import valid_records
from insurance_charges.core.estimates import Estimates, estimate
from insurance_charges.core.json_bytes import answer_json, each_alone_json
from insurance_charges.core.schema import FieldError


def estimates_of(amounts, lower=None, upper=None, *, batch=True, warnings=(), level=0.8):
    """Estimates as the core builds them, from plain lists of dollars."""

    def as_array(values):
        return None if values is None else np.asarray(values, dtype=np.float64)

    return Estimates(
        batch=batch,
        records=[{}] * len(amounts),
        amounts=as_array(amounts),
        lower=as_array(lower),
        upper=as_array(upper),
        level=None if lower is None else level,
        warnings=list(warnings),
        model_version="2026.11.22-gbr-0123abcd",
    )


def reference(estimates: Estimates, request_id: str | None = None) -> bytes:
    return orjson.dumps(estimates.to_json(request_id=request_id))


WARNING = FieldError(
    "/1/age", "age 70 is outside the ages seen in training (18 to 64)", "extrapolated"
)


@pytest.mark.parametrize(
    "estimates",
    [
        estimates_of([1234.5], [1000.0], [2000.25], batch=False),
        estimates_of([1234.5], batch=False),
        estimates_of([1234.5]),
        estimates_of([1234.5], [1000.0], [2000.25]),
        estimates_of([], [], []),
        estimates_of(
            [1234.5, 60000.07], [1000.0, 50000.0], [2000.25, 71234.99], warnings=[WARNING]
        ),
        estimates_of([1234.5, 60000.07], [1000.0, 50000.0], [2000.25, 71234.99], level=0.9),
        estimates_of(
            [5000.0, 1e16, 0.01, 123456789.12],
            [4000.0, 9e15, 0.0, 1e-05],
            [6000.0, 2e16, 0.02, 1.5e20],
        ),
    ],
    ids=[
        "one",
        "one-without-range",
        "batch-without-ranges",
        "batch-of-one",
        "no-records",
        "warned",
        "other-level",
        "odd-magnitudes",
    ],
)
def test_answer_bytes_equal_orjsons_for_every_shape_of_answer(estimates):
    assert answer_json(estimates) == reference(estimates)


@pytest.mark.parametrize(
    "request_id", ["R", "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "a/b+c=d:e@f.g_h-", "x" * 128]
)
@pytest.mark.parametrize(
    "estimates",
    [
        estimates_of([1234.5], [1000.0], [2000.25], batch=False),
        estimates_of([1234.5], batch=False),
        estimates_of([1234.5, 7.0]),
        estimates_of([1234.5], [1000.0], [2000.25]),
        estimates_of(
            [1234.5, 60000.07, 3.0],
            [1000.0, 50000.0, 2.0],
            [2000.25, 71234.99, 4.0],
            warnings=[WARNING],
        ),
    ],
    ids=["one", "one-without-range", "batch-without-ranges", "batch-of-one", "warned"],
)
def test_answer_bytes_with_inference_ids_equal_orjsons(estimates, request_id):
    assert answer_json(estimates, request_id) == reference(estimates, request_id)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9._:@/+=-]{1,128}", fullmatch=True), st.integers(1, 1200))
def test_batch_ids_equal_orjsons_for_any_request_id_and_size(request_id, count):
    estimates = estimates_of([1.0] * count, [0.5] * count, [2.0] * count)
    assert answer_json(estimates, request_id) == reference(estimates, request_id)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(0, 1e12, allow_nan=False)] * 3), min_size=1, max_size=50).map(
        lambda rows: [sorted(row) for row in rows]
    )
)
def test_answer_bytes_equal_orjsons_for_any_dollar_amounts(rows):
    lower, amounts, upper = (list(column) for column in zip(*rows, strict=True))
    estimates = estimates_of(np.round(amounts, 2), np.round(lower, 2), np.round(upper, 2))
    assert answer_json(estimates) == reference(estimates)


def test_a_real_batch_answer_is_the_same_json_as_before(real_model):
    got = estimate(real_model, valid_records(2000, seed=11))
    assert got.lower is not None
    assert answer_json(got) == reference(got)
    assert answer_json(got, "R") == reference(got, "R")
    assert orjson.loads(answer_json(got))["intervals"][1999]["upper"] == float(got.upper[1999])


def alone(estimates: Estimates, row: int, warnings: list) -> Estimates:
    """The one-record Estimates of record ``row``, as if it had been sent alone."""

    def one(values):
        return None if values is None else values[row : row + 1]

    return Estimates(
        batch=False,
        records=[{}],
        amounts=estimates.amounts[row : row + 1],
        lower=one(estimates.lower),
        upper=one(estimates.upper),
        level=estimates.level,
        warnings=warnings,
        model_version=estimates.model_version,
    )


ALONE_WARNING = FieldError(
    "/age", "age 70 is outside the ages seen in training (18 to 64)", "extrapolated"
)


@pytest.mark.parametrize(
    "estimates, rows, warnings",
    [
        (estimates_of([1234.5, 7.0], [1000.0, 5.0], [2000.25, 9.5]), [0, 1], {}),
        (estimates_of([1234.5, 7.0]), [0, 1], {}),
        (estimates_of([1234.5, 7.0, 60000.07], [1000.0, 5.0, 5e4], [2e3, 9.5, 7e4]), [2, 0], {}),
        (estimates_of([1234.5, 7.0], [1000.0, 5.0], [2000.25, 9.5]), [0, 1], {1: [ALONE_WARNING]}),
        (estimates_of([1234.5, 7.0]), [1], {0: [ALONE_WARNING, ALONE_WARNING]}),
        (estimates_of([1.0, 2.0], [0.5, 1.5], [2.0, 3.0], level=0.9), [0, 1], {}),
        (
            estimates_of([5000.0, 1e16, 0.01], [4000.0, 9e15, 0.0], [6000.0, 2e16, 1.5e20]),
            [0, 1, 2],
            {},
        ),
        (estimates_of([1234.5], [1000.0], [2000.25]), [], {}),
    ],
    ids=[
        "each",
        "without-ranges",
        "some-out-of-order",
        "warned",
        "warned-without-ranges",
        "other-level",
        "odd-magnitudes",
        "none",
    ],
)
def test_each_records_answer_equals_orjsons_had_it_been_sent_alone(estimates, rows, warnings):
    assert each_alone_json(estimates, rows, warnings) == [
        reference(alone(estimates, row, warnings.get(k, []))) for k, row in enumerate(rows)
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(0, 1e12, allow_nan=False)] * 3), min_size=1, max_size=50).map(
        lambda rows: [sorted(row) for row in rows]
    )
)
def test_each_records_answer_equals_orjsons_for_any_dollar_amounts(rows):
    lower, amounts, upper = (list(column) for column in zip(*rows, strict=True))
    estimates = estimates_of(np.round(amounts, 2), np.round(lower, 2), np.round(upper, 2))
    every = list(range(len(rows)))
    assert each_alone_json(estimates, every, {}) == [
        reference(alone(estimates, row, [])) for row in every
    ]


@pytest.mark.parametrize(
    "estimates",
    [
        estimates_of([1234.5, 7.0], [1000.0, 5.0], [2000.25, 9.5]),
        estimates_of([1234.5, 7.0]),
    ],
    ids=["with-ranges", "without-ranges"],
)
def test_each_records_answer_alone_carries_its_own_request_id_last(estimates):
    names = ["claims:3:40", 'odd "id"\\']  # orjson escapes what needs it, as to_json's dumps
    assert each_alone_json(estimates, [1, 0], {1: [ALONE_WARNING]}, names) == [
        orjson.dumps(alone(estimates, 1, []).to_json(request_id=names[0])),
        orjson.dumps(alone(estimates, 0, [ALONE_WARNING]).to_json(request_id=names[1])),
    ]


@pytest.mark.parametrize(
    "estimates",
    [
        estimates_of([1234.5, 7.0], [1000.0, 5.0], [2000.25, 9.5]),
        estimates_of([1234.5, 7.0]),
    ],
    ids=["with-ranges", "without-ranges"],
)
@pytest.mark.parametrize("names", [["claims:3:40"], ["claims:3:40", "claims:3:41", "claims:3:42"]])
def test_each_records_answer_is_refused_when_request_ids_do_not_pair_with_rows(estimates, names):
    # An id too few or too many would otherwise drop a record's answer, or give a record
    # another's id, without a word.
    with pytest.raises(ValueError):
        each_alone_json(estimates, [1, 0], {}, names)
