"""The dataset pages: upload from the browser, choose columns in plain words, edit, delete."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db


def test_a_browser_upload_answers_with_the_page_to_open(alice, client_as, django_capture_on_commit_callbacks):
    client = client_as(alice)
    upload = SimpleUploadedFile("scores.csv", b"id,y,score\n1,0,3.5\n2,1,4.5\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/datasets/upload/", {"file": upload, "name": "Scores"}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201
    page = client.get(response.json()["url"]).content.decode()
    assert "Scores" in page and "Ready" in page
    assert "svg" in page  # the histogram of "score"


def test_an_empty_file_chosen_in_the_browser_fails_with_the_same_words_as_in_the_api(alice, client_as, api_as,
                                                                                     django_capture_on_commit_callbacks):
    client = client_as(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/datasets/upload/", {"file": SimpleUploadedFile("empty.csv", b"", content_type="text/csv")},
                               HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 201, response.content
    page = client.get(response.json()["url"]).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        api = api_as(alice).post("/api/datasets/", {"file": SimpleUploadedFile("empty.csv", b"")}, format="multipart")
    api_error = api_as(alice).get(f"/api/datasets/{api.json()['id']}/").json()["error"]
    assert api_error["message"] == "The file is empty: it contains no header and no data."
    assert api_error["message"] in page
    assert "Choose a CSV file to upload." not in page


def test_an_upload_without_a_file_asks_for_one(alice, client_as):
    response = client_as(alice).post("/datasets/upload/", {"name": "x"}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Choose a CSV file to upload."


def test_the_owner_re_types_columns_from_the_page(granted_dataset, alice, client_as, django_capture_on_commit_callbacks):
    client = client_as(alice)
    form = {"use:id": "id", "use:y": "label", "use:x1": "categorical", "use:city": "ignored"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/datasets/{granted_dataset.pk}/columns/", form)
    assert response.status_code == 302
    granted_dataset.refresh_from_db()
    assert granted_dataset.status == "ready"
    uses = {c["name"]: (c["role"], c["type"]) for c in granted_dataset.columns}
    assert uses["x1"] == ("feature", "categorical")
    assert uses["city"][0] == "ignored"
    stats = {c["name"] for c in granted_dataset.stats["columns"]}
    assert "city" not in stats


def test_two_id_columns_are_refused_in_plain_words(granted_dataset, alice, client_as):
    client = client_as(alice)
    form = {"use:id": "id", "use:y": "id", "use:x1": "numeric", "use:city": "ignored"}
    response = client.post(f"/datasets/{granted_dataset.pk}/columns/", form, follow=True)
    assert "exactly one id column" in response.content.decode()
    granted_dataset.refresh_from_db()
    assert granted_dataset.id_column == "id"


def test_declaring_a_text_column_numeric_fails_with_the_line_and_value(granted_dataset, alice, api_as, django_capture_on_commit_callbacks):
    api = api_as(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/datasets/{granted_dataset.pk}/schema/",
            {"id_column": "id", "label_column": "y", "features": {"city": "numeric"}},
            format="json",
        )
    assert response.status_code == 202
    body = api.get(f"/api/datasets/{granted_dataset.pk}/").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "not_a_number"
    assert body["error"]["column"] == "city" and body["error"]["line"] == 2


def test_the_owner_renames_describes_and_tags(granted_dataset, alice, api_as):
    response = api_as(alice).patch(
        f"/api/datasets/{granted_dataset.pk}/", {"name": "Scores 2026", "description": "Q3", "tags": ["risk", "q3"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["tags"] == ["risk", "q3"]
    from fedweb.audit.models import AuditEvent

    event = AuditEvent.objects.get(action="dataset_update")
    assert event.details["after"]["name"] == "Scores 2026"


def test_a_failed_dataset_can_be_read_again_with_another_encoding(alice, api_as, make_dataset, django_capture_on_commit_callbacks):
    content = "id,name\n1,Müller\n".encode("latin-1")
    dataset = make_dataset(alice, content, encoding="utf-8")
    assert dataset.status == "failed" and dataset.error_code == "bad_encoding"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(alice).post(f"/api/datasets/{dataset.pk}/revalidate/", {"encoding": "latin-1"}, format="json")
    assert response.status_code == 202
    body = api_as(alice).get(f"/api/datasets/{dataset.pk}/").json()
    assert body["status"] == "ready"
    preview = api_as(alice).get(f"/api/datasets/{dataset.pk}/preview/").json()
    assert preview["rows"][0][1] == "Müller"


def test_the_models_section_says_where_models_come_from_before_there_are_any(alice, client_as):
    page = client_as(alice).get("/models/").content.decode()
    assert 'data-testid="no-models"' in page and "training job" in page

def _wide_table(rows: int) -> str:
    return "id,y,amount\n" + "".join(f"{i:06d},{i % 2},{i * 1.5}\n" for i in range(rows))


def test_row_counts_are_written_with_thousands_separators_in_both_languages(alice, client_as, make_dataset):
    dataset = make_dataset(alice, _wide_table(12_345), name="Big")
    client = client_as(alice)
    assert ">12,345<" in client.get("/datasets/").content.decode()
    assert ">12,345<" in client.get(f"/datasets/{dataset.pk}/").content.decode()
    alice.language = "zh-hans"
    alice.save()
    assert ">12,345<" in client.get(f"/datasets/{dataset.pk}/").content.decode()


def test_tables_in_a_project_and_its_job_form_count_rows_with_separators(alice, admin, client_as, make_dataset):
    from fedweb.proxy import pki
    from projects import pairing
    from projects import services as project_services
    from projects.models import Project, ProjectMember, ProjectStatus

    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    project = project_services.accept(user=admin, project=Project.objects.create(
        name="P", purpose="p", partner=partner, initiator="telco", label_holder="telco", status=ProjectStatus.INVITED))
    ProjectMember.objects.create(project=project, user=alice)
    project_services.authorise_table(user=admin, project=project, dataset=make_dataset(alice, _wide_table(12_345)))
    client = client_as(alice)
    assert "12,345 rows" in client.get(f"/projects/{project.pk}/").content.decode()
    project.remote_tables.create(table_id="7f0c6c4e-0000-0000-0000-000000000001", name="Usage", row_count=54_321,
                                 columns=[{"name": "id", "role": "id", "type": None}])
    form = client.get(f"/projects/{project.pk}/jobs/new/?template=psi").content.decode()
    assert "12,345 rows" in form and "54,321 rows" in form


def test_the_id_column_says_how_many_ids_there_are_instead_of_listing_them(alice, client_as, make_dataset):
    dataset = make_dataset(alice, _wide_table(30), name="Ids", id_column="id")
    page = client_as(alice).get(f"/datasets/{dataset.pk}/").content.decode()
    assert "30 different ids, each once" in page
    assert "000001 · 1" not in page  # no "most common" list of ids seen once each
    repeated = make_dataset(alice, "id,x\n1,2\n1,3\n2,4\n", name="Repeated", id_column="id")
    assert "2 different ids; some appear more than once" in client_as(alice).get(f"/datasets/{repeated.pk}/").content.decode()


def test_a_second_dataset_of_the_same_name_is_flagged_with_owner_and_date(alice, admin, client_as, make_dataset):
    first = make_dataset(admin, "id,x\n1,2\n", name="Customers")
    second = make_dataset(alice, "id,x\n1,2\n3,4\n", name="customers ")
    page = client_as(admin).get(f"/datasets/{second.pk}/").content.decode()
    assert 'data-testid="same-name"' in page and f"/datasets/{first.pk}/" in page
    assert "owner admin, uploaded" in page and "This one: owner alice" in page
    # alice cannot see admin's dataset, so she is told nothing about it.
    assert 'data-testid="same-name"' not in client_as(alice).get(f"/datasets/{second.pk}/").content.decode()


def test_a_failed_dataset_offers_no_access_to_give(alice, admin, grace, client_as, make_dataset):
    from datasets import services
    from fedweb.api.errors import ServiceError

    broken = make_dataset(alice, "id,a\n1,2,3\n", name="Broken")
    assert broken.status == "failed"
    page = client_as(admin).get(f"/datasets/{broken.pk}/").content.decode()
    assert "Give access" not in page and "nothing to give access to yet" in page
    with pytest.raises(ServiceError, match="nothing to give access to"):
        services.grant(by=admin, dataset=broken, user=grace)
    response = client_as(admin).post(f"/datasets/{broken.pk}/grants/", {"user": grace.pk}, follow=True)
    assert "nothing to give access to" in response.content.decode()
