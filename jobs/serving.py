"""Online scoring between two sites (seed 002 §03).

The label holder (guest) answers ``POST /api/models/<id>/score``:

1. checks the request (token, rate, the model published at both sites, the project active);
2. finds its own rows — features in the request, or looked up by id in the table its admin
   registered for serving;
3. asks the partner's proxy (``Score`` RPC, MAC'd under the project's token, with a
   deadline) for the host's part of the scores of the ids it has;
4. combines both parts into probabilities (and scorecard points, when the model's job
   made a scorecard), and logs the request on its side. The partner logs it on its side.

Both halves stay loaded in the process that serves them (the web process here, the proxy
process at the partner): :func:`loaded` keeps one prepared :class:`engine.serving.Half`
and serving table per model, rebuilt only when the model or its serving table changes.

What each side learns: the guest, the host's partial score (LR) or its split directions
(SecureBoost) for the ids it asks about — what a batch scoring job reveals for the same
rows — and which of those ids the host's serving table lacks. The host learns which ids
are scored, when. That is why a host admin registers the serving table explicitly, the
table must be authorised into the project, and requests are rate-limited and logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import grpc
import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from engine import serving as engine_serving
from engine.errors import EngineError
from engine.ml import scorecard as scorecard_math
from fedweb.api.errors import ServiceError
from fedweb.proxy.client import PartnerUnusable, channel_for, envelope_to
from fedweb.proxy.proxy_pb2_grpc import ProxyStub
from projects.models import ProjectStatus

from . import artifacts, runner
from .models import Model, ScoringOutcome, ScoringRequest, ServingTable

log = logging.getLogger(__name__)

MAX_ID_CHARS = 128


# --- Halves kept in memory -------------------------------------------------------------------

@dataclass
class Loaded:
    key: tuple
    half: engine_serving.Half
    table: engine_serving.ServingTable | None
    id_column: str
    checked: float = 0.0  # time.monotonic() when the key was last compared with the database


# A loaded half is compared with the database (has the model or its serving table changed?) at
# most this often, not on every request: a new serving table takes effect within this delay.
RECHECK_SECONDS = 2.0


_LOADED: dict[str, Loaded] = {}
_LOCK = threading.Lock()


def _serving_of(model: Model) -> ServingTable | None:
    return ServingTable.objects.filter(model=model).select_related("dataset").first()


def loaded(model: Model) -> Loaded:
    """The model's half (and its serving table, if registered), prepared once per change."""
    current = _LOADED.get(str(model.pk))
    if (current is not None and current.key[:2] == (model.artifact_id, model.transform_id)
            and time.monotonic() - current.checked < RECHECK_SECONDS):
        return current
    serving = _serving_of(model)
    key = (model.artifact_id, model.transform_id, serving.dataset_id if serving else None,
           serving.dataset.storage_key if serving else None, serving.registered_at if serving else None)
    if current is not None and current.key == key:
        current.checked = time.monotonic()
        return current
    with _LOCK:
        current = _LOADED.get(str(model.pk))
        if current is not None and current.key == key:
            return current
        try:
            half = engine_serving.Half.load(artifacts.load(model.artifact_id),
                                            artifacts.load(model.transform_id) if model.transform_id else None)
        except (EngineError, artifacts.ArtifactMissing) as exc:
            raise ServiceError(_("This site's half of the model cannot be loaded: %(reason)s") % {"reason": exc},
                               code="model_unusable", status_code=503) from None
        id_column = str(model.params.get("id_column") or "id")
        table = None
        if serving is not None:
            try:
                frame = runner.read_dataset(str(serving.dataset_id), model.project)
                id_column = serving.dataset.id_column or id_column
                table = engine_serving.ServingTable(half, frame, id_column)
            except (EngineError, artifacts.ArtifactMissing, OSError) as exc:
                raise ServiceError(_("The serving table cannot be read: %(reason)s") % {"reason": exc},
                                   code="serving_table_unusable", status_code=503) from None
        current = _LOADED[str(model.pk)] = Loaded(key=key, half=half, table=table, id_column=id_column,
                                                  checked=time.monotonic())
        log.info("loaded model %s (%s, %s) for scoring%s", model.pk, model.component, model.role,
                 f" with {table.rows} serving rows" if table else "")
        return current


