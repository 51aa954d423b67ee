"""Model bundles: one site's half of a model exported as a signed file and imported elsewhere,
with the prediction-consistency check re-scoring the bundle's sample for real."""

from __future__ import annotations

import base64
import copy
import functools
import io
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from engine.components.hetero_lr import hetero_lr
from engine.components.secureboost import hetero_secureboost
from engine.federation import run_local
from engine.ml import model_io, preprocessing
from engine.serving import Half
from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditEvent
from fedweb.proxy import pki
from jobs import artifacts, bundles
from jobs.models import Artifact, Job, Model, ServingTable, Task
from projects.models import PartnerCertificate, Project, ProjectStatus

from .job_scene import PARTNER_TABLE, job_project

# Our applicants: an id with leading zeros, the label, two features and a column no model reads.
OURS_CSV = "id,y,x1,x2,note\n" + "".join(
    f"{i:04d},{(i * 7 + i // 3) % 2},{(i % 13) / 13 - 0.5:.6f},{(i % 7) / 7:.6f},n{i % 3}\n" for i in range(200))

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}


# --- Halves trained with the engine ------------------------------------------------------------

def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    guest = pd.read_csv(io.StringIO(OURS_CSV), dtype={"id": str}).drop(columns="note")
    rng = np.random.default_rng(5)
    host = pd.DataFrame({"id": guest["id"], "z0": rng.normal(size=len(guest)).round(6),
                         "z1": rng.integers(0, 9, size=len(guest)), "z2": rng.uniform(size=len(guest))})
    return guest, host


@functools.lru_cache(maxsize=None)
def _trained(component: str) -> tuple[dict, dict]:
    guest, host = _frames()
    if component == "hetero_lr":
        params = {**SMALL_KEYS, "max_epochs": 2, "batch_size": 64}
        out = run_local(hetero_lr, params, {"guest": {"data": guest}, "host": {"data": host}}, timeout=120)
    else:
        params = {**SMALL_KEYS, "n_trees": 2, "max_depth": 3}
        out = run_local(hetero_secureboost, params, {"guest": {"data": guest}, "host": {"data": host}}, timeout=120)
    return out["guest"]["model"], out["host"]["model"]


@functools.lru_cache(maxsize=1)
def _prepared_lr() -> tuple[dict, dict]:
    """(the guest's fitted preparation, its LR half trained on prepared rows): "note" is one-hot encoded."""
    raw = pd.read_csv(io.StringIO(OURS_CSV), dtype={"id": str})
    body = preprocessing.fit(raw, passthrough=["y"], scaling="standard", other_bucket=False)
    transform = model_io.build(component=preprocessing.COMPONENT, component_version="1.0.0", role="guest",
                               model_id="prep", params={}, body=body)
    _guest, host = _frames()
    prepared = preprocessing.apply_model(transform, raw)
    out = run_local(hetero_lr, {**SMALL_KEYS, "max_epochs": 2}, {"guest": {"data": prepared}, "host": {"data": host}},
                    timeout=120)
    return transform, out["guest"]["model"]


def trained(component: str, role: str) -> dict:
    guest, host = _trained(component)
    return copy.deepcopy(guest if role == "guest" else host)


# --- The site ------------------------------------------------------------------------------------

@pytest.fixture
def scene(admin, alice, make_dataset, settings):
    """This site ("site-1") is the guest of "Credit risk"; its applicants table is authorised there."""
    project, dataset = job_project(admin=admin, members=[alice], make_dataset=make_dataset, settings=settings,
                                   csv=OURS_CSV)
    return project, dataset


def host_project(partner) -> Project:
    return Project.objects.create(name="Telco scoring", purpose="x", partner=partner, initiator="telco",
                                  label_holder="telco", status=ProjectStatus.ACTIVE)


def guest_model(project, dataset, user, component="hetero_lr") -> Model:
    """A guest half trained here, serving from our applicants table."""
    model = Model.objects.create(id=uuid.uuid4(), project=project, job=None, node="lr", component=component,
                                 version="1.0.0", role="guest", params={"id_column": "id", "label_column": "y"},
                                 metrics={"auc": 0.75, "loss": [0.6931471805599453, 0.5]},
                                 artifact=artifacts.store("model", trained(component, "guest")), name="Credit risk",
                                 number=3, scorecard={"base_score": 600, "odds": 50, "pdo": 20})
    ServingTable.objects.create(model=model, dataset=dataset, registered_by=user)
    return model


