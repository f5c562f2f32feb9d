"""The JSON API: strict input, one record or a batch, problem+json errors, never a 500."""

import json

import pytest

from insurance_charges.web import create_app

PROBLEM = "application/problem+json"


def post_json(client, body, path="/api/v1/predict", **kwargs):
    return client.post(path, data=json.dumps(body), content_type="application/json", **kwargs)


def post_raw(client, data, content_type="application/json", path="/api/v1/predict"):
    return client.post(path, data=data, content_type=content_type)


def assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["type"].startswith("/docs#problem-")
    assert body["title"] and body["detail"]
    return body


def test_api_predicts_one_record(client, record, real_model):
    response = post_json(client, record)
    assert response.status_code == 200
    body = response.get_json()
    # The existing fields come first and unchanged; the likely range and the id are added
    # after them.
    assert list(body) == ["prediction", "model_version", "warnings", "interval", "inference_id"]
    assert body["prediction"] == round(real_model.predict([record])[0], 2)
    assert body["model_version"] == real_model.version and body["warnings"] == []
    assert body["inference_id"] == response.headers["X-Request-ID"]


def test_a_callers_request_id_is_the_inference_id_of_its_one_record(client, record):
    response = post_json(client, record, headers={"X-Request-ID": "claim-2026/0042"})
    assert response.get_json()["inference_id"] == "claim-2026/0042"


def test_a_batchs_inference_ids_are_the_request_id_and_each_position(client, record):
    batch = [record, {**record, "smoker": "no"}, {**record, "age": 60}]
    response = post_json(client, batch, headers={"X-Request-ID": "R.7"})
    body = response.get_json()
    assert list(body)[-1] == "inference_ids"
    assert body["inference_ids"] == ["R.7-0", "R.7-1", "R.7-2"]


def test_without_a_usable_request_id_the_ids_derive_from_the_one_the_service_made(client, record):
    response = post_json(client, [record, record], headers={"X-Request-ID": "bad id!"})
    made = response.headers["X-Request-ID"]
    assert made != "bad id!"
    assert response.get_json()["inference_ids"] == [f"{made}-0", f"{made}-1"]


def test_predict_api_keeps_its_bare_number_and_its_id_is_the_request_id(client, record):
    response = post_json(client, record, path="/predict_api", headers={"X-Request-ID": "legacy"})
    assert isinstance(response.get_json(), float)
    assert response.headers["X-Request-ID"] == "legacy"


def test_api_predicts_a_batch_in_input_order(client, record, real_model):
    batch = [record, {**record, "smoker": "no"}, {**record, "age": 60, "children": 3}]
    body = post_json(client, batch).get_json()
    assert body["predictions"] == [round(p, 2) for p in real_model.predict(batch)]
    assert body["predictions"][0] > body["predictions"][1]  # smoking costs more


def test_api_accepts_a_json_content_type_with_charset(client, record):
    response = post_raw(client, json.dumps(record), "application/json; charset=utf-8")
    assert response.status_code == 200


def test_api_warns_about_values_outside_the_training_range(client, record):
    body = post_json(client, [record, {**record, "age": 90, "children": 8}]).get_json()
    assert [w["pointer"] for w in body["warnings"]] == ["/1/age", "/1/children"]
    single = post_json(client, {**record, "bmi": 70}).get_json()
    assert single["warnings"][0]["pointer"] == "/bmi"
    assert "outside the range seen in training" in single["warnings"][0]["message"]


@pytest.mark.parametrize(
    "change, pointer",
    [
        ({"age": "30"}, "/age"),
        ({"age": 17}, "/age"),
        ({"age": 30.5}, "/age"),
        ({"age": None}, "/age"),
        ({"bmi": True}, "/bmi"),
        ({"bmi": 81}, "/bmi"),
        ({"children": 11}, "/children"),
        ({"sex": "Male"}, "/sex"),
        ({"smoker": 1}, "/smoker"),
        ({"region": "east"}, "/region"),
        ({"colour": "red"}, "/colour"),
    ],
)
def test_api_rejects_an_invalid_value_with_422_and_a_pointer(client, record, change, pointer):
    body = assert_problem(post_json(client, {**record, **change}), 422)
    assert [e["pointer"] for e in body["errors"]] == [pointer]


