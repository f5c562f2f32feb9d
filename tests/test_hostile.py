"""Hostile requests over real HTTP to gunicorn: each gets a clear 4xx; secrets stay out of logs."""

import http.client
import json

import pytest

from devtools.gunicorn_server import GunicornServer
from insurance_charges.core.schema import EXAMPLE_RECORD

pytestmark = pytest.mark.slow
KEY = "s3cret-key-for-the-log-test"


@pytest.fixture(scope="module")
def server():
    srv = GunicornServer(via_make=True, workers=2, API_KEYS=KEY)
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.kill()


def send(
    server,
    body: bytes,
    content_type="application/json",
    path="/api/v1/predict",
    headers=None,
    chunked=False,
):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        try:
            conn.request(
                "POST",
                path,
                body=iter([body]) if chunked else body,
                headers={
                    "Content-Type": content_type,
                    "Authorization": f"Bearer {KEY}",
                    **(headers or {}),
                },
                encode_chunked=chunked,
            )
        except BrokenPipeError:
            pass  # refused (413) on its headers and closed before the body was all sent: read it
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


BATCH_10001 = json.dumps([EXAMPLE_RECORD] * 10_001, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "name, body, content_type, status",
    [
        ("3 MB body", b'{"age": 30, "pad": "' + b"x" * 3_000_000 + b'"}', "application/json", 413),
        ("10,001 records", BATCH_10001, "application/json", 413),
        ("deeply nested arrays", b"[" * 200_000 + b"]" * 200_000, "application/json", 400),
        ("huge number", b'{"age": 1' + b"0" * 400 + b"}", "application/json", 422),
        ("huge exponent", b'{"bmi": 1e99999}', "application/json", 400),
        ("invalid UTF-8", b'{"sex": "\xc3\x28"}', "application/json", 400),
        ("XML", b"<record><age>30</age></record>", "application/xml", 415),
        ("form encoding", b"age=30&sex=male", "application/x-www-form-urlencoded", 415),
    ],
)
def test_hostile_body_gets_a_clear_4xx_problem(server, name, body, content_type, status):
    got, media_type, payload = send(server, body, content_type)
    assert got == status, name
    assert media_type == "application/problem+json" and json.loads(payload)["detail"]


SIX_MB = 6 * 1024 * 1024


@pytest.mark.parametrize(
    "line, content_type, status",
    [
        (b",,,,,\n", "text/csv", 422),
        (b"0\n", "text/csv", 400),
        (b"{}\n", "application/jsonlines", 422),
        (b"0\n", "application/jsonlines", 422),
        (b"{\n", "application/jsonlines", 400),
    ],
    ids=["empty CSV rows", "CSV lines of one value", "{} lines", "0 lines", "lines not JSON"],
)
def test_six_mb_of_bad_invocations_lines_get_one_small_4xx_problem_counting_at_least_101(
    server, line, content_type, status
):
    body = line * (SIX_MB // len(line))
    got, media_type, payload = send(server, body, content_type, path="/invocations")
    problem = json.loads(payload)
    assert (got, media_type) == (status, "application/problem+json")
    assert len(payload) < 16_384 and problem["errors_total"] == 101
    assert problem["errors_total_is_lower_bound"] is True


def test_a_chunked_body_over_the_limit_is_refused_with_413(server):
    got, _, _ = send(server, b'{"pad": "' + b"x" * 3_000_000 + b'"}', chunked=True)
    assert got == 413


@pytest.mark.parametrize(
    "form, status, fragment",
    [
        ({}, 422, b"Please correct 6 fields"),
        (
            {**{k: str(v) for k, v in EXAMPLE_RECORD.items()}, "admin": "1"},
            422,
            b"unexpected fields",
        ),
        ({"age": "40"}, 422, b"Please correct 5 fields"),
    ],
)
def test_form_posts_with_missing_or_extra_fields_are_explained(server, form, status, fragment):
    from urllib.parse import urlencode

    got, media_type, page = send(
        server, urlencode(form).encode(), "application/x-www-form-urlencoded", path="/"
    )
    assert got == status and media_type.startswith("text/html") and fragment in page


def test_logs_never_contain_the_api_key(server):
    send(server, json.dumps(EXAMPLE_RECORD).encode())
    send(
        server,
        json.dumps(EXAMPLE_RECORD).encode(),
        headers={"Authorization": "Bearer wrong-" + KEY},
    )
    send(server, json.dumps(EXAMPLE_RECORD).encode(), headers={"X-API-Key": KEY})
    assert server.request("/health")[0] == 200
    log = "".join(server.lines)
    assert '"path": "/api/v1/predict"' in log and KEY not in log
