"""The bad-CSV suite end to end: uploaded through the API, each ends in the exact state and message."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db

# (case, bytes, upload options, expected status, code, line, column, words the message must contain)
CASES = [
    ("utf-8", "id,名字\n1,张三\n".encode(), {}, "ready", None, None, None, []),
    ("utf-8 with BOM", "\ufeffid,x\n1,2\n".encode(), {}, "ready", None, None, None, []),
    ("gbk", "客户编号,城市\n001,北京\n".encode("gbk"), {}, "ready", None, None, None, []),
    ("gb18030", "客户编号,城市\n001,𠀀市\n".encode("gb18030"), {}, "ready", None, None, None, []),
    ("latin-1 named by the user", "id,name\n1,Ærø\n".encode("latin-1"), {"encoding": "latin-1"}, "ready", None, None, None, []),
    ("semicolon", b"id;x\n1;2\n", {}, "ready", None, None, None, []),
    ("tab", b"id\tx\n1\t2\n", {}, "ready", None, None, None, []),
    ("pipe", b"id|x\n1|2\n", {}, "ready", None, None, None, []),
    ("empty file", b"", {}, "failed", "empty_file", None, None, ["empty"]),
    ("header only", b"id,x\n", {}, "failed", "no_rows", 1, None, ["no data rows"]),
    ("empty column name", b"id,,x\n1,2,3\n", {}, "failed", "empty_column_name", 1, None, ["Column 2"]),
    ("duplicate column name", b"id,a,a\n1,2,3\n", {}, "failed", "duplicate_column_name", 1, "a", ["a"]),
    ("too many fields", b"id,a\n1,2\n3,4,5\n", {}, "failed", "ragged_row", 3, None, ["3"]),
    ("too few fields", b"id,a,b\n1,2,3\n4,5\n", {}, "failed", "ragged_row", 3, None, ["3"]),
    ("unbalanced quote", b'id,a\n1,"open\n2,3\n', {}, "failed", "unbalanced_quote", 2, None, ["2"]),
    ("nul byte", b"id,a\n1,2\n3,\x004\n", {}, "failed", "nul_byte", 3, None, ["3"]),
    ("invalid utf-8 when utf-8 is named", b"id,a\n1,caf\xe9\n", {"encoding": "utf-8"}, "failed", "bad_encoding", 2, None, ["2"]),
]


@pytest.mark.parametrize("case, content, options, status, code, line, column, words", CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_csv_ends_in_the_right_state(case, content, options, status, code, line, column, words, alice, api_as, django_capture_on_commit_callbacks):
    api = api_as(alice)
    upload = SimpleUploadedFile("f.csv", content, content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/datasets/", {"file": upload, **options}, format="multipart")
    assert response.status_code == 201, response.content
    body = api.get(f"/api/datasets/{response.json()['id']}/").json()
    assert body["status"] == status, body["error"]
    if status == "ready":
        assert body["error"] is None
        assert body["row_count"] >= 1
        return
    error = body["error"]
    assert error["code"] == code
    assert error["line"] == line
    if column is not None:
        assert error["column"] == column
    for word in words:
        assert word in error["message"], error["message"]
    # Nothing lost: the upload is kept byte for byte and can be read again.
    from datasets import storage
    from datasets.models import Dataset

    dataset = Dataset.objects.get(pk=body["id"])
    assert storage.path(dataset.storage_key, storage.SOURCE).read_bytes() == content


def test_chinese_column_names_and_values_round_trip(alice, api_as, django_capture_on_commit_callbacks):
    api = api_as(alice)
    content = "客户编号,城市,年龄\n0001,北京,30\n0002,上海,41\n".encode("gb18030")
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/datasets/", {"file": SimpleUploadedFile("客户.csv", content)}, format="multipart").json()
    preview = api.get(f"/api/datasets/{created['id']}/preview/").json()
    assert preview["columns"][:2] == ["客户编号", "城市"]
    assert preview["rows"][0][:2] == ["0001", "北京"]


def test_duplicate_ids_are_reported_not_dropped(alice, api_as, django_capture_on_commit_callbacks):
    api = api_as(alice)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/datasets/", {"file": SimpleUploadedFile("d.csv", b"id,x\n7,1\n7,2\n8,3\n")}, format="multipart").json()
    body = api.get(f"/api/datasets/{created['id']}/").json()
    assert body["status"] == "ready" and body["row_count"] == 3
    assert body["report"]["duplicate_ids"]["values"] == 1
    assert body["report"]["duplicate_ids"]["examples"][0]["id"] == "7"
