"""Golden values: the API gives exactly what PyCaret's own predict_model gives."""

import contextlib
import io
import json

import pandas as pd
import pytest

from insurance_charges.core.schema import EXAMPLE_RECORD, FIELD_NAMES

# Pinned to the committed model: retraining changes both, on purpose, in one commit. (Retrained
# 2026-11-22 to add the card's distribution and drivers: the pipeline's bytes, so the estimate,
# stayed the same; the version's date moved.)
GOLDEN_VERSION = "2026.11.22-gbr-586c9afb"
GOLDEN_EXAMPLE_CHARGES = 19270.25


def pycaret_predict_model(pipeline, frame: pd.DataFrame) -> pd.Series:
    """PyCaret's predict_model, with its output column found rather than assumed."""
    from pycaret.regression import predict_model

    with contextlib.redirect_stdout(io.StringIO()):
        scored = predict_model(pipeline, data=frame.copy(), verbose=False)
    (added,) = set(scored.columns) - set(frame.columns)
    return scored[added]


def test_example_record_gives_the_golden_value(client, real_model):
    assert real_model.version == GOLDEN_VERSION, "retrained? update the golden value too"
    body = client.post("/api/v1/predict", json=EXAMPLE_RECORD).get_json()
    assert body["prediction"] == GOLDEN_EXAMPLE_CHARGES


@pytest.mark.slow
def test_api_equals_predict_model_on_every_row_of_the_data_set(client, real_model, data_path):
    frame = pd.read_csv(data_path)[list(FIELD_NAMES)]
    expected = pycaret_predict_model(real_model.pipeline, frame)
    body = client.post(
        "/api/v1/predict",
        data=json.dumps(frame.to_dict("records")),
        content_type="application/json",
    ).get_json()
    assert len(body["predictions"]) == len(frame) == 1338
    assert body["predictions"] == pytest.approx(expected.tolist(), abs=0.005)
    single = client.post("/predict_api", json=frame.iloc[7].to_dict()).get_json()
    assert single == pytest.approx(expected.iloc[7], abs=0.005)
