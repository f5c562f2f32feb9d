"""Loading the model: verified once at start-up, refused with one clear line when wrong."""
import json
import os
import subprocess
import sys

import joblib
import pytest

from insurance_charges import ConfigError, create_app
from insurance_charges.card import path_for
from insurance_charges.model import ModelLoadError, load_model

from .conftest import ROOT


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
    assert app.extensions["insurance_model"].path == model_copy


def test_tests_can_inject_another_model(record):
    class Constant:
        version, card, training_ranges = "constant", {}, {}

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
    import hashlib

    model_copy.write_bytes(b"this is not a pickle")
    edit_card(model_copy, pipeline_sha256=hashlib.sha256(b"this is not a pickle").hexdigest())
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_model(model_copy)


def test_pickle_without_predict_is_refused(model_copy):
    import hashlib

    joblib.dump({"not": "a pipeline"}, model_copy)
    edit_card(model_copy, pipeline_sha256=hashlib.sha256(model_copy.read_bytes()).hexdigest())
    with pytest.raises(ModelLoadError, match="no pipeline with predict"):
        load_model(model_copy)


def test_bad_setting_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MAX_BATCH", "many")
    with pytest.raises(ConfigError, match="MAX_BATCH='many'"):
        create_app()


def test_loading_the_model_writes_no_logs_file_in_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCARET_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-c", "from insurance_charges.model import load_model;"
                    "load_model().predict([dict(age=30, sex='male', bmi=30.0, children=1,"
                    " smoker='no', region='northeast')])"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []
