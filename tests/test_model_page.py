"""The model page (/model): the card for people, with live drift, readable without colour and
without an axe-core violation at desktop and phone sizes."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.request

import pandas as pd
import pytest

from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.monitoring import drift
from insurance_charges.web import create_app
from insurance_charges.web.model_views import bin_names

from .browser_fixtures import ARTIFACTS
from .conftest import require
from .test_accessibility import AXE, VIEWPORTS, violations
from .test_browser import NO_SIDEWAYS_SCROLL

pytest_plugins = ("tests.browser_fixtures",)  # browser, server


def text_of(html: str) -> str:
    """The page's words, without tags or repeated spaces (none before punctuation)."""
    words = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return re.sub(r"\( ", "(", re.sub(r" ([:;,.)%])", r"\1", words))


def post_sample(client_or_url, data_path, count: int = 600, seed: int = 1) -> None:
    """Send ``count`` records drawn from the training data, in one batch."""
    records = (
        pd.read_csv(data_path)[list(FIELD_NAMES)]
        .sample(count, replace=True, random_state=seed)
        .to_dict("records")
    )
    if isinstance(client_or_url, str):
        request = urllib.request.Request(
            client_or_url + "api/v1/predict",
            data=json.dumps(records).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    else:
        assert client_or_url.post("/api/v1/predict", json=records).status_code == 200


def test_the_form_links_to_the_model_page_instead_of_raw_json(client):
    html = client.get("/").get_data(as_text=True)
    assert '<a href="/model">About the model</a>' in html
    assert 'href="/api/v1/model"' not in html


def test_the_page_says_what_the_model_is_and_how_good_it_is(client, real_model):
    card = real_model.card
    page = text_of(client.get("/model").get_data(as_text=True))
    assert f"Model {card['model_version']}: a GradientBoostingRegressor trained on 1,338" in page
    assert "compared 18 kinds of regression model by 10-fold cross-validation" in page
    for split in ("cv", "holdout"):  # this model beside the tutorials' model
        mine, theirs = card["metrics"][split]["mae"], card["baseline"][split]["mae"]
        assert f"mean absolute error ${mine:,.0f} ${theirs:,.0f}" in page
    likely = card["interval"]["holdout"]
    assert f"{likely['coverage']:.1%} were inside their range" in page
    assert f"Over {card['interval']['resampled']['splits']} fresh splits" in page


def test_the_page_ranks_what_drives_estimates_as_the_card_recorded(client, real_model):
    drivers = real_model.card["drivers"]
    page = text_of(client.get("/model").get_data(as_text=True))
    listed = re.findall(r"(\w[\w ()-]*?): the average estimate moves by", page)
    assert (
        listed
        == ["Smoker", "Age", "Body-mass index (BMI)", "Children covered", "Region", "Sex"][
            : len(drivers["order"])
        ]
    )
    smoker = drivers["fields"]["smoker"]
    assert (
        f"moves by ${smoker['spread']:,.0f} (yes: ${smoker['mean_estimate'][0]:,.0f}, "
        f"no: ${smoker['mean_estimate'][1]:,.0f})"
    ) in page


def test_driver_charts_tell_smokers_from_non_smokers_without_colour(client):
    html = client.get("/model").get_data(as_text=True)
    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    drivers = [c for c in charts if 'aria-labelledby="driver-' in c]
    assert len(drivers) == 3  # age, BMI, children: the numbers
    for svg in drivers:
        assert "<title" in svg and "<desc" in svg and 'role="img"' in svg
        assert 'stroke-dasharray="7 4"' in svg  # non-smokers dashed
        assert "<circle" in svg and "<rect" in svg  # dots and squares
        assert ">Smoker</text>" in svg and ">Non-smoker</text>" in svg  # labelled lines


def test_drift_waits_for_enough_records_then_draws_training_against_served(app, data_path):
    client = app.test_client()
    served = client.get("/api/v1/drift").get_json()["since_start"]["records"]
    if served < drift.MIN_RECORDS:  # this process may have served others' records already
        assert "Charts appear once 500 records have been served" in text_of(
            client.get("/model").get_data(as_text=True)
        )
    post_sample(client, data_path)
    html = client.get("/model").get_data(as_text=True)
    bars = re.findall(r'<svg class="chart"[^>]*aria-labelledby="drift-.*?</svg>', html, re.S)
    assert len(bars) == len(FIELD_NAMES) + 1  # each input and the estimates
    for svg in bars:
        assert 'stroke="#1b1b1b"' in svg and 'fill="#0b4f9c"' in svg  # outlined and solid
        assert re.search(r">\d+%</text>", svg)  # every bar says its share
    assert "Since the service started" in text_of(html)


def test_a_model_without_a_distribution_says_drift_is_not_watched(real_model):
    card = {k: v for k, v in real_model.card.items() if k not in ("distribution", "drivers")}
    app = create_app({"TESTING": True, "MODEL": dataclasses.replace(real_model, card=card)})
    page = text_of(app.test_client().get("/model").get_data(as_text=True))
    assert "Drift is not watched for this model" in page
    assert "predates this summary" in page


def test_bins_are_named_as_people_read_them(real_model):
    reference = drift.read_reference(real_model.card["distribution"])
    assert bin_names(reference.fields["age"])[:2] == ["18–19", "20–24"]
    assert bin_names(reference.fields["age"])[-1] == "60 or more"
    assert bin_names(reference.fields["children"]) == ["0", "1", "2", "3", "4 or more"]
    assert bin_names(reference.fields["bmi"])[0] == "22.99 or less"
    assert bin_names(reference.estimate)[-1].startswith("over $")
    assert bin_names(reference.fields["smoker"]) == ["Yes", "No"]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_axe_finds_no_wcag_violations_on_the_model_page(browser, server, viewport, data_path):
    require(AXE.is_file(), f"needs axe-core: run `npm ci` in {AXE.parents[2]}")
    _, url = server
    post_sample(url, data_path)  # enough records for the drift charts
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(5000)
    page = context.new_page()
    try:
        page.goto(url + "model")
        assert page.locator('svg[aria-labelledby^="drift-"]').count() == len(FIELD_NAMES) + 1
        for summary in page.locator("details summary").all():
            summary.click()  # check the tables of figures too
        found = violations(page)
        page.screenshot(path=ARTIFACTS / f"axe-model-{viewport}.png", full_page=True)
        (ARTIFACTS / f"axe-model-{viewport}.json").write_text(json.dumps(found, indent=2))
        assert found == [], json.dumps(found, indent=2)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), f"the model page scrolls sideways at {viewport}"
        for chart in page.locator("svg.chart").all():
            assert chart.bounding_box()["width"] >= 300  # drawn at a readable size
    finally:
        context.close()
