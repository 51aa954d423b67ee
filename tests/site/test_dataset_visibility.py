"""A dataset someone may not see answers 404 on every route; grantees use but do not manage."""

import pytest

pytestmark = pytest.mark.django_db

API_READS = ["/api/datasets/{id}/", "/api/datasets/{id}/preview/", "/api/datasets/{id}/stats/", "/api/datasets/{id}/download/"]
API_WRITES = [
    ("patch", "/api/datasets/{id}/", {"name": "x"}),
    ("delete", "/api/datasets/{id}/", None),
    ("post", "/api/datasets/{id}/schema/", {"id_column": "id", "features": {}}),
    ("post", "/api/datasets/{id}/revalidate/", {}),
]
UI_GETS = ["/datasets/{id}/", "/datasets/{id}/status/", "/datasets/{id}/download/"]
UI_POSTS = ["/datasets/{id}/columns/", "/datasets/{id}/reread/", "/datasets/{id}/edit/", "/datasets/{id}/delete/"]


def test_an_analyst_without_a_grant_gets_404_on_every_api_route(granted_dataset, bob, api_as):
    api = api_as(bob)
    for url in API_READS:
        response = api.get(url.format(id=granted_dataset.pk))
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    for method, url, body in API_WRITES:
        response = getattr(api, method)(url.format(id=granted_dataset.pk), body, format="json")
        assert response.status_code == 404, url


def test_an_analyst_without_a_grant_gets_404_on_every_page(granted_dataset, bob, client_as):
    client = client_as(bob)
    for url in UI_GETS:
        assert client.get(url.format(id=granted_dataset.pk)).status_code == 404, url
    for url in UI_POSTS:
        assert client.post(url.format(id=granted_dataset.pk)).status_code == 404, url


def test_an_analyst_without_a_grant_does_not_see_it_listed(granted_dataset, bob, api_as, client_as):
    assert api_as(bob).get("/api/datasets/").json()["count"] == 0
    assert granted_dataset.name not in client_as(bob).get("/datasets/").content.decode()


def test_a_grantee_reads_but_cannot_download_or_change(granted_dataset, grace, api_as):
    api = api_as(grace)
    ds = granted_dataset.pk
    assert api.get(f"/api/datasets/{ds}/").status_code == 200
    assert api.get(f"/api/datasets/{ds}/preview/").status_code == 200
    assert api.get(f"/api/datasets/{ds}/stats/").status_code == 200
    assert api.get("/api/datasets/").json()["count"] == 1
    assert api.get(f"/api/datasets/{ds}/download/").status_code == 403
    assert api.patch(f"/api/datasets/{ds}/", {"name": "mine now"}, format="json").status_code == 403
    assert api.delete(f"/api/datasets/{ds}/").status_code == 403


def test_the_owner_and_an_admin_can_download(granted_dataset, alice, admin, api_as):
    for user in (alice, admin):
        response = api_as(user).get(f"/api/datasets/{granted_dataset.pk}/download/")
        assert response.status_code == 200


def test_anonymous_callers_get_401_from_the_api_and_the_login_page_from_the_ui(granted_dataset, client):
    response = client.get(f"/api/datasets/{granted_dataset.pk}/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    page = client.get(f"/datasets/{granted_dataset.pk}/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")


def test_grants_are_managed_by_admins_only(granted_dataset, alice, bob, api_as):
    response = api_as(alice).post(f"/api/datasets/{granted_dataset.pk}/grants/", {"user": "bob"}, format="json")
    assert response.status_code == 403
    assert api_as(bob).get(f"/api/datasets/{granted_dataset.pk}/").status_code == 404


def test_a_deleted_dataset_disappears_for_everyone_and_is_audited(granted_dataset, alice, grace, admin, api_as):
    from fedweb.audit.models import AuditEvent

    assert api_as(alice).delete(f"/api/datasets/{granted_dataset.pk}/").status_code == 204
    for user in (alice, grace, admin):
        assert api_as(user).get(f"/api/datasets/{granted_dataset.pk}/").status_code == 404
    assert AuditEvent.objects.filter(action="dataset_delete", object_id=str(granted_dataset.pk)).exists()
    granted_dataset.refresh_from_db()
    assert granted_dataset.deleted_at is not None  # soft: the row stays for the trail
