"""Jobs between two real sites: each runs its half in its own Celery worker, the halves
meet through the proxies (mutual TLS, MAC'd chunks), and both sites agree on the result."""

import csv
import io
import time
import urllib.request

import pytest

from engine.samples import breast_cancer_split

from .harness import ApiError, active_project, eventually, start_pair

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-jobs")]

POLICY = {"runs_per_day": 50, "min_set_size": 10, "max_set_size": 10_000, "max_size_ratio": 5, "min_overlap": 10,
          "partner_may_receive": True}
SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}  # speed; the product defaults to 2048


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bank, telco = start_pair(tmp_path_factory.mktemp("jobs"), workers=True)
    try:
        pid = active_project(bank, telco, name="Jobs together")
        guest, host = breast_cancer_split()
        guest, host = guest.iloc[:400], host.iloc[60:]  # each side has ids the other lacks
        bank_table = bank.upload("Bank customers", guest.to_csv(index=False))
        telco_table = telco.upload("Telco usage", host.to_csv(index=False))
        assert bank_table["status"] == telco_table["status"] == "ready", (bank_table, telco_table)
        bank.post(f"/api/projects/{pid}/tables/", {"dataset": bank_table["id"], "policy": POLICY}, expect=201)
        telco.post(f"/api/projects/{pid}/tables/", {"dataset": telco_table["id"], "policy": POLICY}, expect=201)
        eventually(lambda: telco.get(f"/api/projects/{pid}/partner-tables/"), what="bank's table reaches telco")
        eventually(lambda: bank.get(f"/api/projects/{pid}/partner-tables/"), what="telco's table reaches bank")
        yield {"bank": bank, "telco": telco, "pid": pid, "bank_table": bank_table["id"], "telco_table": telco_table["id"],
               "guest": guest, "host": host}
    finally:
        for site in (bank, telco):
            site.stop()


def _job(scene, template="psi", options=None, **extra):
    body = {"project": scene["pid"], "template": template, "our_table": scene["bank_table"],
            "partner_table": scene["telco_table"], "options": options or {}, **extra}
    return scene["bank"].post("/api/jobs/", body, expect=201)


def _finished(site, job_id, seconds=240):
    def done():
        job = site.get(f"/api/jobs/{job_id}/")
        return job if job["status"] in ("succeeded", "failed", "cancelled", "refused") else None

    return eventually(done, seconds=seconds, interval=0.5, what=f"job {job_id} finishes at {site.party_id}")


