"""Loading the model: verified once at start-up, refused with one clear line when wrong."""

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import signature_path
from insurance_charges.serving.model import ModelLoadError, load_model
from insurance_charges.settings import SettingsError
from insurance_charges.web import create_app, served_model

from .conftest import ROOT, sign_with, vouch_for


@pytest.fixture
def signed_copy(model_copy, signing_key, test_keys):
    """A copy of the committed model that tests may change, then re-sign with the tests' key.

    Returns (path, resign, load): ``resign()`` signs the files as they now are, ``load()``
    loads them trusting only the tests' key.
    """
    sign_with(signing_key, model_copy)
    return (
        model_copy,
        lambda: sign_with(signing_key, model_copy),
        lambda: load_model(model_copy, test_keys),
    )


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


def test_unreadable_card_is_refused(signed_copy):
    path, resign, load = signed_copy
    path_for(path).write_text("{not json")
    resign()
    with pytest.raises(ModelLoadError, match="unreadable"):
        load()


@pytest.mark.parametrize("library", ["pycaret", "scikit-learn"])
def test_model_made_by_other_library_versions_is_refused(signed_copy, library):
    path, resign, load = signed_copy
    edit_card(path, **{f"versions__{library}": "0.0.1"})
    resign()
    with pytest.raises(ModelLoadError, match=f"made with {library} 0.0.1 \\(installed: "):
        load()


def test_a_pickle_that_differs_from_its_signed_card_is_refused(signed_copy):
    path, resign, load = signed_copy
    path.write_bytes(path.read_bytes()[:1000])
    resign()  # signed as it is: still not the pipeline its card describes
    with pytest.raises(ModelLoadError, match="does not match its card's SHA-256"):
        load()


def test_a_signed_foreign_file_is_refused(signed_copy, signing_key):
    path, _, load = signed_copy
    path.write_bytes(b"this is not a pickle")
    vouch_for(path, signing_key)
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load()


def test_a_signed_pickle_without_predict_is_refused(signed_copy, signing_key):
    path, _, load = signed_copy
    joblib.dump({"not": "a pipeline"}, path)
    vouch_for(path, signing_key)
    with pytest.raises(ModelLoadError, match="no pipeline with predict"):
        load()


def test_a_pipeline_of_another_kind_than_its_card_says_is_refused(signed_copy, signing_key):
    from sklearn.dummy import DummyRegressor
    from sklearn.pipeline import Pipeline

    path, _, load = signed_copy
    joblib.dump(Pipeline([("m", DummyRegressor(constant=1.0, strategy="constant"))]), path)
    vouch_for(path, signing_key)
    with pytest.raises(
        ModelLoadError, match="holds a DummyRegressor, but its card says GradientBoostingRegressor"
    ):
        load()


class Payload:
    """Unpickling this writes a file: proof that a pickle was (or was not) ever unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_an_unsigned_model_is_refused_before_it_is_unpickled(model_copy, tmp_path):
    marker = tmp_path / "payload-ran"
    joblib.dump(Payload(marker), model_copy)
    vouch_for(model_copy)  # a card that matches, as anyone can write
    signature_path(model_copy).unlink()
    with pytest.raises(ModelLoadError, match=r"is not signed \(no insurance-charges.sig.json\)"):
        load_model(model_copy)
    assert not marker.exists()


def test_a_model_signed_by_an_untrusted_key_is_refused_before_it_is_unpickled(model_copy, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    marker = tmp_path / "payload-ran"
    joblib.dump(Payload(marker), model_copy)
    vouch_for(model_copy, Ed25519PrivateKey.generate())  # the attacker's own key
    with pytest.raises(
        ModelLoadError, match="signed by key [0-9a-f]{16}, which this service does not trust"
    ):
        load_model(model_copy)
    assert not marker.exists()


@pytest.mark.parametrize("tamper", ["card", "pipeline", "signature"])
def test_a_model_changed_after_signing_is_refused(signed_copy, tmp_path, tamper):
    path, _, load = signed_copy
    if tamper == "card":
        edit_card(path, estimator="DummyRegressor")
    elif tamper == "pipeline":
        joblib.dump(Payload(tmp_path / "payload-ran"), path)
        vouch_for(path)  # re-computed checksum and version, but no new signature
    else:
        signed = json.loads(signature_path(path).read_text())
        signature_path(path).write_text(json.dumps({**signed, "signature": "AAAA"}))
    with pytest.raises(ModelLoadError, match="signature does not match the pipeline and card"):
        load()
    assert not (tmp_path / "payload-ran").exists()


def test_a_garbled_signature_file_is_refused(signed_copy):
    path, _, load = signed_copy
    signature_path(path).write_text("not json")
    with pytest.raises(ModelLoadError, match="its signature file is not a signature document"):
        load()


def test_bad_setting_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MAX_BATCH", "many")
    with pytest.raises(SettingsError, match="MAX_BATCH='many'"):
        create_app()


@pytest.mark.slow
@pytest.mark.subprocess
def test_loading_the_model_writes_no_logs_file_in_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYCARET_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from insurance_charges.paths import DEFAULT_MODEL_PATH;"
            "from insurance_charges.serving.model import load_model;"
            "load_model(DEFAULT_MODEL_PATH).predict([dict(age=30, sex='male', "
            "bmi=30.0, children=1, smoker='no', region='northeast')])",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"schema__training_ranges": {"age": {"min": 18, "max": 64}}},
            "schema.training_ranges must give min and max for age, bmi, children",
        ),
        (
            {
                "schema__training_ranges": {
                    "age": {"min": "18", "max": 64},
                    "bmi": {"min": 1, "max": 2},
                    "children": {"min": 0, "max": 5},
                }
            },
            "schema.training_ranges.age must hold numbers min <= max",
        ),
        (
            {"interval__offsets": {"yes": {"lower": -1, "upper": 1}}},
            "interval.offsets must have one entry for each of no, yes",
        ),
        (
            {
                "interval__offsets": {
                    "yes": {"lower": -1, "upper": 1},
                    "no": {"lower": "a", "upper": 1},
                }
            },
            "interval.offsets.no must hold numbers lower <= upper",
        ),
        ({"interval__level": 80}, "interval.level must be a number between 0 and 1"),
        ({"interval__group_by": "bmi"}, "interval.group_by 'bmi' is not a category field"),
        ({"interval__scale": "percent"}, "interval.scale dollars or log"),
        ({"versions__numpy": 1.26}, "versions must map each library to a version string"),
        ({"model_version": "2026.11.21-gbr-00000000"}, "does not end with the first 8 characters"),
        ({"metrics": {}}, "lacks metrics.holdout"),
        ({"data__rows": 0}, "data.rows must be a positive whole number"),
    ],
)
def test_a_card_that_would_fail_requests_stops_loading_with_one_line(signed_copy, change, message):
    path, resign, load = signed_copy
    edit_card(path, **change)
    resign()
    with pytest.raises(ModelLoadError) as raised:
        load()
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_card_without_an_interval_still_loads(signed_copy):
    path, resign, load = signed_copy
    edit_card(path, interval=None)
    resign()
    assert load().likely_range is None


def test_a_model_that_cannot_estimate_the_example_record_is_refused(model_copy, monkeypatch):
    from insurance_charges.serving import model as estimator

    monkeypatch.setattr(estimator.Model, "predict", lambda self, records: [float("nan")])
    with pytest.raises(
        ModelLoadError,
        match=r"cannot estimate a known record \(the estimate is "
        r"nan, not a positive number of dollars\)",
    ):
        load_model(model_copy)


def test_a_directory_as_the_model_is_not_a_regular_file(tmp_path):
    with pytest.raises(ModelLoadError, match="is not a regular file"):
        load_model(tmp_path)
