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