"""The partner and project pages: pairing, invitations, decisions, tables and their PSI policy."""

import base64
import json

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from fedweb.proxy import pki
from fedweb.proxy.models import OutboxEvent
from projects import pairing, tokens
from projects.models import Partner, Project, ProjectMember, ProjectStatus, ProjectTable

pytestmark = pytest.mark.django_db


def _bundle(party_id="telco", **changes):
    _key, cert = pki.make_self_signed(party_id)
    bundle = {"format": "fedweb-site-bundle/1", "party_id": party_id, "name": "Telco", "proxy_address": "127.0.0.1:9",
              "certificates": [cert.decode()]}
    bundle.update(changes)
    return bundle


@pytest.fixture
def site_cert(db):
    return pki.create_site_certificate()


@pytest.fixture
def partner(site_cert, admin):
    return pairing.import_bundle(_bundle(), by=admin)


@pytest.fixture
def invitation(partner):
    return Project.objects.create(
        name="Churn together", purpose="Predict churn", partner=partner, initiator=partner.party_id,
        label_holder=partner.party_id, status=ProjectStatus.INVITED, status_changed_by=partner.party_id,
    )


@pytest.fixture
def active_project(invitation, admin):
    from projects import services

    return services.accept(user=admin, project=invitation)


def _member(project, user):
    """Non-admins see only projects they are members of (see test_project_membership.py)."""
    ProjectMember.objects.create(project=project, user=user)


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


# --- Partners --------------------------------------------------------------------------

