"""The model page's latest outcome report (OUTCOMES_REPORT_URI): the figures `outcomes report`
wrote, overall and per version, readable and accessible; a report that is missing, unreadable,
too large, slow or not one leaves the page whole and says so."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from werkzeug.serving import make_server

from insurance_charges.core.model_card import path_for
from insurance_charges.outcomes import latest, report
from insurance_charges.outcomes.cli import main
from insurance_charges.paths import DEFAULT_MODEL_PATH
from insurance_charges.web import create_app
from insurance_charges.web.formatting import money

from .aws import scoring_s3_on_moto
from .browser_fixtures import ARTIFACTS
from .conftest import require
from .test_accessibility import AXE, VIEWPORTS, violations
from .test_browser import NO_SIDEWAYS_SCROLL
from .test_model_page import text_of
from .test_outcomes import joined_frame

pytest_plugins = ("tests.outcomes_fixtures", "tests.browser_fixtures")  # shared_joined; browser
CARD = path_for(DEFAULT_MODEL_PATH)
SECTION = "How right its estimates were"
REST_OF_PAGE = "What drives estimates"


def written_report(joined: Path, target: Path, capsys, *args: str) -> dict:
    """What `outcomes report --format json` prints for ``joined``, written to ``target``."""
    main(["report", str(joined), "--format", "json", *args], default_card=CARD)
    out = capsys.readouterr().out
    target.write_text(out)
    return json.loads(out)


def page_with(real_model, location) -> str:
    """The /model page's words, served with the report at ``location``."""
    app = create_app({"TESTING": True, "MODEL": real_model, "OUTCOMES_REPORT": location})
    response = app.test_client().get("/model")
    assert response.status_code == 200
    return text_of(response.get_data(as_text=True))


def share(x: float) -> str:
    return f"{x * 100:.1f}%"


def covered(figures: dict) -> str:
    low, high = figures["coverage_interval"]
    return f"{share(figures['coverage'])} ({share(low)} to {share(high)})"


def test_the_page_shows_the_latest_reports_figures_overall_and_per_version(
    real_model, shared_joined, tmp_path, capsys, monkeypatch
):
    target = tmp_path / "latest.json"
    got = written_report(shared_joined[".parquet"], target, capsys)
    monkeypatch.setenv("OUTCOMES_REPORT_URI", str(target))  # checked as start-up checks it
    app = create_app({"TESTING": True, "MODEL": real_model})
    page = text_of(app.test_client().get("/model").get_data(as_text=True))
    overall = got["overall"]
    assert f"All versions {overall['records']:,} {money(overall['mae'])} {covered(overall)}" in page
    ((version, figures),) = got["versions"].items()
    weeks = sorted(figures["weeks"])
    assert (
        f"{version} {weeks[0]} to {weeks[-1]} {figures['records']:,} {money(figures['mae'])} "
        f"(card: {money(figures['card']['holdout_mae'])}) {covered(figures)} Failed"
    ) in page
    assert "Result: a check failed. What failed: " + got["failures"][0] in page
    assert "with 95% confidence" in page and "about 80% of bills fall inside it" in page
    assert f'<a href="#outcomes">{SECTION}</a>' in app.test_client().get("/model").get_data(
        as_text=True
    )


def two_versions(tmp_path: Path, capsys) -> dict:
    """A report of two versions two weeks apart, each with 80 of 100 bills in range: passed."""
    older = joined_frame(100, 80, version="2026.11.01-older")
    newer = joined_frame(100, 80, version="2026.11.15-newer")
    newer["time"] = newer["time"] + timedelta(weeks=2)
    newer["inference_id"] = "n-" + newer["inference_id"]
    joined = tmp_path / "joined.csv"
    pd.concat([older, newer], ignore_index=True).to_csv(joined, index=False)
    return written_report(joined, tmp_path / "latest.json", capsys)


