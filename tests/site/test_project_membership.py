"""Who sees a project: site admins see all; anyone else only the projects they are a member of."""

import pytest
from django.core.exceptions import PermissionDenied

from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditEvent
from fedweb.audit.services import verify_chain
from fedweb.proxy import pki
from projects import membership, pairing, services
from projects.models import Project, ProjectMember, ProjectStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(db, admin):
    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    return pairing.import_bundle(
        {"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco", "proxy_address": "127.0.0.1:9",
         "certificates": [cert.decode()]},
        by=admin,
    )


@pytest.fixture
def invitation(partner):
    """An invitation received from the partner: nobody on this site is a member yet."""
    return Project.objects.create(
        name="Churn together", purpose="Predict churn", partner=partner, initiator=partner.party_id,
        label_holder=partner.party_id, status=ProjectStatus.INVITED, status_changed_by=partner.party_id,
    )


@pytest.fixture
def project(invitation, admin):
    project = services.accept(user=admin, project=invitation)
    project.remote_tables.create(table_id="t-1", name="Telco usage", row_count=10, columns=[{"name": "phone", "role": "id"}])
    return project


def _api_urls(project):
    base = f"/api/projects/{project.pk}"
    return [f"{base}/", f"{base}/tables/", f"{base}/partner-tables/", f"{base}/events/", f"{base}/members/"]


def _listed(api, project) -> bool:
    return str(project.pk) in {row["id"] for row in api.get("/api/projects/").json()["results"]}


def _add(admin, project, user):
    return membership.add_member(by=admin, project=project, user=user)[0]


