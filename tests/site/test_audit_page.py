"""The Audit page says what each event did in words, its export writes the details as JSON, and
analysts and viewers read their own actions there instead of a bare refusal."""

import csv
import io
import json

import pytest

from fedweb.audit.display import describe
from fedweb.audit.models import AuditEvent
from fedweb.audit.services import record, verify_chain

pytestmark = pytest.mark.django_db


def _export(client, **params) -> list[dict]:
    response = client.get("/audit/export.csv", params)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def _details_cell(page, seq: int) -> str:
    html = page.content.decode()
    row = html[html.index(f'data-seq="{seq}"'):]
    cell = row[row.index('data-testid="details"'):]
    return cell[:cell.index("</td>")]


def test_the_page_shows_who_was_granted_which_dataset(granted_dataset, admin, grace, client_as):
    event = AuditEvent.objects.get(action="grant")
    page = client_as(admin).get("/audit/", {"action": "grant"})
    cell = _details_cell(page, event.seq)
    assert "User" in cell and "grace" in cell
    assert "Until" in cell and "never" in cell  # an open-ended grant, not "None"
    assert "Alice secret scores" in page.content.decode()  # the object: which dataset
    assert "{&#x27;" not in cell and "None" not in cell


def test_a_role_change_reads_as_before_and_after(admin, bob, client_as):
    event = record("user_update", actor=admin, obj=bob, details={
        "user": "bob", "before": {"role": "analyst", "email": ""},
        "after": {"role": "viewer", "email": "bob@example.org"}})
    cell = _details_cell(client_as(admin).get("/audit/"), event.seq)
    assert "Role" in cell and "Analyst → Viewer (read only)" in cell
    assert "E-mail" in cell and "— → bob@example.org" in cell


def test_details_in_words_keep_unknown_keys_and_fold_long_lists():
    items = describe({"user": "alice", "brand_new_key": 3, "axes": [{"param": f"p{i}"} for i in range(6)],
                      "columns": [{"name": "age", "role": "feature", "type": "numeric"}],
                      "before": {"is_active": True}, "after": {"is_active": False}})
    by_key = {item.key: item for item in items}
    assert by_key["user"].label == "User" and by_key["user"].value.text == "alice"
    assert by_key["brand_new_key"].label is None and by_key["brand_new_key"].value.text == "3"
    assert by_key["axes"].folded and by_key["axes"].size == 6
    assert [v.text for v in by_key["columns"].values] == ["age (feature, Number)"]
    change = by_key["is_active"]
    assert (change.label, change.before.text, change.after.text) == ("Active", "yes", "no")


def test_the_export_writes_details_as_json(admin, alice, client_as):
    record("grant", actor=admin, object_type="datasets.dataset", object_id="7",
           details={"user": "李分析", "grant": 3, "expires_at": None})
    rows = _export(client_as(admin), action="grant")
    assert len(rows) == 1
    cell = rows[0]["details"]
    assert json.loads(cell) == {"expires_at": None, "grant": 3, "user": "李分析"}
    assert cell == '{"expires_at": null, "grant": 3, "user": "李分析"}'  # sorted keys, readable Chinese


def test_a_formula_inside_the_details_cannot_start_a_cell(admin, client_as):
    record("dataset_upload", actor=admin, details={"file": "=HYPERLINK(\"http://evil\")"})
    rows = _export(client_as(admin), action="dataset_upload")
    assert rows[0]["details"].startswith("{")
    assert json.loads(rows[0]["details"])["file"].startswith("=HYPERLINK")


def test_an_analyst_reads_only_their_own_actions(granted_dataset, admin, alice, grace, client_as):
    response = client_as(alice).get("/audit/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="own-only"' in html and "only your own actions" in html
    shown = {event.seq for event, _items in response.context["rows"]}
    mine = set(AuditEvent.objects.filter(actor=alice).values_list("seq", flat=True))
    assert shown == mine and mine  # alice's upload; not the admin's grant, not the system's validation
    assert not AuditEvent.objects.filter(seq__in=shown).exclude(actor=alice).exists()


def test_a_viewer_sees_their_sign_ins_and_nobody_elses(vera, alice, client):
    from django.test import Client

    from tests.conftest import PASSWORD

    Client().post("/login/", {"username": "alice", "password": "not hers"})
    client.post("/login/", {"username": "vera", "password": PASSWORD})
    rows = client.get("/audit/").context["rows"]
    assert [event.action for event, _items in rows] == ["login"]
    assert AuditEvent.objects.filter(action="login_failed").exists()


def test_an_analysts_export_holds_only_their_actions_and_says_so_in_the_trail(granted_dataset, alice, client_as):
    rows = _export(client_as(alice))
    assert rows and {row["actor_name"] for row in rows} == {"alice"}
    export = AuditEvent.objects.get(action="audit_export")
    assert export.actor == alice and export.details["only_own"] is True


def test_an_analysts_filter_by_someone_else_finds_nothing_of_theirs(granted_dataset, alice, client_as):
    rows = client_as(alice).get("/audit/", {"actor": "admin"}).context["rows"]
    assert rows == []


def test_the_api_follows_the_same_rule(granted_dataset, admin, alice, api_as):
    theirs = api_as(alice).get("/api/audit/").json()["results"]
    assert theirs and {row["actor_name"] for row in theirs} == {"alice"}
    everyone = {row["actor_name"] for row in api_as(admin).get("/api/audit/").json()["results"]}
    assert {"alice", "admin", "system"} <= everyone


def test_the_chain_still_verifies_after_users_read_and_export_it(granted_dataset, admin, alice, client_as):
    client_as(alice).get("/audit/")
    _export(client_as(alice))
    _export(client_as(admin))
    assert verify_chain().ok


def test_anonymous_visitors_are_sent_to_sign_in(client):
    assert client.get("/audit/").status_code == 302
    assert client.get("/audit/export.csv").status_code == 302


def test_counts_in_the_details_read_with_thousands_separators_and_ids_stay_as_they_are():
    from fedweb.audit.display import describe

    items = {item.key: item for item in describe({"rows": 100000, "size_bytes": 6144912, "job": 12345})}
    assert items["rows"].value.text == "100,000" and items["size_bytes"].value.text == "6,144,912"
    assert items["job"].value.text == "12345" and items["job"].value.code
