"""Downloads keep every value as written and neutralise spreadsheet formulas."""

import csv
import io
import re
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.django_db


def download(client, dataset):
    response = client.get(f"/api/datasets/{dataset.pk}/download/")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_leading_zero_and_na_ids_survive_upload_and_download(alice, api_as, make_dataset):
    dataset = make_dataset(alice, "id,x\n0012345,1\nNA,2\n007 ,3\n", id_column="id")
    rows = list(csv.reader(io.StringIO(download(api_as(alice), dataset))))
    assert [r[0] for r in rows[1:]] == ["0012345", "NA", "007 "]
    preview = api_as(alice).get(f"/api/datasets/{dataset.pk}/preview/").json()
    assert [r[0] for r in preview["rows"]] == ["0012345", "NA", "007 "]


def test_formula_cells_are_neutralised_on_download(granted_dataset, alice, api_as):
    text = download(api_as(alice), granted_dataset)
    rows = list(csv.reader(io.StringIO(text)))
    cities = [r[3] for r in rows[1:]]
    assert cities == ["'=HYPERLINK(1)", "beijing", "'+cmd"]
    assert [r[2] for r in rows[1:]] == ["0.5", "1.5", "-2"]  # numbers stay numbers


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-x", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_every_formula_start_is_neutralised(cell, alice, api_as, make_dataset):
    from datasets.ingest import neutralise

    assert neutralise(cell) == "'" + cell
    dataset = make_dataset(alice, f'id,note\n1,"{cell}"\n2,plain\n', id_column="id")
    rows = list(csv.reader(io.StringIO(download(api_as(alice), dataset), newline="")))
    assert rows[1][1] == "'" + cell


def test_the_download_is_audited(granted_dataset, alice, api_as):
    from fedweb.audit.models import AuditEvent

    download(api_as(alice), granted_dataset)
    assert AuditEvent.objects.filter(action="dataset_download", actor=alice).count() == 1


def test_preview_values_are_escaped_in_the_page(alice, client_as, make_dataset):
    dataset = make_dataset(alice, 'id,note\n1,<script>alert(1)</script>\n', id_column="id")
    page = client_as(alice).get(f"/datasets/{dataset.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- The download's file name ------------------------------------------------------

HOSTILE_NAME = "report\"; filename*=UTF-8''report.html; x=\".csv"
CHINESE_NAME = "客户 名单.csv"


def _multipart(filename: str) -> tuple[bytes, str]:
    """A CSV upload as curl sends it: the file name quoted, its quotes backslash-escaped."""
    boundary = "fedweb-test-boundary"
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        "id,x\r\n1,2\r\n"
        f"--{boundary}--\r\n"
    ).encode("utf-8")
    return body, f"multipart/form-data; boundary={boundary}"


def _upload(how, user, filename, client_as, api_as, capture):
    from datasets.models import Dataset

    body, content_type = _multipart(filename)
    with capture(execute=True):
        if how == "page":
            response = client_as(user).post("/datasets/upload/", body, content_type=content_type)
            assert response.status_code == 302
        else:
            response = api_as(user).generic("POST", "/api/datasets/", body, content_type=content_type)
            assert response.status_code == 201, response.content
    dataset = Dataset.objects.get()
    assert dataset.original_filename == filename  # the name really reached the store as typed
    assert dataset.status == "ready"
    return dataset


def _download_response(how, user, dataset, client_as, api_as):
    if how == "page":
        response = client_as(user).get(f"/datasets/{dataset.pk}/download/")
    else:
        response = api_as(user).get(f"/api/datasets/{dataset.pk}/download/")
    assert response.status_code == 200
    return response


def attachment_name(response) -> str:
    """The one file name a strict parser reads from Content-Disposition."""
    from email.message import Message

    header = response["Content-Disposition"]
    message = Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition")
    assert params[0] == ("attachment", "")
    # RFC 2231 folds filename* into "filename", so a second name would show here twice.
    assert [key for key, _value in params[1:]] == ["filename"], header
    assert len(header.split(";")) == 2, header  # even a parser that ignores quoting sees one
    return message.get_filename()


@pytest.mark.parametrize("upload_via", ["page", "api"])
@pytest.mark.parametrize("download_via", ["page", "api"])
def test_a_hostile_upload_name_cannot_rename_the_download(
    upload_via, download_via, alice, client_as, api_as, django_capture_on_commit_callbacks
):
    dataset = _upload(upload_via, alice, HOSTILE_NAME, client_as, api_as, django_capture_on_commit_callbacks)
    response = _download_response(download_via, alice, dataset, client_as, api_as)
    name = attachment_name(response)
    assert name.endswith(".csv") and not name.endswith(".html")
    assert not set(name) & set("\"';\\/")
    assert "''" not in response["Content-Disposition"]  # no charset''name value for a lax parser to find


@pytest.mark.parametrize("upload_via", ["page", "api"])
@pytest.mark.parametrize("download_via", ["page", "api"])
def test_a_chinese_file_name_round_trips(
    upload_via, download_via, alice, client_as, api_as, django_capture_on_commit_callbacks
):
    dataset = _upload(upload_via, alice, CHINESE_NAME, client_as, api_as, django_capture_on_commit_callbacks)
    response = _download_response(download_via, alice, dataset, client_as, api_as)
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''" + quote(CHINESE_NAME)
    assert attachment_name(response) == CHINESE_NAME


@pytest.mark.parametrize(
    "original, expected",
    [
        ("scores.csv", "scores.csv"),
        ("../../etc/passwd", "passwd.csv"),
        ("C:\\Users\\alice\\scores.csv", "scores.csv"),
        ("page.html", "page.csv"),
        ("a\u202egpj.csv", "agpj.csv"),  # a right-to-left override would show "a.csv.jpg"
        ("line\r\nbreak\x00.csv", "line break.csv"),
        ('say "hi"; now.csv', "say hi now.csv"),
        ("O'Brien.csv", "OBrien.csv"),
        ("客户 名单.csv", "客户 名单.csv"),
        ("", "dataset.csv"),
        ("..", "dataset.csv"),
        ('"";.csv', "dataset.csv"),
    ],
)
def test_the_download_name_is_a_plain_csv_name(original, expected):
    from datasets.services import download_filename

    assert download_filename(original) == expected


def test_the_audit_export_names_one_csv_file(admin, client_as):
    response = client_as(admin).get("/audit/export.csv")
    assert response.status_code == 200
    assert re.fullmatch(r"audit-\d{8}-\d{6}\.csv", attachment_name(response))


def test_the_site_bundle_download_names_one_json_file(admin, client_as, settings):
    from fedweb.proxy import pki

    pki.create_site_certificate()
    response = client_as(admin).post("/partners/bundle/", {"proxy_address": "fedweb.bank.example:7443"})
    assert response.status_code == 200
    assert attachment_name(response) == f"{settings.SITE_PARTY_ID}-bundle.json"
