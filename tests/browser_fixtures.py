"""Shared by the browser tests: one headless Chromium and the real app served from a thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from insurance_charges.web import create_app

from .conftest import require

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the browser fixture: skipped locally, failed in CI
    sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium for the whole module."""
    require(
        sync_playwright is not None and os.path.exists(CHROMIUM),
        "needs Debian's chromium (apt-get install chromium) and playwright",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server():
    """The real app and committed model, served from a thread on a free localhost port."""
    app = create_app()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    thread.join(timeout=5)
    httpd.server_close()
