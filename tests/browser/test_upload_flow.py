"""In a real headless Chromium: sign in, upload a CSV, watch it become ready, open its statistics."""


import pytest

from tests.conftest import PASSWORD

from .chromium import launched, new_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def page():
    with launched() as browser:
        page = new_page(browser)
        yield page
        page.context.close()


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