def forget(model_pk) -> None:
    _LOADED.pop(str(model_pk), None)


# --- Registering a serving table (either site's admin) ------------------------------------------

def register_serving_table(*, user, model: Model, dataset, request=None) -> ServingTable:
    from django.core.exceptions import PermissionDenied

    from fedweb.audit.services import record
    from projects.models import ProjectTable

    if not user.is_site_admin:
        raise PermissionDenied(_("Only a site admin registers the table a model serves from."))
    if not ProjectTable.objects.live().filter(project=model.project, dataset=dataset).exists():
        raise ServiceError(_("Authorise the table into this project first: a model serves only from its project's "
                             "tables."), code="table_not_authorised", status_code=409)
    missing = [f for f in _raw_columns_needed(model) if f not in {c["name"] for c in dataset.columns}]
    if missing:
        raise ServiceError(_("The table lacks columns the model needs: %(columns)s") % {"columns": ", ".join(missing[:10])},
                           code="missing_columns", status_code=400)
    serving, _created = ServingTable.objects.update_or_create(model=model, defaults={"dataset": dataset,
                                                                                     "registered_by": user})
    record("model_serving_table", actor=user, request=request, obj=model.project,
           details={"model": str(model.pk), "name": model.name, "number": model.number, "dataset": str(dataset.pk),
                    "dataset_name": dataset.name})
    forget(model.pk)
    return serving


def _raw_columns_needed(model: Model) -> list[str]:
    """The columns of a raw row the model reads (before its preparation, which keeps names)."""
    try:
        return engine_serving.Half.load(artifacts.load(model.artifact_id)).features
    except (artifacts.ArtifactMissing, EngineError, ValueError) as exc:
        raise ServiceError(_("This site's half of the model cannot be loaded: %(reason)s") % {"reason": exc},
                           code="model_unusable", status_code=409) from None


# --- The label holder's side -------------------------------------------------------------------

class RateLimited(ServiceError):
    pass


def _check_rate(token_key: str) -> None:
    """A fixed one-second window per token, counted in the shared cache (every web process sees it)."""
    window = int(time.time())
    key = f"scoring-rate:{token_key}:{window}"
    if cache.add(key, 1, timeout=5):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=5)
        return
    if count > settings.SCORING_RATE_PER_TOKEN:
        raise RateLimited(_("Too many scoring requests with this token: at most %(n)d per second.")
                          % {"n": settings.SCORING_RATE_PER_TOKEN}, code="rate_limited", status_code=429)


def _ids_of(payload: dict) -> tuple[list[str], pd.DataFrame | None]:
    """The ids asked for, and the rows when the request carries the guest's features."""
    if not isinstance(payload, dict):
        raise ServiceError(_("The request must be a JSON object."), code="invalid", status_code=400)
    given = [k for k in ("id", "ids", "rows") if k in payload]
    if len(given) != 1:
        raise ServiceError(_("Give exactly one of \"id\", \"ids\" (a list) or \"rows\" (a list of objects with an "
                             "\"id\" and this site's features)."), code="invalid", status_code=400)
    rows = None
    if "id" in payload:
        ids = [payload["id"]]
    elif "ids" in payload:
        ids = payload["ids"]
        if not isinstance(ids, list):
            raise ServiceError(_("\"ids\" must be a list."), code="invalid", status_code=400)
    else:
        rows = payload["rows"]
        if not (isinstance(rows, list) and all(isinstance(r, dict) and "id" in r for r in rows)):
            raise ServiceError(_("\"rows\" must be a list of objects, each with an \"id\"."), code="invalid",
                               status_code=400)
        ids = [r["id"] for r in rows]
    if not ids:
        raise ServiceError(_("Ask for at least one id."), code="invalid", status_code=400)
    if len(ids) > settings.SCORING_MAX_IDS:
        raise ServiceError(_("At most %(n)d ids per request.") % {"n": settings.SCORING_MAX_IDS}, code="too_many_ids",
                           status_code=400)
    clean = []
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > MAX_ID_CHARS:
            raise ServiceError(_("Ids are texts (or whole numbers) of at most %(n)d characters.") % {"n": MAX_ID_CHARS},
                               code="invalid", status_code=400)
        clean.append(str(value))
    if len(set(clean)) != len(clean):
        raise ServiceError(_("An id appears twice in the request."), code="invalid", status_code=400)
    frame = pd.DataFrame(rows) if rows is not None else None
    return clean, frame