def test_a_passing_report_says_so_and_lists_the_most_recent_version_first(
    real_model, tmp_path, capsys
):
    got = two_versions(tmp_path, capsys)
    assert got["passed"]
    page = page_with(real_model, tmp_path / "latest.json")
    assert "Result: every check passed." in page and "What failed" not in page
    assert page.index("2026.11.15-newer 2026-W47") < page.index("2026.11.01-older 2026-W45")
    assert "card:" not in page  # no card for these versions: their MAE was not checked
    assert "80.0% (" in page and "Passed" in page and "Failed" not in page


def test_a_report_of_many_versions_shows_the_most_recent_and_counts_the_rest(tmp_path):
    frames = [joined_frame(20, 16, version=f"v{i:02d}") for i in range(latest.SHOWN_VERSIONS + 2)]
    for i, frame in enumerate(frames):
        frame["time"] = frame["time"] + timedelta(weeks=i)
        frame["inference_id"] = f"v{i}-" + frame["inference_id"]
    joined = tmp_path / "joined.parquet"
    pd.concat(frames, ignore_index=True).to_parquet(joined)
    raw = json.dumps(report.build(report.read_joined(str(joined)), []))
    shown = latest.checked(raw.encode(), "x")
    assert [v.version for v in shown.versions][:2] == ["v21", "v20"]
    assert len(shown.versions) == latest.SHOWN_VERSIONS and shown.older_versions == 2


def test_without_a_report_configured_the_page_has_no_outcomes_section(client):
    html = client.get("/model").get_data(as_text=True)
    assert SECTION not in html and REST_OF_PAGE in html


def real_report_changed(shared_joined, tmp_path, capsys, change) -> bytes:
    got = written_report(shared_joined[".parquet"], tmp_path / "real.json", capsys)
    change(got)
    return json.dumps(got).encode()


def _flip_passed(r):
    r["passed"] = True


def _coverage_above_1(r):
    r["overall"]["coverage"] = 1.5


def _records_as_text(r):
    next(iter(r["versions"].values()))["records"] = "1338"


def _week_not_iso(r):
    next(iter(r["versions"].values()))["weeks"] = {"last week": {}}


def _interval_without_coverage(r):
    r["overall"]["coverage_interval"] = [0.9, 0.95]


UNAVAILABLE = [
    ("missing", None, latest.MISSING),
    ("not JSON", b"<html>", latest.NOT_A_REPORT),
    ("not UTF-8", b'{"a": "\xff"}', latest.NOT_A_REPORT),
    ("NaN", b'{"overall": NaN}', latest.NOT_A_REPORT),
    ("another object", b'{"overall": {}}', latest.NOT_A_REPORT),
    ("passed disagrees", _flip_passed, latest.NOT_A_REPORT),
    ("coverage above 1", _coverage_above_1, latest.NOT_A_REPORT),
    ("records as text", _records_as_text, latest.NOT_A_REPORT),
    ("weeks not ISO", _week_not_iso, latest.NOT_A_REPORT),
    ("interval outside", _interval_without_coverage, latest.NOT_A_REPORT),
    ("too large", b" " * (latest.LARGEST_REPORT + 1), latest.TOO_LARGE),
    ("a directory now", "directory", latest.UNREADABLE),
]


@pytest.mark.parametrize(
    "content, brief", [u[1:] for u in UNAVAILABLE], ids=[u[0] for u in UNAVAILABLE]
)
def test_a_report_that_cannot_be_shown_leaves_the_page_whole_and_says_why(
    real_model, shared_joined, tmp_path, capsys, caplog, content, brief
):
    target = tmp_path / "latest.json"
    if content == "directory":
        target.mkdir()
    elif callable(content):
        target.write_bytes(real_report_changed(shared_joined, tmp_path, capsys, content))
    elif content is not None:
        target.write_bytes(content)
    page = page_with(real_model, target)
    assert f"The latest outcome report is unavailable: {brief}." in page
    assert REST_OF_PAGE in page and "All versions" not in page
    assert f"outcome report unavailable: {target}" in caplog.text  # the detail is logged


