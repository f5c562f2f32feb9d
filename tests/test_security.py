"""Security: strict headers, no inline code, optional API keys, no debug, no leaks."""

import json
import re
import runpy
import subprocess
import sys
import warnings

import pytest

from insurance_charges.settings import parse_api_keys
from insurance_charges.web import create_app
from insurance_charges.web.security import key_is_valid

from .conftest import ROOT

KEYS = ("k-one-0123456789", "k-two-9876543210")
PAGES = [
    ("get", "/", None),
    ("post", "/", {"age": "x"}),
    ("get", "/docs", None),
    ("get", "/nowhere", None),
    ("get", "/health", None),
    ("get", "/openapi.json", None),
    ("post", "/api/v1/predict", None),
    ("get", "/static/style.css", None),
]


@pytest.fixture
def keyed_client(real_model):
    return create_app({"TESTING": True, "MODEL": real_model, "API_KEYS": KEYS}).test_client()


@pytest.mark.parametrize("method, path, data", PAGES)
def test_every_response_carries_the_security_headers(client, method, path, data):
    response = getattr(client, method)(path, data=data)
    response.close()  # a static file's answer holds the file open until closed
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_estimates_are_never_cached(client, record):
    assert client.post("/api/v1/predict", json=record).headers["Cache-Control"] == "no-store"
    assert client.post("/", data={"age": "30"}).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method, path, data", [p for p in PAGES if p[1] in ("/", "/docs")])
def test_pages_hold_no_inline_script_style_or_handlers(client, method, path, data):
    html = getattr(client, method)(path, data=data).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


def test_api_is_open_when_no_keys_are_configured(client, record):
    assert client.post("/api/v1/predict", json=record).status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/predict", "/predict_api", "/api/v1/model", "/api/v1/unknown"]
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "k-one"},
        {"Authorization": "Basic " + KEYS[0]},
        {"Authorization": "Bearer "},
        {"X-API-Key": "é"},
    ],
)
def test_api_needs_a_valid_key_when_keys_are_configured(keyed_client, record, path, headers):
    response = keyed_client.post(path, json=record, headers=headers)
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "API key" in response.get_json()["detail"]
    assert KEYS[0] not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEYS[0]}"},
        {"Authorization": f"bearer {KEYS[1]}"},
        {"X-API-Key": KEYS[1]},
    ],
)
def test_a_valid_key_as_bearer_token_or_x_api_key_is_accepted(keyed_client, record, headers):
    assert keyed_client.post("/api/v1/predict", json=record, headers=headers).status_code == 200
    assert keyed_client.post("/predict_api", json=record, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/"),
        ("get", "/health"),
        ("get", "/docs"),
        ("get", "/openapi.json"),
        ("get", "/static/style.css"),
    ],
)
def test_the_form_health_and_docs_stay_public(keyed_client, method, path):
    with getattr(keyed_client, method)(path) as response:
        assert response.status_code == 200


def test_the_form_posts_without_a_key(keyed_client, record):
    form = {k: str(v) for k, v in record.items()}
    assert b"Estimated yearly charges" in keyed_client.post("/", data=form).data


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    calls = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(b) or real(a, b))
    assert key_is_valid(KEYS[0], KEYS)  # the first key matches, the second is still compared
    assert calls == [k.encode() for k in KEYS]


def test_api_keys_come_from_a_comma_separated_environment_variable(monkeypatch, real_model):
    assert parse_api_keys(" a, b ,,c ") == ("a", "b", "c")
    monkeypatch.setenv("API_KEYS", ",".join(KEYS))
    assert create_app({"MODEL": real_model}).config["API_KEYS"] == KEYS


def test_debug_mode_is_off_even_when_the_environment_asks_for_it(monkeypatch, real_model):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app({"MODEL": real_model})
    assert app.debug is False and app.config["PROPAGATE_EXCEPTIONS"] is None
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert not config.get("reload") and not config.get("spew") and config["loglevel"] != "debug"


@pytest.mark.parametrize(
    "path",
    ["/static/../application.py", "/static/%2e%2e/README.md", "/api/v1/predict/../../etc/passwd"],
)
def test_no_internal_path_or_trace_leaks_in_error_responses(client, path):
    text = client.get(path).get_data(as_text=True)
    assert str(ROOT) not in text and "Traceback" not in text and "site-packages" not in text


@pytest.mark.slow
def test_bandit_finds_nothing_of_medium_severity_or_above():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-r",
            "insurance_charges",
            "application.py",
            "gunicorn.conf.py",
            "-ll",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    results = json.loads(run.stdout)["results"]
    assert results == [], [(r["test_id"], r["filename"], r["line_number"]) for r in results]


@pytest.mark.slow
def test_pinned_dependencies_have_no_known_advisories_where_pip_audit_can_check():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            "requirements.txt",
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "-f",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)["dependencies"]
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in report if d.get("vulns")}
    assert vulnerable == {}
    unaudited = [d["name"] for d in report if d.get("skip_reason")]
    if unaudited:  # the advisory source did not answer for these versions here
        warnings.warn(
            f"pip-audit could not check {len(unaudited)} of {len(report)} pinned "
            "packages: PyPI's advisory API did not answer for their versions",
            stacklevel=1,
        )


@pytest.mark.parametrize(
    "query, logged",
    [
        ("api_key=abc", "api_key=[redacted]"),
        ("X-API-Key=abc&n=1", "X-API-Key=[redacted]&n=1"),
        (
            "token=a&password=b&client_secret=c",
            "token=[redacted]&password=[redacted]&client_secret=[redacted]",
        ),
        ("apikey", "apikey"),
        ("age=19&region=north", "age=19&region=north"),
        ("", None),
        ("access%5Ftoken=abc", "access%5Ftoken=[redacted]"),
    ],
)
def test_credential_like_query_parameters_are_redacted_in_the_log(query, logged):
    from insurance_charges.web.logs import redact_query

    assert redact_query(query) == logged