def require_usable(model: Model) -> None:
    if model.project.status != ProjectStatus.ACTIVE:
        raise ServiceError(_("The project is %(status)s: its models do not score.") % {"status": model.project.get_status_display()},
                           code="project_not_active", status_code=409)
    if not model.is_published:
        raise ServiceError(_("This model version is not published for scoring (both sites must publish it)."),
                           code="not_published", status_code=409)


# How a failed request is logged, by the error's code.
OUTCOME_OF_ERROR = {"partner_timeout": ScoringOutcome.TIMEOUT, "partner_unreachable": ScoringOutcome.UNREACHABLE,
                    "partner_refused": ScoringOutcome.PARTNER_REFUSED, "unknown_ids": ScoringOutcome.UNKNOWN_IDS}


def score(*, user, token_key: str, model: Model, payload: dict) -> dict:
    """Score the ids of one request; every outcome, refusals included, is logged."""
    request_id = uuid.uuid4()
    entry = ScoringRequest(request_id=request_id, project=model.project, model_id=model.pk, model_number=model.number,
                           role="guest", caller=user.get_username()[:150])

    def work() -> dict:
        _check_rate(token_key)
        ids, rows = _ids_of(payload)
        entry.ids = len(ids)
        if model.role != "guest":
            raise ServiceError(_("Online scoring is asked at the label holder's site; this site holds the partner's "
                                 "half of the model."), code="not_label_holder", status_code=409)
        require_usable(model)
        return _score(model, ids, rows, request_id, entry)

    def refusal(exc: Exception) -> tuple[str, str] | None:
        if isinstance(exc, ServiceError):
            return OUTCOME_OF_ERROR.get(exc.code, ScoringOutcome.REFUSED), exc.message
        return None

    return {"request_id": str(request_id), **_logged(entry, work, refusal)}


def _logged(entry: ScoringRequest, work, refusal) -> dict:
    """Run ``work`` and log the request whatever happens; ``refusal(exc)`` words an expected
    refusal as (outcome, detail), anything else is logged as an error."""
    started = time.perf_counter()
    try:
        result = work()
    except Exception as exc:
        entry.outcome, detail = refusal(exc) or (ScoringOutcome.ERROR, "internal error")
        entry.detail = detail[:500]
        _save(entry, started)
        raise
    _save(entry, started)
    return result


def _save(entry: ScoringRequest, started: float) -> None:
    entry.duration_ms = (time.perf_counter() - started) * 1000.0
    try:
        entry.save(force_insert=True)
    except Exception:  # the log must not turn an answer into an error; the site's log keeps the trace
        log.exception("could not log scoring request %s", entry.request_id)


