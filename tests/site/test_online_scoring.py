"""Online scoring at one site: the partner's ``Score`` and ``Ledger`` requests as the proxy serves
them (every check, every refusal logged and audited), and the label holder's API (token only,
rate-limited, bad requests explained and logged). Between two real sites: tests/twosites."""

import datetime as dt
import functools
import json
import uuid

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engine.components.hetero_lr import hetero_lr
from engine.components.hetero_lr.model import read_half
from engine.federation.local import run_local
from fedweb.api.tokens import create_token
from fedweb.proxy import pki, server
from fedweb.proxy.authz import Rejected
from jobs import artifacts, serving
from jobs.models import Model, ScoringOutcome, ScoringRequest, ServingTable

from .proxy_scene import build, refusals

pytestmark = pytest.mark.django_db

ROWS = 120
HOST_CSV = "id,x1,x2\n" + "".join(f"c{i:03d},{i * 0.25},{(i * 7) % 11}\n" for i in range(ROWS))


@functools.lru_cache(maxsize=1)
def _halves():
    ids = [f"c{i:03d}" for i in range(ROWS)]
    guest = pd.DataFrame({"id": ids, "y": [i % 2 for i in range(ROWS)], "a": [((i * 3) % 5) * 1.0 for i in range(ROWS)]})
    host = pd.read_csv(__import__("io").StringIO(HOST_CSV), dtype={"id": str})
    out = run_local(hetero_lr, {"key_bits": 1024, "insecure_allow_small_keys": True, "max_epochs": 2, "batch_size": 0},
                    {"guest": {"data": guest}, "host": {"data": host}})
    return out["guest"]["model"], out["host"]["model"], host


@pytest.fixture
def scene(admin, settings, tmp_path, make_dataset):
    """This site plays the host of a published model served from an authorised table."""
    settings.DATA_DIR = tmp_path
    settings.SITE_PARTY_ID = "site-1"
    scene = build(admin, tmp_path)
    from projects import services as project_services

    project = scene.projects["active"]
    dataset = make_dataset(admin, HOST_CSV, name="Telco serving")
    project_services.authorise_table(user=admin, project=project, dataset=dataset, policy={"min_set_size": 10})
    _guest_doc, host_doc, _host = _halves()
    now = timezone.now()
    scene.model = Model.objects.create(
        id=uuid.UUID(host_doc["model_id"]), project=project, node="lr", component="hetero_lr", version="1.0.0",
        role="host", artifact=artifacts.store("model", host_doc), name="Credit risk", number=2,
        consent_here_at=now, consent_partner_at=now, params={"id_column": "id"})
    ServingTable.objects.create(model=scene.model, dataset=dataset, registered_by=admin)
    serving.forget(scene.model.pk)
    return scene


def ask(scene, body, *, project="active", mac="valid"):
    env = scene.env("score", project=project, body=json.dumps(body).encode(), mac=mac)
    return env


def score_body(scene, ids, **extra):
    return {"request_id": str(uuid.uuid4()), "model_id": str(scene.model.pk), "ids": ids, **extra}


def test_the_partner_gets_this_sites_partial_scores_and_the_ids_it_lacks(scene):
    _g, host_doc, host = _halves()
    body = score_body(scene, ["c005", "nobody", "c100"])
    answer = json.loads(server.serve("Score", ask(scene, body), scene.fingerprint).detail)
    half = read_half(host_doc)
    expected = half.scores(host.set_index("id").loc[["c005", "c100"]].reset_index())
    assert answer["missing"] == ["nobody"] and answer["number"] == 2
    assert np.array_equal(np.array(answer["part"]["u"]), expected)
    entry = ScoringRequest.objects.get(request_id=body["request_id"])
    assert (entry.role, entry.outcome, entry.ids, entry.scored, entry.caller) == ("host", "partial", 3, 2, "telco")


def test_the_half_and_its_table_are_loaded_once_not_per_request(scene, monkeypatch):
    calls = []
    original = artifacts.load
    monkeypatch.setattr(artifacts, "load", lambda *a: calls.append(a) or original(*a))
    for _ in range(3):
        server.serve("Score", ask(scene, score_body(scene, ["c001"])), scene.fingerprint)
    assert len(calls) == 1
    ServingTable.objects.filter(model=scene.model).update(registered_at=timezone.now())  # a new registration
    server.serve("Score", ask(scene, score_body(scene, ["c001"])), scene.fingerprint)
    assert len(calls) == 1  # noticed within a few seconds, not on every request
    monkeypatch.setattr(serving, "RECHECK_SECONDS", 0.0)
    server.serve("Score", ask(scene, score_body(scene, ["c001"])), scene.fingerprint)
    assert len(calls) == 2


