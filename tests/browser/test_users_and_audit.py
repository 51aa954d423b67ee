"""In a real Chromium: a site admin edits a user, sets their password, deactivates and reactivates
them, and reads what happened on the Audit page; an analyst reads their own actions there."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import PASSWORD

from .chromium import SCREENSHOTS, launched, new_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a brand new passphrase 2027"


@pytest.fixture
def browser():
    with launched() as browser:
        yield browser


def _sign_in(browser, live_server, username: str, password: str = PASSWORD):
    page = new_page(browser, viewport={"width": 1280, "height": 900}, locale="en-GB", accept_downloads=True)
    _sign_in_on(page, live_server, username, password)
    page.wait_for_url(f"{live_server.url}/")
    return page


def _sign_in_on(page, live_server, username, password):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


@pytest.fixture
def granted(alice, grace, admin, make_dataset):
    """alice's dataset with a grant for grace, made before the browser starts (validation pushes
    its status through the channel layer, which cannot run inside Playwright's event loop)."""
    from datasets import services

    dataset = make_dataset(alice, "id,y\n1,0\n2,1\n", name="Applicants")
    services.grant(by=admin, dataset=dataset, user=grace)
    return dataset


def test_an_admin_edits_resets_deactivates_and_reactivates_a_user(browser, live_server, admin, bob):
    bobs = _sign_in(browser, live_server, "bob")
    page = _sign_in(browser, live_server, "admin")

    page.click("nav >> text=Admin")
    page.get_by_role("link", name="bob", exact=True).click()
    page.wait_for_url(f"{live_server.url}/site-admin/users/{bob.pk}/")
    edit = page.get_by_test_id("edit")
    edit.get_by_label("Full name").fill("Bob Stone")
    edit.get_by_label("E-mail").fill("bob@example")  # the browser lets it through, the site does not
    edit.get_by_label("Role").select_option("viewer")
    edit.get_by_role("button", name="Save changes").click()
    assert "Enter a valid email address." in page.get_by_test_id("edit").inner_text()
    assert page.get_by_test_id("edit").get_by_label("Full name").input_value() == "Bob Stone"  # nothing lost
    page.get_by_test_id("edit").get_by_label("E-mail").fill("bob@example.org")
    page.get_by_test_id("edit").get_by_role("button", name="Save changes").click()
    assert "The changes to bob were saved." in page.locator(".messages").inner_text()
    assert page.get_by_test_id("edit").get_by_label("Role").input_value() == "viewer"

    # A new password: a weak one is refused with Django's reasons, a good one ends bob's session.
    password = page.get_by_test_id("password")
    password.locator("#id_password1").fill("bob12345")
    password.locator("#id_password2").fill("bob12345")
    password.get_by_role("button", name="Set the new password").click()
    assert "too short" in page.get_by_test_id("password").inner_text()
    password = page.get_by_test_id("password")
    password.locator("#id_password1").fill(NEW_PASSWORD)
    password.locator("#id_password2").fill(NEW_PASSWORD)
    password.get_by_role("button", name="Set the new password").click()
    assert "They were signed out everywhere" in page.locator(".messages").inner_text()
    bobs.goto(f"{live_server.url}/datasets/")
    assert "/login/" in bobs.url
    _sign_in_on(bobs, live_server, "bob", NEW_PASSWORD)
    bobs.wait_for_url(f"{live_server.url}/")

    # Deactivated: out at once, and the sign-in page refuses him; reactivated: in again.
    page.get_by_test_id("account").get_by_role("button", name="Deactivate").click()
    assert "bob was deactivated" in page.locator(".messages").inner_text()
    assert page.get_by_test_id("status").inner_text() == "Deactivated"
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-user-deactivated.png", full_page=True)
    bobs.goto(f"{live_server.url}/datasets/")
    assert "/login/" in bobs.url
    _sign_in_on(bobs, live_server, "bob", NEW_PASSWORD)
    assert "The user name or password is not right" in bobs.get_by_role("alert").inner_text()
    page.get_by_test_id("account").get_by_role("button", name="Reactivate").click()
    assert page.get_by_test_id("status").inner_text() == "Active"
    _sign_in_on(bobs, live_server, "bob", NEW_PASSWORD)
    bobs.wait_for_url(f"{live_server.url}/")

    # The list shows the new name and role; the audit trail says who changed what.
    page.click("nav >> text=Admin")
    row = page.locator("[data-user=bob]")
    assert "Bob Stone" in row.inner_text() and "Viewer (read only)" in row.inner_text()
    page.click("nav >> text=Audit")
    page.wait_for_url(f"{live_server.url}/audit/")
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-audit-admin.png", full_page=True)
    trail = page.get_by_test_id("audit")
    change = trail.locator("tr", has_text="Changed user").first.get_by_test_id("details").inner_text()
    assert "Analyst → Viewer (read only)" in change and "bob@example.org" in change
    assert trail.locator("tr", has_text="Set a user's password").count() == 1
    assert trail.locator("tr", has_text="Deactivated user").count() == 1
    assert trail.locator("tr", has_text="Reactivated user").count() == 1
    assert NEW_PASSWORD not in trail.inner_text()


def test_an_admin_cannot_demote_or_deactivate_themselves(browser, live_server, admin):
    page = _sign_in(browser, live_server, "admin")
    page.goto(f"{live_server.url}/site-admin/users/{admin.pk}/")
    assert page.get_by_test_id("edit").get_by_label("Role").is_disabled()
    account = page.get_by_test_id("account")
    assert "You cannot deactivate your own account: another site admin has to do it." in account.inner_text()
    assert account.get_by_role("button").count() == 0
    assert page.get_by_test_id("password").count() == 0  # their own password: on the Password page


def test_the_admin_reads_who_was_granted_what_and_exports_json(browser, live_server, granted, admin):
    page = _sign_in(browser, live_server, "admin")
    page.click("nav >> text=Audit")
    grant = page.get_by_test_id("audit").locator("tr", has_text="Granted dataset access")
    assert "Applicants" in grant.inner_text()
    details = grant.get_by_test_id("details").inner_text()
    assert "grace" in details and "never" in details and "{'" not in details and "None" not in details
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_bytes().decode("utf-8-sig"))))
    grants = [row for row in rows if row["action"] == "grant"]
    grant_id = granted.grants.get().pk  # not 1 on PostgreSQL, whose sequences go on between tests
    assert json.loads(grants[0]["details"]) == {"expires_at": None, "grant": grant_id, "user": "grace"}


def test_an_analyst_reads_their_own_actions_in_the_audit_page(browser, live_server, granted, alice):
    page = _sign_in(browser, live_server, "alice")
    page.click("nav >> text=Audit")
    page.wait_for_url(f"{live_server.url}/audit/")
    assert "You see only your own actions" in page.get_by_test_id("own-only").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-audit-analyst.png", full_page=True)
    trail = page.get_by_test_id("audit").inner_text()
    assert "Uploaded dataset" in trail and "Signed in" in trail
    assert "Granted dataset access" not in trail and "this site (automatic)" not in trail
    with page.expect_download() as download:
        page.get_by_test_id("export").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_bytes().decode("utf-8-sig"))))
    assert rows and {row["actor_name"] for row in rows} == {"alice"}
