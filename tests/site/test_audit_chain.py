"""The audit trail is hash-chained: a changed or deleted row is detected by verify_audit."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from fedweb.audit.models import AuditEvent
from fedweb.audit.services import record, verify_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(alice):
    for i in range(5):
        record("dataset_upload", actor=alice, object_type="datasets.dataset", object_id=str(i), details={"n": i})
    return list(AuditEvent.objects.order_by("seq"))


def _raw(sql, params=()):
    """Write straight to the database, as an intruder would (bypassing the PostgreSQL trigger)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def test_an_untouched_trail_verifies(trail, capsys):
    assert verify_chain().ok
    call_command("verify_audit")
    assert "5 rows verified" in capsys.readouterr().out


def test_editing_a_row_in_the_database_is_detected(trail):
    _raw("UPDATE audit_auditevent SET object_id = %s WHERE seq = %s", ["999", trail[2].seq])
    result = verify_chain()
    assert not result.ok
    assert any(f"row {trail[2].seq}" in p and "changed" in p for p in result.problems)
    with pytest.raises(CommandError):
        call_command("verify_audit")


def test_editing_a_row_and_its_hash_is_detected_by_the_next_link(trail):
    from fedweb.audit.services import compute_hash

    victim = trail[1]
    victim.object_id = "forged"
    forged_hash = compute_hash(victim.prev_hash, victim)
    _raw("UPDATE audit_auditevent SET object_id = %s, hash = %s WHERE seq = %s", ["forged", forged_hash, victim.seq])
    result = verify_chain()
    assert not result.ok
    assert any(f"row {trail[2].seq}: does not link" in p for p in result.problems)


def test_deleting_a_row_in_the_middle_is_detected(trail):
    _raw("DELETE FROM audit_auditevent WHERE seq = %s", [trail[2].seq])
    result = verify_chain()
    assert not result.ok
    assert any("missing" in p for p in result.problems)


def test_deleting_the_newest_rows_is_detected(trail):
    _raw("DELETE FROM audit_auditevent WHERE seq >= %s", [trail[3].seq])
    result = verify_chain()
    assert not result.ok
    assert any("newest row" in p for p in result.problems)


def test_the_application_refuses_to_change_or_delete_audit_rows(trail):
    with pytest.raises(PermissionError):
        trail[0].save()
    with pytest.raises(PermissionError):
        trail[0].delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database trigger exists on PostgreSQL only")
def test_postgresql_itself_refuses_updates_to_audit_rows(trail):
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE seq = %s", [trail[0].seq])


def test_every_security_action_records_who_what_which_and_from_where(granted_dataset, alice, client_as):
    client = client_as(alice)
    client.get(f"/datasets/{granted_dataset.pk}/download/", REMOTE_ADDR="10.1.2.3")
    event = AuditEvent.objects.filter(action="dataset_download").get()
    assert event.actor == alice and event.actor_name == "alice"
    assert event.object_id == str(granted_dataset.pk)
    assert event.ip_address == "10.1.2.3"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"dataset_upload", "dataset_validate", "grant", "dataset_download"} <= actions


def test_the_admin_lists_filters_and_exports_the_trail(trail, admin, alice, client_as):
    client = client_as(admin)
    page = client.get("/audit/", {"action": "dataset_upload"})
    assert page.status_code == 200
    assert page.content.decode().count("alice") >= 5
    export = client.get("/audit/export.csv", {"actor": "alice"})
    body = b"".join(export.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0].startswith("seq,event_id,created_at")
    assert len(body.strip().splitlines()) == 1 + 5
    assert AuditEvent.objects.filter(action="audit_export").exists()
