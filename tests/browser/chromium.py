"""Debian's Chromium driven by Playwright, the one way every browser test starts it."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The background services a closed network refuses, turned off.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = os.environ.get("FEDWEB_SCREENSHOTS", "/tmp")


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")


@contextmanager
def launched():
    """A running headless Chromium."""
    require_chromium()
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made
    # by fixtures in the same thread are safe here (nothing runs concurrently).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, *, timeout_ms: int = 15_000, **context_options):
    """A page in a fresh context (its own cookies); close it with ``page.context.close()``."""
    page = browser.new_context(**context_options).new_page()
    page.set_default_timeout(timeout_ms)
    return page


def settled(page, *, quiet_ms: int = 400) -> None:
    """Wait until the requests htmx sends after a change (each waits out a short delay first) have
    been answered and swapped in, so the page has stopped moving before the next click lands."""
    page.wait_for_timeout(quiet_ms)
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