@pytest.mark.parametrize("change, status, words", [
    ({"consent_partner_at": None}, "FAILED_PRECONDITION", "not published"),
    ({"role": "guest"}, "FAILED_PRECONDITION", "label holder's half"),
])
def test_a_model_that_may_not_score_is_refused_and_logged(scene, change, status, words):
    Model.objects.filter(pk=scene.model.pk).update(**change)
    body = score_body(scene, ["c001"])
    audits = refusals()
    with pytest.raises(Rejected) as info:
        server.serve("Score", ask(scene, body), scene.fingerprint)
    assert (info.value.status, words in info.value.reason) == (status, True)
    assert refusals() == audits + 1
    assert ScoringRequest.objects.get(request_id=body["request_id"]).outcome == ScoringOutcome.REFUSED


def test_unknown_models_missing_serving_tables_and_malformed_ids_are_refused(scene):
    cases = [
        ({**score_body(scene, ["c001"]), "model_id": str(uuid.uuid4())}, "NOT_FOUND"),
        ({**score_body(scene, ["c001"]), "model_id": "model-1"}, "INVALID_ARGUMENT"),
        (score_body(scene, "c001"), "INVALID_ARGUMENT"),
        (score_body(scene, []), "INVALID_ARGUMENT"),
        (score_body(scene, ["c001", "c001"]), "INVALID_ARGUMENT"),
        (score_body(scene, [1, 2]), "INVALID_ARGUMENT"),
        (score_body(scene, ["x" * 200]), "INVALID_ARGUMENT"),
        (score_body(scene, [f"c{i}" for i in range(1001)]), "INVALID_ARGUMENT"),
    ]
    for body, status in cases:
        with pytest.raises(Rejected) as info:
            server.serve("Score", ask(scene, body), scene.fingerprint)
        assert info.value.status == status, (body, info.value.reason)
    ServingTable.objects.filter(model=scene.model).delete()
    with pytest.raises(Rejected, match="serving table"):
        server.serve("Score", ask(scene, score_body(scene, ["c001"])), scene.fingerprint)


def test_a_request_id_is_answered_once(scene):
    body = score_body(scene, ["c001"])
    server.serve("Score", ask(scene, body), scene.fingerprint)
    with pytest.raises(Rejected) as info:
        server.serve("Score", ask(scene, body), scene.fingerprint)
    assert info.value.status == "ALREADY_EXISTS"
    assert ScoringRequest.objects.filter(request_id=body["request_id"]).count() == 1


def test_forged_replayed_and_out_of_project_requests_are_refused_before_anything_is_logged(scene):
    body = score_body(scene, ["c001"])
    for env, fingerprint, status in [
        (ask(scene, body, mac="wrong"), scene.fingerprint, "UNAUTHENTICATED"),
        (ask(scene, body, mac="none"), scene.fingerprint, "UNAUTHENTICATED"),
        (ask(scene, body), scene.other_fingerprint, "PERMISSION_DENIED"),  # eve's certificate
        (ask(scene, body, project="revoked"), scene.fingerprint, "PERMISSION_DENIED"),
        (ask(scene, body, project="suspended"), scene.fingerprint, "FAILED_PRECONDITION"),
        (ask(scene, body, project="pending"), scene.fingerprint, "FAILED_PRECONDITION"),
        (scene.env("event", body=json.dumps(body).encode()), scene.fingerprint, "INVALID_ARGUMENT"),  # wrong kind
    ]:
        with pytest.raises(Rejected) as info:
            server.serve("Score", env, fingerprint)
        assert info.value.status == status, info.value.reason
    assert not ScoringRequest.objects.exists()
    env = ask(scene, body)
    server.serve("Score", env, scene.fingerprint)
    with pytest.raises(Rejected, match="replay"):
        server.serve("Score", env, scene.fingerprint)


def log(project, model_id, *, at, outcome=ScoringOutcome.SCORED):
    return ScoringRequest.objects.create(request_id=uuid.uuid4(), project=project, model_id=model_id, role="host",
                                         at=at, ids=1, scored=1, outcome=outcome, asked_partner=True)


def test_the_ledger_gives_one_days_log_in_pages_and_still_answers_in_a_suspended_project(scene, settings, monkeypatch):
    from jobs import ledger

    monkeypatch.setattr(ledger, "PAGE", 3)
    project = scene.projects["active"]
    today = timezone.localdate()
    noon = timezone.make_aware(dt.datetime.combine(today, dt.time(12)))
    ids = sorted(str(log(project, scene.model.pk, at=noon).request_id) for _ in range(5))
    log(project, scene.model.pk, at=noon - dt.timedelta(days=1))  # another day
    log(project, uuid.uuid4(), at=noon)  # another model

    def page(after="", project_name="active"):
        env = scene.env("ledger", project=project_name, body=json.dumps(
            {"model_id": str(scene.model.pk), "day": today.isoformat(), "after": after}).encode())
        return json.loads(server.serve("Ledger", env, scene.fingerprint).detail)

    first = page()
    assert [e["request_id"] for e in first["entries"]] == ids[:3] and first["more"]
    second = page(first["entries"][-1]["request_id"])
    assert [e["request_id"] for e in second["entries"]] == ids[3:] and not second["more"]
    Model.objects.filter(pk=scene.model.pk).update(project=scene.projects["suspended"])
    ScoringRequest.objects.update(project=scene.projects["suspended"])
    assert len(page(project_name="suspended")["entries"]) == 3
    env = scene.env("ledger", body=json.dumps({"model_id": str(scene.model.pk), "day": "yesterday"}).encode())
    with pytest.raises(Rejected, match="malformed"):
        server.serve("Ledger", env, scene.fingerprint)


