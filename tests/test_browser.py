"""Headless Chromium fills in the web form the way a person would, against the real model."""

from __future__ import annotations

import re

import pytest

from insurance_charges.core.schema import BY_NAME, EXAMPLE_RECORD, FIELDS
from insurance_charges.web import served_model

from .browser_fixtures import ARTIFACTS
from .screenshots import DESKTOP_WIDTH, PHONE_WIDTH, publish

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the browser fixture: skipped locally, failed in CI
    expect = None

pytest_plugins = ("tests.browser_fixtures",)  # browser, server
pytestmark = pytest.mark.browser
RECORD = EXAMPLE_RECORD
TYPED = {name: str(value) for name, value in RECORD.items()}
ESTIMATE = re.compile(r"Estimated yearly charges: \$\d{1,3}(,\d{3})+")
FOCUSED = "document.activeElement.id || document.activeElement.className"
DOLLARS = r"\$\d{1,3}(,\d{3})*"
LIKELY = re.compile(rf"Likely between\s+{DOLLARS}\s+and\s+{DOLLARS}:\s+about 8 in 10")
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# The estimate id the result page shows derives from X-Request-ID (docs/outcomes.md): a fixed
# one, shaped like the ids the service makes, keeps the docs' screenshots the same each run.
SAME_ID = {"X-Request-ID": "5c0f3e2a9b7d4c18a6e1f0d2b3c4a5e6"}


