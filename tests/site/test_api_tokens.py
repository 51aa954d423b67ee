"""Expiring API tokens for scripts, stored hashed; one error format everywhere."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from fedweb.api.models import ApiToken
from fedweb.api.tokens import create_token

pytestmark = pytest.mark.django_db


def bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_script_authenticates_with_a_token(alice):
    _row, token = create_token(user=alice, name="nightly")
    response = bearer(token).get("/api/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_only_a_hash_of_the_token_is_stored(alice):
    row, token = create_token(user=alice, name="nightly")
    secret = token.rsplit("_", 1)[1]
    stored = ApiToken.objects.filter(pk=row.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())


def test_an_expired_token_is_refused(alice):
    row, token = create_token(user=alice, name="old", days=1)
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(token).get("/api/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_token_is_refused_at_once(alice, client_as):
    row, token = create_token(user=alice, name="revoke me")
    client_as(alice).post(f"/tokens/{row.pk}/revoke/")
    assert bearer(token).get("/api/me/").status_code == 401


def test_a_tampered_token_is_refused(alice):
    _row, token = create_token(user=alice, name="t")
    assert bearer(token[:-2] + "xx").get("/api/me/").status_code == 401
    assert bearer("fw_nothing").get("/api/me/").status_code == 401


def test_a_disabled_user_cannot_use_their_token(alice):
    _row, token = create_token(user=alice, name="t")
    alice.is_active = False
    alice.save()
    assert bearer(token).get("/api/me/").status_code == 401


def test_the_tokens_page_shows_a_new_token_once(alice, client_as):
    client = client_as(alice)
    page = client.post("/tokens/", {"name": "laptop", "days": "30"})
    assert "fw_" in page.content.decode() and "will not be shown again" in page.content.decode()
    again = client.get("/tokens/").content.decode()
    assert "will not be shown again" not in again


def test_validation_errors_use_the_shared_error_format(granted_dataset, alice, api_as):
    response = api_as(alice).post(f"/api/datasets/{granted_dataset.pk}/schema/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "invalid"
    assert "id_column" in body["error"]["details"]


def test_unknown_api_paths_answer_json_404(alice, api_as):
    response = api_as(alice).get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_tokens_page_shows_the_header_to_send_with_its_placeholder(alice, client_as):
    page = client_as(alice).get("/tokens/").content.decode()
    assert "Authorization: Bearer &lt;token&gt;" in page  # written out, not swallowed as an HTML tag