def _score(model: Model, ids: list[str], rows: pd.DataFrame | None, request_id, entry: ScoringRequest) -> dict:
    state = loaded(model)
    unknown: dict[str, str] = {}
    if rows is not None:
        rows = rows.rename(columns={"id": state.id_column}) if state.id_column not in rows.columns else rows
        asked = ids
    elif state.table is not None:
        positions, missing = state.table.locate(ids)
        unknown.update({i: "not in this site's serving table" for i in missing})
        asked = [i for i in ids if i not in unknown]
    else:
        raise ServiceError(_("This site has no serving table for the model: send this site's features in \"rows\", or "
                             "ask an admin to register a table."), code="no_serving_table", status_code=409)
    answer = _ask_partner(model, asked, request_id, entry) if asked else {"part": None, "missing": []}
    missing_there = set(answer["missing"])
    unknown.update({i: "not in the partner's serving table" for i in asked if i in missing_there})
    scored_ids = [i for i in asked if i not in missing_there]
    probabilities = np.zeros(0)
    if scored_ids:
        try:
            if rows is not None:
                keep = rows[rows[state.id_column].astype(str).isin(set(scored_ids))]
                probabilities = engine_serving.score_rows(state.half, keep, answer["part"])
            else:
                positions, _missing = state.table.locate(scored_ids)
                probabilities = state.table.combine(positions, answer["part"])
        except EngineError as exc:
            raise ServiceError(_("The scores could not be computed: %(reason)s") % {"reason": exc},
                               code="invalid_rows", status_code=400) from None
    entry.scored = len(scored_ids)
    if not scored_ids:
        raise ServiceError(_("None of the ids can be scored: %(reasons)s")
                           % {"reasons": "; ".join(f"{i}: {why}" for i, why in list(unknown.items())[:5])},
                           code="unknown_ids", status_code=404, details={"unknown": unknown})
    entry.outcome = ScoringOutcome.PARTIAL if unknown else ScoringOutcome.SCORED
    points = _points(model, probabilities)
    scores = []
    for index, value in enumerate(scored_ids):
        item = {"id": value, "probability": float(probabilities[index])}
        if points is not None:
            item["points"] = float(points[index])
        scores.append(item)
    return {"model": str(model.pk), "name": model.name, "version": model.number, "scores": scores,
            "unknown": [{"id": i, "reason": why} for i, why in unknown.items()]}


def _points(model: Model, probabilities: np.ndarray) -> np.ndarray | None:
    card = model.scorecard
    if not card:
        return None
    scale = scorecard_math.scaling(float(card.get("base_score", 600.0)), float(card.get("base_odds", 50.0)),
                                   float(card.get("pdo", 20.0)), str(card.get("positive", "bad")))
    return scorecard_math.points(probabilities, scale, min_points=card.get("min_points"),
                                 max_points=card.get("max_points"), decimals=card.get("decimals"))


# --- Calling the partner ----------------------------------------------------------------------

# partner pk -> (what the channel was built for, stub, when that was last checked, channel)
_CHANNELS: dict[int, tuple] = {}
# A partner back after an outage answers the next request, not one after gRPC's default backoff (up to 2 min).
RECONNECT_QUICKLY = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                     ("grpc.max_reconnect_backoff_ms", 1000)]
_CHANNEL_LOCK = threading.Lock()


def _stub(partner) -> ProxyStub:
    """One channel per partner and certificate set, kept open: a TLS handshake per request would
    cost more than the scoring."""
    from fedweb.proxy import pki

    with _CHANNEL_LOCK:
        known = _CHANNELS.get(partner.pk)
        if known is not None and time.monotonic() - known[2] < RECHECK_SECONDS:
            return known[1]
    # Its address or certificates (or ours) may have changed since: compare, at most every few seconds.
    key = (partner.proxy_address, tuple(sorted(c.fingerprint for c in partner.pinned())), pki.current().fingerprint)
    with _CHANNEL_LOCK:
        known = _CHANNELS.get(partner.pk)
        if known is None or known[0] != key:
            if known is not None:
                known[3].close()
            channel = channel_for(partner, options=RECONNECT_QUICKLY)
            known = (key, ProxyStub(channel), 0.0, channel)
        _CHANNELS[partner.pk] = (key, known[1], time.monotonic(), known[3])
        return known[1]


def _drop_channel(partner) -> None:
    with _CHANNEL_LOCK:
        known = _CHANNELS.pop(partner.pk, None)
    if known is not None:
        known[3].close()


