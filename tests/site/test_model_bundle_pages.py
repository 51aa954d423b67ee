"""Moving this site's half of a model in the browser: the version page exports it as a signed file
(site admins only, with what the file holds and the fingerprint the importing admin is asked for),
and the project's import page takes such a file back, or says in words why it refuses it."""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fedweb.audit.models import AuditEvent
from fedweb.proxy import pki
from jobs import bundles
from jobs.models import Model, ServingTable

from .job_scene import job_project
from .test_model_bundles import OURS_CSV, guest_model, signed_by_stranger, stored, wipe

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(admin, alice, make_dataset, settings):
    """This site is the guest of "Credit risk"; an LR guest half trained with the engine serves from our table."""
    project, dataset = job_project(admin=admin, members=[alice], make_dataset=make_dataset, settings=settings,
                                   csv=OURS_CSV)
    return project, dataset, guest_model(project, dataset, admin)


def text_of(response) -> str:
    return html.unescape(response.content.decode())


def export(client, model):
    return client.post(f"/models/{model.pk}/export/")


def upload(client, project, data: bytes, **fields):
    return client.post(f"/projects/{project.pk}/models/import/",
                       {"file": SimpleUploadedFile("bundle.fedweb-model.json", data), **fields})


# --- Export -------------------------------------------------------------------------------------

def test_a_site_admin_sees_what_the_file_holds_and_this_sites_fingerprint(scene, admin, client_as):
    _project, _dataset, model = scene
    text = text_of(client_as(admin).get(f"/models/{model.pk}/"))
    assert 'data-testid="export"' in text and 'data-action="export"' in text
    assert "up to 20 of this site's own rows" in text and "Handle the file like the data itself" in text
    assert pki.current().fingerprint in text
    assert "Credit-risk-v3-guest.fedweb-model.json" in text


def test_the_export_button_downloads_the_signed_half(scene, admin, client_as):
    _project, _dataset, model = scene
    response = export(client_as(admin), model)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert 'attachment; filename="Credit-risk-v3-guest.fedweb-model.json"' == response["Content-Disposition"]
    bundle = json.loads(response.content)
    assert bundle["format"] == bundles.FORMAT and bundle["model"]["id"] == str(model.pk)
    assert len(bundle["sample"]["rows"]) == 20
    assert bundles.verify_signature(bundle).fingerprint == pki.current().fingerprint
    assert AuditEvent.objects.filter(action="model_export").count() == 1


def test_analysts_neither_see_nor_use_the_export(scene, alice, client_as):
    _project, _dataset, model = scene
    text = text_of(client_as(alice).get(f"/models/{model.pk}/"))
    assert 'data-testid="export"' not in text and pki.current().fingerprint not in text
    assert export(client_as(alice), model).status_code == 403
    assert client_as(alice).get(f"/models/{model.pk}/export/").status_code == 405
    assert not AuditEvent.objects.filter(action="model_export").exists()


def test_a_model_without_rows_to_sample_is_not_exported_and_the_page_says_why(scene, admin, client_as):
    _project, _dataset, model = scene
    ServingTable.objects.filter(model=model).delete()
    response = client_as(admin).post(f"/models/{model.pk}/export/", follow=True)
    assert response.redirect_chain[-1][0] == f"/models/{model.pk}/"
    assert any("register a serving table for the model first" in str(m) for m in response.context["messages"])


# --- Import ---------------------------------------------------------------------------------------

def test_the_models_page_links_site_admins_to_the_import_page(scene, admin, alice, client_as):
    project, _dataset, _model = scene
    url = f"/projects/{project.pk}/models/import/"
    assert url in text_of(client_as(admin).get(f"/projects/{project.pk}/models/"))
    assert url not in text_of(client_as(alice).get(f"/projects/{project.pk}/models/"))
    text = text_of(client_as(admin).get(url))
    assert "Import a model" in text and 'type="file"' in text and 'name="signer_fingerprint"' in text
    assert "Colons, spaces and capitals do not matter" in text


def test_analysts_cannot_import(scene, admin, alice, client_as):
    project, _dataset, model = scene
    data = bundles.export_bundle(user=admin, model=model)
    wipe(model)
    before = stored()
    assert client_as(alice).get(f"/projects/{project.pk}/models/import/").status_code == 403
    assert upload(client_as(alice), project, data).status_code == 403
    assert stored() == before


def test_an_exported_half_imported_on_the_page_opens_the_imported_version(scene, admin, client_as):
    project, _dataset, model = scene
    pk, client = model.pk, client_as(admin)
    data = export(client, model).content
    wipe(model)
    response = upload(client, project, data)
    assert response.status_code == 302 and response["Location"] == f"/models/{pk}/"
    imported = Model.objects.get(pk=pk)
    assert imported.origin == Model.IMPORTED and imported.project_id == project.pk
    page = client.get(response["Location"])
    text = text_of(page)
    assert "Imported from a signed bundle" in text and "Not published" in text
    assert any("is imported" in str(m) and "Credit risk · v3" in str(m) for m in page.context["messages"])
    # The same file again changes nothing, and says so.
    again = upload(client, project, data)
    assert again.status_code == 302 and Model.objects.count() == 1
    assert any("already here" in str(m) for m in client.get(again["Location"]).context["messages"])


def test_an_altered_file_is_refused_with_the_reason_in_words(scene, admin, client_as):
    project, _dataset, model = scene
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    wipe(model)
    bundle["sample"]["part"]["u"][0] += 1.0  # one number changed after signing
    before = stored()
    response = upload(client_as(admin), project, json.dumps(bundle).encode())
    assert response.status_code == 400
    text = text_of(response)
    assert 'data-testid="import-refused"' in text and "Nothing was imported." in text
    assert "signature does not match its content" in text
    assert stored() == before
    assert AuditEvent.objects.filter(action="model_import", outcome="denied").count() == 1


def test_a_strangers_file_needs_the_fingerprint_typed_in_the_form(scene, admin, client_as):
    project, _dataset, model = scene
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    wipe(model)
    data, fingerprint = signed_by_stranger(bundle)
    text = text_of(upload(client_as(admin), project, data))
    assert "which this site does not know" in text and fingerprint in text
    typed = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    response = upload(client_as(admin), project, data, signer_fingerprint=typed)
    assert response.status_code == 302
    assert Model.objects.get(pk=bundle["model"]["id"]).origin_details["trusted_as"] == "fingerprint given"


def test_a_file_that_is_not_a_bundle_is_refused_in_words(scene, admin, client_as):
    project, _dataset, _model = scene
    text = text_of(upload(client_as(admin), project, b"id,y\n1,0\n"))
    assert "not a JSON object: it is not a model bundle" in text
    empty = client_as(admin).post(f"/projects/{project.pk}/models/import/", {})
    assert empty.status_code == 200 and "This field is required." in text_of(empty)