@pytest.fixture
def page(browser):
    """A fresh desktop-sized tab in its own context."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, extra_http_headers=SAME_ID
    )
    context.set_default_timeout(5000)
    yield context.new_page()
    context.close()


def fill(page, values: dict) -> None:
    """Type into the number inputs and pick the select options, by field name."""
    for name, value in values.items():
        field = page.locator(f"#{name}")
        field.select_option(value) if BY_NAME[name].choices else field.fill(value)


def form_values(page) -> dict:
    """What every field of the form currently holds, by field name."""
    return {f.name: page.locator(f"#{f.name}").input_value() for f in FIELDS}


def test_person_fills_the_form_and_sees_the_estimate(page, server):
    app, url = server
    page.goto(url)
    fill(page, TYPED)
    page.get_by_role("button", name="Estimate charges").click()
    expect(page.locator(".result")).to_contain_text(ESTIMATE)
    expected = served_model(app).predict([RECORD])[0]
    expect(page.locator(".result h2 .amount")).to_have_text(f"${expected:,.0f}")
    expect(page.locator(".result .likely")).to_contain_text(LIKELY)
    expect(page.locator(".whatifs li").first).to_contain_text(re.compile(r"^As a non-smoker: \$"))
    charts = page.get_by_role("img", name=re.compile(r"^How .+ changes the estimate$"))
    expect(charts).to_have_count(2)
    for chart in charts.all():
        expect(chart).to_be_visible()
        assert chart.bounding_box()["width"] >= 300  # drawn at a readable size
    assert form_values(page) == TYPED
    page.screenshot(path=ARTIFACTS / "desktop-result.png", full_page=True)
    publish(
        page.screenshot(full_page=True, animations="disabled"), "result-desktop.png", DESKTOP_WIDTH
    )  # the picture on docs/form.md and the README
    page.locator(".result").screenshot(path=ARTIFACTS / "desktop-result-drivers.png")


def test_mistake_is_explained_next_to_its_field_and_values_are_kept(page, server):
    _, url = server
    page.goto(url)
    typed = {**TYPED, "bmi": "200", "region": ""}  # region stays on "Choose…"
    fill(page, {k: v for k, v in typed.items() if v})
    page.get_by_role("button", name="Estimate charges").click()
    expect(page).to_have_title(re.compile(r"^Error: "))
    summary = page.locator(".error-summary")
    expect(summary.locator("li")).to_have_count(2)
    expect(summary.locator('a[href="#bmi"]')).to_contain_text("BMI")
    expect(summary.locator('a[href="#region"]')).to_contain_text("region")
    bmi_error = page.locator(".field", has=page.locator("#bmi")).locator("#bmi-error")
    expect(bmi_error).to_be_visible()  # inside the BMI field's own box, beside the input
    expect(bmi_error).to_contain_text(re.compile(r"BMI.*from 10 to 80"))
    expect(page.locator("#bmi")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#bmi")).to_have_attribute("aria-describedby", re.compile(r"\bbmi-error\b"))
    expect(page.locator("#region-error")).to_be_visible()
    expect(page.locator("#age")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator(".result")).to_have_count(0)
    assert form_values(page) == typed
    page.screenshot(path=ARTIFACTS / "desktop-error.png", full_page=True)
    publish(
        page.screenshot(animations="disabled"), "mistake-desktop.png", DESKTOP_WIDTH
    )  # what a person sees first


def test_form_submits_with_keyboard_only(page, server):
    _, url = server
    page.goto(url)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "skip-link"
    page.keyboard.press("Enter")  # skip the header, then Tab into the form
    # Selects start on "Choose…"; ArrowDown moves through the options in schema order.
    steps = {"age": "19", "sex": 1, "bmi": "27.9", "children": "0", "smoker": 1, "region": 4}
    for name, keys in steps.items():
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED) == name
        if isinstance(keys, str):
            page.keyboard.type(keys)
        else:
            for _ in range(keys):
                page.keyboard.press("ArrowDown")
    assert form_values(page) == TYPED
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Estimate charges")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".result")).to_contain_text(ESTIMATE)
    assert form_values(page) == TYPED
    # The page lands on the outcome; the keyboard reaches the charts' figures from there.
    page.keyboard.press("Tab")
    summary = page.locator(".chart-figure summary").first
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".chart-figure table").first).to_be_visible()


def test_form_fits_a_phone_screen_without_sideways_scrolling(browser, server):
    _, url = server
    context = browser.new_context(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        extra_http_headers=SAME_ID,
    )
    context.set_default_timeout(5000)
    phone = context.new_page()
    try:
        phone.goto(url)
        button = phone.get_by_role("button", name="Estimate charges")
        for shown, values in ((".error-summary", {**TYPED, "bmi": "200"}), (".result", TYPED)):
            expect(button).to_be_visible()
            assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the form scrolls sideways on a phone"
            fill(phone, values)
            button.tap()
            expect(phone.locator(shown)).to_be_visible()
        expect(button).to_be_visible()
        assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the result page scrolls sideways on a phone"
        expect(phone.locator(".result")).to_contain_text(ESTIMATE)
        expect(phone.locator(".result .likely")).to_contain_text(LIKELY)
        # Before any tap on this page: a tap's highlight fades over time, so it would make
        # every run's picture differ.
        publish(
            phone.screenshot(full_page=True, animations="disabled"), "result-phone.png", PHONE_WIDTH
        )
        phone.locator(".chart-figure summary").first.tap()  # open a table of figures
        expect(phone.locator(".chart-figure table").first).to_be_visible()
        assert phone.evaluate(NO_SIDEWAYS_SCROLL), "the charts or tables scroll sideways"
        phone.screenshot(path=ARTIFACTS / "phone-result.png", full_page=True)
    finally:
        context.close()


def test_form_works_with_javascript_off(browser, server):
    app, url = server
    context = browser.new_context(viewport={"width": 375, "height": 667}, java_script_enabled=False)
    context.set_default_timeout(5000)
    page = context.new_page()
    try:
        page.goto(url)
        fill(page, TYPED)
        page.get_by_role("button", name="Estimate charges").click()
        expect(page.locator(".result")).to_contain_text(ESTIMATE)
        expect(page.locator(".result .likely")).to_contain_text(LIKELY)
        expect(page.get_by_role("img", name=re.compile("changes the estimate"))).to_have_count(2)
        page.locator(".chart-figure summary").last.click()
        expect(page.locator(".chart-figure table").last).to_be_visible()
    finally:
        context.close()
