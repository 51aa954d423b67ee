"""One site's half of a model as a signed, versioned file: exported here, imported elsewhere.

A **model bundle** (``fedweb-model-bundle/1``) is one JSON document (UTF-8; nothing is
pickled or evaluated)::

    {"format": "fedweb-model-bundle/1",
     "site": {"party_id": "bank", "name": "Bank"},
     "exported_at": "2026-12-03T10:00:00Z",
     "model": {"id", "name", "number", "node", "component", "version", "role", "params", "metrics",
               "scorecard", "project_id", "project_name"},
     "half": {...},                      # the half as engine/ml/model_io.py writes it
     "transform": {...} | null,          # the fitted preparation scoring applies first
     "sample": {"rows": [...], "id_column": "id", "part": {...}},
     "certificate": "-----BEGIN CERTIFICATE-----...",
     "signature": "<base64 ECDSA P-256 / SHA-256>"}

The **sample** is up to :data:`SAMPLE_ROWS` of the exporting site's own raw rows (the id
column and the columns the model reads, nothing else), chosen deterministically (the ids
with the smallest SHA-256), and ``part`` is what this half alone computes for them
(:func:`own_part`). The **signature** covers the canonical JSON of everything else.

Importing checks, in order: the size, depth and shape of the file; the signature, with
the embedded certificate; that the certificate is **trusted** here (one of this site's
own certificates, retired ones included, a partner's pinned certificate, or the
fingerprint the admin typed); that the half plays this site's role in the project; and
finally the **prediction-consistency check**: the half, loaded here, recomputes the
sample's part, which must equal the stored one exactly (same float bits, same routes).
Only then are the artifacts stored and the Model row created. A refusal stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import re
import uuid
from typing import Any

import numpy as np
import pandas as pd
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from engine import serving as engine_serving
from engine.errors import EngineError
from engine.ml import model_io
from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditOutcome
from fedweb.audit.services import record
from fedweb.proxy import pki
from fedweb.proxy.authz import MAX_JSON_DEPTH, json_depth, parse_json_object
from fedweb.proxy.models import SiteCertificate
from projects.models import PartnerCertificate, ProjectStatus

from . import artifacts, runner
from .models import Model, ServingTable, Task
from .spec import our_role

FORMAT = "fedweb-model-bundle/1"
SAMPLE_ROWS = 20
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_SAMPLE_ROWS = 1000  # what an import accepts (a bundle of ours holds at most SAMPLE_ROWS)
_NODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


# --- Canonical JSON and signatures -----------------------------------------------------------

def canonical(value: Any) -> bytes:
    """The bytes a signature covers: sorted keys, no spaces, UTF-8, floats as ``repr``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _signed_part(bundle: dict) -> dict:
    return {k: v for k, v in bundle.items() if k != "signature"}


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as people copy it (upper case, colons, spaces) in the form stored here."""
    return re.sub(r"[\s:]", "", str(text or "")).lower()


def _sign(unsigned: dict) -> str:
    key_pem, _cert = pki.current_key_and_cert()
    key = serialization.load_pem_private_key(key_pem, password=None)
    return base64.b64encode(key.sign(canonical(unsigned), ec.ECDSA(hashes.SHA256()))).decode("ascii")


def sign(unsigned: dict) -> dict:
    """``unsigned`` with this site's current certificate and a signature over both."""
    _key, cert = pki.current_key_and_cert()
    body = {**_signed_part(unsigned), "certificate": cert.decode("ascii")}
    return {**body, "signature": _sign(body)}


# --- What one half alone computes for rows -----------------------------------------------------

def own_part(half: engine_serving.Half, matrix: np.ndarray) -> dict:
    """What this half computes for these rows without the partner (``Half.own_part``): partial scores
    (LR) or, per split it owns, which rows go left (SecureBoost). Plain JSON: floats at ``repr``
    precision, bit masks in base64."""
    return half.own_part(matrix)


