"""Every password check is throttled and audited, and Django's admin is no side door."""

import base64
import importlib

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.urls import clear_url_caches

from fedweb.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _reload_urls():
    import fedweb.urls

    importlib.reload(fedweb.urls)
    clear_url_caches()


@pytest.fixture
def django_admin(settings):
    """Build the URLs with Django's admin site on or off; put them back afterwards."""
    original = django_settings.DJANGO_ADMIN_ENABLED

    def switch(enabled: bool):
        settings.DJANGO_ADMIN_ENABLED = enabled
        _reload_urls()

    yield switch
    settings.DJANGO_ADMIN_ENABLED = original
    _reload_urls()


def sign_in(client, url, username, password, ip="192.0.2.10", **extra):
    return client.post(url, {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def lock_out(client, username, settings, ip="192.0.2.10"):
    settings.LOGIN_FAILURE_LIMIT = 3
    for i in range(3):
        sign_in(client, "/login/", username, f"wrong guess {i}", ip=ip)


def test_the_django_admin_site_is_off_by_default(admin, client, client_as, django_admin):
    django_admin(False)
    assert django_settings.DJANGO_ADMIN_ENABLED is False
    for url in ("/django-admin/", "/django-admin/login/", "/django-admin/accounts/user/"):
        assert client.get(url).status_code == 404
        assert client_as(admin).get(url).status_code == 404
    assert sign_in(client, "/django-admin/login/", "admin", PASSWORD).status_code == 404
    assert "_auth_user_id" not in client.session


def test_the_setting_is_read_from_the_environment_and_off_unless_set():
    from fedweb.settings import env

    assert env.env_bool("FEDWEB_DJANGO_ADMIN", False) is django_settings.DJANGO_ADMIN_ENABLED


def test_with_the_admin_site_on_its_sign_in_page_is_ours_and_keeps_next(client, django_admin):
    django_admin(True)
    response = client.get("/django-admin/login/", {"next": "/django-admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fdjango-admin%2F"
    # The admin's own pages send a stranger the same way.
    response = client.get("/django-admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/?next=")
    assert response.templates[0].name == "accounts/login.html"


def test_an_admin_signs_in_to_the_admin_site_through_our_page(admin, client, django_admin):
    django_admin(True)
    response = sign_in(client, "/login/?next=/django-admin/", "admin", PASSWORD, next="/django-admin/")
    assert response.status_code == 302 and response["Location"] == "/django-admin/"
    assert client.get("/django-admin/").status_code == 200
    assert AuditEvent.objects.filter(action="login", actor=admin).count() == 1


def test_an_admin_locked_at_login_is_not_signed_in_at_the_django_admin_login(admin, client, settings, django_admin):
    django_admin(True)
    lock_out(client, "admin", settings)
    assert AuditEvent.objects.filter(action="login_failed", actor_name="admin").count() == 3  # once each

    response = sign_in(client, "/django-admin/login/?next=/django-admin/", "admin", PASSWORD, ip="192.0.2.99")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/django-admin/").status_code == 302  # still a stranger there

    # Following the redirect and signing in there meets the lock-out, audited.
    response = sign_in(client, response["Location"], "admin", PASSWORD, ip="192.0.2.99")
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.context["form"].non_field_errors()[0]
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login_throttled", actor_name="admin", outcome="denied").count() == 1
    assert not AuditEvent.objects.filter(action="login").exists()


def test_djangos_admin_sign_in_form_is_throttled_too(admin, client, settings, rf):
    from django.contrib.admin.forms import AdminAuthenticationForm

    lock_out(client, "admin", settings)
    request = rf.post("/django-admin/login/", REMOTE_ADDR="192.0.2.99")
    form = AdminAuthenticationForm(request, data={"username": "admin", "password": PASSWORD})
    assert not form.is_valid()
    assert form.get_user() is None
    assert AuditEvent.objects.filter(action="login_throttled", actor_name="admin").count() == 1


def test_authenticate_refuses_a_locked_account_and_audits_it(admin, client, settings, rf):
    lock_out(client, "admin", settings)
    assert authenticate(None, username="admin", password=PASSWORD) is None
    request = rf.post("/anywhere/", REMOTE_ADDR="203.0.113.5")
    assert authenticate(request, username="admin", password=PASSWORD) is None
    events = AuditEvent.objects.filter(action="login_throttled", actor_name="admin")
    assert events.count() == 2
    assert {e.outcome for e in events} == {"denied"}
    assert "203.0.113.5" in {e.ip_address for e in events}


def test_a_wrong_password_through_authenticate_is_counted_and_audited(alice, settings, rf):
    settings.LOGIN_FAILURE_LIMIT = 2
    request = rf.post("/anywhere/", REMOTE_ADDR="203.0.113.6")
    assert authenticate(request, username="alice", password="not it") is None
    event = AuditEvent.objects.get(action="login_failed")
    assert (event.actor_name, event.outcome, event.ip_address) == ("alice", "failure", "203.0.113.6")

    assert authenticate(request, username="alice", password="still not it") is None
    assert authenticate(request, username="alice", password=PASSWORD) is None  # now locked
    assert AuditEvent.objects.filter(action="login_failed").count() == 2
    assert AuditEvent.objects.filter(action="login_throttled").count() == 1


def test_a_right_password_through_authenticate_clears_the_account_counter(alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    assert authenticate(None, username="alice", password="not it") is None
    assert authenticate(None, username="alice", password=PASSWORD) == alice
    assert authenticate(None, username="alice", password="not it again") is None
    assert authenticate(None, username="alice", password=PASSWORD) == alice


def test_an_inactive_account_is_refused_like_a_wrong_password(alice, client):
    alice.is_active = False
    alice.save()
    response = sign_in(client, "/login/", "alice", PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login_failed", actor_name="alice").count() == 1


def test_the_api_takes_no_passwords(alice, client):
    classes = django_settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "rest_framework.authentication.BasicAuthentication" not in classes
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code in (401, 403)
