"""Control events survive a partner that is down, and a receiver that crashes mid-apply."""

import pytest

from .harness import active_project, eventually

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-faults")]

CSV = "id,x\n" + "".join(f"{i:04d},{i}\n" for i in range(120))


def _event_types(site, pid):
    return [e["type"] for e in reversed(site.get(f"/api/projects/{pid}/events/"))]


def test_events_produced_while_the_partner_is_down_arrive_once_and_in_order(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Partner down")
    telco.stop_proxy()
    tables = [bank.upload(f"Table {i}", CSV) for i in range(3)]
    for table in tables:
        bank.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=201)
    bank.post(f"/api/projects/{pid}/suspend/")
    bank.post(f"/api/projects/{pid}/resume/")
    assert telco.get(f"/api/projects/{pid}/")["status"] == "active"  # it heard nothing yet
    telco.start_proxy()
    expected = ["project.invite", "project.accept", "table.authorised", "table.authorised", "table.authorised",
                "project.suspend", "project.resume"]
    eventually(lambda: _event_types(telco, pid) == expected, seconds=60, what="every pending event arrives")
    assert [t["name"] for t in telco.get(f"/api/projects/{pid}/partner-tables/")] == ["Table 0", "Table 1", "Table 2"]
    assert _event_types(bank, pid) == expected  # same history on both sides


def test_a_receiver_that_crashes_while_applying_applies_the_event_once_after_restart(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Crash while applying")
    telco.stop_proxy()
    telco.start_proxy(FEDWEB_FAULT_CRASH_APPLYING="table.authorised")
    table = bank.upload("Crash table", CSV)
    bank.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=201)
    eventually(lambda: telco.proxy.poll() is not None, what="the receiving proxy crashes mid-apply")
    assert telco.proxy.returncode == 86
    assert telco.get(f"/api/projects/{pid}/partner-tables/") == []  # the half-applied change was rolled back
    telco.start_proxy()
    eventually(lambda: telco.get(f"/api/projects/{pid}/partner-tables/"), seconds=60, what="the retried event is applied")
    assert _event_types(telco, pid).count("table.authorised") == 1
    applied = telco.shell(
        f"from fedweb.proxy.models import InboxEvent; print(InboxEvent.objects.filter(stream='{pid}', type='table.authorised').count())"
    )
    assert applied == "1"


def test_a_certificate_rotation_needs_no_downtime(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Rotation")
    out = telco.manage("site_identity", "rotate").stdout
    new_fp = out.split()[1]
    bundle = telco.post("/api/partners/bundle/", {"proxy_address": telco.proxy_address})
    assert len(bundle["certificates"]) == 2  # old and new, both to pin
    bank.post("/api/partners/import/", {"bundle": bundle}, expect=201)
    telco.manage("site_identity", "activate", new_fp)  # the running proxy picks it up at the next handshake
    for site, other in ((bank, telco), (telco, bank)):
        report = site.post(f"/api/partners/{other.party_id}/test/")
        assert report["ok"], report
    table = telco.upload("After cert rotation", CSV)
    telco.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=201)
    eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"), what="events flow with the new certificate")


def test_an_unpinned_or_unreachable_partner_is_explained_in_plain_words(sites):
    bank, telco = sites
    telco.stop_proxy()
    report = bank.post("/api/partners/telco/test/")
    assert not report["ok"]
    assert "unreachable" in report["summary"]
    telco.start_proxy()
    assert bank.post("/api/partners/telco/test/")["ok"]
