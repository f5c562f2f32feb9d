"""The compiled fast path gives pipeline.predict's numbers, or the model serves the slow way."""

import dataclasses
import logging
import math

import numpy as np
import pandas as pd
import pytest

from devtools.records import valid_records
from insurance_charges.core.schema import BY_NAME, CATEGORY, FIELD_NAMES, FIELDS
from insurance_charges.core.validation import columns_of
from insurance_charges.paths import DEFAULT_MODEL_PATH
from insurance_charges.serving import fastpath
from insurance_charges.serving.fastpath import compiler, parity, predictor, steps
from insurance_charges.serving.model import load_model

TOLERANCE = parity.TOLERANCE  # 1e-9 relative, on every record


def pipeline_predict(pipeline, records) -> np.ndarray:
    return pipeline.predict(pd.DataFrame.from_records(records, columns=list(FIELD_NAMES)))


class Lines(logging.Handler):
    """Collects the messages of one logger (the app's loggers do not propagate)."""

    def __init__(self, name):
        super().__init__()
        self.messages, self.logger = [], logging.getLogger(name)

    def emit(self, record):
        self.messages.append((record.levelname, record.getMessage()))

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)


def test_committed_model_serves_through_the_fast_path(real_model):
    assert real_model.fast is not None
    assert [s.name for s in real_model.fast.steps] == [n for n, _ in real_model.pipeline.steps[:-1]]


@pytest.mark.slow
def test_fast_path_equals_pipeline_predict_on_every_row_of_the_data_set(real_model, data_path):
    records = pd.read_csv(data_path)[list(FIELD_NAMES)].to_dict("records")
    want = pipeline_predict(real_model.pipeline, records)
    assert len(records) == 1338
    assert parity.relative_differences(real_model.predict(records), want).max() <= TOLERANCE
    # One at a time too, as single-record requests arrive (every 20th row keeps this quick).
    singles = records[::20]
    assert (
        parity.relative_differences(
            [real_model.predict([r])[0] for r in singles],
            [pipeline_predict(real_model.pipeline, [r])[0] for r in singles],
        ).max()
        <= TOLERANCE
    )


def test_fast_path_equals_pipeline_predict_on_10000_random_valid_records(real_model):
    records = valid_records(10_000, seed=2024)
    ranges = real_model.training_ranges
    # The sample reaches the schema's limits and goes past the ranges seen in training.
    for name in ranges:
        values = [r[name] for r in records]
        assert min(values) == BY_NAME[name].minimum and max(values) == BY_NAME[name].maximum
        assert min(values) < ranges[name]["min"] or max(values) > ranges[name]["max"]
    got = real_model.predict(records)
    want = pipeline_predict(real_model.pipeline, records)
    assert parity.relative_differences(got, want).max() <= TOLERANCE
    assert all(isinstance(x, float) and math.isfinite(x) for x in got)


def test_fast_path_fills_gaps_with_the_fitted_imputer_values(real_model):
    nan = float("nan")
    holes = [
        {"age": 40, "sex": "male", "bmi": nan, "children": 2, "smoker": "no", "region": nan},
        {
            "age": nan,
            "sex": nan,
            "bmi": 31.2,
            "children": nan,
            "smoker": "yes",
            "region": "northeast",
        },
    ]
    got = real_model.fast.predict(holes)
    assert parity.relative_differences(got, pipeline_predict(real_model.pipeline, holes)).max() == 0


def test_model_without_the_fast_path_gives_the_same_numbers(real_model):
    slow = dataclasses.replace(real_model, fast=None)
    records = valid_records(300, seed=5)
    assert slow.fast is None
    assert (
        parity.relative_differences(real_model.predict(records), slow.predict(records)).max()
        <= TOLERANCE
    )


def test_loading_logs_one_line_saying_the_fast_path_is_on():
    with Lines("insurance_charges.serving.model") as lines:
        load_model(DEFAULT_MODEL_PATH)
    fast_lines = [m for m in lines.messages if "fast path" in m[1]]
    assert fast_lines == [("INFO", fast_lines[0][1])]
    assert "max relative difference 0.0e+00" in fast_lines[0][1]


def test_unknown_step_logs_one_warning_and_serves_through_pipeline_predict(monkeypatch):
    monkeypatch.delitem(compiler.COMPILERS, "OneHotEncoder")
    with Lines("insurance_charges.serving.model") as lines:
        model = load_model(DEFAULT_MODEL_PATH)
    assert model.fast is None
    assert [m for m in lines.messages if "fast path" in m[1]] == [
        (
            "WARNING",
            "fast path off, serving through pipeline.predict: step 'onehot_encoding' "
            "(OneHotEncoder) has no fast equivalent",
        )
    ]
    records = valid_records(50, seed=1)
    assert model.predict(records).tolist() == pipeline_predict(model.pipeline, records).tolist()


def test_a_step_that_drifts_from_pycaret_is_caught_on_the_probe(monkeypatch):
    def wrong_imputer(t, include):
        apply, names, row = fastpath.steps.simple_imputer(t, include)
        return steps.Compiled(
            lambda columns: [c * 1.001 if c.dtype != object else c for c in apply(columns)],
            names,
            row,
        )

    monkeypatch.setitem(compiler.COMPILERS, "SimpleImputer", wrong_imputer)
    fast, note = fastpath.build(load_model(DEFAULT_MODEL_PATH).pipeline)
    assert fast is None
    assert note.endswith(
        "step 'numerical_imputer' (SimpleImputer) differs from PyCaret on column 'age'"
    )


