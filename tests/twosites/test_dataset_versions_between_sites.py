"""A new version of a table reaches the partner only when an admin moves the project to it."""

import pytest

from .harness import active_project, eventually

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-versions")]

JANUARY = "id,calls,minutes\n" + "".join(f"{i:05d},{i % 9},{i % 60}\n" for i in range(200))
FEBRUARY = "minutes,id,calls\n" + "".join(f"{i % 60},{i:05d},{i % 9}\n" for i in range(150, 450))


def test_the_partner_sees_the_new_version_once_the_admin_moves_the_project(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Monthly usage")
    january = telco.upload("Usage", JANUARY)
    table = telco.post(f"/api/projects/{pid}/tables/", {"dataset": january["id"], "policy": {"min_overlap": 20}}, expect=201)
    eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"), what="January reaches the bank")

    february = telco.post(f"/api/datasets/{january['id']}/versions/", {},
                          files={"file": ("usage-february.csv", FEBRUARY.encode())}, expect=201)
    february = eventually(lambda: (d := telco.get(f"/api/datasets/{february['id']}/"))["status"] == "ready" and d,
                          what="February is checked")
    assert february["version"] == 2 and february["row_count"] == 300
    # Uploading is not moving: the bank still sees January only.
    remote = bank.get(f"/api/projects/{pid}/partner-tables/")
    assert [(r["table_id"], r["version"], r["is_authorised"]) for r in remote] == [(january["id"], 1, True)]

    moved = telco.post(f"/api/projects/{pid}/tables/{table['id']}/version/", {"version": 2}, expect=201)
    assert moved["policy"]["min_overlap"] == 20  # the same rules

    def both_arrived():
        rows = {r["table_id"]: r for r in bank.get(f"/api/projects/{pid}/partner-tables/")}
        return len(rows) == 2 and not rows[january["id"]]["is_authorised"] and rows.get(february["id"], {}).get("is_authorised") and rows

    rows = eventually(both_arrived, what="the move reaches the bank")
    assert rows[january["id"]]["replaced_by"] == february["id"]
    new = rows[february["id"]]
    assert (new["name"], new["version"], new["row_count"]) == ("Usage", 2, 300)
    assert {c["name"] for c in new["columns"]} == {"id", "calls", "minutes"}
    summaries = [e["summary"] for e in bank.get(f"/api/projects/{pid}/events/")]
    assert any("“Usage” (version 2)" in s for s in summaries), summaries
