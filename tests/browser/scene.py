"""Two real sites with a project, a table authorised at each and an analyst at the bank: what the
browser tests drive, and how a person signs in to one of them."""

from __future__ import annotations

from contextlib import contextmanager

from engine.samples import breast_cancer_split
from tests.twosites.harness import active_project, eventually, start_pair

from .chromium import new_page

POLICY = {"runs_per_day": 50, "min_set_size": 10, "max_set_size": 10_000, "max_size_ratio": 5, "min_overlap": 10,
          "partner_may_receive": True}
ANALYST = "mei"
ANALYST_PASSWORD = "analyst password 2026"


@contextmanager
def two_sites(base):
    """{"bank", "telco", "pid", "tables": {party: dataset id}, "guest", "host"}; both sites stop afterwards."""
    bank, telco = start_pair(base, workers=True, static=True)
    try:
        pid = active_project(bank, telco, name="Credit risk with Telco")
        guest, host = breast_cancer_split()
        tables = {}
        for site, frame, name in ((bank, guest.iloc[:420], "Applicants"), (telco, host.iloc[40:], "Usage")):
            table = site.upload(name, frame.to_csv(index=False))
            assert table["status"] == "ready", table
            site.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"], "policy": POLICY}, expect=201)
            tables[site.party_id] = table["id"]
        eventually(lambda: telco.get(f"/api/projects/{pid}/partner-tables/"), what="bank's table reaches telco")
        eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"), what="telco's table reaches bank")
        bank.shell("from fedweb.accounts.models import User; from projects.models import Project, ProjectMember; "
                   f"u = User.objects.create_user('{ANALYST}', password='{ANALYST_PASSWORD}', role='analyst', "
                   "first_name='Mei'); "
                   f"ProjectMember.objects.create(project=Project.objects.get(pk='{pid}'), user=u)")
        yield {"bank": bank, "telco": telco, "pid": pid, "tables": tables, "guest": guest, "host": host}
    finally:
        for site in (bank, telco):
            site.stop()


def admin_password(site) -> str:
    return (site.data / "admin-password").read_text().strip()


def signed_in(browser, site, username, password, **options):
    """A new page of its own browser context, signed in at ``site``."""
    options = {"viewport": {"width": 1280, "height": 900}, "locale": "en-GB", "accept_downloads": True, **options}
    page = new_page(browser, timeout_ms=20_000, **options)
    page.goto(f"{site.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/")
    return page