def test_api_rejects_unknown_region_with_422_listing_the_allowed_values(client, record):
    body = assert_problem(post_json(client, {**record, "region": "midwest"}), 422)
    assert '"northeast", "northwest", "southeast", "southwest"' in body["errors"][0]["message"]


def test_api_points_into_the_batch_at_each_bad_record(client, record):
    batch = [record, record, {**record, "bmi": "27"}, {**record, "sex": None, "x": 1}]
    body = assert_problem(post_json(client, batch), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/2/bmi", "/3/x", "/3/sex"]


@pytest.mark.parametrize("body", [[], "text", 42, None, [1, 2]])
def test_api_rejects_bodies_that_are_not_records_with_422(client, body):
    assert_problem(post_json(client, body), 422)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"   ",
        b"{'age': 30}",
        b'{"age": NaN}',
        b'{"age": Infinity}',
        b'{"bmi": -Infinity}',
        b'{"bmi": 1e999}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"age": ' + b"9" * 5000 + b"}",
        b"\xff\xfe{}",
        b'{"a": 1} extra',
    ],
)
def test_api_rejects_malformed_or_undecodable_json_with_400(client, raw):
    assert_problem(post_raw(client, raw), 400)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ],
)
def test_api_rejects_bodies_not_sent_as_json_with_415(client, record, content_type):
    response = client.post(
        "/api/v1/predict",
        data=json.dumps(record),
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert_problem(response, 415)


def test_api_rejects_a_body_over_2_mib_with_413(client, record):
    padding = " " * (2 * 1024 * 1024)
    assert_problem(post_raw(client, json.dumps(record) + padding), 413)


def test_api_rejects_a_batch_over_10000_records_with_413(client, record):
    compact = json.dumps([record] * 10_001, separators=(",", ":"))
    assert len(compact) < 2 * 1024 * 1024
    body = assert_problem(post_raw(client, compact), 413)
    assert "10000" in body["detail"]


def test_api_serves_a_full_batch_of_10000_records(client, record):
    body = post_raw(client, json.dumps([record] * 10_000, separators=(",", ":"))).get_json()
    assert len(body["predictions"]) == 10_000 and len(set(body["predictions"])) == 1


def test_unknown_api_path_is_a_json_404(client):
    assert_problem(client.get("/api/v1/nothing"), 404)


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/predict"),
        ("put", "/predict_api"),
        ("post", "/api/v1/model"),
        ("delete", "/health"),
        ("post", "/openapi.json"),
    ],
)
def test_wrong_method_is_a_405_with_allow(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405 and "Allow" in response.headers
    if path != "/health":
        assert_problem(response, 405)


def test_predict_api_keeps_the_tutorials_contract_of_a_bare_number(client, record, real_model):
    response = post_json(client, record, path="/predict_api")
    assert response.status_code == 200
    assert response.get_json() == round(real_model.predict([record])[0], 2)


def test_predict_api_rejects_a_batch_and_bad_values_as_problems(client, record):
    assert_problem(post_json(client, [record], path="/predict_api"), 422)
    body = assert_problem(post_json(client, {**record, "age": "x"}, path="/predict_api"), 422)
    assert body["errors"][0]["pointer"] == "/age"
    assert_problem(post_raw(client, b"{", path="/predict_api"), 400)


def test_model_endpoint_returns_the_model_card(client, real_model):
    card = client.get("/api/v1/model").get_json()
    assert card == real_model.card
    assert {"mae", "rmse", "r2"} <= set(card["metrics"]["holdout"])


def test_health_answers_200_with_the_model_version(client, real_model):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "model_version": real_model.version}


