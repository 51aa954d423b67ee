"""In a real headless Chromium: an admin checks this site's identity, then invites a paired partner."""


import pytest

from tests.conftest import PASSWORD

from .chromium import SCREENSHOTS, launched, new_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def page():
    with launched() as browser:
        page = new_page(browser, viewport={"width": 1280, "height": 900})
        yield page
        page.context.close()


@pytest.fixture
def paired(admin):
    """This site has a certificate and is paired with "telco"."""
    from fedweb.proxy import pki
    from projects import pairing

    cert = pki.create_site_certificate()
    _key, telco_cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle(
        {"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco", "proxy_address": "127.0.0.1:9",
         "certificates": [telco_cert.decode()]},
        by=admin,
    )
    return cert, partner


def test_an_admin_checks_the_sites_identity_and_invites_a_partner(page, live_server, admin, paired):
    cert, _partner = paired
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.click("nav >> text=Partners")
    page.wait_for_url("**/partners/")
    this_site = page.locator("[data-testid=this-site]")
    assert cert.fingerprint[:16] in this_site.locator("[data-testid=fingerprint]").inner_text()
    assert page.locator("#id_proxy_address").input_value().endswith(":7443")
    assert "Telco" in page.locator("[data-testid=partners]").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-partners.png", full_page=True)

    page.click("nav >> text=Projects")
    page.wait_for_url("**/projects/")
    form = page.locator("[data-testid=new-project]")
    form.locator("#id_partner").select_option(label="Telco (telco)")
    form.locator("#id_name").fill("Credit risk with Telco")
    form.locator("#id_purpose").fill("Score loan applicants with the telco's usage data.")
    form.get_by_label("This site holds the labels").check()
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-projects.png", full_page=True)
    form.locator("button[type=submit]").click()

    page.wait_for_url("**/projects/*-*/")
    assert page.locator("[data-testid=status]").inner_text() == "Waiting for the partner's answer"
    assert "The invitation is on its way to Telco" in page.locator(".messages").inner_text()
    assert "We hold the labels" in page.locator("[data-testid=facts]").inner_text()
    assert "Invitation sent to Telco" in page.locator("[data-testid=history]").inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/fedweb-project-detail.png", full_page=True)