def test_the_admin_sees_this_sites_certificate_and_downloads_its_bundle(admin, client_as, site_cert):
    client = client_as(admin)
    page = client.get("/partners/").content.decode()
    assert site_cert.fingerprint[:16] in page
    assert 'value="testserver:7443"' in page  # prefilled from the request's host

    response = client.post("/partners/bundle/", {"proxy_address": "fedweb.bank.example:7443"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{settings.SITE_PARTY_ID}-bundle.json"'
    bundle = json.loads(response.content)
    assert bundle["party_id"] == settings.SITE_PARTY_ID
    assert bundle["proxy_address"] == "fedweb.bank.example:7443"
    assert [pki.fingerprint(pem) for pem in bundle["certificates"]] == [site_cert.fingerprint]


def test_a_proxy_address_without_a_port_is_refused_in_plain_words(admin, client_as, site_cert):
    response = client_as(admin).post("/partners/bundle/", {"proxy_address": "fedweb.bank.example"})
    assert response.status_code == 400
    assert "host:port" in response.content.decode()


def test_the_admin_pairs_with_a_partner_by_uploading_its_bundle(admin, client_as, site_cert):
    upload = SimpleUploadedFile("telco-bundle.json", json.dumps(_bundle()).encode(), content_type="application/json")
    response = client_as(admin).post("/partners/import/", {"file": upload}, follow=True)
    assert "now paired with Telco" in _messages(response)
    partner = Partner.objects.get(party_id="telco")
    assert partner.proxy_address == "127.0.0.1:9" and partner.pinned().count() == 1
    page = response.content.decode()
    assert "telco" in page and partner.pinned()[0].fingerprint[:16] in page


def test_the_admin_can_also_paste_the_bundle(admin, client_as, site_cert):
    response = client_as(admin).post("/partners/import/", {"text": json.dumps(_bundle())})
    assert response.status_code == 302
    assert Partner.objects.filter(party_id="telco").exists()


@pytest.mark.parametrize("text, words", [
    ("hello", "not JSON"),
    (json.dumps({"format": "something else"}), "not a FedWeb site bundle"),
    ("", "Choose the partner&#x27;s bundle file, or paste its contents."),
])
def test_a_bad_bundle_is_refused_in_plain_words(admin, client_as, site_cert, text, words):
    response = client_as(admin).post("/partners/import/", {"text": text})
    assert response.status_code == 400
    page = response.content.decode()
    assert "could not be imported" in page and words in page
    assert not Partner.objects.exists()


def test_a_bundle_whose_certificate_names_another_site_is_refused(admin, client_as, site_cert):
    _key, other = pki.make_self_signed("someone-else")
    response = client_as(admin).post("/partners/import/", {"text": json.dumps(_bundle(certificates=[other.decode()]))})
    assert "belongs to someone-else" in response.content.decode()


def test_an_analyst_sees_the_partners_but_cannot_pair_or_download(alice, client_as, partner):
    client = client_as(alice)
    page = client.get("/partners/").content.decode()
    assert "Telco" in page
    assert "Pair with a partner" not in page and "Test connection" not in page and "This site" not in page
    assert client.post("/partners/import/", {"text": json.dumps(_bundle("bank2"))}).status_code == 403
    assert client.post("/partners/bundle/", {"proxy_address": "a:1"}).status_code == 403
    assert client.post(f"/partners/{partner.party_id}/test/").status_code == 403
    assert not Partner.objects.filter(party_id="bank2").exists()


def test_testing_an_unreachable_partner_names_the_failing_step(admin, client_as, partner, monkeypatch):
    monkeypatch.setattr("projects.views.CONNECTION_TIMEOUT", 0.3)
    client = client_as(admin)
    page = client.post(f"/partners/{partner.party_id}/test/").content.decode()
    assert "The connection does not work yet." in page
    assert "✓</span>" in page and "This site has a valid certificate" in page
    assert "✗</span>" in page and "The partner&#x27;s proxy answers" in page
    assert "No secure connection to 127.0.0.1:9" in page

    fragment = client.post(f"/partners/{partner.party_id}/test/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith("<tr") and "No secure connection" in fragment and "<html" not in fragment


# --- Projects --------------------------------------------------------------------------

def test_an_analyst_invites_a_partner_from_the_projects_page(alice, client_as, partner):
    client = client_as(alice)
    page = client.get("/projects/").content.decode()
    assert "New project" in page and "Who holds the labels?" in page
    response = client.post("/projects/new/", {"partner": partner.pk, "name": "Credit risk", "purpose": "Better scores", "labels": "us"})
    project = Project.objects.get(name="Credit risk")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"
    assert project.status == ProjectStatus.PENDING and project.we_hold_labels
    assert OutboxEvent.objects.filter(partner=partner, type="project.invite", stream=str(project.pk)).exists()

    detail = client.get(response["Location"]).content.decode()
    assert "Waiting for the partner&#x27;s answer" in detail and "We hold the labels" in detail
    listing = client.get("/projects/").content.decode()
    assert "Credit risk" in listing and "We hold the labels" in listing


def test_the_partner_may_hold_the_labels(alice, client_as, partner):
    client_as(alice).post("/projects/new/", {"partner": partner.pk, "name": "P", "purpose": "Q", "labels": "partner"})
    assert Project.objects.get(name="P").label_holder == "telco"


def test_a_project_without_a_purpose_is_refused_and_the_form_kept(alice, client_as, partner):
    response = client_as(alice).post("/projects/new/", {"partner": partner.pk, "name": "Credit risk", "purpose": "", "labels": "us"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode() and 'value="Credit risk"' in response.content.decode()
    assert not Project.objects.exists()


def test_a_viewer_sees_projects_but_no_new_project_form(vera, client_as, invitation):
    _member(invitation, vera)
    client = client_as(vera)
    page = client.get("/projects/").content.decode()
    assert "Churn together" in page and "New project" not in page
    response = client.post("/projects/new/", {"partner": invitation.partner.pk, "name": "X", "purpose": "Y", "labels": "us"}, follow=True)
    assert "Viewers cannot create projects" in _messages(response)
    assert Project.objects.count() == 1


def test_an_invitation_is_highlighted_and_accepted_by_the_admin(admin, client_as, invitation):
    client = client_as(admin)
    listing = client.get("/projects/").content.decode()
    assert "An invitation is waiting for our answer" in listing and "Churn together" in listing
    page = client.get(f"/projects/{invitation.pk}/").content.decode()
    assert 'data-action="accept"' in page and 'data-action="reject"' in page
    assert "The partner holds the labels" in page

    response = client.post(f"/projects/{invitation.pk}/accept/", {"comment": "Glad to work with you"}, follow=True)
    assert "You accepted the invitation" in _messages(response)
    invitation.refresh_from_db()
    assert invitation.status == ProjectStatus.ACTIVE and invitation.token_version == 1
    assert invitation.decision_comment == "Glad to work with you"
    assert OutboxEvent.objects.filter(type="project.accept").exists()
    page = response.content.decode()
    assert "version 1" in page and "Invitation accepted" in page  # the history
    assert 'data-action="suspend"' in page and 'data-action="rotate"' in page


def test_the_admin_rejects_an_invitation_with_a_comment(admin, client_as, invitation):
    client_as(admin).post(f"/projects/{invitation.pk}/reject/", {"comment": "Not this year"})
    invitation.refresh_from_db()
    assert invitation.status == ProjectStatus.REJECTED and invitation.decision_comment == "Not this year"


def test_an_analyst_cannot_answer_an_invitation(alice, client_as, invitation):
    _member(invitation, alice)
    client = client_as(alice)
    page = client.get(f"/projects/{invitation.pk}/").content.decode()
    assert 'data-action="accept"' not in page and "Only a site admin can accept or reject" in page
    response = client.post(f"/projects/{invitation.pk}/accept/", follow=True)
    assert "Only site admins can do this" in _messages(response)
    invitation.refresh_from_db()
    assert invitation.status == ProjectStatus.INVITED and invitation.token_version == 0


def test_the_admin_suspends_resumes_rotates_and_revokes(admin, client_as, active_project):
    client = client_as(admin)
    url = f"/projects/{active_project.pk}"
    client.post(f"{url}/suspend/", {"comment": "Audit"})
    active_project.refresh_from_db()
    assert active_project.status == ProjectStatus.SUSPENDED
    client.post(f"{url}/resume/")
    client.post(f"{url}/rotate/")
    active_project.refresh_from_db()
    assert active_project.status == ProjectStatus.ACTIVE and active_project.token_version == 2
    client.post(f"{url}/revoke/")
    active_project.refresh_from_db()
    assert active_project.status == ProjectStatus.REVOKED
    response = client.post(f"{url}/resume/", follow=True)
    assert "this cannot be done now" in _messages(response)


def test_the_page_never_shows_the_cooperation_token(admin, client_as, active_project):
    token = tokens.unseal(active_project.token_encrypted)
    page = client_as(admin).get(f"/projects/{active_project.pk}/").content.decode()
    for form in (token.hex(), base64.b64encode(token).decode(), base64.urlsafe_b64encode(token).decode().rstrip("=")):
        assert form not in page
    assert bytes(active_project.token_encrypted).decode() not in page


def test_the_admin_authorises_a_ready_dataset_with_a_psi_policy(admin, client_as, active_project, make_dataset):
    dataset = make_dataset(admin, "id,y,x\n1,0,2\n2,1,3\n3,0,4\n", name="Bank customers")
    client = client_as(admin)
    page = client.get(f"/projects/{active_project.pk}/").content.decode()
    assert "Bank customers" in page and "Nothing is revealed if fewer ids than this match." in page
    form = {"dataset": str(dataset.pk), "expires_at": "", "runs_per_day": 3, "min_set_size": 2, "max_set_size": 1000,
            "max_size_ratio": 4, "min_overlap": 1, "partner_may_receive": "on"}
    response = client.post(f"/projects/{active_project.pk}/tables/", form, follow=True)
    assert "The table is now part of the project" in _messages(response)
    table = ProjectTable.objects.get(project=active_project, dataset=dataset)
    assert table.policy() == {"runs_per_day": 3, "min_set_size": 2, "max_set_size": 1000, "max_size_ratio": 4.0,
                              "min_overlap": 1, "partner_may_receive": True}
    assert OutboxEvent.objects.filter(type="table.authorised").exists()
    page = response.content.decode()
    assert "At most 3 intersections a day." in page and "between 2 and 1,000 ids" in page
    assert "The partner may receive the list of matching ids." in page

    prefix = f"t{table.pk}-"
    policy = {prefix + k: v for k, v in form.items() if k not in ("dataset", "expires_at", "partner_may_receive")}
    client.post(f"/projects/{active_project.pk}/tables/{table.pk}/policy/", {**policy, prefix + "min_overlap": 5})
    table.refresh_from_db()
    assert table.psi_min_overlap == 5 and table.psi_partner_may_receive is False

    client.post(f"/projects/{active_project.pk}/tables/{table.pk}/remove/")
    table.refresh_from_db()
    assert table.revoked_at is not None
    assert "removed" in client.get(f"/projects/{active_project.pk}/").content.decode()


def test_an_inconsistent_policy_is_refused_in_plain_words(admin, client_as, active_project, make_dataset):
    dataset = make_dataset(admin, "id,x\n1,2\n2,3\n", name="Small")
    form = {"dataset": str(dataset.pk), "runs_per_day": 0, "min_set_size": 50, "max_set_size": 10,
            "max_size_ratio": 0.5, "min_overlap": 1}
    response = client_as(admin).post(f"/projects/{active_project.pk}/tables/", form)
    assert response.status_code == 400
    page = response.content.decode()
    assert "This must not be smaller than the “at least” size." in page
    assert "greater than or equal to 1" in page
    assert not ProjectTable.objects.exists()


def test_an_analyst_cannot_authorise_a_table(alice, client_as, active_project, make_dataset):
    dataset = make_dataset(alice, "id,x\n1,2\n2,3\n", name="Mine")
    _member(active_project, alice)
    client = client_as(alice)
    page = client.get(f"/projects/{active_project.pk}/").content.decode()
    assert 'data-testid="authorise"' not in page
    form = {"dataset": str(dataset.pk), "runs_per_day": 1, "min_set_size": 1, "max_set_size": 10, "max_size_ratio": 2, "min_overlap": 1}
    response = client.post(f"/projects/{active_project.pk}/tables/", form, follow=True)
    assert "Only site admins can do this" in _messages(response)
    assert not ProjectTable.objects.exists()


def test_the_partners_tables_show_columns_but_no_rows(alice, client_as, active_project):
    _member(active_project, alice)
    active_project.remote_tables.create(
        table_id="7f0c6c4e-0000-0000-0000-000000000001", name="Telco usage", row_count=1234,
        columns=[{"name": "phone", "role": "id", "type": None}, {"name": "minutes", "role": "feature", "type": "numeric"}],
    )
    page = client_as(alice).get(f"/projects/{active_project.pk}/").content.decode()
    assert "Telco usage" in page and "1,234" in page and "phone · id" in page and "minutes" in page


def test_an_unknown_project_is_not_found(alice, client_as):
    assert client_as(alice).get("/projects/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_nav_names_still_resolve(alice, client_as):
    from django.urls import reverse

    assert reverse("projects") == "/projects/" and reverse("partners") == "/partners/"
    assert reverse("projects:list") == "/projects/" and reverse("partners:list") == "/partners/"
    assert client_as(alice).get("/").status_code == 200


def test_an_expired_table_shows_as_expired_and_can_still_be_removed(admin, client_as, active_project, make_dataset):
    import datetime as dt

    from django.utils import timezone

    dataset = make_dataset(admin, "id,x\n1,2\n2,3\n", name="Old list")
    table = ProjectTable.objects.create(project=active_project, dataset=dataset, authorised_by=admin,
                                        expires_at=timezone.now() - dt.timedelta(days=1))
    client = client_as(admin)
    page = client.get(f"/projects/{active_project.pk}/").content.decode()
    assert ">expired</span>" in page and f"/tables/{table.pk}/remove/" in page and f"/tables/{table.pk}/policy/" not in page
    client.post(f"/projects/{active_project.pk}/tables/{table.pk}/remove/")
    table.refresh_from_db()
    assert table.revoked_at is not None