def _download(site, path):
    request = urllib.request.Request(site.url + path, headers={"Authorization": f"Bearer {site.token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode("utf-8-sig"), response.headers["Content-Disposition"]


def test_a_psi_job_runs_at_both_sites_and_its_overlap_can_be_downloaded(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "psi", name="Overlap")
    assert job["status"] == "pending"
    ours = _finished(bank, job["id"])
    theirs = _finished(telco, job["id"])
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    # Both sites show both halves.
    assert {(t["site"], t["status"]) for t in ours["tasks"]} == {("ours", "succeeded"), ("partner", "succeeded")}
    text, disposition = _download(bank, f"/api/jobs/{job['id']}/nodes/psi/download/")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = set(scene["guest"]["id"]) & set(scene["host"]["id"])
    assert {r["id"] for r in rows} == expected and len(expected) > 300
    assert "attachment" in disposition
    audit = bank.get("/api/audit/?action=job_output_download")["results"]
    assert audit and audit[0]["details"]["node"] == "psi"


def _final(job, node, site="ours"):
    return next(t for t in job["tasks"] if t["node"] == node and t["site"] == site)


def test_the_lr_template_trains_a_model_at_both_sites_and_a_rerun_reuses_every_upstream_node(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", {"max_epochs": 3, "learning_rate": 0.15}, name="LR")
    ours, theirs = _finished(bank, job["id"], 600), _finished(telco, job["id"], 600)
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    evaluation = _final(ours, "evaluation")["metrics"]["final"]["data"]
    assert evaluation["auc"] > 0.9
    lr = _final(ours, "lr")
    assert len(lr["metrics"]["series"]["train_loss"]) == 3  # progress reported each epoch
    models = bank.get(f"/api/models/?project={scene['pid']}")["results"]
    partner_models = telco.get("/api/models/")["results"]
    assert {m["id"] for m in models if m["job"] == job["id"]} == {m["id"] for m in partner_models if m["job"] == job["id"]}

    rerun = bank.post(f"/api/jobs/{job['id']}/rerun/", {"changes": {"lr": {"common": {"learning_rate": 0.05}}}}, expect=201)
    again, partner_again = _finished(bank, rerun["id"], 600), _finished(telco, rerun["id"], 600)
    assert again["status"] == partner_again["status"] == "succeeded", (again["error"], partner_again["error"])
    status = {t["node"]: t["status"] for t in again["tasks"] if t["site"] == "ours"}
    assert status == {"psi": "reused", "split": "reused", "scale": "reused", "scale_validate": "reused",
                      "binning": "reused", "selection": "reused",
                      "lr": "succeeded", "predict": "succeeded", "evaluation": "succeeded"}
    assert _final(again, "psi")["reused_from_job"] == job["id"]
    assert {t["node"]: t["status"] for t in again["tasks"] if t["site"] == "partner"}["binning"] == "reused"


def test_a_failure_on_one_side_fails_the_job_at_both_sites_with_the_same_words(scene):
    bank, telco = scene["bank"], scene["telco"]
    spec = _job(scene, "psi", name="Base")["spec"]
    spec["nodes"][0]["params"]["host"]["id_column"] = "no_such_column"  # telco's half cannot even read its table
    job = bank.post("/api/jobs/", {"project": scene["pid"], "spec": spec, "name": "Broken"}, expect=201)
    ours, theirs = _finished(bank, job["id"]), _finished(telco, job["id"])
    assert ours["status"] == theirs["status"] == "failed"
    assert ours["error"] == theirs["error"] and "no_such_column" in ours["error"]
    assert ours["failed_party"] == theirs["failed_party"] == "telco" and ours["failed_node"] == "psi"


def test_either_side_cancels_and_both_stop(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", {"max_epochs": 200, "learning_rate": 0.01}, name="Long")

    def training():
        tasks = bank.get(f"/api/jobs/{job['id']}/")["tasks"]
        return any(t["node"] == "lr" and t["site"] == "ours" and t["status"] == "running" for t in tasks)

    eventually(training, seconds=240, interval=0.3, what="training starts")
    started = time.monotonic()
    telco.post(f"/api/jobs/{job['id']}/cancel/")
    theirs, ours = _finished(telco, job["id"], 60), _finished(bank, job["id"], 60)
    assert time.monotonic() - started < 30
    assert ours["status"] == theirs["status"] == "cancelled"
    assert all(t["status"] in ("cancelled", "succeeded", "reused") for t in ours["tasks"] + theirs["tasks"])
    assert "Cancelled by" in ours["error"]


def test_the_partners_admin_approves_a_job_first_when_the_project_asks_for_it(scene):
    bank, telco = scene["bank"], scene["telco"]
    telco.shell(f"from projects.models import Project; Project.objects.filter(pk='{scene['pid']}').update(approve_partner_jobs=True)")
    try:
        job = _job(scene, "psi", name="Needs approval")
        eventually(lambda: telco.get(f"/api/jobs/{job['id']}/")["status"] == "approval", what="the job waits at telco")
        assert bank.get(f"/api/jobs/{job['id']}/")["status"] == "pending"
        telco.post(f"/api/jobs/{job['id']}/approve/")
        assert _finished(bank, job["id"])["status"] == "succeeded"
        refused = _job(scene, "psi", name="Refused")
        eventually(lambda: telco.get(f"/api/jobs/{refused['id']}/")["status"] == "approval", what="the second waits")
        telco.post(f"/api/jobs/{refused['id']}/refuse/", {"reason": "not this week"})
        final = _finished(bank, refused["id"])
        assert final["status"] == "refused" and final["error"] == "not this week"
    finally:
        telco.shell(f"from projects.models import Project; Project.objects.filter(pk='{scene['pid']}').update(approve_partner_jobs=False)")


def test_a_worker_killed_mid_training_is_noticed_and_the_job_goes_on_from_the_checkpoint_both_sites_hold(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", {"max_epochs": 40, "learning_rate": 0.01}, name="Killed")

    def epochs_done():
        tasks = bank.get(f"/api/jobs/{job['id']}/")["tasks"]
        lr = next(t for t in tasks if t["node"] == "lr" and t["site"] == "ours")
        return len((lr["metrics"] or {}).get("series", {}).get("train_loss", [])) >= 3

    eventually(epochs_done, seconds=300, interval=0.2, what="three epochs trained")
    telco.kill_worker()
    telco.start_worker()
    ours, theirs = _finished(bank, job["id"], 600), None
    eventually(lambda: bank.get(f"/api/jobs/{job['id']}/")["attempt"] == 2 or None, seconds=5)
    final = eventually(lambda: (j := bank.get(f"/api/jobs/{job['id']}/"))["status"] in ("succeeded", "failed") and j["attempt"] == 2
                       and j, seconds=600, interval=0.5, what="the second attempt finishes")
    theirs = _finished(telco, job["id"], 60)
    assert final["status"] == theirs["status"] == "succeeded", (final["error"], theirs["error"])
    assert _final(final, "psi")["attempt"] == 1  # finished nodes were not run again
    assert _final(final, "lr")["attempt"] == 2
    log = telco.get(f"/api/jobs/{job['id']}/nodes/lr/log/")["log"]
    assert "continuing from epoch" in log
    assert ours is not None


def _engine_runner(spec, aligned):
    """The DAG after PSI run by the engine's own runner, every party in this process, on the very rows
    the PSI gave each site (PSI orders its output by a blinded value, different every run)."""
    from engine.federation.local import run_local
    from engine.registry import get_component

    outputs = {"psi": {role: {"data": table} for role, table in aligned.items()}}
    for node in spec["nodes"][1:]:
        component = get_component(node["component"], node.get("version"))
        inputs = {role: {} for role in component.roles}
        for port, source in node["inputs"].items():
            for role in component.roles:
                if source["output"] in outputs[source["node"]].get(role, {}):
                    inputs[role][port] = outputs[source["node"]][role][source["output"]]
        params = node.get("params", {})
        outputs[node["id"]] = run_local(component, params.get("common", {}), inputs,
                                        role_params={r: params[r] for r in component.roles if params.get(r)})
    return outputs


def _psi_rows(site, job_id):
    import pandas as pd

    text, _disposition = _download(site, f"/api/jobs/{job_id}/nodes/psi/download/")
    return pd.read_csv(io.StringIO(text), dtype={"id": str}, keep_default_na=False,
                       na_values={c: [""] for c in text.splitlines()[0].split(",") if c != "id"})


@pytest.mark.parametrize("template, options, trainer, series", [
    ("lr", {"max_epochs": 3}, "lr", "train_loss"),
    ("secureboost", {"n_trees": 3, "max_depth": 3}, "boost", "train_logloss"),
])
def test_a_template_job_gives_the_same_model_as_the_engine_runner_on_the_same_data(scene, template, options, trainer, series):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, template, options, name=f"{template} vs runner")
    ours, theirs = _finished(bank, job["id"], 600), _finished(telco, job["id"], 600)
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    aligned = {"guest": _psi_rows(bank, job["id"]), "host": _psi_rows(telco, job["id"])}
    assert set(aligned["guest"]["id"]) == set(scene["guest"]["id"]) & set(scene["host"]["id"])
    assert list(aligned["guest"]["id"]) == list(aligned["host"]["id"])  # both sites hold the rows in the same order
    reference = _engine_runner(job["spec"], aligned)
    federated = _final(ours, trainer)["metrics"]["series"][series]
    assert federated == pytest.approx([r[series] for r in reference[trainer]["guest"]["metrics"]["history"]], rel=1e-9)
    ours_eval = _final(ours, "evaluation")["metrics"]["final"]["data"]
    ref_eval = reference["evaluation"]["guest"]["metrics"]["data"]
    assert ours_eval["auc"] == pytest.approx(ref_eval["auc"], abs=1e-12)
    assert ours_eval["ks"] == pytest.approx(ref_eval["ks"], abs=1e-12)


def test_two_jobs_at_once_on_the_same_tables_both_finish(scene):
    bank, telco = scene["bank"], scene["telco"]
    first, second = _job(scene, "psi", name="One"), _job(scene, "psi", name="Two")
    for job in (first, second):
        assert _finished(bank, job["id"])["status"] == _finished(telco, job["id"])["status"] == "succeeded"


def test_removing_a_table_stops_the_running_job_that_reads_it_at_both_sites(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", {"max_epochs": 200, "learning_rate": 0.01}, name="Table removed")

    def training():
        return any(t["node"] == "lr" and t["status"] == "running" for t in bank.get(f"/api/jobs/{job['id']}/")["tasks"])

    eventually(training, seconds=240, interval=0.3, what="training starts")
    table = next(t for t in telco.get(f"/api/projects/{scene['pid']}/tables/") if t["dataset"] == scene["telco_table"])
    telco.api("DELETE", f"/api/projects/{scene['pid']}/tables/{table['id']}/", expect=204)
    try:
        ours, theirs = _finished(bank, job["id"], 60), _finished(telco, job["id"], 60)
        assert ours["status"] == theirs["status"] == "cancelled"
        assert "removed" in theirs["error"]
    finally:
        telco.post(f"/api/projects/{scene['pid']}/tables/", {"dataset": scene["telco_table"], "policy": POLICY}, expect=201)
        eventually(lambda: any(r["table_id"] == scene["telco_table"] and r["is_authorised"]
                               for r in bank.get(f"/api/projects/{scene['pid']}/partner-tables/")), what="table back")


def test_an_artifact_deleted_from_disk_under_a_reused_node_makes_the_node_run_again(scene):
    bank, telco = scene["bank"], scene["telco"]
    first = _job(scene, "psi", name="Cached")
    assert _finished(bank, first["id"])["status"] == "succeeded"
    artifact = _final(bank.get(f"/api/jobs/{first['id']}/"), "psi")["outputs"]["data"]
    for path in (bank.data / "artifacts" / "artifacts" / artifact[:2]).glob(f"{artifact}.*"):
        path.write_bytes(b"tampered")
    again = bank.post(f"/api/jobs/{first['id']}/rerun/", {"changes": {}}, expect=201)
    final = _finished(bank, again["id"])
    assert final["status"] == "succeeded"
    assert _final(final, "psi")["status"] == "succeeded"  # not "reused": the cached output was no longer intact


def test_a_job_submitted_while_the_partner_is_down_starts_when_it_is_back(scene):
    bank, telco = scene["bank"], scene["telco"]
    telco.stop_proxy()
    try:
        job = _job(scene, "psi", name="Partner away")
        time.sleep(3)
        assert bank.get(f"/api/jobs/{job['id']}/")["status"] == "pending"
    finally:
        telco.start_proxy()
    assert _finished(bank, job["id"], 120)["status"] == "succeeded"


def test_a_partner_that_vanishes_mid_job_fails_it_at_both_sites_saying_since_when(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _job(scene, "lr", {"max_epochs": 300, "learning_rate": 0.01}, name="Partner vanishes")

    def training():
        return any(t["node"] == "lr" and t["status"] == "running" for t in bank.get(f"/api/jobs/{job['id']}/")["tasks"])

    eventually(training, seconds=240, interval=0.3, what="training starts")
    telco.stop_proxy()
    try:
        ours = _finished(bank, job["id"], 120)
    finally:
        telco.start_proxy()
    assert ours["status"] == "failed"
    assert "did not answer since" in ours["error"] or "did not answer in time" in ours["error"], ours["error"]
    theirs = _finished(telco, job["id"], 120)
    assert theirs["status"] == "failed" and theirs["error"] == ours["error"]


def test_a_new_table_is_scored_with_the_model_a_finished_job_trained(scene):
    bank, telco = scene["bank"], scene["telco"]
    trained = _job(scene, "lr", {"max_epochs": 3}, name="To score with")
    assert _finished(bank, trained["id"], 600)["status"] == "succeeded"
    with pytest.raises(ApiError) as refused:
        _job(scene, "score", {"model_job": trained["id"]}, name="Scoring")
    assert "not published" in str(refused.value.body)
    model = next(m for m in bank.get(f"/api/models/?project={scene['pid']}")["results"] if m["job"] == trained["id"])
    eventually(lambda: telco.get(f"/api/models/{model['id']}/"), what="the model's other half at telco")
    bank.post(f"/api/models/{model['id']}/publish/", expect=200)
    telco.post(f"/api/models/{model['id']}/publish/", expect=200)  # telco's admin confirms
    eventually(lambda: bank.get(f"/api/models/{model['id']}/")["published"], what="publication reaches the bank")
    scoring = _job(scene, "score", {"model": model["id"]}, name="Scoring")
    ours, theirs = _finished(bank, scoring["id"], 300), _finished(telco, scoring["id"], 300)
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    text, _disposition = _download(bank, f"/api/jobs/{scoring['id']}/nodes/score/download/?port=predictions")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(set(scene["guest"]["id"]) & set(scene["host"]["id"]))
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in rows)