def _plain(value: Any) -> Any:
    """A cell of a sample row as JSON: numbers exact, missing values null."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _frame_of(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """The sample rows as a table, the same way at export and at import: a numeric column with
    gaps becomes float64 (gaps NaN), everything else keeps the JSON values' own types."""
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        numeric = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)
        if numeric and any(v is None for v in values):
            data[column] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        else:
            data[column] = pd.Series(values, dtype=object).infer_objects() if values else pd.Series([], dtype=object)
    return pd.DataFrame(data, columns=columns, index=range(len(rows)))


def score_sample(half: engine_serving.Half, rows: list[dict]) -> dict:
    columns = list(rows[0]) if rows else []
    return own_part(half, half.matrix(_frame_of(rows, columns), input="consistency sample"))


def _raw_columns(half: engine_serving.Half) -> list[str]:
    """The columns of a raw row this half reads (through its preparation, if any)."""
    transform = half.transform
    if isinstance(transform, dict) and isinstance(transform.get("body"), dict):
        body = transform["body"]
        return [str(spec["name"]) for spec in body.get("columns") or []]
    return list(half.features)


def _id_key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def pick_sample(frame: pd.DataFrame, id_column: str, columns: list[str], limit: int = SAMPLE_ROWS) -> list[dict]:
    """Up to ``limit`` rows, the same ones every time: those whose id has the smallest SHA-256
    (the first row of a repeated id), each with the id column and ``columns`` only."""
    ids = frame[id_column].astype(str).tolist()
    first: dict[str, int] = {}
    for position, value in enumerate(ids):
        first.setdefault(value, position)
    chosen = sorted(first, key=_id_key)[:limit]
    out = []
    for value in chosen:
        row = frame.iloc[first[value]]
        out.append({id_column: value, **{c: _plain(row[c]) for c in columns if c != id_column}})
    return out


# --- Where an exported model's sample rows come from ------------------------------------------

def _candidate_tables(model: Model):
    """(frame loader, id column, producer task) for the tables upstream of the model's trainer at
    this site, nearest first: what the trainer read, what that was made from, and so on."""
    job = model.job
    if job is None:
        return
    default_id = str((model.params or {}).get("id_column") or "id")
    current_job, node_id, seen = job, model.node, set()
    while (str(current_job.pk), node_id) not in seen and len(seen) < 50:
        seen.add((str(current_job.pk), node_id))
        nodes = {n.get("id"): n for n in (current_job.spec or {}).get("nodes", [])}
        data = ((nodes.get(node_id) or {}).get("inputs") or {}).get("data")
        if not isinstance(data, dict):
            return
        if "table" in data:
            dataset_id = (data["table"] or {}).get(model.role)
            if dataset_id:
                def load_table(dataset_id=str(dataset_id), project=current_job.project):
                    return runner.read_dataset(dataset_id, project)
                from datasets.models import Dataset

                dataset = Dataset.objects.filter(pk=dataset_id).first()
                yield load_table, (dataset.id_column if dataset and dataset.id_column else default_id), None
            return
        if "node" not in data:
            return
        if data.get("job"):
            from .models import Job

            current_job = Job.objects.filter(pk=data["job"]).first()
            if current_job is None:
                return
        task = Task.objects.filter(job=current_job, site=Task.OURS, node=data["node"]).first()
        artifact_id = (task.outputs or {}).get(data.get("output") or "data") if task is not None else None
        if artifact_id:
            yield (lambda artifact_id=artifact_id: artifacts.load(artifact_id)), default_id, task
        node_id = data["node"]


