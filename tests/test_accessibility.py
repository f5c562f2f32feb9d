"""axe-core (from npm, pinned in tests/browser) finds no WCAG 2 A/AA violation on any page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .browser_fixtures import ARTIFACTS
from .conftest import require
from .test_browser import NO_SIDEWAYS_SCROLL, TYPED, fill

pytest_plugins = ("tests.browser_fixtures",)  # browser, server
pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 667}}


def show_form(page, url):
    page.goto(url)


def show_result(page, url):
    page.goto(url)
    fill(page, TYPED)
    page.get_by_role("button", name="Estimate charges").click()
    page.locator(".result").wait_for()
    for summary in page.locator(".chart-figure summary").all():
        summary.click()  # check the tables of figures too


def show_mistakes(page, url):
    page.goto(url)
    fill(page, {**TYPED, "age": "17", "bmi": "200"})
    page.get_by_role("button", name="Estimate charges").click()
    page.locator(".error-summary").wait_for()


def show_not_found(page, url):
    assert page.goto(url + "no-such-page").status == 404


def show_docs(page, url):
    page.goto(url + "docs")


PAGES = {
    "form": show_form,
    "result": show_result,
    "mistakes": show_mistakes,
    "not-found": show_not_found,
    "docs": show_docs,
}


def violations(page) -> list[dict]:
    """Run axe on the page as shown, limited to the WCAG 2.0 and 2.1 A and AA rules."""
    # Evaluated through the DevTools protocol rather than a <script> tag, so the page keeps
    # its real Content-Security-Policy (no inline scripts) while axe runs.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_A_AA
    )
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "where": [node["target"] for node in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_wcag_violations(browser, server, name, viewport):
    require(AXE.is_file(), f"needs axe-core: run `npm ci` in {AXE.parents[2]}")
    _, url = server
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    context.set_default_timeout(5000)
    page = context.new_page()
    try:
        PAGES[name](page, url)
        found = violations(page)
        page.screenshot(path=ARTIFACTS / f"axe-{name}-{viewport}.png", full_page=True)
        (ARTIFACTS / f"axe-{name}-{viewport}.json").write_text(json.dumps(found, indent=2))
        assert found == [], json.dumps(found, indent=2)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{name} scrolls sideways at {viewport} size"
    finally:
        context.close()
