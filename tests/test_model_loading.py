"""Loading the model: verified once at start-up, refused with one clear line when wrong."""
import json
import os
import subprocess
import sys

import joblib
import pytest

from insurance_charges.settings import SettingsError
from insurance_charges.web import create_app, served_model
from insurance_charges.core.model_card import path_for
from insurance_charges.core.estimator import ModelLoadError, load_model

from .conftest import ROOT, vouch_for


def edit_card(model_path, **changes):
    card_path = path_for(model_path)
    card = json.loads(card_path.read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            card[section][name] = value
        else:
            card[section] = value
    card_path.write_text(json.dumps(card))


def test_committed_model_loads_with_its_card(real_model):
    assert real_model.version == real_model.card["model_version"]
    assert set(real_model.training_ranges) == {"age", "bmi", "children"}


def test_app_loads_the_model_from_model_path(model_copy):
    app = create_app({"MODEL_PATH": str(model_copy)})
    assert served_model(app).path == model_copy


def test_tests_can_inject_another_model(record):
    class Constant:
        version, card, training_ranges, likely_range = "constant", {}, {}, None

        def predict(self, records):
            return [1234.5] * len(records)

    app = create_app({"MODEL": Constant()})
    assert app.test_client().post("/predict_api", json=record).get_json() == 1234.5


def test_missing_model_is_refused_saying_how_to_fix_it(tmp_path):
    with pytest.raises(ModelLoadError, match=r"not found; run `make train`.*MODEL_PATH"):
        load_model(tmp_path / "absent.pkl")


def test_missing_card_is_refused(model_copy):
    path_for(model_copy).unlink()
    with pytest.raises(ModelLoadError, match="model card .* is missing"):
        load_model(model_copy)


def test_unreadable_card_is_refused(model_copy):
    path_for(model_copy).write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        load_model(model_copy)


@pytest.mark.parametrize("library", ["pycaret", "scikit-learn"])
def test_model_made_by_other_library_versions_is_refused(model_copy, library):
    edit_card(model_copy, **{f"versions__{library}": "0.0.1"})
    with pytest.raises(ModelLoadError, match=f"made with {library} 0.0.1 \\(installed: "):
        load_model(model_copy)


def test_truncated_model_file_is_refused(model_copy):
    model_copy.write_bytes(model_copy.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="does not match its card's SHA-256"):
        load_model(model_copy)


def test_foreign_file_matching_its_card_is_refused(model_copy):
    model_copy.write_bytes(b"this is not a pickle")
    vouch_for(model_copy)
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_model(model_copy)


def test_pickle_without_predict_is_refused(model_copy):
    joblib.dump({"not": "a pipeline"}, model_copy)
    vouch_for(model_copy)
    with pytest.raises(ModelLoadError, match="no pipeline with predict"):
        load_model(model_copy)


def test_bad_setting_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MAX_BATCH", "many")
    with pytest.raises(SettingsError, match="MAX_BATCH='many'"):
        create_app()


@pytest.mark.subprocess
def test_loading_the_model_writes_no_logs_file_in_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCARET_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", "from insurance_charges.core.estimator import load_model;"
                    "load_model().predict([dict(age=30, sex='male', bmi=30.0, children=1,"
                    " smoker='no', region='northeast')])"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    ({"schema__training_ranges": {"age": {"min": 18, "max": 64}}},
     "schema.training_ranges must give min and max for age, bmi, children"),
    ({"schema__training_ranges": {"age": {"min": "18", "max": 64}, "bmi": {"min": 1, "max": 2},
                                  "children": {"min": 0, "max": 5}}},
     "schema.training_ranges.age must hold numbers min <= max"),
    ({"interval__offsets": {"yes": {"lower": -1, "upper": 1}}},
     "interval.offsets must have one entry for each of no, yes"),
    ({"interval__offsets": {"yes": {"lower": -1, "upper": 1}, "no": {"lower": "a", "upper": 1}}},
     "interval.offsets.no must hold numbers lower <= upper"),
    ({"interval__level": 80}, "interval.level must be a number between 0 and 1"),
    ({"interval__group_by": "bmi"}, "interval.group_by 'bmi' is not a category field"),
    ({"interval__scale": "percent"}, "interval.scale dollars or log"),
    ({"versions__numpy": 1.26}, "versions must map each library to a version string"),
    ({"model_version": "2026.11.21-gbr-00000000"}, "does not end with the first 8 characters"),
    ({"metrics": {}}, "lacks metrics.holdout"),
    ({"data__rows": 0}, "data.rows must be a positive whole number"),
])
def test_a_card_that_would_fail_requests_stops_loading_with_one_line(model_copy, change, message):
    edit_card(model_copy, **change)
    with pytest.raises(ModelLoadError) as raised:
        load_model(model_copy)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_card_without_an_interval_still_loads(model_copy):
    edit_card(model_copy, interval=None)
    assert load_model(model_copy).likely_range is None


def test_a_model_that_cannot_estimate_the_example_record_is_refused(model_copy, monkeypatch):
    from insurance_charges.core import estimator

    monkeypatch.setattr(estimator.Model, "predict", lambda self, records: [float("nan")])
    with pytest.raises(ModelLoadError, match=r"cannot estimate a known record \(the estimate is "
                                             r"nan, not a positive number of dollars\)"):
        load_model(model_copy)


def test_a_directory_as_the_model_is_not_a_regular_file(tmp_path):
    with pytest.raises(ModelLoadError, match="is not a regular file"):
        load_model(tmp_path)