def _sample_frame(model: Model, half: engine_serving.Half) -> tuple[pd.DataFrame, str]:
    """The table the sample comes from: the registered serving table, else the raw table the
    model's job read here (before the preparation the model applies)."""
    needed = _raw_columns(half)
    serving = ServingTable.objects.filter(model=model).select_related("dataset").first()
    body_id = str((half.document.get("body") or {}).get("id_column") or (model.params or {}).get("id_column") or "id")
    if serving is not None:
        frame = runner.read_dataset(str(serving.dataset_id), model.project)
        id_column = serving.dataset.id_column or body_id
        return frame, id_column
    candidates = list(_candidate_tables(model))
    if model.transform_id:
        # Skip what the preparation's own node made (prepared rows): the raw rows are upstream of it.
        made = [i for i, (_load, _id, task) in enumerate(candidates)
                if task is not None and model.transform_id in (task.outputs or {}).values()]
        if made:
            candidates = candidates[made[0] + 1:]
    for load, id_column, _task in candidates:
        try:
            frame = load()
        except (artifacts.ArtifactMissing, OSError):
            continue
        if id_column not in frame.columns and body_id in frame.columns:
            id_column = body_id
        if id_column in frame.columns and all(c in frame.columns for c in needed):
            return frame, id_column
    raise ServiceError(_("No table of this site's rows for this model was found to take the consistency sample "
                         "from: register a serving table for the model first."), code="no_sample", status_code=409)


