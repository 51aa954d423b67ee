"""Uploads: client file names are labels only, and the size cap holds while streaming."""

import json
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets import storage

pytestmark = pytest.mark.django_db

HOSTILE_NAMES = [
    "../../../etc/passwd", "..\\..\\boot.ini", "/abs/path.csv", "..", "../..", "con.csv\r\n", "x" * 500 + ".csv",
    "\u202etxt.exe.csv", "a\x00b.csv",
]
# Names that are nothing but path parts: Django's parser drops the file altogether.
NAMELESS = ["..", "../.."]


def _raw_multipart_upload(client, filename: str, content: bytes):
    """Send the file name exactly as a hostile client would, bypassing test helpers' checks."""
    boundary = "fedwebBoundary7MA4YWxkTrZu0gW"
    safe_header_name = filename.replace("\r", "").replace("\n", "").replace('"', "%22")
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{safe_header_name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode("utf-8") + content + f"\r\n--{boundary}--\r\n".encode()
    return client.generic("POST", "/api/datasets/", body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_path_like_file_name_cannot_escape_storage(name, alice, api_as, settings, django_capture_on_commit_callbacks):
    from datasets.models import Dataset

    with django_capture_on_commit_callbacks(execute=True):
        response = _raw_multipart_upload(api_as(alice), name, b"id,x\n1,2\n")
    if name in NAMELESS:
        assert response.status_code == 400
        assert response.json()["error"]["details"]["file"]
        assert not Dataset.objects.exists()
        assert not (Path(settings.ARTIFACT_DIR) / "datasets").exists()
        return
    assert response.status_code == 201, response.content
    dataset = Dataset.objects.get(pk=response.json()["id"])
    stored = storage.path(dataset.storage_key, storage.SOURCE).resolve()
    root = Path(settings.ARTIFACT_DIR).resolve()
    assert root in stored.parents
    assert stored.parent.name == dataset.storage_key and len(dataset.storage_key) == 32
    assert sorted(p.name for p in stored.parent.iterdir()) == ["data.parquet", "source.csv", "text.parquet"]
    assert "/" not in dataset.original_filename and "\\" not in dataset.original_filename
    assert "\x00" not in dataset.original_filename and "\n" not in dataset.original_filename
    assert len(dataset.original_filename) <= 255
    assert stored.read_bytes() == b"id,x\n1,2\n"
    assert dataset.status == "ready"
    # Nothing was written anywhere else in the store.
    assert [p.name for p in (root / "datasets").iterdir()] == [dataset.storage_key]


def test_an_upload_over_the_cap_is_refused_with_a_clear_message(alice, api_as, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    big = SimpleUploadedFile("big.csv", b"id,x\n" + b"1,2\n" * 1000, content_type="text/csv")
    response = api_as(alice).post("/api/datasets/", {"file": big}, format="multipart")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "MB limit" in response.json()["error"]["message"]
    from datasets.models import Dataset

    assert not Dataset.objects.exists()


def test_the_browser_upload_reports_the_cap_too(alice, client_as, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    big = SimpleUploadedFile("big.csv", b"id,x\n" + b"1,2\n" * 1000, content_type="text/csv")
    response = client_as(alice).post("/datasets/upload/", {"file": big}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 413
    assert "MB limit" in response.json()["error"]["message"]


async def _asgi_post(app, headers, chunks):
    sent = []
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/datasets/", "headers": headers, "query_string": b""}
    await app(scope, receive, send)
    return sent


def test_the_asgi_layer_refuses_a_declared_oversize_body_before_reading_it(settings):
    from fedweb.limits import BodySizeLimitMiddleware

    settings.DATASET_MAX_UPLOAD_BYTES = 10
    reached = []

    async def app(scope, receive, send):
        reached.append(True)

    sent = async_to_sync(_asgi_post)(
        BodySizeLimitMiddleware(app), [(b"content-length", str(50 * 1024 * 1024).encode())], [b""]
    )
    assert not reached
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_large"


def test_the_asgi_layer_cuts_off_an_undeclared_body_once_it_passes_the_cap(settings):
    from fedweb.limits import BodySizeLimitMiddleware

    settings.DATASET_MAX_UPLOAD_BYTES = 10

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    chunk = b"x" * (512 * 1024)
    sent = async_to_sync(_asgi_post)(BodySizeLimitMiddleware(app), [], [chunk] * 4)
    assert sent[0]["status"] == 413
