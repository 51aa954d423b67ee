"""The frame around every page, in a real Chromium: error pages lead back into the site, the
top navigation fits a phone, and a file downloads under the name it was uploaded with."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.conftest import PASSWORD

from .chromium import SCREENSHOTS, launched
from .scene import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser():
    with launched() as browser:
        yield browser


def _sign_in(browser, live_server, username: str, **options):
    return signed_in(browser, live_server, username, PASSWORD, **options)


def test_a_missing_page_leads_back_to_its_section(browser, live_server, alice):
    page = _sign_in(browser, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/{uuid.uuid4()}/")
    error = page.get_by_test_id("error-page")
    assert error.get_attribute("data-status") == "404"
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert page.locator("nav.mainnav").is_visible()  # the menu is still there
    page.get_by_role("link", name="Back to Datasets").click()
    page.wait_for_url(f"{live_server.url}/datasets/")


def test_a_refused_page_keeps_the_menu_and_says_whom_to_ask(browser, live_server, alice):
    page = _sign_in(browser, live_server, "alice")
    response = page.goto(f"{live_server.url}/site-admin/users/")
    assert response.status == 403
    assert "ask one of this site's admins" in page.get_by_test_id("error-page").inner_text()
    page.get_by_role("link", name="Go to the home page").click()
    page.wait_for_url(f"{live_server.url}/")


@pytest.fixture
def gbk_dataset(alice, make_dataset):
    # Made before the browser starts: validation pushes its status through the channel layer,
    # which cannot run inside Playwright's event loop.
    dataset = make_dataset(alice, "id,y,城市\n1,0,北京\n2,1,上海\n".encode("gbk"), name="客户", filename="gbk_客户.csv")
    dataset.refresh_from_db()
    assert dataset.is_ready, dataset.error_text
    return dataset


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_whole_top_navigation_fits_a_phone(gbk_dataset, browser, live_server, admin, language):
    admin.language = language
    admin.save(update_fields=["language"])
    page = _sign_in(browser, live_server, "admin", viewport=PHONE)
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-phone-topbar-{language}.png")
    links = page.locator("header.topbar a, header.topbar button")
    assert links.count() >= 9
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        name = links.nth(i).inner_text()
        assert box is not None and box["width"] > 0, name
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{name!r} is cut off at {box}"
    # Nothing on the page is wider than the screen, so nothing needs a sideways scroll.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Every page of the menu fits too: wide tables scroll inside their own box.
    menu = page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    for href in [*menu, f"/datasets/{gbk_dataset.pk}/"]:
        page.goto(live_server.url + href)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{href} is {width}px wide on a phone"
    page.locator("nav.mainnav >> text=" + ("Admin" if language == "en" else "管理")).click()
    page.wait_for_url("**/site-admin/users/")


def test_a_chinese_file_name_downloads_under_that_name(gbk_dataset, browser, live_server):
    dataset = gbk_dataset
    page = _sign_in(browser, live_server, "alice")
    page.goto(f"{live_server.url}/datasets/{dataset.pk}/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "gbk_客户.csv"
    rows = list(csv.reader(io.StringIO(download.value.path().read_bytes().decode("utf-8-sig"))))
    assert rows == [["id", "y", "城市"], ["1", "0", "北京"], ["2", "1", "上海"]]
