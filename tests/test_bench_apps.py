"""The benchmark's two comparison apps are the deployed app with one difference each."""

from bench import FLOOR_PATH
from insurance_charges.core.schema import EXAMPLE_RECORD
from insurance_charges.web import served_model


def test_the_floor_answers_a_constant_through_the_services_own_stack(client):
    from bench.floor_app import application as floor

    answer = floor.test_client().post(FLOOR_PATH, json=EXAMPLE_RECORD)
    api = client.post("/api/v1/predict", json=EXAMPLE_RECORD)
    assert answer.status_code == 200 and answer.get_json() == {"prediction": 19270.25}
    # The same hooks ran: request id, security headers, no caching.
    assert {k for k, _ in api.headers} - {"Content-Length"} == {k for k, _ in answer.headers} - {
        "Content-Length"
    }
    assert floor.test_client().post(FLOOR_PATH, data=b"not json").status_code == 200


def test_the_before_app_predicts_through_pipeline_predict_with_the_same_numbers(client):
    from bench.pipeline_app import application as before

    model = served_model(before)
    assert model.fast is None and model.pipeline is not None
    same_id = {"X-Request-ID": "r-1"}
    old = (
        before.test_client()
        .post("/api/v1/predict", json=EXAMPLE_RECORD, headers=same_id)
        .get_json()
    )
    assert old == client.post("/api/v1/predict", json=EXAMPLE_RECORD, headers=same_id).get_json()
