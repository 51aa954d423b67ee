"""Sign-in: audited, throttled per account and per address, one answer for every failure."""

import pytest

from fedweb.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client, username, password, ip="192.0.2.10"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _error_text(response):
    return response.context["form"].non_field_errors()[0]


def test_a_user_signs_in_and_the_sign_in_is_audited(alice, client):
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="login")
    assert event.actor == alice and event.ip_address == "192.0.2.10"


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(alice, client):
    wrong_password = sign_in(client, "alice", "not the password")
    unknown_user = sign_in(client, "mallory", "whatever it is")
    assert wrong_password.status_code == unknown_user.status_code == 200
    assert _error_text(wrong_password) == _error_text(unknown_user)
    assert AuditEvent.objects.filter(action="login_failed").count() == 2


def test_an_account_is_throttled_after_repeated_failures_even_with_the_right_password(alice, client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for i in range(3):
        sign_in(client, "alice", f"wrong {i}", ip=f"192.0.2.{i}")
    response = sign_in(client, "alice", PASSWORD, ip="192.0.2.99")
    assert response.status_code == 200
    assert "Too many failed sign-ins" in _error_text(response)
    assert AuditEvent.objects.filter(action="login_throttled").exists()
    assert not AuditEvent.objects.filter(action="login").exists()


def test_an_unknown_account_is_throttled_the_same_way(client, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        sign_in(client, "ghost", "nope")
    assert "Too many failed sign-ins" in _error_text(sign_in(client, "ghost", "nope"))


def test_an_address_is_throttled_across_accounts(alice, client, settings):
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 4
    for i in range(4):
        sign_in(client, f"user{i}", "guess", ip="198.51.100.7")
    blocked = sign_in(client, "alice", PASSWORD, ip="198.51.100.7")
    assert "Too many failed sign-ins" in _error_text(blocked)
    assert sign_in(client, "alice", PASSWORD, ip="198.51.100.8").status_code == 302


def test_a_successful_sign_in_resets_the_account_counter(alice, client, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    sign_in(client, "alice", "wrong 1")
    sign_in(client, "alice", "wrong 2")
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.post("/logout/")
    sign_in(client, "alice", "wrong 3")
    sign_in(client, "alice", "wrong 4")
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_sign_out_is_audited(alice, client):
    sign_in(client, "alice", PASSWORD)
    client.post("/logout/")
    assert AuditEvent.objects.filter(action="logout", actor=alice).exists()


def test_a_user_changes_their_password(alice, client_as):
    client = client_as(alice)
    response = client.post(
        "/password/",
        {"old_password": PASSWORD, "new_password1": "a much longer passphrase 42", "new_password2": "a much longer passphrase 42"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a much longer passphrase 42")
    assert AuditEvent.objects.filter(action="password_change", actor=alice).exists()


def test_a_formula_typed_as_a_user_name_is_neutralised_in_the_audit_export(admin, client, client_as):
    sign_in(client, "=HYPERLINK(\"http://evil\")", "x")
    export = client_as(admin).get("/audit/export.csv", {"action": "login_failed"})
    body = b"".join(export.streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in body


def test_only_admins_manage_users_and_roles(admin, alice, client_as, django_user_model):
    assert client_as(alice).get("/site-admin/users/").status_code == 403
    response = client_as(admin).post(
        "/site-admin/users/",
        {"username": "newbie", "role": "viewer", "password": "long enough passphrase 7"},
    )
    assert response.status_code == 302
    assert django_user_model.objects.get(username="newbie").role == "viewer"
    assert AuditEvent.objects.filter(action="user_create").exists()