def _actions(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- Not a member: not found -------------------------------------------------------------

def test_a_non_member_analyst_cannot_find_the_project_anywhere(bob, client_as, api_as, project):
    client, api = client_as(bob), api_as(bob)
    assert client.get(f"/projects/{project.pk}/").status_code == 404
    for url in _api_urls(project):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert not _listed(api, project)
    assert "Churn together" not in client.get("/projects/").content.decode()


def test_a_non_member_cannot_act_on_the_project_either(bob, client_as, api_as, project):
    assert client_as(bob).post(f"/projects/{project.pk}/suspend/").status_code == 404
    assert api_as(bob).post(f"/api/projects/{project.pk}/suspend/", {}, format="json").status_code == 404
    project.refresh_from_db()
    assert project.status == ProjectStatus.ACTIVE


def test_the_admin_sees_every_project_without_being_a_member(admin, client_as, api_as, project):
    assert not ProjectMember.objects.filter(user=admin).exists()
    assert client_as(admin).get(f"/projects/{project.pk}/").status_code == 200
    for url in _api_urls(project):
        assert api_as(admin).get(url).status_code == 200, url


# --- Adding and removing -----------------------------------------------------------------

def test_an_analyst_the_admin_adds_sees_the_project_until_removed(admin, bob, client_as, api_as, project):
    page, api = client_as(bob), api_as(bob)
    response = client_as(admin).post(f"/projects/{project.pk}/members/", {"user": bob.pk}, follow=True)
    assert "bob can now see this project." in response.content.decode()

    assert page.get(f"/projects/{project.pk}/").status_code == 200
    for url in _api_urls(project):
        assert api.get(url).status_code == 200, url
    assert _listed(api, project)
    assert "Churn together" in page.get("/projects/").content.decode()

    response = client_as(admin).post(f"/projects/{project.pk}/members/{bob.pk}/remove/", follow=True)
    assert "bob no longer sees this project." in response.content.decode()
    assert page.get(f"/projects/{project.pk}/").status_code == 404
    for url in _api_urls(project):
        assert api.get(url).status_code == 404, url
    assert not _listed(api, project)


def test_the_api_adds_lists_and_removes_members(admin, bob, api_as, project):
    api = api_as(admin)
    url = f"/api/projects/{project.pk}/members/"
    response = api.post(url, {"user": "bob"}, format="json")
    assert response.status_code == 201
    assert response.json() | {"added_at": None} == {
        "user_id": bob.pk, "user": "bob", "full_name": "", "role": "analyst", "is_active": True,
        "added_by": "admin", "added_at": None,
    }
    again = api.post(url, {"user": "bob"}, format="json")
    assert again.status_code == 200 and again.json()["user"] == "bob"
    assert ProjectMember.objects.filter(project=project, user=bob).count() == 1
    assert [m["user"] for m in api.get(url).json()] == ["bob"]

    assert api.delete(f"{url}{bob.pk}/").status_code == 204
    assert not ProjectMember.objects.filter(project=project).exists()
    assert api.delete(f"{url}{bob.pk}/").status_code == 404  # no longer a member


def test_an_unknown_username_is_refused_with_the_usual_error_shape(admin, api_as, project):
    response = api_as(admin).post(f"/api/projects/{project.pk}/members/", {"user": "nobody"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["details"]) == ["user"]
    assert not ProjectMember.objects.exists()


def test_a_disabled_user_or_a_site_admin_is_not_added(admin, bob, django_user_model, api_as, project):
    bob.is_active = False
    bob.save()
    other_admin = django_user_model.objects.create_user(username="root2", password="x", role="admin")
    with pytest.raises(ServiceError) as disabled:
        membership.add_member(by=admin, project=project, user=bob)
    assert disabled.value.details == {"user": ["Disabled user."]}
    response = api_as(admin).post(f"/api/projects/{project.pk}/members/", {"user": "root2"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Site admins already see every project."
    assert other_admin not in membership.candidates(project) and bob not in membership.candidates(project)
    assert not ProjectMember.objects.exists()


def test_only_site_admins_add_or_remove_members(alice, bob, client_as, api_as, project, admin):
    _add(admin, project, alice)
    api, url = api_as(alice), f"/api/projects/{project.pk}/members/"
    assert api.get(url).status_code == 200  # a member reads the list...
    assert api.post(url, {"user": "bob"}, format="json").status_code == 403  # ...but does not change it
    assert api.post(url, {"user": "nobody"}, format="json").status_code == 403
    assert api.delete(f"{url}{alice.pk}/").status_code == 403
    assert api_as(bob).post(url, {"user": "bob"}, format="json").status_code == 403  # nor can a non-member add themselves

    page = client_as(alice)
    assert page.post(f"/projects/{project.pk}/members/", {"user": bob.pk}).status_code == 403
    assert page.post(f"/projects/{project.pk}/members/{alice.pk}/remove/").status_code == 403
    with pytest.raises(PermissionDenied):
        membership.add_member(by=alice, project=project, user=bob)
    with pytest.raises(PermissionDenied):
        membership.remove_member(by=alice, project=project, user=alice)
    assert [m.user for m in membership.members_of(project)] == [alice]


def test_adding_and_removing_are_audited_once_each(admin, bob, api_as, project):
    api, url = api_as(admin), f"/api/projects/{project.pk}/members/"
    api.post(url, {"user": "bob"}, format="json", REMOTE_ADDR="10.0.0.7")
    api.post(url, {"user": "bob"}, format="json")  # already a member: nothing changes, nothing recorded
    api.delete(f"{url}{bob.pk}/")

    [added] = _actions("project_member_add")
    [removed] = _actions("project_member_remove")
    for row in (added, removed):
        assert row.actor == admin and row.object_type == "projects.project" and row.object_id == str(project.pk)
        assert row.details == {"user": "bob", "role": "analyst"}
    assert added.ip_address == "10.0.0.7" and added.action_label == "Added someone to a project"
    assert verify_chain().ok


# --- What members see --------------------------------------------------------------------

def test_a_viewer_member_sees_the_project_but_cannot_act(admin, vera, client_as, api_as, project):
    _add(admin, project, vera)
    page = client_as(vera).get(f"/projects/{project.pk}/").content.decode()
    assert "Telco usage" in page and "People in this project" in page
    assert "vera" in page.split('data-testid="members"')[1].split("</table>")[0]
    assert 'data-action="suspend"' not in page and 'data-testid="add-member"' not in page
    assert 'data-action="remove-member"' not in page

    assert api_as(vera).get(f"/api/projects/{project.pk}/partner-tables/").status_code == 200
    assert api_as(vera).post(f"/api/projects/{project.pk}/suspend/", {}, format="json").status_code == 403
    response = client_as(vera).post(f"/projects/{project.pk}/suspend/", follow=True)
    assert "Only site admins can do this" in response.content.decode()
    project.refresh_from_db()
    assert project.status == ProjectStatus.ACTIVE


def test_the_analyst_who_starts_a_project_sees_it_and_others_do_not(alice, bob, client_as, api_as, partner):
    client_as(alice).post("/projects/new/", {"partner": partner.pk, "name": "Credit risk", "purpose": "Scores", "labels": "us"})
    project = Project.objects.get(name="Credit risk")
    assert [m.user for m in membership.members_of(project)] == [alice]
    assert client_as(alice).get(f"/projects/{project.pk}/").status_code == 200
    assert _listed(api_as(alice), project)
    assert client_as(bob).get(f"/projects/{project.pk}/").status_code == 404
    assert not _listed(api_as(bob), project)


def test_an_invitation_from_a_partner_is_seen_only_by_admins_until_someone_is_added(admin, alice, client_as, invitation):
    assert "An invitation is waiting for our answer" in client_as(admin).get("/projects/").content.decode()
    listing = client_as(alice).get("/projects/").content.decode()
    assert "Churn together" not in listing and "An invitation is waiting" not in listing
    assert client_as(alice).get(f"/projects/{invitation.pk}/").status_code == 404

    _add(admin, invitation, alice)
    listing = client_as(alice).get("/projects/").content.decode()
    assert "An invitation is waiting for our answer" in listing and "a site admin answers it" in listing


def test_the_admin_picks_people_from_a_list_and_sees_who_is_in(admin, alice, bob, grace, vera, client_as, project):
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    _add(admin, project, alice)
    page = client_as(admin).get(f"/projects/{project.pk}/").content.decode()
    members = page.split('data-testid="members"')[1].split("</table>")[0]
    assert "alice" in members and "Alice Liddell" in members and "Analyst" in members
    assert f"/projects/{project.pk}/members/{alice.pk}/remove/" in members
    form = page.split('data-testid="add-member"')[1].split("</form>")[0]
    assert "<select" in form
    assert f'value="{bob.pk}"' in form and f'value="{grace.pk}"' in form and f'value="{vera.pk}"' in form
    assert "vera — Viewer (read only)" in form
    assert f'value="{alice.pk}"' not in form and f'value="{admin.pk}"' not in form


def test_a_stale_choice_is_refused_in_plain_words(admin, client_as, project):
    response = client_as(admin).post(f"/projects/{project.pk}/members/", {"user": admin.pk})
    assert response.status_code == 400
    assert "Nobody was added: choose someone from the list." in response.content.decode()
    assert not ProjectMember.objects.exists()


def test_a_member_sees_the_list_without_the_controls(admin, alice, client_as, project):
    _add(admin, project, alice)
    page = client_as(alice).get(f"/projects/{project.pk}/").content.decode()
    assert 'data-testid="member"' in page and "alice" in page
    assert 'data-testid="add-member"' not in page and "/remove/" not in page.split('data-testid="members"')[1].split("</table>")[0]


def test_an_analyst_without_projects_is_told_who_decides_what_they_see(bob, vera, admin, client_as):
    assert "You see only the projects a site admin added you to and the ones you start." in client_as(bob).get("/projects/").content.decode()
    assert "You see only the projects a site admin added you to." in client_as(vera).get("/projects/").content.decode()
    assert "added you to" not in client_as(admin).get("/projects/").content.decode()
