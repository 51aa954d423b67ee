"""A site admin edits users, sets a new password and deactivates or reactivates an account; the
guard rails hold, every change is audited, and a reset or a deactivation ends sessions and tokens."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from fedweb.accounts import services
from fedweb.api.errors import ServiceError
from fedweb.api.models import ApiToken
from fedweb.api.tokens import create_token
from fedweb.audit.models import AuditEvent
from fedweb.audit.services import verify_chain
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 2027"


def signed_in(username, password=PASSWORD) -> Client:
    """A browser that signed in through the sign-in page (a real session, not force_login)."""
    client = Client()
    assert client.post("/login/", {"username": username, "password": password}).status_code == 302
    return client


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def edit(client, user, **values):
    data = {"full_name": user.get_full_name(), "email": user.email, "role": user.role, "language": user.language}
    return client.post(f"/site-admin/users/{user.pk}/", {**data, **values})


# --- Who may ------------------------------------------------------------------------------------


def test_only_site_admins_open_or_change_a_users_page(admin, alice, bob, vera, client, client_as):
    for path in (f"/site-admin/users/{bob.pk}/", "/site-admin/users/"):
        assert client_as(alice).get(path).status_code == 403
        assert client_as(vera).get(path).status_code == 403
        assert client.get(path).status_code == 302  # to the sign-in page
    for action in ("", "password/", "deactivate/", "reactivate/"):
        assert client_as(alice).post(f"/site-admin/users/{bob.pk}/{action}", {"role": "admin"}).status_code == 403
    bob.refresh_from_db()
    assert bob.role == "analyst" and bob.is_active
    with pytest.raises(Exception, match="Only site admins"):
        services.deactivate(by=alice, user=bob)


def test_an_unknown_user_is_not_found(admin, client_as):
    assert client_as(admin).get("/site-admin/users/9999/").status_code == 404


# --- Editing ------------------------------------------------------------------------------------


def test_an_admin_edits_name_email_role_and_language(admin, bob, client_as):
    client = client_as(admin)
    page = client.get(f"/site-admin/users/{bob.pk}/")
    assert page.status_code == 200 and b'data-testid="edit"' in page.content
    response = edit(client, bob, full_name="Bob Stone", email="bob@example.org", role="viewer", language="zh-hans")
    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.first_name, bob.last_name, bob.email, bob.role, bob.language) == (
        "Bob", "Stone", "bob@example.org", "viewer", "zh-hans")
    event = AuditEvent.objects.get(action="user_update")
    assert event.actor == admin and event.object_id == str(bob.pk)
    assert event.details["before"]["role"] == "analyst" and event.details["after"]["role"] == "viewer"
    assert event.details["after"]["email"] == "bob@example.org"
    assert set(event.details["after"]) == {"first_name", "last_name", "email", "role", "language"}


def test_saving_without_a_change_writes_no_audit_row(admin, bob, client_as):
    edit(client_as(admin), bob)
    assert not AuditEvent.objects.filter(action="user_update").exists()


def test_a_bad_email_is_refused_in_words_and_keeps_what_was_typed(admin, bob, client_as):
    response = edit(client_as(admin), bob, full_name="Bob Stone", email="not an address", role="viewer")
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert 'value="Bob Stone"' in response.content.decode()
    bob.refresh_from_db()
    assert bob.role == "analyst" and bob.first_name == ""


def test_an_unknown_role_is_refused(admin, bob, client_as):
    response = edit(client_as(admin), bob, role="overlord")
    assert response.status_code == 400
    bob.refresh_from_db()
    assert bob.role == "analyst"


def test_an_admin_edits_their_own_name_but_not_their_own_role(admin, client_as):
    client = client_as(admin)
    page = client.get(f"/site-admin/users/{admin.pk}/").content.decode()
    assert "You cannot change your own role" in page
    response = edit(client, admin, full_name="Ada Admin", role="viewer")  # a forged POST
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.role == "admin" and admin.get_full_name() == "Ada Admin"
    with pytest.raises(ServiceError, match="cannot change your own role"):
        services.update_user(by=admin, user=admin, full_name="", email="", role="viewer")


def test_a_demoted_admin_keeps_no_admin_power(admin, django_user_model):
    other = django_user_model.objects.create_superuser("root", "", PASSWORD, role="admin")
    assert other.is_site_admin and other.is_staff
    services.update_user(by=admin, user=other, full_name="", email="", role="analyst")
    other.refresh_from_db()
    assert (other.role, other.is_superuser, other.is_staff, other.is_site_admin) == ("analyst", False, False, False)


def test_the_site_keeps_an_active_admin_even_when_two_admins_act_at_once(admin, django_user_model):
    """Two admins, each about to remove the other: the second to act is refused in words."""
    other = django_user_model.objects.create_user("ops", password=PASSWORD, role="admin")
    stale_admin = django_user_model.objects.get(pk=admin.pk)  # loaded before ops' change
    services.deactivate(by=other, user=admin)
    with pytest.raises(ServiceError, match="last active admin. Make another user a site admin first"):
        services.update_user(by=stale_admin, user=other, full_name="", email="", role="analyst")
    with pytest.raises(ServiceError, match="last active admin"):
        services.deactivate(by=stale_admin, user=other)
    other.refresh_from_db()
    assert other.is_site_admin


# --- Passwords ----------------------------------------------------------------------------------


def test_a_weak_password_is_refused_with_the_validators_reasons(admin, bob, client_as):
    response = client_as(admin).post(f"/site-admin/users/{bob.pk}/password/",
                                     {"password1": "12345678", "password2": "12345678"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "too short" in text and "too common" in text and "entirely numeric" in text
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="user_password_set").exists()


def test_two_different_passwords_are_refused(admin, bob, client_as):
    response = client_as(admin).post(f"/site-admin/users/{bob.pk}/password/",
                                     {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"})
    assert response.status_code == 400
    assert "The two passwords are not the same." in response.content.decode()
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)


def test_a_new_password_ends_the_users_sessions_and_tokens(admin, bob, client_as):
    bobs_browser = signed_in("bob")
    _row, token = create_token(user=bob, name="nightly")
    assert bobs_browser.get("/datasets/").status_code == 200 and bearer(token).get("/api/me/").status_code == 200
    admin_browser = client_as(admin)

    response = admin_browser.post(f"/site-admin/users/{bob.pk}/password/",
                                  {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True)
    assert "signed out everywhere and 1 API token was revoked" in response.content.decode()
    assert bobs_browser.get("/datasets/").status_code == 302  # back to the sign-in page
    assert bearer(token).get("/api/me/").status_code == 401
    assert admin_browser.get("/site-admin/users/").status_code == 200  # the admin stays signed in
    assert Client().post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 200
    signed_in("bob", NEW_PASSWORD)
    event = AuditEvent.objects.get(action="user_password_set")
    assert event.actor == admin and event.details == {"user": "bob", "tokens_revoked": 1, "sessions_ended": 1}
    assert NEW_PASSWORD not in str(event.details)


def test_an_admin_sets_their_own_password_on_the_password_page_only(admin, client_as):
    client = client_as(admin)
    page = client.get(f"/site-admin/users/{admin.pk}/").content.decode()
    assert "Change your own password on the Password page" in page
    response = client.post(f"/site-admin/users/{admin.pk}/password/",
                           {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 400
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD)


# --- Deactivating -------------------------------------------------------------------------------


def test_a_deactivated_user_cannot_sign_in_or_use_a_token_and_keeps_their_trail(admin, alice, client_as, make_dataset):
    dataset = make_dataset(alice, "id,y\n1,0\n2,1\n", name="Alice's table")
    alices_browser = signed_in("alice")
    _row, token = create_token(user=alice, name="nightly")

    response = client_as(admin).post(f"/site-admin/users/{alice.pk}/deactivate/", follow=True)
    assert "alice was deactivated" in response.content.decode()
    alice.refresh_from_db()
    assert not alice.is_active
    assert alices_browser.get("/datasets/").status_code == 302
    assert bearer(token).get("/api/me/").status_code == 401
    assert ApiToken.objects.get(user=alice).revoked_at is not None
    refused = Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 200 and "not right" in refused.content.decode()

    # Nothing of hers went away: her dataset, her rows in the trail, the chain.
    dataset.refresh_from_db()
    assert dataset.owner == alice and dataset.deleted_at is None
    assert AuditEvent.objects.filter(actor=alice, action="dataset_upload").exists()
    event = AuditEvent.objects.get(action="user_deactivate")
    assert event.actor == admin and event.details["tokens_revoked"] == 1 and event.details["sessions_ended"] == 1
    assert verify_chain().ok
    page = client_as(admin).get("/site-admin/users/").content.decode()
    assert "Deactivated" in page and "alice" in page


def test_an_admin_cannot_deactivate_themselves(admin, client_as):
    response = client_as(admin).post(f"/site-admin/users/{admin.pk}/deactivate/", follow=True)
    assert "You cannot deactivate your own account: another site admin has to do it." in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active
    assert not AuditEvent.objects.filter(action="user_deactivate").exists()


def test_a_reactivated_user_signs_in_again_but_old_sessions_and_tokens_stay_dead(admin, bob, client_as):
    old_browser = signed_in("bob")
    _row, token = create_token(user=bob, name="nightly")
    services.deactivate(by=admin, user=bob)
    response = client_as(admin).post(f"/site-admin/users/{bob.pk}/reactivate/", follow=True)
    assert "bob can sign in again" in response.content.decode()
    bob.refresh_from_db()
    assert bob.is_active
    assert old_browser.get("/datasets/").status_code == 302
    assert bearer(token).get("/api/me/").status_code == 401
    signed_in("bob")
    assert AuditEvent.objects.filter(action="user_reactivate", actor=admin).count() == 1
    # Doing it twice changes nothing and writes nothing more.
    services.reactivate(by=admin, user=bob)
    assert AuditEvent.objects.filter(action="user_reactivate").count() == 1


# --- Creating -----------------------------------------------------------------------------------


def test_a_new_user_with_a_weak_password_is_refused_and_the_form_keeps_the_rest(admin, client_as, django_user_model):
    response = client_as(admin).post("/site-admin/users/", {
        "username": "newbie", "full_name": "New Bie", "role": "viewer", "language": "zh-hans", "password": "newbie12"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "too short" in text and 'value="newbie"' in text and 'value="New Bie"' in text
    assert not django_user_model.objects.filter(username="newbie").exists()


def test_a_new_user_gets_their_language_and_an_audited_creation(admin, client_as, django_user_model):
    response = client_as(admin).post("/site-admin/users/", {
        "username": "mei", "full_name": "Mei Lin", "email": "mei@example.org", "role": "analyst",
        "language": "zh-hans", "password": NEW_PASSWORD})
    mei = django_user_model.objects.get(username="mei")
    assert response.status_code == 302 and response["Location"] == f"/site-admin/users/{mei.pk}/"
    assert (mei.language, mei.get_full_name(), mei.role) == ("zh-hans", "Mei Lin", "analyst")
    event = AuditEvent.objects.get(action="user_create")
    assert event.details == {"user": "mei", "role": "analyst", "email": "mei@example.org", "name": "Mei Lin"}