# --- Export ---------------------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_bundle(*, user, model: Model, request=None) -> bytes:
    """This site's half of ``model`` as a signed bundle (bytes of a UTF-8 JSON file)."""
    if not user.is_site_admin:
        raise PermissionDenied(_("Only a site admin exports a model."))
    try:
        document = artifacts.load(model.artifact_id)
        transform = artifacts.load(model.transform_id) if model.transform_id else None
        half = engine_serving.Half.load(document, transform)
    except (artifacts.ArtifactMissing, EngineError) as exc:
        raise ServiceError(_("This site's half of the model cannot be loaded: %(reason)s") % {"reason": exc},
                           code="model_unusable", status_code=409) from None
    try:
        frame, id_column = _sample_frame(model, half)
        rows = pick_sample(frame, id_column, _raw_columns(half))
        if not rows:
            raise ServiceError(_("The table to take the consistency sample from has no rows."), code="no_sample",
                               status_code=409)
        part = score_sample(half, rows)
    except (EngineError, artifacts.ArtifactMissing, KeyError) as exc:
        raise ServiceError(_("The consistency sample cannot be scored with this half: %(reason)s") % {"reason": exc},
                           code="no_sample", status_code=409) from None
    project = model.project
    unsigned = {
        "format": FORMAT,
        "site": {"party_id": settings.SITE_PARTY_ID, "name": settings.SITE_NAME},
        "exported_at": _now(),
        "model": {"id": str(model.pk), "name": model.name, "number": model.number, "node": model.node,
                  "component": model.component, "version": model.version, "role": model.role,
                  "params": _finite(model.params or {}), "metrics": _finite(model.metrics or {}),
                  "scorecard": _finite(model.scorecard), "project_id": str(project.pk), "project_name": project.name},
        "half": document,
        "transform": transform,
        "sample": {"rows": rows, "id_column": id_column, "part": part},
    }
    try:
        bundle = sign(unsigned)
    except pki.CertificateError as exc:
        raise ServiceError(_("This site cannot sign the bundle: %(reason)s") % {"reason": exc}, code="no_certificate",
                           status_code=409) from None
    data = json.dumps(bundle, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")
    record("model_export", actor=user, request=request, obj=project,
           details={"model": str(model.pk), "name": model.name, "number": model.number, "role": model.role,
                    "sample_rows": len(rows), "fingerprint": pki.fingerprint(bundle["certificate"]),
                    "sha256": hashlib.sha256(data).hexdigest()})
    return data


def file_name(model: Model) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", model.name or model.component).strip("-.") or "model"
    return f"{base[:80]}-v{model.number}-{model.role}.fedweb-model.json"


# --- Import ---------------------------------------------------------------------------------------

def _malformed(message: str) -> ServiceError:
    return ServiceError(message, code="malformed", status_code=400)


def parse(data: bytes) -> dict:
    """The bundle's JSON, bounded in size and depth, with the right format."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise _malformed(_("The file is larger than %(mb)d MB: it is not a model bundle.")
                         % {"mb": MAX_BUNDLE_BYTES // (1024 * 1024)})
    if json_depth(data) > MAX_JSON_DEPTH:
        raise _malformed(_("The file is nested deeper than %(n)d levels: it is not a model bundle.")
                         % {"n": MAX_JSON_DEPTH})
    try:
        bundle = parse_json_object(data, max_bytes=MAX_BUNDLE_BYTES, what="the bundle")
    except ValueError:
        raise _malformed(_("The file is not a JSON object: it is not a model bundle.")) from None
    found = bundle.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith("fedweb-model-bundle/"):
            raise _malformed(_("This bundle has format %(found)s; this site reads %(format)s.")
                             % {"found": found[:40], "format": FORMAT})
        raise _malformed(_("The file is not a model bundle (its format is not %(format)s).") % {"format": FORMAT})
    for key, kind in (("site", dict), ("model", dict), ("half", dict), ("sample", dict), ("certificate", str),
                      ("signature", str), ("exported_at", str)):
        if not isinstance(bundle.get(key), kind):
            raise _malformed(_("The bundle lacks its %(part)s or it has the wrong type.") % {"part": key})
    if bundle.get("transform") is not None and not isinstance(bundle["transform"], dict):
        raise _malformed(_("The bundle lacks its %(part)s or it has the wrong type.") % {"part": "transform"})
    return bundle


def verify_signature(bundle: dict) -> pki.CertInfo:
    """The signing certificate, when the signature over the rest of the bundle is valid."""
    try:
        info = pki.parse_certificate(bundle["certificate"])
        public_key = x509.load_pem_x509_certificate(bundle["certificate"].encode()).public_key()
    except (pki.CertificateError, ValueError):
        raise ServiceError(_("The bundle's certificate cannot be read."), code="bad_signature") from None
    try:
        signature = base64.b64decode(bundle["signature"], validate=True)
        public_key.verify(signature, canonical(_signed_part(bundle)), ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise ServiceError(_("The bundle's signature does not match its content: it was changed after it was signed, "
                             "or it is damaged."), code="bad_signature") from None
    return info


def trust_of(fingerprint: str, signer_fingerprint: str = "") -> str:
    """How this site trusts the signing certificate ("" when it does not)."""
    if SiteCertificate.objects.filter(fingerprint=fingerprint).exists():
        return "this site"
    pinned = PartnerCertificate.objects.filter(fingerprint=fingerprint, retired_at__isnull=True).select_related(
        "partner").first()
    if pinned is not None:
        return f"partner {pinned.partner.party_id}"
    if signer_fingerprint and normalise_fingerprint(signer_fingerprint) == fingerprint:
        return "fingerprint given"
    return ""


def _text(value: Any, limit: int, default: str = "") -> str:
    return value[:limit] if isinstance(value, str) else default


def _whole(value: Any, default: int = 1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9 else default


def _check_sample(sample: dict) -> tuple[list[dict], str, Any]:
    rows, id_column, part = sample.get("rows"), sample.get("id_column"), sample.get("part")
    scalar = (str, int, float, bool, type(None))
    if not (isinstance(rows, list) and 0 < len(rows) <= MAX_SAMPLE_ROWS and isinstance(id_column, str)
            and all(isinstance(r, dict) and id_column in r for r in rows)
            and all(isinstance(v, scalar) for r in rows for v in r.values())
            and all(list(r) == list(rows[0]) for r in rows) and isinstance(part, dict)):
        raise _malformed(_("The bundle's consistency sample is missing or malformed."))
    return rows, id_column, part


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else value


def first_difference(expected: Any, found: Any, n: int) -> tuple[int | None, str, str]:
    """(row, expected, found) of the first row whose part differs (row None: the parts differ in
    shape, not in one row); (None, "", "") when they are equal."""
    if canonical(expected) == canonical(found):
        return None, "", ""
    if isinstance(expected, dict) and isinstance(found, dict) and set(expected) == set(found) == {"u"}:
        e, f = expected["u"], found["u"]
        if isinstance(e, list) and len(e) == len(f):
            for i, (a, b) in enumerate(zip(e, f)):
                if canonical(a) != canonical(b):
                    return i, _describe(a), _describe(b)
    if isinstance(expected, dict) and isinstance(found, dict) and set(expected) == set(found) == {"routes"}:
        e, f = expected["routes"], found["routes"]
        if isinstance(e, dict) and set(e) == set(f):
            masks = {}
            for sid in sorted(e):
                try:
                    a = np.unpackbits(np.frombuffer(base64.b64decode(e[sid], validate=True), np.uint8), count=n)
                except (binascii.Error, TypeError, ValueError):
                    return None, "", ""
                b = np.unpackbits(np.frombuffer(base64.b64decode(f[sid]), np.uint8), count=n)
                masks[sid] = (a, b)
            for i in range(n):
                for sid, (a, b) in masks.items():
                    if a[i] != b[i]:
                        side = {True: "left", False: "right"}
                        return i, f"{sid}: {side[bool(a[i])]}", f"{sid}: {side[bool(b[i])]}"
    return None, "", ""


def _refuse(error: ServiceError, *, user, project, request, bundle: dict | None = None,
            fingerprint: str = "") -> ServiceError:
    model = (bundle or {}).get("model") if isinstance((bundle or {}).get("model"), dict) else {}
    record("model_import", actor=user, request=request, obj=project, outcome=AuditOutcome.DENIED,
           details={"code": error.code, "reason": error.message[:500], "model": _text(model.get("id"), 64),
                    "name": _text(model.get("name"), 200), "fingerprint": fingerprint})
    return error


def import_bundle(data: bytes, *, user, project, signer_fingerprint: str = "", request=None) -> Model:
    """Check a bundle and make its half this site's model in ``project`` (the same one when it is here already)."""
    if not user.is_site_admin:
        raise PermissionDenied(_("Only a site admin imports a model."))
    bundle: dict | None = None
    fingerprint = ""
    try:
        bundle = parse(data)
        info = verify_signature(bundle)
        fingerprint = info.fingerprint
        trust = trust_of(fingerprint, signer_fingerprint)
        if not trust:
            if signer_fingerprint:
                message = _("The bundle was signed by the certificate with fingerprint %(fp)s (party %(party)s), "
                            "not by the fingerprint you gave (%(given)s): nothing was imported.")
            else:
                message = _("The bundle was signed by the certificate with fingerprint %(fp)s (party %(party)s), "
                            "which this site does not know. If you trust it, give this fingerprint as the signer's "
                            "after checking it with the exporting site.")
            raise ServiceError(message % {"fp": fingerprint, "party": info.party_id,
                                          "given": normalise_fingerprint(signer_fingerprint)},
                               code="untrusted_signer", status_code=403)
        model = _import_checked(bundle, data, user=user, project=project, request=request, info=info, trust=trust)
    except ServiceError as exc:
        raise _refuse(exc, user=user, project=project, request=request, bundle=bundle, fingerprint=fingerprint) from None
    return model


def _import_checked(bundle: dict, data: bytes, *, user, project, request, info: pki.CertInfo, trust: str) -> Model:
    meta, document, transform = bundle["model"], bundle["half"], bundle.get("transform")
    if project.status in ProjectStatus.closed():
        raise ServiceError(_("Models cannot be imported into a closed project."), code="wrong_state", status_code=409)
    try:
        pk = uuid.UUID(str(meta.get("id")))
    except ValueError:
        raise _malformed(_("The bundle's model id is malformed.")) from None
    try:
        half = engine_serving.Half.load(document, transform)
    except (EngineError, KeyError, TypeError, ValueError) as exc:
        raise _malformed(_("The bundle's half of the model cannot be used: %(reason)s") % {"reason": exc}) from None
    mine = our_role(project)
    if half.role != mine or meta.get("role") != half.role:
        raise ServiceError(_("This is the %(role)s's half of the model, but this site is the %(mine)s in project "
                             "%(project)s.") % {"role": half.role, "mine": mine, "project": project.name},
                           code="wrong_role", status_code=409)
    if meta.get("component") not in (None, half.component):
        raise _malformed(_("The bundle's model description does not match its half."))
    half_bytes = model_io.dumps(document)
    existing = Model.objects.filter(pk=pk).first()
    if existing is not None:
        if existing.artifact_id == hashlib.sha256(half_bytes).hexdigest() and existing.project_id == project.pk:
            existing.already_here = True
            return existing
        raise ServiceError(_("A model with this id is already here (%(model)s in project %(project)s), with a "
                             "different half or in another project: nothing was imported.")
                           % {"model": existing.label, "project": existing.project.name}, code="already_exists",
                           status_code=409)
    rows, _id_column, part = _check_sample(bundle["sample"])
    try:
        found = score_sample(half, rows)
    except (EngineError, KeyError, TypeError, ValueError) as exc:
        raise ServiceError(_("The prediction-consistency check failed: the half cannot score the bundle's sample here "
                             "(%(reason)s).") % {"reason": exc}, code="inconsistent") from None
    row, expected, got = first_difference(part, found, len(rows))
    if row is not None:
        raise ServiceError(_("The prediction-consistency check failed at row %(row)d of the sample (id %(id)s): the "
                             "bundle says %(expected)s, this site computes %(found)s. The half does not score here as "
                             "it did where it was exported: nothing was imported.")
                           % {"row": row + 1, "id": rows[row].get(bundle["sample"]["id_column"]),
                              "expected": expected, "found": got}, code="inconsistent")
    if canonical(part) != canonical(found):
        raise ServiceError(_("The prediction-consistency check failed: what the half computes here for the sample "
                             "differs from the bundle's. Nothing was imported."), code="inconsistent")
    node = meta.get("node")
    site = bundle["site"]
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        artifact = artifacts.store("model", document)
        transform_artifact = artifacts.store("model", transform) if transform is not None else None
        model = Model.objects.create(
            id=pk, project=project, job=None, node=node if isinstance(node, str) and _NODE.fullmatch(node) else "imported",
            component=half.component, version=_text(meta.get("version"), 16, str(document.get("component_version", ""))[:16]),
            role=half.role, params=meta.get("params") if isinstance(meta.get("params"), dict) else {},
            metrics=meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {},
            artifact=artifact, transform=transform_artifact,
            scorecard=meta.get("scorecard") if isinstance(meta.get("scorecard"), dict) else None,
            name=_text(meta.get("name"), 200), number=_whole(meta.get("number")), origin=Model.IMPORTED,
            origin_details={"signer_party": info.party_id, "site": _text(site.get("party_id"), 63),
                            "site_name": _text(site.get("name"), 200), "fingerprint": info.fingerprint,
                            "trusted_as": trust, "exported_at": _text(bundle.get("exported_at"), 40),
                            "bundle_sha256": digest, "source_project": _text(meta.get("project_id"), 64),
                            "source_project_name": _text(meta.get("project_name"), 200),
                            "sample_rows": len(rows)},
        )
        record("model_import", actor=user, request=request, obj=project,
               details={"model": str(model.pk), "name": model.name, "number": model.number, "role": model.role,
                        "signer": info.party_id, "fingerprint": info.fingerprint, "trusted_as": trust,
                        "sha256": digest, "sample_rows": len(rows)})
    model.already_here = False
    return model
