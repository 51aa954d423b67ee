"""Downloads keep every value as written and neutralise spreadsheet formulas."""

import csv
import io

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
