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


def _sign_in(page, live_server, username="alice"):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_empty_file_says_it_is_empty_as_the_api_does(page, live_server, alice, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/datasets/")
    page.set_input_files("#id_file", str(empty))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**/datasets/*/")
    error = page.locator("[data-testid=error]")
    error.wait_for()
    # The words the API gives for the same file (tests/site/test_dataset_pages.py compares the two).
    assert "The file is empty: it contains no header and no data." in error.inner_text()
    assert "Choose a CSV file" not in page.content()


def test_a_three_megabyte_cell_names_the_cell_limit_and_no_quote(page, live_server, alice, django_user_model, tmp_path):
    big = tmp_path / "notes.csv"
    big.write_text("id,note\n1,short\n2," + "x" * 3_000_000 + "\n", encoding="utf-8")
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/datasets/")
    page.set_input_files("#id_file", str(big))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**/datasets/*/", timeout=60_000)
    error = page.locator("[data-testid=error]")
    error.wait_for(timeout=60_000)
    text = error.inner_text()
    assert "Line 3, column “note”" in text and "131,072 characters a cell may hold" in text, text
    assert "quote" not in text, text

    # A Chinese reader gets the same facts in Chinese.
    django_user_model.objects.filter(pk=alice.pk).update(language="zh-hans")
    page.reload()
    chinese = page.locator("[data-testid=error]").inner_text()
    assert "131,072" in chinese and "3,000,000" in chinese and "单元格" in chinese and "引号" not in chinese, chinese