# --- The label holder's API ----------------------------------------------------------------

@pytest.fixture
def guest_model(admin, settings, tmp_path):
    """This site holds the labels; the partner's proxy is not reachable (nothing listens)."""
    settings.DATA_DIR = tmp_path
    settings.SITE_PARTY_ID = "site-1"
    scene = build(admin, tmp_path)
    pki.create_site_certificate()
    guest_doc, _h, _host = _halves()
    now = timezone.now()
    return Model.objects.create(
        id=uuid.UUID(guest_doc["model_id"]), project=scene.projects["active"], node="lr", component="hetero_lr",
        version="1.0.0", role="guest", artifact=artifacts.store("model", guest_doc), name="Credit risk", number=1,
        consent_here_at=now, consent_partner_at=now)


def token_client(user) -> APIClient:
    _row, text = create_token(user=user, name="scoring")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def post(client, model, body):
    return client.post(f"/api/models/{model.pk}/score/", body, format="json")


def test_scoring_needs_an_api_token(guest_model, admin, api_as):
    assert APIClient().post(f"/api/models/{guest_model.pk}/score/", {"id": "c001"}, format="json").status_code == 401
    assert api_as(admin).post(f"/api/models/{guest_model.pk}/score/", {"id": "c001"}, format="json").status_code in (401, 403)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer fw_000000000000_nothing")
    assert post(bad, guest_model, {"id": "c001"}).status_code == 401
    assert not ScoringRequest.objects.exists()  # nobody known asked


@pytest.mark.parametrize("body, words", [
    ({}, "exactly one"), ({"id": "a", "ids": ["b"]}, "exactly one"), ({"ids": []}, "at least one"),
    ({"ids": "abc"}, "must be a list"), ({"ids": ["a", "a"]}, "twice"), ({"rows": [{"x1": 1}]}, "each with"),
    ({"ids": [f"c{i}" for i in range(1001)]}, "At most 1000"), ({"id": {"nested": 1}}, "texts"),
])
def test_bad_requests_are_explained_and_logged(guest_model, admin, body, words):
    response = post(token_client(admin), guest_model, body)
    assert response.status_code == 400 and words in response.json()["error"]["message"], response.json()
    entry = ScoringRequest.objects.get()
    assert (entry.role, entry.outcome, entry.asked_partner) == ("guest", "refused", False)


def test_a_model_not_published_or_held_as_host_does_not_score(guest_model, admin):
    client = token_client(admin)
    Model.objects.filter(pk=guest_model.pk).update(consent_partner_at=None)
    assert post(client, guest_model, {"id": "c001"}).json()["error"]["code"] == "not_published"
    Model.objects.filter(pk=guest_model.pk).update(role="host")
    assert post(client, guest_model, {"id": "c001"}).json()["error"]["code"] == "not_label_holder"


def test_rows_in_the_request_are_scored_once_the_partner_answers_and_a_dead_partner_is_a_clear_error(guest_model, admin):
    """Nothing listens at the partner's address: the answer comes at once, in words, and is logged."""
    response = post(token_client(admin), guest_model, {"rows": [{"id": "c001", "a": 1.0}]})
    assert response.status_code == 502, response.json()
    assert response.json()["error"]["code"] == "partner_unreachable"
    entry = ScoringRequest.objects.get()
    assert (entry.outcome, entry.asked_partner, entry.ids) == ("unreachable", True, 1)
    response = post(token_client(admin), guest_model, {"ids": ["c001"]})
    assert response.json()["error"]["code"] == "no_serving_table"


def test_each_token_is_rate_limited(guest_model, admin, settings):
    settings.SCORING_RATE_PER_TOKEN = 3
    client, other = token_client(admin), token_client(admin)
    codes = [post(client, guest_model, {"ids": []}).status_code for _ in range(5)]
    assert codes[:3] == [400, 400, 400] and 429 in codes[3:]
    assert post(other, guest_model, {"ids": []}).status_code == 400  # another token has its own budget
    limited = ScoringRequest.objects.filter(detail__contains="Too many")
    assert limited.exists() and set(limited.values_list("outcome", flat=True)) == {"refused"}
