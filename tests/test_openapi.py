"""The OpenAPI document: valid 3.1, derived from the schema, true to what the API returns."""

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from insurance_charges.core.schema import FIELDS


@pytest.fixture
def doc(client):
    return client.get("/openapi.json").get_json()


def conforms(doc, name, instance):
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    Draft202012Validator(schema).validate(instance)


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_document_describes_every_api_route(app, doc):
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.rule.startswith(("/api/", "/predict_api", "/health", "/openapi.json"))
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented


def test_record_schema_is_derived_from_the_one_schema(doc):
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == [f.name for f in FIELDS]
    assert record["additionalProperties"] is False
    for field in FIELDS:
        prop = record["properties"][field.name]
        if field.choices:
            assert prop["enum"] == list(field.choices)
        else:
            assert (prop["minimum"], prop["maximum"]) == (field.minimum, field.maximum)


def test_post_routes_document_every_client_error(doc):
    for path in ("/api/v1/predict", "/predict_api"):
        assert {"200", "400", "413", "415", "422"} <= set(doc["paths"][path]["post"]["responses"])


def test_responses_conform_to_the_document(client, doc, record):
    conforms(doc, "Prediction", client.post("/api/v1/predict", json=record).get_json())
    conforms(
        doc,
        "BatchPrediction",
        client.post("/api/v1/predict", json=[record, {**record, "age": 80}]).get_json(),
    )
    conforms(doc, "Problem", client.post("/api/v1/predict", json={"age": 1}).get_json())
    conforms(
        doc,
        "Problem",
        client.post("/api/v1/predict", data="{", content_type="application/json").get_json(
            force=True
        ),
    )
    conforms(doc, "ModelCard", client.get("/api/v1/model").get_json())
    conforms(doc, "Health", client.get("/health").get_json())


def test_invalid_bodies_the_document_rejects_are_rejected_by_the_api(client, doc, record):
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/Record", "components": doc["components"]}
    )
    for bad in ({**record, "age": "30"}, {**record, "extra": 1}, {**record, "region": "x"}):
        assert not validator.is_valid(bad)
        assert client.post("/api/v1/predict", json=bad).status_code == 422


def test_docs_page_renders_the_document_without_external_assets(client, doc):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for path in doc["paths"]:
        assert f"<code>{path}</code>" in html
    for field in FIELDS:
        assert f"<code>{field.name}</code>" in html
    assert 'id="problem-invalid-values"' in html
    assert "http://" not in html.replace("http://localhost:8000", "")
    assert "https://" not in html


def test_problem_type_uris_point_at_anchors_on_the_docs_page(client):
    html = client.get("/docs").get_data(as_text=True)
    body = client.post("/api/v1/predict", data="[", content_type="application/json")
    anchor = json.loads(body.data)["type"].split("#")[1]
    assert f'id="{anchor}"' in html


def test_the_docs_page_shows_the_documents_code_spans_as_code_not_backticks(client, doc):
    html = client.get("/docs").get_data(as_text=True)
    assert "`" not in html
    assert "<code>application/problem+json</code>" in html
    assert "<code>interval</code>, or <code>intervals</code> for a batch" in html


@pytest.mark.parametrize(
    "text, shown",
    [
        ("`<script>alert(1)</script>`", "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"),
        (
            "<img src=x onerror=alert(1)> and `a`",
            "&lt;img src=x onerror=alert(1)&gt; and <code>a</code>",
        ),
        ("`<b>bold</b>` <b>too</b>", "<code>&lt;b&gt;bold&lt;/b&gt;</code> &lt;b&gt;too&lt;/b&gt;"),
        ('`" onmouseover="x`', "<code>&#34; onmouseover=&#34;x</code>"),
        ("an unpaired ` backtick", "an unpaired ` backtick"),
        ("a span `across\nlines` is not one", "a span `across\nlines` is not one"),
        ("``", "``"),
    ],
)
def test_markup_in_the_documents_prose_is_escaped_and_only_code_spans_become_tags(text, shown):
    from insurance_charges.web.inline_markdown import code_spans

    assert str(code_spans(text)) == shown


@pytest.mark.parametrize(
    "body, lower_bound",
    [([{}] * 20, True), ([{}] * 10, False)],
    ids=["120 problems: stopped at 101", "60 problems: all counted"],
)
def test_a_refusal_listing_some_problems_conforms_and_says_if_its_total_is_a_lower_bound(
    client, doc, body, lower_bound
):
    problem = client.post("/api/v1/predict", json=body).get_json()
    conforms(doc, "Problem", problem)
    assert problem["errors_total_is_lower_bound"] is lower_bound
    described = doc["components"]["schemas"]["Problem"]["properties"]
    assert described["errors_total_is_lower_bound"]["type"] == "boolean"
    assert described["errors_total"]["type"] == "integer"