def test_whatever_reading_the_report_raises_the_page_still_renders(
    real_model, tmp_path, monkeypatch, caplog
):
    def broken(self):
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr(latest.Reader, "read", broken)
    page = page_with(real_model, tmp_path / "latest.json")
    assert "unavailable: it could not be read just now." in page and REST_OF_PAGE in page
    assert "a bug in the reader" in caplog.text


# --- From S3, on moto's server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1 with a bucket for reports."""
    with scoring_s3_on_moto("outcome-reports") as client:
        yield client


def test_a_report_in_s3_is_shown_with_when_it_was_written(
    s3, real_model, shared_joined, tmp_path, capsys
):
    got = written_report(shared_joined[".parquet"], tmp_path / "latest.json", capsys)
    s3.put_object(
        Bucket="outcome-reports",
        Key="weekly/latest.json",
        Body=(tmp_path / "latest.json").read_bytes(),
    )
    written = s3.head_object(Bucket="outcome-reports", Key="weekly/latest.json")["LastModified"]
    location = latest.S3Uri("outcome-reports", "weekly/latest.json")
    page = page_with(real_model, location)
    assert f"All versions {got['overall']['records']:,} {money(got['overall']['mae'])}" in page
    assert f"written {written.day} {written:%B %Y at %H:%M} UTC" in page


@pytest.mark.parametrize(
    "key, body, brief",
    [
        ("weekly/not-yet.json", None, latest.MISSING),
        ("weekly/huge.json", b" " * (latest.LARGEST_REPORT + 1), latest.TOO_LARGE),
        ("weekly/garbage.json", b"\x00\x01", latest.NOT_A_REPORT),
    ],
    ids=["missing", "too large", "not a report"],
)
def test_a_report_in_s3_that_cannot_be_shown_leaves_the_page_whole(
    s3, real_model, key, body, brief
):
    if body is not None:
        s3.put_object(Bucket="outcome-reports", Key=key, Body=body)
    page = page_with(real_model, latest.S3Uri("outcome-reports", key))
    assert f"The latest outcome report is unavailable: {brief}." in page
    assert REST_OF_PAGE in page


@pytest.fixture
def silent_endpoint(monkeypatch):
    """An S3 endpoint that accepts connections and never answers, for boto3 to time out on."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{listener.getsockname()[1]}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    yield
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.slow
def test_an_s3_that_never_answers_leaves_the_page_whole(silent_endpoint, real_model, caplog):
    page = page_with(real_model, latest.S3Uri("outcome-reports", "weekly/latest.json"))
    assert "The latest outcome report is unavailable: it could not be read just now." in page
    assert REST_OF_PAGE in page
    assert "Read timeout" in caplog.text or "timed out" in caplog.text


# --- In a browser: accessible at desktop and phone sizes -------------------------------------


@pytest.fixture(scope="module")
def outcomes_server(real_model, shared_joined, tmp_path_factory):
    """The app with the shared data set's report, served from a thread."""
    target = tmp_path_factory.mktemp("served") / "latest.json"
    target.write_text(
        json.dumps(
            report.build(
                report.read_joined(str(shared_joined[".parquet"])), [report.read_card(CARD)]
            )
        )
    )
    app = create_app({"MODEL": real_model, "OUTCOMES_REPORT": target})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    thread.join(timeout=5)
    httpd.server_close()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_axe_finds_no_wcag_violations_in_the_outcome_report(browser, outcomes_server, viewport):
    require(AXE.is_file(), f"needs axe-core: run `npm ci` in {AXE.parents[2]}")
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(5000)
    page = context.new_page()
    try:
        page.goto(outcomes_server + "model#outcomes")
        assert page.locator("table.outcomes tbody tr").count() == 2  # all, and the one version
        found = violations(page)
        page.locator('section[aria-labelledby="outcomes"]').screenshot(
            path=ARTIFACTS / f"model-outcomes-{viewport}.png"
        )
        assert found == [], json.dumps(found, indent=2)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), f"the model page scrolls sideways at {viewport}"
    finally:
        context.close()
