"""Schemathesis against the app's own /openapi.json: no server errors, every response conforms."""

import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from insurance_charges.web import create_app

from .conftest import ROOT

# Every status the API documents for a bad request counts as a proper rejection; 413 (a batch
# over maxItems) is one Schemathesis does not expect by default.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {"expected-statuses": [400, 401, 404, 405, 413, 415, 422]}
        }
    }
)
# Loaded from the running app (in-process WSGI) with the committed model.
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(), config=CONFIG)


def test_api_conforms_to_its_openapi_document_on_at_least_1000_generated_cases():
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=800,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case):
            nonlocal count
            count += 1
            case.call_and_validate()

        conforms()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "contract.json").write_text(json.dumps({"count": count}))
    assert count >= 1000, count
