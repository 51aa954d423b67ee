"""In a real headless Chromium: sign in, upload a CSV, watch it become ready, open its statistics."""

import os
import shutil

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Debian's Chromium, with the background services a closed network refuses turned off.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made
    # by fixtures in the same thread are safe here (nothing runs concurrently).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def test_an_analyst_uploads_a_csv_and_reads_its_statistics(page, live_server, alice, tmp_path):
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("id,y,age,city\n0012,1,31,北京\n0013,0,45,上海\n0014,1,28,北京\n", encoding="utf-8")

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.click("nav >> text=Datasets")
    page.set_input_files("#id_file", str(csv_file))
    page.fill("#id_name", "Customers")
    page.click("form[data-upload] button[type=submit]")

    page.wait_for_url("**/datasets/*/")
    status = page.locator("[data-testid=status]")
    status.filter(has_text="Ready").wait_for()
    assert page.locator("[data-testid=row-count]").inner_text() == "3"

    stats = page.locator("[data-testid=stats]")
    assert "age" in stats.inner_text()
    assert stats.locator("svg.hist").count() >= 1  # histogram of a numeric column
    preview = page.locator("[data-testid=preview]").inner_text()
    assert "0012" in preview and "北京" in preview


def test_a_broken_file_shows_the_reason_in_plain_words(page, live_server, alice, tmp_path):
    csv_file = tmp_path / "broken.csv"
    csv_file.write_text("id,a,b\n1,2,3\n4,5\n", encoding="utf-8")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/datasets/")
    page.set_input_files("#id_file", str(csv_file))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**/datasets/*/")
    error = page.locator("[data-testid=error]")
    error.wait_for()
    assert "Line 3" in error.inner_text()
