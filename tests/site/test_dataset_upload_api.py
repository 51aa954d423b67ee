"""Uploading CSV files through the API as a new user would, each ending in the right state."""

import pytest

pytestmark = pytest.mark.django_db


def upload(api, content: bytes, filename="t.csv", **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"file": SimpleUploadedFile(filename, content, content_type="text/csv"), **fields}
    return api.post("/api/datasets/", data, format="multipart")


@pytest.fixture
def api(alice, api_as, django_capture_on_commit_callbacks):
    client = api_as(alice)
    original_post = client.post

    def post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return original_post(*args, **kwargs)

    client.post = post
    return client


def finished(api, response):
    assert response.status_code == 201, response.content
    return api.get(f"/api/datasets/{response.json()['id']}/").json()


def test_a_good_csv_becomes_ready_with_guessed_columns(api):
    body = finished(api, upload(api, b"id,y,age,city\n001,1,30,bj\n002,0,41,sh\n"))
    assert body["status"] == "ready"
    assert body["row_count"] == 2
    assert body["id_column"] == "id"
    assert body["label_column"] == "y"
    roles = {c["name"]: (c["role"], c["type"]) for c in body["columns"]}
    assert roles["age"] == ("feature", "numeric")
    assert roles["city"] == ("feature", "categorical")


def test_a_gbk_file_with_chinese_headers_is_read(api):
    content = "客户编号,年龄\n001,30\n002,41\n".encode("gbk")
    body = finished(api, upload(api, content))
    assert body["status"] == "ready"
    assert body["detected_encoding"] in {"gb18030", "gbk"}
    assert [c["name"] for c in body["columns"]] == ["客户编号", "年龄"]


def test_a_ragged_row_fails_with_its_line_number(api):
    body = finished(api, upload(api, b"id,a,b\n1,2,3\n4,5\n"))
    assert body["status"] == "failed"
    assert body["error"]["code"] == "ragged_row"
    assert body["error"]["line"] == 3
    assert "3" in body["error"]["message"]


def test_an_empty_file_fails_and_says_so(api):
    body = finished(api, upload(api, b""))
    assert body["status"] == "failed"
    assert body["error"]["code"] == "empty_file"


def test_an_unknown_encoding_name_is_refused_at_once(api):
    response = upload(api, b"id\n1\n", encoding="no-such-codec")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_encoding"


def test_a_viewer_cannot_upload(vera, api_as):
    response = upload(api_as(vera), b"id\n1\n")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
