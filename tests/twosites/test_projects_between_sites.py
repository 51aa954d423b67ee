"""Pairing, invitation, acceptance, table authorisation, suspension and revocation end to end."""

import pytest

from .harness import active_project, eventually

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-projects")]

TELCO_CSV = "id,calls,data_gb,roaming\n" + "".join(f"{i:05d},{i % 50},{i % 7}.5,{'yes' if i % 3 else 'no'}\n" for i in range(200))
BANK_CSV = "id,y,income\n" + "".join(f"{i:05d},{i % 2},{1000 + i}\n" for i in range(150))


def test_each_site_reaches_the_other(sites):
    bank, telco = sites
    for site, other in ((bank, telco), (telco, bank)):
        report = site.post(f"/api/partners/{other.party_id}/test/")
        assert report["ok"], report
        assert all(step["ok"] for step in report["steps"])


def test_an_invitation_is_accepted_and_tables_are_authorised_both_ways(sites):
    bank, telco = sites
    pid = active_project(bank, telco)
    telco_table = telco.upload("Telco usage", TELCO_CSV)
    bank_table = bank.upload("Bank customers", BANK_CSV)

    telco.post(f"/api/projects/{pid}/tables/", {"dataset": telco_table["id"], "policy": {"min_set_size": 100, "min_overlap": 20}}, expect=201)
    bank.post(f"/api/projects/{pid}/tables/", {"dataset": bank_table["id"]}, expect=201)

    remote = eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"), what="telco's table reaches the bank")
    assert remote[0]["name"] == "Telco usage" and remote[0]["row_count"] == 200
    assert [c["name"] for c in remote[0]["columns"]] == ["id", "calls", "data_gb", "roaming"]
    assert "rows" not in remote[0]  # names and counts only, never rows
    eventually(lambda: telco.get(f"/api/projects/{pid}/partner-tables/"), what="bank's table reaches the telco")

    # Both sites record each cross-site action under the same event id.
    bank_ids = {e["event_id"] for e in bank.get(f"/api/projects/{pid}/events/")}
    telco_ids = {e["event_id"] for e in telco.get(f"/api/projects/{pid}/events/")}
    assert len(bank_ids) == len(telco_ids) == 4 and bank_ids == telco_ids
    bank_audit = {e["event_id"] for e in bank.get(f"/api/audit/?object={pid}")["results"]}
    assert telco_ids <= bank_audit


def test_a_rejected_invitation_tells_the_inviter_why(sites):
    bank, telco = sites
    project = bank.post("/api/projects/", {"partner": "telco", "name": "Marketing", "purpose": "Campaign", "we_hold_labels": True}, expect=201)
    pid = project["id"]
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["status"] == "invited")
    telco.post(f"/api/projects/{pid}/reject/", {"comment": "Not this quarter"})
    answer = eventually(lambda: (p := bank.get(f"/api/projects/{pid}/"))["status"] == "rejected" and p)
    assert answer["decision_comment"] == "Not this quarter"


def test_a_suspension_reaches_the_partner_and_only_its_maker_lifts_it(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Suspend me")
    telco.post(f"/api/projects/{pid}/suspend/", {"comment": "audit week"})
    eventually(lambda: bank.get(f"/api/projects/{pid}/")["status"] == "suspended", what="suspension arrives")
    refused = bank.post(f"/api/projects/{pid}/resume/", expect=409)
    assert "only the partner can lift" in refused["error"]["message"]
    # Both suspend: work resumes only when both have lifted their own.
    bank.post(f"/api/projects/{pid}/suspend/")
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["suspended_by_partner"], what="second suspension arrives")
    telco.post(f"/api/projects/{pid}/resume/")
    eventually(lambda: not bank.get(f"/api/projects/{pid}/")["suspended_by_partner"], what="telco's lifting arrives")
    assert bank.get(f"/api/projects/{pid}/")["status"] == "suspended"
    assert telco.get(f"/api/projects/{pid}/")["status"] == "suspended"
    bank.post(f"/api/projects/{pid}/resume/")
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["status"] == "active", what="resumption arrives")
    assert bank.get(f"/api/projects/{pid}/")["status"] == "active"


def test_a_rotated_token_keeps_events_flowing(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Rotate me")
    version = bank.get(f"/api/projects/{pid}/")["token_version"]
    bank.post(f"/api/projects/{pid}/rotate-token/")
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["token_version"] == version + 1, what="new token arrives")
    table = bank.upload("After rotation", BANK_CSV)
    bank.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=201)
    eventually(lambda: telco.get(f"/api/projects/{pid}/partner-tables/"), what="event under the new token")


def test_a_revoked_project_is_closed_on_both_sides_and_refuses_tables(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Revoke me")
    bank.post(f"/api/projects/{pid}/revoke/", {"comment": "contract ended"})
    eventually(lambda: telco.get(f"/api/projects/{pid}/")["status"] == "revoked", what="revocation arrives")
    table = telco.upload("Late table", TELCO_CSV)
    refused = telco.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=409)
    assert refused["error"]["code"] == "wrong_state"


def test_removing_a_table_reaches_the_partner(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Remove table")
    table = telco.upload("Temporary", TELCO_CSV)
    authorised = telco.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"]}, expect=201)
    eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"))
    telco.api("DELETE", f"/api/projects/{pid}/tables/{authorised['id']}/", expect=204)
    eventually(lambda: not bank.get(f"/api/projects/{pid}/partner-tables/")[0]["is_authorised"], what="removal arrives")