def test_every_response_carries_a_new_request_id(client):
    first, second = client.get("/health"), client.get("/health")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_incoming_request_id_is_honoured_and_echoed(client):
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/health", headers={"X-Request-ID": 'x" injected\tline'})
    assert response.headers["X-Request-ID"] != 'x" injected\tline'
    assert len(response.headers["X-Request-ID"]) == 32


def test_unexpected_error_is_a_500_problem_without_a_trace(record):
    class Broken:
        version, card, training_ranges, likely_range = "broken", {}, {}, None

        def predict(self, records):
            raise RuntimeError("secret internal detail at /srv/app.py")

    app = create_app({"TESTING": True, "MODEL": Broken()})
    response = app.test_client().post("/api/v1/predict", json=record)
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in body["detail"]


@pytest.mark.parametrize("size", [3, 9])  # one at a time, and column at a time
def test_each_record_gets_the_range_of_its_own_group_in_input_order(real_model, record, size):
    import dataclasses

    regions = ("northeast", "northwest", "southeast", "southwest")
    spec = {
        **real_model.card["interval"],
        "group_by": "region",
        "offsets": {
            r: {"lower": -1.0 - n, "upper": 1.0 + n, "n": 1} for n, r in enumerate(regions)
        },
    }
    model = dataclasses.replace(real_model, card={**real_model.card, "interval": spec})
    client = create_app({"TESTING": True, "MODEL": model}).test_client()
    batch = [
        {**record, "region": regions[i % 4], "children": float(i % 3) and i % 3}
        for i in range(size)
    ]
    body = client.post("/api/v1/predict", json=batch).get_json()
    widths = [round(s["upper"] - s["lower"], 2) for s in body["intervals"]]
    assert widths == [2.0 + 2 * (i % 4) for i in range(size)]


def test_a_repeated_key_is_refused_naming_it_not_silently_reduced_to_its_last_value(client):
    response = client.post(
        "/api/v1/predict",
        data='{"age": "x", "sex": "female", "age": 19, '
        '"bmi": 27.9, "children": 0, "smoker": "yes", "region": "southwest"}',
        content_type="application/json",
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {
            "pointer": "/age",
            "message": "'age' appears more than once in the object; send each field once",
        }
    ]


def test_repeated_keys_are_found_in_any_record_of_a_batch(client, record):
    text = json.dumps([record] * 9)[:-1] + ', {"smoker": "no", "smoker": "yes"}]'
    body = assert_problem(
        client.post("/api/v1/predict", data=text, content_type="application/json"), 422
    )
    assert body["errors"][0]["pointer"] == "/9/smoker"


def test_colons_inside_strings_do_not_pass_for_repeated_keys(client, record):
    assert client.post("/api/v1/predict", json={**record, "region": "a:b"}).status_code == 422
    ok = client.post(
        "/api/v1/predict",
        data=json.dumps([record] * 9).replace(": ", " : "),
        content_type="application/json",
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "headers, fragment",
    [
        ({"Content-Encoding": "gzip"}, "does not decode Content-Encoding gzip"),
        ({"Content-Encoding": "br"}, "does not decode Content-Encoding br"),
        ({"Content-Type": "application/json; charset=latin-1"}, "got charset latin-1"),
        ({"Content-Type": "application/json; charset=utf-16"}, "got charset utf-16"),
    ],
)
def test_a_body_the_api_would_misread_is_a_415(client, record, headers, fragment):
    response = client.post(
        "/api/v1/predict",
        data=json.dumps(record),
        headers={"Content-Type": "application/json", **headers},
    )
    assert fragment in assert_problem(response, 415)["detail"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/json; charset=UTF8"]
)
def test_utf8_named_as_the_charset_is_read(client, record, content_type):
    response = client.post(
        "/api/v1/predict",
        data=json.dumps(record),
        headers={"Content-Type": content_type, "Content-Encoding": "identity"},
    )
    assert response.status_code == 200