def host_model(project, component="hetero_secureboost") -> Model:
    """A host half whose job's psi node left the host's aligned rows as a table artifact (no serving table)."""
    _guest, host = _frames()
    spec = {"format": "fedweb-job/1", "nodes": [
        {"id": "psi", "component": "psi", "inputs": {"data": {"table": {"guest": PARTNER_TABLE,
                                                                         "host": str(uuid.uuid4())}}}},
        {"id": "sb", "component": component, "inputs": {"data": {"node": "psi", "output": "data"}}}]}
    job = Job.objects.create(project=project, name="Telco SB", spec=spec, initiator="telco", status="succeeded")
    table = artifacts.store("table", host)
    Task.objects.create(job=job, node="psi", site=Task.OURS, party="site-1", role="host", component="psi",
                        version="1.0.0", status="succeeded", outputs={"data": table.id})
    return Model.objects.create(id=uuid.uuid4(), project=project, job=job, node="sb", component=component,
                                version="1.0.0", role="host", params={"id_column": "id"},
                                artifact=artifacts.store("model", trained(component, "host")), name="Telco SB")


def wipe(model: Model) -> None:
    """This site forgets the model: its row, its serving table and its artifacts (rows and files)."""
    ids = [model.artifact_id, model.transform_id]
    ServingTable.objects.filter(model=model).delete()
    model.delete()
    for artifact_id in filter(None, ids):
        if not Model.objects.filter(artifact_id=artifact_id).exists():
            artifact = Artifact.objects.get(pk=artifact_id)
            artifacts.path_of(artifact.id, artifact.kind).unlink(missing_ok=True)
            artifact.delete()


def stored() -> tuple:
    from django.conf import settings

    files = sorted(str(p) for p in settings.ARTIFACT_DIR.rglob("*") if p.is_file())
    return Model.objects.count(), Artifact.objects.count(), tuple(files)


def resign(bundle: dict) -> bytes:
    """The bundle signed again with this site's genuine key (as an insider could)."""
    return json.dumps(bundles.sign(bundle)).encode()


def signed_by_stranger(bundle: dict, party="stranger") -> tuple[bytes, str]:
    key_pem, cert_pem = pki.make_self_signed(party)
    key = serialization.load_pem_private_key(key_pem, password=None)
    body = {**{k: v for k, v in bundle.items() if k != "signature"}, "certificate": cert_pem.decode()}
    body["signature"] = base64.b64encode(key.sign(bundles.canonical(body), ec.ECDSA(hashes.SHA256()))).decode()
    return json.dumps(body).encode(), pki.fingerprint(cert_pem)


