"""Models between two real sites: train, publish (the partner's admin confirms), batch-score a new
table, score online by id through the proxies, settle the logs of both sites, and refuse what
must be refused (unknown ids, a model not published, the partner down, no token, a revoked project)."""

import concurrent.futures
import csv
import datetime as dt
import io
import json
import os
import signal
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from engine.components.hetero_lr import hetero_lr_predict
from engine.components.secureboost import hetero_secureboost_predict
from engine.federation.local import run_local
from engine.samples import breast_cancer_split

from .harness import ApiError, active_project, eventually, start_pair

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-models")]

POLICY = {"runs_per_day": 50, "min_set_size": 10, "max_set_size": 10_000, "max_size_ratio": 5, "min_overlap": 10,
          "partner_may_receive": True}


def _table(site, pid, name, frame):
    dataset = site.upload(name, frame.to_csv(index=False))
    assert dataset["status"] == "ready", dataset
    site.post(f"/api/projects/{pid}/tables/", {"dataset": dataset["id"], "policy": POLICY}, expect=201)
    return dataset["id"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bank, telco = start_pair(tmp_path_factory.mktemp("models"), workers=True)
    try:
        pid = active_project(bank, telco, name="Scoring together")
        guest, host = breast_cancer_split()
        tables = {
            "bank_train": _table(bank, pid, "Bank customers", guest.iloc[:400]),
            "telco_train": _table(telco, pid, "Telco usage", host.iloc[60:]),
            # New customers to score: labelled at the bank, so the scoring job evaluates too.
            "bank_new": _table(bank, pid, "Bank applicants", guest.iloc[300:]),
            "telco_new": _table(telco, pid, "Telco applicants", host.iloc[:520]),
            # The tables the admins register for online scoring: telco serves only some ids.
            "bank_serving": _table(bank, pid, "Bank serving", guest),
            "telco_serving": _table(telco, pid, "Telco serving", host[host["id"].isin(guest["id"].iloc[:500])]),
        }
        eventually(lambda: len(bank.get(f"/api/projects/{pid}/partner-tables/")) == 3,
                   what="telco's tables reach the bank")
        eventually(lambda: len(telco.get(f"/api/projects/{pid}/partner-tables/")) == 3,
                   what="the bank's tables reach telco")
        yield {"bank": bank, "telco": telco, "pid": pid, "guest": guest, "host": host, **tables}
    finally:
        for site in (bank, telco):
            site.stop()


def _finished(site, job_id, seconds=600):
    def done():
        job = site.get(f"/api/jobs/{job_id}/")
        return job if job["status"] in ("succeeded", "failed", "cancelled", "refused") else None

    return eventually(done, seconds=seconds, interval=0.5, what=f"job {job_id} finishes at {site.party_id}")


def _job(scene, template, our, theirs, options, name):
    body = {"project": scene["pid"], "template": template, "our_table": scene[our], "partner_table": scene[theirs],
            "options": options, "name": name}
    return scene["bank"].post("/api/jobs/", body, expect=201)


def _download(site, path):
    request = urllib.request.Request(site.url + path, headers={"Authorization": f"Bearer {site.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode("utf-8-sig")


def _documents(site, model_id):
    """The site's half and its preparation, read off its own artifact store."""
    out = site.shell(
        "import json; from jobs.models import Model; from jobs import artifacts; "
        f"m = Model.objects.get(pk='{model_id}'); "
        "print(json.dumps([artifacts.load(m.artifact_id), artifacts.load(m.transform_id) if m.transform_id else None]))")
    return json.loads(out)


@pytest.fixture(scope="module")
def model(scene):
    """An LR model trained between the sites, published by the bank and confirmed by telco's admin."""
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", "bank_train", "telco_train", {"max_epochs": 3}, "Credit risk LR")
    assert _finished(bank, job["id"])["status"] == "succeeded"
    ours = next(m for m in bank.get(f"/api/models/?project={scene['pid']}")["results"] if m["job"] == job["id"])
    theirs = eventually(lambda: telco.get(f"/api/models/{ours['id']}/"), what="telco's half registered")
    assert (ours["name"], ours["number"], ours["role"]) == ("Credit risk LR", 1, "guest")
    assert (theirs["name"], theirs["number"], theirs["role"]) == ("Credit risk LR", 1, "host")
    assert ours["status"] == theirs["status"] == "draft"
    return ours


def test_publication_takes_both_sites_and_only_a_published_model_scores(scene, model):
    bank, telco = scene["bank"], scene["telco"]
    with pytest.raises(ApiError) as refused:
        _job(scene, "score", "bank_new", "telco_new", {"model": model["id"]}, "Too early")
    assert "not published" in json.dumps(refused.value.body)
    assert bank.post(f"/api/models/{model['id']}/publish/")["status"] == "requested"
    eventually(lambda: telco.get(f"/api/models/{model['id']}/")["status"] == "asked", what="telco sees the request")
    # Online scoring refuses until telco confirms.
    answer = bank.post(f"/api/models/{model['id']}/score/", {"id": scene["guest"]["id"].iloc[0]}, expect=409)
    assert answer["error"]["code"] == "not_published"
    assert telco.post(f"/api/models/{model['id']}/publish/")["status"] == "published"
    eventually(lambda: bank.get(f"/api/models/{model['id']}/")["published"], what="telco's confirmation reaches the bank")
    for site, dataset in ((bank, scene["bank_serving"]), (telco, scene["telco_serving"])):
        site.post(f"/api/models/{model['id']}/serving-table/", {"dataset": dataset})


@pytest.fixture(scope="module")
def engine_scores(scene, model):
    """The engine's own prediction on the joined new tables, with both halves as the sites hold them."""
    guest_doc, guest_transform = _documents(scene["bank"], model["id"])
    host_doc, host_transform = _documents(scene["telco"], model["id"])
    guest, host = scene["guest"], scene["host"]
    ids = sorted(set(guest["id"]) & set(host["id"]))
    g = guest.set_index("id").loc[ids].reset_index()
    h = host.set_index("id").loc[ids].reset_index()
    out = run_local(hetero_lr_predict, {}, {"guest": {"model": guest_doc, "data": g, "transform": guest_transform},
                                            "host": {"model": host_doc, "data": h, "transform": host_transform}})
    predictions = out["guest"]["predictions"]
    return dict(zip(predictions["id"], predictions["probability"]))


def test_a_new_table_is_batch_scored_as_the_engine_scores_the_joined_data(scene, model, engine_scores):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "score", "bank_new", "telco_new", {"model": model["id"]}, "Applicants scored")
    ours, theirs = _finished(bank, job["id"], 300), _finished(telco, job["id"], 300)
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    rows = list(csv.DictReader(io.StringIO(_download(bank, f"/api/jobs/{job['id']}/nodes/score/download/?port=predictions"))))
    expected_ids = set(scene["guest"]["id"].iloc[300:]) & set(scene["host"]["id"].iloc[:520])
    assert {r["id"] for r in rows} == expected_ids
    assert max(abs(float(r["probability"]) - engine_scores[r["id"]]) for r in rows) <= 1e-9
    evaluation = next(t for t in ours["tasks"] if t["node"] == "evaluation" and t["site"] == "ours")
    assert evaluation["status"] == "succeeded"  # the new table has labels: it is measured too
    # The host never receives the scores.
    with pytest.raises(urllib.error.HTTPError):
        _download(telco, f"/api/jobs/{job['id']}/nodes/score/download/?port=predictions")


def _score(site, model_id, body, *, token=None, expect=None):
    token = token or site.token
    request = urllib.request.Request(f"{site.url}/api/models/{model_id}/score/", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    elapsed = time.monotonic() - started
    if expect is not None:
        assert status == expect, (status, raw)
    return json.loads(raw), elapsed


def test_online_scoring_of_one_id_and_of_a_batch_equals_the_engine(scene, model, engine_scores):
    bank = scene["bank"]
    one = scene["guest"]["id"].iloc[0]
    answer, _elapsed = _score(bank, model["id"], {"id": one}, expect=200)
    assert answer["version"] == 1 and answer["unknown"] == []
    assert abs(answer["scores"][0]["probability"] - engine_scores[one]) <= 1e-9
    batch = sorted(set(scene["guest"]["id"].iloc[:500]))[:60]  # ids telco serves
    answer, _elapsed = _score(bank, model["id"], {"ids": batch}, expect=200)
    assert [s["id"] for s in answer["scores"]] == batch
    assert max(abs(s["probability"] - engine_scores[s["id"]]) for s in answer["scores"]) <= 1e-9
    # The guest's features may come with the request instead of the serving table.
    rows = scene["guest"].set_index("id").loc[batch[:3]].reset_index().drop(columns=["y"])
    answer, _elapsed = _score(bank, model["id"], {"rows": json.loads(rows.to_json(orient="records"))}, expect=200)
    assert max(abs(s["probability"] - engine_scores[s["id"]]) for s in answer["scores"]) <= 1e-9


def test_unknown_ids_and_ids_the_partner_does_not_serve_are_named(scene, model):
    bank, guest = scene["bank"], scene["guest"]
    answer, _elapsed = _score(bank, model["id"], {"id": "no-such-customer"}, expect=404)
    assert answer["error"]["code"] == "unknown_ids" and "serving table" in answer["error"]["message"]
    not_served = guest["id"].iloc[530]  # in the bank's serving table, not in telco's
    served = guest["id"].iloc[70]
    answer, _elapsed = _score(bank, model["id"], {"ids": [served, not_served, "nobody"]}, expect=200)
    assert [s["id"] for s in answer["scores"]] == [served]
    reasons = {u["id"]: u["reason"] for u in answer["unknown"]}
    assert reasons == {not_served: "not in the partner's serving table", "nobody": "not in this site's serving table"}
    answer, _elapsed = _score(bank, model["id"], {"ids": ["x"] * 2}, expect=400)
    assert "twice" in answer["error"]["message"]


def test_a_request_without_a_valid_token_is_refused(scene, model):
    bank = scene["bank"]
    request = urllib.request.Request(f"{bank.url}/api/models/{model['id']}/score/", data=b'{"id": "1"}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    _answer, _elapsed = _score(bank, model["id"], {"id": "1"}, token="fw_notatoken", expect=401)


def test_the_partner_down_gives_a_clear_error_within_the_deadline_and_both_logs_say_so(scene, model, engine_scores):
    bank, telco = scene["bank"], scene["telco"]
    one = scene["guest"]["id"].iloc[1]
    telco.stop_proxy()
    try:
        answer, elapsed = _score(bank, model["id"], {"id": one}, expect=502)
        assert answer["error"]["code"] in ("partner_unreachable", "partner_timeout"), answer
        assert "partner" in answer["error"]["message"] and elapsed < 2.0 + 1.0  # the default deadline is 2 s
    finally:
        telco.start_proxy()
    # Back as soon as the partner is.
    deadline, answer = time.monotonic() + 10, {}
    while "scores" not in answer and time.monotonic() < deadline:
        answer, _elapsed = _score(bank, model["id"], {"id": one})
        time.sleep(0.2)
    assert "scores" in answer, answer
    day = dt.date.today().isoformat()
    settled = bank.get(f"/api/models/{model['id']}/reconciliation/?day={day}")
    assert settled["partner_error"] == ""
    problems = {p["status"] for p in settled["problems"]}
    assert problems == {"only_here"}, settled["problems"]
    down = next(p for p in settled["problems"] if p["status"] == "only_here")
    assert down["our_outcome"] in ("unreachable", "timeout") and down["why"] == "the partner never saw it"
    # Every other request of the day is settled: answered at both sites, or refused here before it was sent.
    assert settled["matched"] == settled["ours"] - 1 and settled["theirs"] < settled["ours"]
    text = _download(bank, f"/api/models/{model['id']}/reconciliation/?day={day}&download=csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) == settled["ours"] and {line["status"] for line in lines} == {"matched", "only_here"}
    # Telco settles the same day from its side: the request it never saw is "only there".
    theirs = telco.get(f"/api/models/{model['id']}/reconciliation/?day={day}")
    assert [p["status"] for p in theirs["problems"]] == ["only_there"]


def test_a_partner_that_hangs_times_out_at_the_deadline_and_both_logs_show_it(scene, model):
    bank, telco = scene["bank"], scene["telco"]
    os.kill(telco.proxy.pid, signal.SIGSTOP)  # the process is there but answers nothing
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_score, bank, model["id"], {"id": scene["guest"]["id"].iloc[2]}, expect=504)
            time.sleep(0.5)
            started = time.monotonic()
            bank.get(f"/api/models/{model['id']}/")  # the site's other requests do not wait behind it
            assert time.monotonic() - started < 1.0 and not waiting.done()
            answer, elapsed = waiting.result()
    finally:
        os.kill(telco.proxy.pid, signal.SIGCONT)
    assert answer["error"]["code"] == "partner_timeout" and "did not answer within 2.0 s" in answer["error"]["message"]
    assert 1.9 <= elapsed < 4.0
    # gRPC drops a call whose deadline passed before the partner read it: the partner never saw it.
    settled = bank.get(f"/api/models/{model['id']}/reconciliation/?day={dt.date.today().isoformat()}")
    timed_out = [p for p in settled["problems"] if p["our_outcome"] == "timeout"]
    assert [(p["status"], p["why"]) for p in timed_out] == [("only_here", "the partner never saw it")]


def test_withdrawing_publication_stops_scoring_at_both_sites(scene, model):
    bank, telco = scene["bank"], scene["telco"]
    telco.post(f"/api/models/{model['id']}/unpublish/", {"reason": "quarterly review"})
    eventually(lambda: bank.get(f"/api/models/{model['id']}/")["status"] == "draft", what="withdrawal reaches the bank")
    answer, _elapsed = _score(bank, model["id"], {"id": "1"}, expect=409)
    assert answer["error"]["code"] == "not_published"
    bank.post(f"/api/models/{model['id']}/publish/")
    telco.post(f"/api/models/{model['id']}/publish/")
    # Each site's consent reaches the other in its own time: published once both have both.
    for site in (bank, telco):
        eventually(lambda: site.get(f"/api/models/{model['id']}/")["published"], what=f"published again at {site.party_id}")


def test_a_rebuilt_site_imports_its_exported_half_and_scores_as_before(scene, model):
    bank, pid = scene["bank"], scene["pid"]
    one = scene["guest"]["id"].iloc[4]
    before = _score(bank, model["id"], {"id": one}, expect=200)[0]["scores"][0]["probability"]
    request = urllib.request.Request(f"{bank.url}/api/models/{model['id']}/export/",
                                     headers={"Authorization": f"Bearer {bank.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        bundle = response.read()
    altered = json.loads(bundle)
    altered["sample"]["part"]["u"][0] += 1e-6  # what this half scores on a sample row, changed
    refused = bank.post("/api/models/import/", {"project": pid}, expect=400,
                        files={"file": ("altered.json", json.dumps(altered).encode())})
    assert refused["error"]["code"] == "bad_signature", refused
    # The site loses the model, as a site rebuilt from an old backup would.
    bank.shell(f"from jobs.models import Model; print(Model.objects.filter(pk='{model['id']}').delete())")
    with pytest.raises(ApiError):
        bank.get(f"/api/models/{model['id']}/")
    imported = bank.post("/api/models/import/", {"project": pid}, files={"file": ("bundle.json", bundle)}, expect=201)
    assert (imported["id"], imported["origin"], imported["name"], imported["number"]) == (
        model["id"], "imported", "Credit risk LR", 1)
    # Telco still holds its half and its consent: publishing here again is answered at once.
    bank.post(f"/api/models/{model['id']}/publish/")
    eventually(lambda: bank.get(f"/api/models/{model['id']}/")["published"], what="telco repeats its consent")
    bank.post(f"/api/models/{model['id']}/serving-table/", {"dataset": scene["bank_serving"]})
    assert _score(bank, model["id"], {"id": one}, expect=200)[0]["scores"][0]["probability"] == before


def test_secureboost_scores_online_as_the_engine_and_telco_may_let_the_bank_publish_alone(scene):
    bank, telco, pid = scene["bank"], scene["telco"], scene["pid"]
    assert telco.api("PATCH", f"/api/projects/{pid}/job-settings/", {"auto_confirm_models": True})["auto_confirm_models"]
    job = _job(scene, "secureboost", "bank_train", "telco_train", {"n_trees": 2, "max_depth": 2}, "Credit risk trees")
    assert _finished(bank, job["id"])["status"] == "succeeded"
    trees = next(m for m in bank.get(f"/api/models/?project={pid}")["results"] if m["job"] == job["id"])
    eventually(lambda: telco.get(f"/api/models/{trees['id']}/"), what="telco's half registered")
    bank.post(f"/api/models/{trees['id']}/publish/")
    eventually(lambda: bank.get(f"/api/models/{trees['id']}/")["published"], what="telco confirms at once")
    assert telco.get(f"/api/models/{trees['id']}/")["consent_here_by"] == "automatic (project setting)"
    for site, dataset in ((bank, scene["bank_serving"]), (telco, scene["telco_serving"])):
        site.post(f"/api/models/{trees['id']}/serving-table/", {"dataset": dataset})
    ids = sorted(set(scene["guest"]["id"].iloc[:500]))[::7]
    answer, _elapsed = _score(bank, trees["id"], {"ids": ids}, expect=200)
    guest_doc, _t = _documents(bank, trees["id"])
    host_doc, _t = _documents(telco, trees["id"])
    g = scene["guest"].set_index("id").loc[ids].reset_index()
    h = scene["host"].set_index("id").loc[ids].reset_index()
    out = run_local(hetero_secureboost_predict, {}, {"guest": {"model": guest_doc, "data": g},
                                                     "host": {"model": host_doc, "data": h}})
    expected = dict(zip(out["guest"]["predictions"]["id"], out["guest"]["predictions"]["probability"]))
    assert [s["id"] for s in answer["scores"]] == ids
    assert max(abs(s["probability"] - expected[s["id"]]) for s in answer["scores"]) <= 1e-9


def test_a_revoked_project_scores_nothing(scene, model, engine_scores):
    """Last: it ends the project."""
    bank, telco = scene["bank"], scene["telco"]
    telco.post(f"/api/projects/{scene['pid']}/revoke/", {"comment": "contract ended"})
    eventually(lambda: bank.get(f"/api/projects/{scene['pid']}/")["status"] == "revoked", what="revocation arrives")
    answer, _elapsed = _score(bank, model["id"], {"id": scene["guest"]["id"].iloc[0]}, expect=409)
    assert answer["error"]["code"] == "project_not_active"