def test_a_few_records_are_encoded_record_by_record_with_the_same_numbers(real_model):
    assert real_model.fast.rows
    records = valid_records(400, seed=17) + parity.corner_records()
    one_by_one = [real_model.fast.predict([r])[0] for r in records]
    assert one_by_one == pipeline_predict(real_model.pipeline, records).tolist()
    few = records[: predictor.ROWS_BELOW - 1]
    assert (
        real_model.fast.encode_rows(few).tolist()
        == real_model.fast.encode(predictor.inputs(few)).tolist()
    )


def test_a_record_by_record_step_that_differs_leaves_a_few_records_to_the_columns(monkeypatch):
    def wrong_row(t, include):
        apply, names, row = fastpath.steps.ordinal_encoder(t, include)
        return steps.Compiled(
            apply, names, lambda values: [v * 2 if isinstance(v, float) else v for v in row(values)]
        )

    monkeypatch.setitem(compiler.COMPILERS, "OrdinalEncoder", wrong_row)
    fast, note = fastpath.build(load_model(DEFAULT_MODEL_PATH).pipeline)
    assert fast is not None and not fast.rows
    assert note.endswith("a few records are encoded column by column (record by record differs)")
    one = valid_records(1, seed=2)
    pipeline = load_model(DEFAULT_MODEL_PATH).pipeline
    assert fast.predict(one).tolist() == pipeline_predict(pipeline, one).tolist()


def test_a_record_by_record_step_that_fails_leaves_a_few_records_to_the_columns(monkeypatch):
    def failing_row(t, include):
        apply, names, _ = fastpath.steps.simple_imputer(t, include)
        return steps.Compiled(apply, names, lambda values: 1 / 0)

    monkeypatch.setitem(compiler.COMPILERS, "SimpleImputer", failing_row)
    fast, note = fastpath.build(load_model(DEFAULT_MODEL_PATH).pipeline)
    assert fast is not None and not fast.rows
    assert note.endswith("(record by record failed: ZeroDivisionError: division by zero)")


def test_a_step_without_a_record_by_record_twin_leaves_a_few_records_to_the_columns(monkeypatch):
    def columns_only(t, include):
        return steps.Compiled(*fastpath.steps.simple_imputer(t, include)[:2])

    monkeypatch.setitem(compiler.COMPILERS, "SimpleImputer", columns_only)
    fast, note = fastpath.build(load_model(DEFAULT_MODEL_PATH).pipeline)
    assert fast is not None and not fast.rows
    assert note.endswith("(a step has no per-record twin)")


def test_predictions_that_differ_from_pipeline_predict_turn_the_fast_path_off(monkeypatch):
    class Skewed:
        def __init__(self, estimator):
            self.estimator = estimator

        def predict(self, X):
            return self.estimator.predict(X) * (1 + 1e-7)

    real = compiler._array_estimator
    monkeypatch.setattr(compiler, "_array_estimator", lambda e, f: Skewed(real(e, f)))
    fast, note = fastpath.build(load_model(DEFAULT_MODEL_PATH).pipeline)
    assert fast is None
    assert "differs from pipeline.predict by up to 1.0e-07 relative (limit 1e-09)" in note


def test_an_estimator_fitted_on_another_column_order_is_refused(real_model):
    import copy

    pipeline = copy.deepcopy(real_model.pipeline)
    estimator = pipeline.steps[-1][1]
    estimator.feature_names_in_ = estimator.feature_names_in_[::-1]
    fast, note = fastpath.build(pipeline)
    assert fast is None and "fitted on columns in another order" in note


def test_the_estimator_gets_no_feature_name_warnings_per_call(real_model, recwarn):
    real_model.predict(valid_records(10, seed=3))
    assert not [w for w in recwarn if "feature names" in str(w.message)]
    # ...while the estimator itself still carries its names for anyone else who uses it.
    assert list(real_model.pipeline.steps[-1][1].feature_names_in_) == real_model.fast.features


def test_gradient_boosting_is_called_without_its_per_call_checks_with_the_same_numbers(real_model):
    from insurance_charges.serving.fastpath.estimators import GradientBoosting

    assert isinstance(real_model.fast.estimator, GradientBoosting)
    records = valid_records(2_000, seed=21)
    X = real_model.fast.encode(columns_of(records))
    estimator = real_model.pipeline.steps[-1][1]
    own = estimator.predict(pd.DataFrame(X, columns=real_model.fast.features))
    assert real_model.fast.estimator.predict(X).tolist() == own.tolist()


def test_categories_encoded_by_their_codes_equal_those_encoded_value_by_value(real_model):
    records = valid_records(3_000, seed=8)
    coded = predictor.inputs(records)
    assert all(isinstance(coded[f.name], steps.Coded) for f in FIELDS if f.kind == CATEGORY)
    assert (
        real_model.fast.encode(coded).tolist()
        == real_model.fast.encode(columns_of(records)).tolist()
    )


def test_a_category_that_is_no_choice_is_encoded_value_by_value(real_model):
    records = [{**valid_records(1, seed=3)[0], "region": "atlantis"}]
    assert isinstance(predictor.inputs(records)["region"], np.ndarray)
    assert (
        real_model.fast.predict(records).tolist()
        == pipeline_predict(real_model.pipeline, records).tolist()
    )


def test_an_estimator_without_a_direct_twin_keeps_its_own_predict():
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from insurance_charges.serving.fastpath.estimators import direct

    linear = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    assert direct(linear) is linear
    zero_init = GradientBoostingRegressor(init="zero", n_estimators=2).fit([[0.0], [1.0]], [0, 1])
    assert direct(zero_init) is zero_init  # no DummyRegressor constant to start from