def refused(code: str, data: bytes, *, user, project, **kwargs) -> ServiceError:
    before = stored()
    with pytest.raises(ServiceError) as caught:
        bundles.import_bundle(data, user=user, project=project, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert stored() == before, "a refused bundle stored something"
    return caught.value


def own_part_of(document: dict, rows: list[dict]) -> dict:
    half = Half.load(document)
    return bundles.score_sample(half, rows)


# --- Export ------------------------------------------------------------------------------------------

def test_a_bundle_holds_the_half_a_signed_sample_of_our_own_rows_and_nothing_else(scene, admin):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    data = bundles.export_bundle(user=admin, model=model)
    bundle = json.loads(data)
    assert bundle["format"] == "fedweb-model-bundle/1"
    assert bundle["site"]["party_id"] == "site-1"
    assert bundle["model"]["id"] == str(model.pk) and bundle["model"]["number"] == 3
    assert bundle["model"]["role"] == "guest" and bundle["model"]["project_name"] == "Credit risk"
    assert bundle["half"] == artifacts.load(model.artifact_id) and bundle["transform"] is None
    sample = bundle["sample"]
    assert sample["id_column"] == "id" and len(sample["rows"]) == 20
    # The id column and the model's features only: never the label or any other column.
    assert all(set(row) == {"id", "x1", "x2"} for row in sample["rows"])
    # The same rows every time, whatever order the table is in.
    frame = pd.read_csv(io.StringIO(OURS_CSV), dtype={"id": str})
    shuffled = frame.sample(frac=1.0, random_state=3)
    assert bundles.pick_sample(frame, "id", ["x1", "x2"]) == bundles.pick_sample(shuffled, "id", ["x1", "x2"])
    assert [r["id"] for r in sample["rows"]] == [r["id"] for r in bundles.pick_sample(frame, "id", ["x1", "x2"])]
    # The part is what the half alone computes for those rows, floats exact.
    assert sample["part"] == own_part_of(bundle["half"], sample["rows"])
    assert len(sample["part"]["u"]) == 20
    assert bundle["certificate"] == pki.current().certificate_pem
    assert bundles.verify_signature(bundle).fingerprint == pki.current().fingerprint
    assert b"pickle" not in data and AuditEvent.objects.filter(action="model_export").count() == 1


def test_only_a_site_admin_exports_or_imports(scene, admin, alice):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    with pytest.raises(PermissionDenied):
        bundles.export_bundle(user=alice, model=model)
    data = bundles.export_bundle(user=admin, model=model)
    wipe(model)
    before = stored()
    with pytest.raises(PermissionDenied):
        bundles.import_bundle(data, user=alice, project=project)
    assert stored() == before


def test_a_model_without_a_table_of_our_rows_is_not_exported(scene, admin):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    ServingTable.objects.filter(model=model).delete()
    with pytest.raises(ServiceError) as caught:
        bundles.export_bundle(user=admin, model=model)
    assert caught.value.code == "no_sample"


# --- Round trip --------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", ["hetero_lr", "hetero_secureboost"])
def test_a_guest_half_round_trips_and_scores_the_same(scene, admin, component):
    project, dataset = scene
    model = guest_model(project, dataset, admin, component)
    original = artifacts.load(model.artifact_id)
    pk, artifact_id = model.pk, model.artifact_id
    data = bundles.export_bundle(user=admin, model=model)
    wipe(model)
    assert not Artifact.objects.filter(pk=artifact_id).exists()

    imported = bundles.import_bundle(data, user=admin, project=project)
    assert imported.pk == pk and imported.origin == Model.IMPORTED and imported.job is None
    assert imported.artifact_id == artifact_id and artifacts.load(imported.artifact_id) == original
    assert (imported.name, imported.number, imported.node, imported.component) == ("Credit risk", 3, "lr", component)
    assert imported.metrics["loss"][0] == 0.6931471805599453 and imported.scorecard["pdo"] == 20
    details = imported.origin_details
    assert details["signer_party"] == "site-1" and details["fingerprint"] == pki.current().fingerprint
    assert details["trusted_as"] == "this site" and details["exported_at"] == json.loads(data)["exported_at"]
    assert len(details["bundle_sha256"]) == 64 and details["sample_rows"] == 20
    # The imported half scores every row of the table as the original did.
    frame = pd.read_csv(io.StringIO(OURS_CSV), dtype={"id": str})
    before, after = Half.load(original), Half.load(artifacts.load(imported.artifact_id))
    assert bundles.own_part(before, before.matrix(frame)) == bundles.own_part(after, after.matrix(frame))
    assert AuditEvent.objects.filter(action="model_import", outcome="success").count() == 1

    # Importing the same bundle again changes nothing.
    again = bundles.import_bundle(data, user=admin, project=project)
    assert again.pk == pk and again.already_here and Model.objects.count() == 1


def test_a_half_with_its_preparation_round_trips_with_raw_rows_in_its_sample(scene, admin):
    project, dataset = scene
    transform, half = copy.deepcopy(_prepared_lr())
    model = guest_model(project, dataset, admin)
    model.artifact, model.transform = artifacts.store("model", half), artifacts.store("model", transform)
    model.save()
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    assert bundle["transform"] == transform
    # Raw rows (the columns the preparation reads), not the prepared ones; still no label.
    assert set(bundle["sample"]["rows"][0]) == {"id", "x1", "x2", "note"}
    assert any(f.startswith("note=") for f in bundle["half"]["body"]["features"])
    wipe(model)
    imported = bundles.import_bundle(json.dumps(bundle).encode(), user=admin, project=project)
    assert artifacts.load(imported.transform_id) == transform
    changed = copy.deepcopy(bundle)
    changed["transform"]["body"]["columns"][0]["scale"]["offset"] += 1e-9
    changed["model"]["id"] = str(uuid.uuid4())
    refused("inconsistent", resign(changed), user=admin, project=project)


def test_a_host_half_round_trips_with_its_sample_from_the_jobs_psi_table(scene, admin):
    project, _dataset = scene
    other = host_project(project.partner)
    model = host_model(other)
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    assert bundle["model"]["role"] == "host" and len(bundle["sample"]["rows"]) == 20
    assert set(bundle["sample"]["rows"][0]) == {"id", *Half.load(bundle["half"]).features}
    assert set(bundle["sample"]["part"]) == {"routes"}
    wipe(model)
    imported = bundles.import_bundle(json.dumps(bundle).encode(), user=admin, project=other)
    assert imported.role == "host" and imported.origin == Model.IMPORTED


def test_another_model_with_the_same_id_is_not_overwritten(scene, admin):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    other = trained("hetero_secureboost", "guest")
    model.artifact = artifacts.store("model", other)
    model.save()
    refused("already_exists", json.dumps(bundle).encode(), user=admin, project=project)


# --- Refusals ------------------------------------------------------------------------------------------

@pytest.fixture
def exported(scene, admin):
    """A genuine LR guest bundle, and a site that no longer holds the model."""
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    data = bundles.export_bundle(user=admin, model=model)
    wipe(model)
    return project, json.loads(data)


def test_a_sample_part_changed_and_signed_again_fails_the_consistency_check(exported, admin):
    project, bundle = exported
    u = bundle["sample"]["part"]["u"]
    u[4] = float(np.nextafter(u[4], np.inf))  # one bit of one float
    error = refused("inconsistent", resign(bundle), user=admin, project=project)
    row_id = bundle["sample"]["rows"][4]["id"]
    assert "prediction-consistency check" in error.message and "row 5" in error.message and row_id in error.message


def test_a_half_changed_and_signed_again_fails_the_consistency_check(exported, admin):
    project, bundle = exported
    bundle["half"]["body"]["weights"][0] = bundle["half"]["body"]["weights"][0] * 1.000001
    error = refused("inconsistent", resign(bundle), user=admin, project=project)
    assert "row 1 " in error.message


def test_a_secureboost_route_changed_and_signed_again_fails_the_consistency_check(scene, admin):
    project, dataset = scene
    model = guest_model(project, dataset, admin, "hetero_secureboost")
    bundle = json.loads(bundles.export_bundle(user=admin, model=model))
    wipe(model)
    routes = bundle["sample"]["part"]["routes"]
    split = sorted(routes)[0]
    bits = np.unpackbits(np.frombuffer(base64.b64decode(routes[split]), np.uint8), count=20)
    bits[7] ^= 1
    routes[split] = base64.b64encode(np.packbits(bits)).decode()
    error = refused("inconsistent", resign(bundle), user=admin, project=project)
    assert "row 8 " in error.message and split in error.message


def test_a_bundle_changed_without_signing_again_is_refused_by_its_signature(exported, admin):
    project, bundle = exported
    changed = copy.deepcopy(bundle)
    changed["sample"]["part"]["u"][0] += 1.0
    refused("bad_signature", json.dumps(changed).encode(), user=admin, project=project)
    changed = copy.deepcopy(bundle)
    changed["model"]["name"] = "Something else"
    refused("bad_signature", json.dumps(changed).encode(), user=admin, project=project)
    changed = copy.deepcopy(bundle)
    changed["signature"] = "not base64!"
    refused("bad_signature", json.dumps(changed).encode(), user=admin, project=project)
    assert AuditEvent.objects.filter(action="model_import", outcome="denied").count() == 3


def test_a_stranger_signed_bundle_is_refused_unless_its_fingerprint_is_given(exported, admin):
    project, bundle = exported
    data, fingerprint = signed_by_stranger(bundle)
    error = refused("untrusted_signer", data, user=admin, project=project)
    assert fingerprint in error.message and "stranger" in error.message
    error = refused("untrusted_signer", data, user=admin, project=project, signer_fingerprint="ab" * 32)
    assert fingerprint in error.message
    typed = ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    model = bundles.import_bundle(data, user=admin, project=project, signer_fingerprint=typed)
    assert model.origin_details["fingerprint"] == fingerprint
    assert model.origin_details["trusted_as"] == "fingerprint given"


def test_a_bundle_signed_by_a_pinned_partner_certificate_is_trusted(exported, admin):
    project, bundle = exported
    data, fingerprint = signed_by_stranger(bundle, party="telco")
    info = pki.parse_certificate(json.loads(data)["certificate"])
    PartnerCertificate.objects.create(partner=project.partner, fingerprint=fingerprint, certificate_pem=info.pem,
                                      not_before=info.not_before, not_after=info.not_after)
    model = bundles.import_bundle(data, user=admin, project=project)
    assert model.origin_details["trusted_as"] == "partner telco"


def test_a_bundle_signed_by_a_retired_certificate_of_ours_is_trusted(exported, admin):
    project, bundle = exported
    old = pki.current()
    new = pki.create_site_certificate(make_current=True)
    pki.retire(old.fingerprint)
    assert pki.current().fingerprint == new.fingerprint
    model = bundles.import_bundle(json.dumps(bundle).encode(), user=admin, project=project)
    assert model.origin_details["fingerprint"] == old.fingerprint


def test_a_half_of_the_other_role_is_refused(exported, admin):
    project, bundle = exported
    other = host_project(project.partner)
    error = refused("wrong_role", json.dumps(bundle).encode(), user=admin, project=other)
    assert "guest" in error.message and "host" in error.message


@pytest.mark.parametrize("data, words", [
    (b"not json at all", "not a JSON object"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested deeper"),
    (json.dumps({"format": "fedweb-model-bundle/9"}).encode(), "fedweb-model-bundle/9"),
    (json.dumps({"format": "fedweb-site-bundle/1"}).encode(), "not a model bundle"),
    (json.dumps({"format": "fedweb-model-bundle/1", "site": {}}).encode(), "lacks"),
    (b'{"format": NaN}', "not a JSON object"),
])
def test_malformed_files_are_refused(scene, admin, data, words):
    project, _dataset = scene
    error = refused("malformed", data, user=admin, project=project)
    assert words in error.message


def test_a_too_large_file_is_refused(scene, admin, settings, monkeypatch):
    project, _dataset = scene
    monkeypatch.setattr(bundles, "MAX_BUNDLE_BYTES", 1000)
    error = refused("malformed", b'{"format": "' + b"x" * 2000 + b'"}', user=admin, project=project)
    assert "larger" in error.message


def test_a_malformed_sample_is_refused(exported, admin):
    project, bundle = exported
    bundle["sample"]["rows"] = []
    refused("malformed", resign(bundle), user=admin, project=project)
    bundle["sample"]["rows"] = [{"id": "1", "x1": {"nested": 1}}]
    refused("malformed", resign(bundle), user=admin, project=project)


# --- API and commands ----------------------------------------------------------------------------------

def test_the_api_exports_and_imports(scene, admin, alice, api_as):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    assert api_as(alice).get(f"/api/models/{model.pk}/export/").status_code == 403
    response = api_as(admin).get(f"/api/models/{model.pk}/export/")
    assert response.status_code == 200
    assert 'filename="Credit-risk-v3-guest.fedweb-model.json"' in response["Content-Disposition"]
    data, pk = response.content, str(model.pk)
    wipe(model)

    def upload(user, payload, **extra):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return api_as(user).post("/api/models/import/", {"file": SimpleUploadedFile("m.json", payload),
                                                          "project": str(project.pk), **extra}, format="multipart")

    assert upload(alice, data).status_code == 403
    stranger, fingerprint = signed_by_stranger(json.loads(data))
    answer = upload(admin, stranger)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "untrusted_signer"
    assert fingerprint in answer.json()["error"]["message"]
    answer = upload(admin, b"{")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "malformed"
    answer = upload(admin, data)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["id"] == pk and answer.json()["origin"] == "imported"
    assert upload(admin, data).status_code == 200


def test_the_commands_export_and_import(scene, admin, tmp_path):
    project, dataset = scene
    model = guest_model(project, dataset, admin)
    target = tmp_path / "bundle.json"
    out = io.StringIO()
    call_command("export_model", str(model.pk), str(target), stdout=out)
    assert "Exported Credit risk · v3" in out.getvalue() and pki.current().fingerprint in out.getvalue()
    wipe(model)
    out = io.StringIO()
    call_command("import_model", str(target), "--project", str(project.pk), "--as", "admin", stdout=out)
    assert "Imported" in out.getvalue() and "20 rows" in out.getvalue()
    out = io.StringIO()
    call_command("import_model", str(target), "--project", str(project.pk), stdout=out)
    assert "already here" in out.getvalue()

    bundle = json.loads(target.read_bytes())
    bundle["model"]["id"] = str(uuid.uuid4())
    bundle["sample"]["part"]["u"][0] += 1.0
    target.write_bytes(resign(bundle))
    with pytest.raises(CommandError) as caught:
        call_command("import_model", str(target), "--project", str(project.pk))
    assert "prediction-consistency check" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        call_command("import_model", str(tmp_path / "missing.json"), "--project", str(project.pk))
    assert "cannot be read" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        call_command("export_model", str(uuid.uuid4()), str(target))
    assert "No model" in str(caught.value)