RECORD = {
    "age": 19,
    "sex": "female",
    "bmi": 27.9,
    "children": 0,
    "smoker": "yes",
    "region": "southwest",
}
ALL_INVALID = {  # each at most the 2 MiB limit and 10,000 records, each invalid everywhere
    "200,000 unknown keys": (
        json.dumps({f"{i:x}": 1 for i in range(200_000)}, separators=(",", ":")),
        ["/0", "/1"],
    ),
    "90,000 keys sent twice": (
        "{" + ",".join(f'"{i:x}":1,"{i:x}":1' for i in range(90_000)) + "}",
        ["/0", "/1"],
    ),
    "10,000 empty records": (json.dumps([{}] * 10_000), ["/0/age", "/0/sex"]),
    "10,000 ages as text": (json.dumps([{**RECORD, "age": "x"}] * 10_000), ["/0/age", "/1/age"]),
    "10,000 arrays": (json.dumps([[]] * 10_000), ["/0", "/1"]),
}


@pytest.mark.parametrize("body, first", ALL_INVALID.values(), ids=ALL_INVALID)
def test_an_all_invalid_body_gets_a_small_422_saying_there_are_at_least_101_problems(
    client, body, first
):
    response = client.post("/api/v1/predict", data=body, content_type="application/json")
    problem = assert_problem(response, 422)
    assert len(response.get_data()) < 16_384 < len(body)
    # Looking stopped at the first problem beyond the hundred that can be listed.
    assert problem["errors_total"] == 101 and problem["errors_total_is_lower_bound"] is True
    assert 1 <= len(problem["errors"]) <= 100
    assert [e["pointer"] for e in problem["errors"][:2]] == first
    assert problem["detail"] == (
        f"at least 101 invalid value(s); the first "
        f"{len(problem['errors'])} are listed in errors: fix them and "
        "send again to see the rest"
    )


def test_a_few_problems_listed_in_part_are_counted_exactly(client):
    response = client.post("/api/v1/predict", json=[{}] * 10)  # 60 problems, a 40-byte body
    problem = assert_problem(response, 422)
    assert problem["errors_total"] == 60 and problem["errors_total_is_lower_bound"] is False
    assert 1 <= len(problem["errors"]) < 60
    assert problem["detail"].startswith("60 invalid value(s); the first ")


def test_a_small_mistake_is_listed_whole_without_a_total(client):
    problem = assert_problem(client.post("/api/v1/predict", json={}), 422)
    assert len(problem["errors"]) == 6 and "errors_total" not in problem
    assert "errors_total_is_lower_bound" not in problem
    assert problem["detail"] == "6 invalid value(s); see errors"


def test_the_worker_timeout_hook_raises_into_a_request_and_leaves_anything_else_to_gunicorn(
    real_model,
):
    from insurance_charges.web.errors import Overran

    from .deploy_files import gunicorn_settings

    abort = gunicorn_settings({})["worker_abort"]
    assert abort(None) is None  # no request in flight: gunicorn exits the worker as it would
    app = create_app({"TESTING": True, "MODEL": real_model})
    with app.test_request_context("/api/v1/predict", method="POST"):
        with pytest.raises(Overran):
            abort(None)


@pytest.mark.parametrize(
    "path, media_type", [("/api/v1/overran", PROBLEM), ("/overran", "text/html")]
)
def test_a_request_that_overran_is_answered_504_by_the_app(real_model, path, media_type):
    from insurance_charges.web.errors import Overran

    app = create_app({"TESTING": True, "MODEL": real_model})

    def overran():
        raise Overran()

    app.add_url_rule(path, "overran", overran, methods=["POST"])
    response = app.test_client().post(path)
    assert (response.status_code, response.mimetype) == (504, media_type)
    if media_type == PROBLEM:
        assert assert_problem(response, 504)["type"] == "/docs#problem-gateway-timeout"
