"""Grant expiry and revocation take effect on the very next request."""

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_revoking_a_grant_hides_the_dataset_on_the_next_request(granted_dataset, grace, admin, api_as):
    api = api_as(grace)
    assert api.get(f"/api/datasets/{granted_dataset.pk}/").status_code == 200
    grant = granted_dataset.grants.get(user=grace)
    assert api_as(admin).delete(f"/api/grants/{grant.pk}/").status_code == 204
    assert api.get(f"/api/datasets/{granted_dataset.pk}/").status_code == 404


def test_an_expired_grant_no_longer_gives_access(granted_dataset, grace, api_as):
    api = api_as(grace)
    grant = granted_dataset.grants.get(user=grace)
    grant.expires_at = timezone.now() + timedelta(seconds=30)
    grant.save()
    assert api.get(f"/api/datasets/{granted_dataset.pk}/").status_code == 200
    grant.expires_at = timezone.now() - timedelta(seconds=1)
    grant.save()
    assert api.get(f"/api/datasets/{granted_dataset.pk}/").status_code == 404


def test_a_grant_with_an_end_date_in_the_past_is_refused(granted_dataset, bob, admin, api_as):
    response = api_as(admin).post(
        f"/api/datasets/{granted_dataset.pk}/grants/",
        {"user": "bob", "expires_at": (timezone.now() - timedelta(days=1)).isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["error"]["details"]


def test_granting_again_replaces_the_live_grant_and_both_are_audited(granted_dataset, bob, admin, api_as):
    from fedweb.audit.models import AuditEvent

    api = api_as(admin)
    until = (timezone.now() + timedelta(days=3)).isoformat()
    assert api.post(f"/api/datasets/{granted_dataset.pk}/grants/", {"user": "bob"}, format="json").status_code == 201
    assert api.post(f"/api/datasets/{granted_dataset.pk}/grants/", {"user": "bob", "expires_at": until}, format="json").status_code == 201
    live = granted_dataset.grants.active().filter(user=bob)
    assert live.count() == 1 and live.get().expires_at is not None
    assert AuditEvent.objects.filter(action="grant", object_id=str(granted_dataset.pk)).count() == 3  # grace + bob twice


def test_revocation_is_audited_with_the_admin_and_user(granted_dataset, grace, admin, api_as):
    from fedweb.audit.models import AuditEvent

    grant = granted_dataset.grants.get(user=grace)
    api_as(admin).delete(f"/api/grants/{grant.pk}/")
    event = AuditEvent.objects.get(action="revoke")
    assert event.actor == admin and event.details["user"] == "grace"


def test_the_admin_grants_from_the_dataset_page(granted_dataset, bob, admin, client_as, api_as):
    response = client_as(admin).post(f"/datasets/{granted_dataset.pk}/grants/", {"user": bob.pk})
    assert response.status_code == 302
    assert api_as(bob).get(f"/api/datasets/{granted_dataset.pk}/").status_code == 200