def call_partner(project, rpc: str, kind: str, body: dict, *, timeout: float) -> dict:
    """One unary request to the partner's proxy, answered as JSON, or a ServiceError in plain words."""
    partner = project.partner
    from fedweb.proxy.pki import CertificateError

    try:
        stub = _stub(partner)
    except (PartnerUnusable, CertificateError) as exc:
        raise ServiceError(str(exc), code="partner_unreachable", status_code=502) from None
    env = envelope_to(partner, kind, project=project, body=json.dumps(body).encode())
    try:
        ack = getattr(stub, rpc)(env, timeout=timeout)
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ServiceError(_("The partner's site did not answer within %(s).1f s.") % {"s": timeout},
                               code="partner_timeout", status_code=504) from None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            _drop_channel(partner)  # the next request connects afresh instead of waiting out a backoff
            raise ServiceError(_("The partner's site cannot be reached: %(reason)s") % {"reason": exc.details()},
                               code="partner_unreachable", status_code=502) from None
        raise ServiceError(_("The partner's site refused: %(reason)s") % {"reason": exc.details()},
                           code="partner_refused", status_code=502) from None
    try:
        return json.loads(ack.detail)
    except ValueError:
        raise ServiceError(_("The partner's answer is not valid JSON."), code="partner_refused", status_code=502) from None


def _ask_partner(model: Model, ids: list[str], request_id, entry: ScoringRequest) -> dict:
    entry.asked_partner = True
    answer = call_partner(model.project, "Score", "score",
                          {"request_id": str(request_id), "model_id": str(model.pk), "ids": ids},
                          timeout=settings.SCORING_DEADLINE_MS / 1000.0)
    missing = answer.get("missing") if isinstance(answer, dict) else None
    if not isinstance(missing, list) or not all(isinstance(i, str) and i in set(ids) for i in missing):
        raise ServiceError(_("The partner's answer does not say which ids it lacks."), code="partner_refused",
                           status_code=502)
    return {"part": answer.get("part"), "missing": missing}


# --- The partner's side (runs in its proxy) ------------------------------------------------------

class ScoringRefused(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def answer(partner, project, body: dict) -> dict:
    """The host's part of the scores of the ids the label holder asks for; logged on this side."""
    try:
        request_id = uuid.UUID(str(body.get("request_id")))
        model_pk = uuid.UUID(str(body.get("model_id")))
    except ValueError:
        raise ScoringRefused("INVALID_ARGUMENT", "the request or model id is malformed") from None
    if ScoringRequest.objects.filter(request_id=request_id).exists():
        # Not logged again: the first answer's row stands.
        raise ScoringRefused("ALREADY_EXISTS", "this scoring request was already answered once")
    entry = ScoringRequest(request_id=request_id, project=project, model_id=model_pk, role="host",
                           caller=partner.party_id, asked_partner=True)
    return _logged(entry, lambda: _host_part(entry, body.get("ids")),
                   lambda exc: (ScoringOutcome.REFUSED, exc.reason) if isinstance(exc, ScoringRefused) else None)


def _host_part(entry: ScoringRequest, ids) -> dict:
    if not (isinstance(ids, list) and 0 < len(ids) <= settings.SCORING_MAX_IDS
            and all(isinstance(i, str) and len(i) <= MAX_ID_CHARS for i in ids) and len(set(ids)) == len(ids)):
        raise ScoringRefused("INVALID_ARGUMENT", f"ids must be 1 to {settings.SCORING_MAX_IDS} distinct texts")
    entry.ids = len(ids)
    model = Model.objects.filter(pk=entry.model_id, project=entry.project).first()
    if model is None:
        raise ScoringRefused("NOT_FOUND", "no such model in this project")
    entry.model_number = model.number
    if model.role != "host":
        raise ScoringRefused("FAILED_PRECONDITION", "this site holds the label holder's half of this model")
    if not model.is_published:
        raise ScoringRefused("FAILED_PRECONDITION", "the model is not published for scoring at this site")
    try:
        state = loaded(model)
    except ServiceError as exc:
        raise ScoringRefused("UNAVAILABLE", exc.message) from None
    if state.table is None:
        raise ScoringRefused("FAILED_PRECONDITION", "this site's admin has not registered a serving table for the model")
    positions, missing = state.table.locate(ids)
    entry.scored = len(positions)
    entry.outcome = (ScoringOutcome.SCORED if not missing else ScoringOutcome.PARTIAL if positions
                     else ScoringOutcome.UNKNOWN_IDS)
    return {"part": state.table.host_part(positions) if positions else None, "missing": missing,
            "number": model.number}
