"""A dataset refreshed with a new file: versions checked against the one before, grants that
cover them, and projects that keep their version until an admin moves them."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets import services
from datasets.models import Dataset, DatasetGrant
from fedweb.audit.models import AuditEvent
from fedweb.proxy.models import OutboxEvent
from projects import services as project_services
from projects.models import JobSession, ProjectMember, ProjectTable

from .test_project_pages import active_project, invitation, partner, site_cert  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

JANUARY = "id,y,age,city\n0012,1,31,北京\n0013,0,45,上海\n0014,1,28,北京\n"
FEBRUARY = "city,id,y,age\n北京,0012,1,32\n深圳,0015,0,51\n上海,0016,1,29\n杭州,0017,0,40\n"


def _file(content, name="february.csv"):
    return SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv")


@pytest.fixture
def new_version(django_capture_on_commit_callbacks):
    def upload(user, dataset, content, **options):
        with django_capture_on_commit_callbacks(execute=True):
            version = services.upload_version(user=user, dataset=dataset, uploaded_file=_file(content), **options)
        version.refresh_from_db()
        return version

    return upload


@pytest.fixture
def january(alice, make_dataset):
    dataset = make_dataset(alice, JANUARY, name="Customers")
    services.change_schema(user=alice, dataset=dataset, id_column="id", label_column="y",
                           features={"age": "numeric", "city": "categorical"})
    from datasets.tasks import validate_dataset

    validate_dataset(str(dataset.pk))
    dataset.refresh_from_db()
    assert dataset.is_ready, dataset.error_text
    return dataset


# --- Uploading a version -------------------------------------------------------------------

def test_a_new_file_with_the_same_columns_becomes_version_two(january, alice, new_version, client_as):
    february = new_version(alice, january, FEBRUARY)
    assert february.is_ready, february.error_text
    assert (february.version, february.lineage_id, february.owner, february.name) == (2, january.pk, alice, "Customers")
    # Same roles and types as January, in the new file's column order.
    assert {(c["name"], c["role"], c["type"]) for c in february.columns} == {
        (c["name"], c["role"], c["type"]) for c in january.columns}
    assert february.row_count == 4

    client = client_as(alice)
    listing = client.get("/datasets/").content.decode()
    assert listing.count(">Customers</a>") == 1 and f"/datasets/{february.pk}/" in listing
    page = client.get(f"/datasets/{january.pk}/").content.decode()
    assert "This is version 1." in page and f"/datasets/{february.pk}/" in page
    page = client.get(f"/datasets/{february.pk}/").content.decode()
    assert 'data-testid="versions"' in page and "2 of 2" in page
    event = AuditEvent.objects.filter(action="dataset_upload", object_id=str(february.pk)).get()
    assert event.details["version"] == 2 and event.details["first_version"] == str(january.pk)


def test_a_new_version_with_other_columns_fails_saying_exactly_what_differs(january, alice, new_version):
    other = "client,y,age,region,phone\n1,0,30,n,5\n"
    version = new_version(alice, january, other)
    assert version.status == "failed" and version.error_code == "version_columns"
    text = version.error_text
    assert "not those of version 1" in text
    assert "The id column “id” is missing." in text
    assert "1 other column is missing: “city”." in text
    assert "3 columns are not in version 1: “client”, “region”, “phone”." in text
    # January is untouched and stays the current version.
    assert services.dataset_rows(alice)[0]["dataset"] == january
    assert services.dataset_rows(alice)[0]["newer"] == version


def test_a_new_version_keeps_the_types_of_the_one_before(january, alice, new_version):
    version = new_version(alice, january, "id,y,age,city\n0020,1,unknown,北京\n")
    assert version.error_code == "not_a_number" and version.error_line == 2
    assert "In version 1 this column holds numbers" in version.error_text
    assert "make the column categorical" not in version.error_text


def test_a_failed_version_can_be_read_again_and_then_passes(january, alice, new_version, django_capture_on_commit_callbacks):
    latin = "id;y;age;city\n0020;1;40;Zürich\n".encode("latin-1")
    with django_capture_on_commit_callbacks(execute=True):
        version = services.upload_version(user=alice, dataset=january, uploaded_file=SimpleUploadedFile("m.csv", latin),
                                          encoding="utf-8")
    version.refresh_from_db()
    assert version.status == "failed" and version.error_code == "bad_encoding"
    with django_capture_on_commit_callbacks(execute=True):
        services.revalidate(user=alice, dataset=version, encoding="latin-1")
    version.refresh_from_db()
    assert version.is_ready and version.version == 2 and version.detected_delimiter == ";"


def test_only_the_owner_or_an_admin_uploads_a_version(january, admin, grace, bob, new_version, client_as):
    services.grant(by=admin, dataset=january, user=grace)
    with pytest.raises(Exception, match="Only the owner of this dataset or a site admin"):
        services.upload_version(user=grace, dataset=january, uploaded_file=_file(FEBRUARY))
    response = client_as(grace).post(f"/datasets/{january.pk}/versions/", {"file": _file(FEBRUARY)},
                                     HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 400 and "Only the owner" in response.json()["error"]["message"]
    assert client_as(bob).post(f"/datasets/{january.pk}/versions/", {"file": _file(FEBRUARY)}).status_code == 404
    assert Dataset.objects.filter(lineage_id=january.pk).count() == 1
    by_admin = new_version(admin, january, FEBRUARY)
    assert by_admin.is_ready and by_admin.owner_id == january.owner_id and by_admin.uploaded_by == admin


def test_the_browser_form_uploads_a_version_and_opens_it(january, alice, client_as, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(alice).post(f"/datasets/{january.pk}/versions/", {"file": _file(FEBRUARY)},
                                         HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201
    version = Dataset.objects.get(pk=response.json()["id"])
    assert version.version == 2 and version.is_ready


def test_no_version_is_accepted_while_another_is_being_checked(january, alice, new_version):
    Dataset.objects.filter(pk=january.pk).update(status="validating")
    with pytest.raises(Exception, match="Version 1 is still being checked"):
        services.upload_version(user=alice, dataset=january, uploaded_file=_file(FEBRUARY))
    assert Dataset.objects.filter(lineage_id=january.pk).count() == 1


def test_the_columns_of_an_older_version_cannot_be_changed(january, alice, new_version):
    new_version(alice, january, FEBRUARY)
    with pytest.raises(Exception, match="version 2 is newer"):
        services.change_schema(user=alice, dataset=january, id_column="id", label_column="", features={})


# --- Access -------------------------------------------------------------------------------

def test_a_grant_covers_the_versions_uploaded_later(january, admin, grace, bob, new_version, client_as):
    services.grant(by=admin, dataset=january, user=grace)
    february = new_version(alice_of(january), january, FEBRUARY)
    assert client_as(grace).get(f"/datasets/{february.pk}/").status_code == 200
    assert client_as(bob).get(f"/datasets/{february.pk}/").status_code == 404
    # Granting again from the new version's page replaces the grant; one live grant per user.
    services.grant(by=admin, dataset=february, user=grace)
    assert DatasetGrant.objects.filter(user=grace, revoked_at__isnull=True).count() == 1
    page = client_as(admin).get(f"/datasets/{february.pk}/").content.decode()
    assert "grace" in page and "Access covers every version" in page
    services.revoke(by=admin, grant=DatasetGrant.objects.get(user=grace, revoked_at__isnull=True))
    assert client_as(grace).get(f"/datasets/{january.pk}/").status_code == 404


def alice_of(dataset):
    return dataset.owner


def test_deleting_a_dataset_deletes_all_its_versions(january, alice, new_version):
    february = new_version(alice, january, FEBRUARY)
    services.delete(user=alice, dataset=february)
    assert not Dataset.objects.alive().filter(lineage_id=january.pk).exists()


def test_renaming_a_version_renames_the_dataset(january, alice, new_version):
    february = new_version(alice, january, FEBRUARY)
    services.update_metadata(user=alice, dataset=february, name="Customers (monthly)")
    january.refresh_from_db()
    assert january.name == "Customers (monthly)"


# --- Projects -----------------------------------------------------------------------------

def test_a_project_keeps_its_version_until_an_admin_moves_it(january, admin, alice, new_version, active_project, client_as):
    policy = {"runs_per_day": 2, "min_set_size": 1, "max_set_size": 1000, "max_size_ratio": 9, "min_overlap": 1,
              "partner_may_receive": True}
    table = project_services.authorise_table(user=admin, project=active_project, dataset=january, policy=policy)
    JobSession.objects.create(session_id="psi-january-1", project=active_project, purpose="psi",
                              opened_by=active_project.partner.party_id, table=table)
    from jobs import artifacts
    from jobs.models import Model, ServingTable

    model = Model.objects.create(id=uuid.uuid4(), project=active_project, node="lr", component="hetero_lr", version="1.0.0", role="guest",
                                 artifact=artifacts.store("model", {"weights": [0.5]}), name="Churn LR")
    ServingTable.objects.create(model=model, dataset=january, registered_by=admin)
    february = new_version(alice, january, FEBRUARY)
    table.refresh_from_db()
    assert table.dataset == january and table.is_live  # nothing moves by itself

    page = client_as(admin).get(f"/projects/{active_project.pk}/").content.decode()
    assert "version 1 of 2" in page and "newer version available" in page and "Move to version 2" in page
    ProjectMember.objects.create(project=active_project, user=alice)
    analyst_page = client_as(alice).get(f"/projects/{active_project.pk}/").content.decode()
    assert "version 1 of 2" in analyst_page and "Move to version 2" not in analyst_page
    # Authorising February beside January would show the partner two tables of one name.
    with pytest.raises(Exception, match="Version 1 of this dataset is already in the project"):
        project_services.authorise_table(user=admin, project=active_project, dataset=february)
    # Only admins move.
    client_as(alice).post(f"/projects/{active_project.pk}/tables/{table.pk}/version/", {"version": 2})
    assert ProjectTable.objects.get(pk=table.pk).is_live

    response = client_as(admin).post(f"/projects/{active_project.pk}/tables/{table.pk}/version/", {"version": 2}, follow=True)
    assert "now uses version 2" in response.content.decode()
    table.refresh_from_db()
    moved = table.replaced_by
    assert table.revoked_at is not None and moved.dataset == february and moved.is_live
    assert moved.policy() == table.policy() and moved.expires_at == table.expires_at
    removed = OutboxEvent.objects.filter(type="table.removed").latest("id").payload
    authorised = OutboxEvent.objects.filter(type="table.authorised").latest("id").payload
    assert removed["table_id"] == str(january.pk)
    assert authorised["table_id"] == str(february.pk) and authorised["version"] == 2 and authorised["row_count"] == 4
    assert authorised["replaces"] == str(january.pk)
    assert ServingTable.objects.get(model=model).dataset == february  # online scoring reads the new rows
    page = response.content.decode()
    assert "version 2 of 2" in page and "Moved from version 1" in page and "Move to version" not in page

    # The day's PSI runs count across versions: one run on January, one allowed on February.
    from projects.sessions import SessionRefused, check_psi_policy

    check_psi_policy(moved, partner_set_size=4, wants_intersection=False)
    JobSession.objects.create(session_id="psi-february-1", project=active_project, purpose="psi",
                              opened_by=active_project.partner.party_id, table=moved)
    with pytest.raises(SessionRefused, match="2 PSI runs per day"):
        check_psi_policy(moved, partner_set_size=4, wants_intersection=False)


def test_moving_refuses_a_version_that_is_not_ready_or_not_there(january, admin, alice, new_version, active_project):
    table = project_services.authorise_table(user=admin, project=active_project, dataset=january)
    broken = new_version(alice, january, "other\n1\n")
    assert broken.status == "failed"
    with pytest.raises(Exception, match="Only a ready dataset"):
        project_services.move_to_version(user=admin, table=table, version=2)
    with pytest.raises(Exception, match="Choose another version"):
        project_services.move_to_version(user=admin, table=table, version=7)
    with pytest.raises(Exception, match="Choose another version"):
        project_services.move_to_version(user=admin, table=table, version=1)
    with pytest.raises(Exception, match="Only site admins"):
        project_services.move_to_version(user=alice, table=table, version=2)


def test_the_dataset_page_says_which_projects_use_it(january, admin, alice, bob, active_project, client_as):
    project_services.authorise_table(user=admin, project=active_project, dataset=january)
    assert "Churn together" in client_as(admin).get(f"/datasets/{january.pk}/").content.decode()
    # Not to someone outside the project, even the owner: its existence is the members' to know.
    assert "Churn together" not in client_as(alice).get(f"/datasets/{january.pk}/").content.decode()
    ProjectMember.objects.create(project=active_project, user=alice)
    page = client_as(alice).get(f"/datasets/{january.pk}/").content.decode()
    assert "Churn together" in page and "version 1 (this one)" in page


def test_the_authorise_list_offers_the_newest_ready_version_with_owner_and_date(january, admin, alice, new_version):
    from projects.forms import AuthoriseForm

    february = new_version(alice, january, FEBRUARY)
    field = AuthoriseForm(user=admin).fields["dataset"]
    assert list(field.queryset) == [february]
    label = field.label_from_instance(february)
    assert label.startswith("Customers · v2 · alice, ")


# --- The API ---------------------------------------------------------------------------------

def test_the_api_uploads_and_lists_versions_and_moves_a_project(january, admin, alice, grace, api_as, active_project,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(alice).post(f"/api/datasets/{january.pk}/versions/", {"file": _file(FEBRUARY)}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 2 and body["first_version"] == str(january.pk) and body["uploaded_by"] == "alice"
    listed = api_as(alice).get(f"/api/datasets/{body['id']}/versions/").json()
    assert [(v["version"], v["status"]) for v in listed] == [(1, "ready"), (2, "ready")]

    services.grant(by=admin, dataset=january, user=grace)
    refused = api_as(grace).post(f"/api/datasets/{january.pk}/versions/", {"file": _file(FEBRUARY)}, format="multipart")
    assert refused.status_code == 403

    table = project_services.authorise_table(user=admin, project=active_project, dataset=january)
    moved = api_as(admin).post(f"/api/projects/{active_project.pk}/tables/{table.pk}/version/", {"version": 2}, format="json")
    assert moved.status_code == 201, moved.content
    assert moved.json()["version"] == 2 and moved.json()["dataset"] == body["id"]
    tables = api_as(admin).get(f"/api/projects/{active_project.pk}/tables/").json()
    assert {(t["version"], t["is_live"], t["replaced_by"]) for t in tables} == {(1, False, moved.json()["id"]), (2, True, None)}
    again = api_as(admin).post(f"/api/projects/{active_project.pk}/tables/{table.pk}/version/", {"version": 2}, format="json")
    assert again.status_code == 404  # the old authorisation is no longer live


# --- At the partner's site -----------------------------------------------------------------

def test_the_partners_move_marks_its_old_table_replaced(active_project, admin, client_as):
    from fedweb.proxy.events import EventRejected
    from projects.appliers import table_authorised, table_removed

    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    partner = active_project.partner
    table_authorised(partner=partner, project=active_project, event_id=uuid.uuid4(),
                     payload={"table_id": old_id, "name": "Usage", "row_count": 10, "columns": [], "version": 1})
    table_removed(partner=partner, project=active_project, event_id=uuid.uuid4(), payload={"table_id": old_id})
    table_authorised(partner=partner, project=active_project, event_id=uuid.uuid4(),
                     payload={"table_id": new_id, "name": "Usage", "row_count": 12, "columns": [], "version": 2,
                              "replaces": old_id})
    old, new = (active_project.remote_tables.get(table_id=t) for t in (old_id, new_id))
    assert (old.is_authorised, old.replaced_by) == (False, new_id) and (new.is_authorised, new.version) == (True, 2)
    page = client_as(admin).get(f"/projects/{active_project.pk}/").content.decode()
    assert "replaced by a newer version" in page and "Usage <span class=\"muted\">v2</span>" in page
    for bad in ({"version": "2"}, {"version": 0}, {"replaces": "not-an-id"}):
        with pytest.raises(EventRejected):
            table_authorised(partner=partner, project=active_project, event_id=uuid.uuid4(),
                             payload={"table_id": str(uuid.uuid4()), "name": "Bad", "columns": [], **bad})
