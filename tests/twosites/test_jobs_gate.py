"""Gated jobs between two real sites with real workers: the job stops after the overlap at both
sites, shows the overlap size, and goes on or ends as the project's decider says; the side that
may not decide cannot make it go on, not even by sending the event itself."""

import json

import pytest

from engine.samples import breast_cancer_split

from .harness import ApiError, active_project, eventually, start_pair

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-jobs")]

POLICY = {"runs_per_day": 50, "min_set_size": 10, "max_set_size": 10_000, "max_size_ratio": 5, "min_overlap": 10,
          "partner_may_receive": True}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bank, telco = start_pair(tmp_path_factory.mktemp("gates"), workers=True)
    try:
        pid = active_project(bank, telco, name="Gated jobs")
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
               "overlap": len(set(guest["id"]) & set(host["id"]))}
    finally:
        for site in (bank, telco):
            site.stop()


def _gated_job(scene, name):
    """PSI → split, paused after the overlap, started by the bank (the label holder, so the guest)."""
    spec = {"format": "fedweb-job/1", "pause_after": ["psi"], "nodes": [
        {"id": "psi", "component": "psi",
         "params": {"common": {"reveal": "both"}, "guest": {"id_column": "id"}, "host": {"id_column": "id"}},
         "inputs": {"data": {"table": {"guest": scene["bank_table"], "host": scene["telco_table"]}}}},
        {"id": "split", "component": "split", "params": {"guest": {"label_column": "y"}},
         "inputs": {"data": {"node": "psi", "output": "data"}}}]}
    return scene["bank"].post("/api/jobs/", {"project": scene["pid"], "spec": spec, "name": name}, expect=201)


def _status(site, job_id, wanted, seconds=240):
    def reached():
        job = site.get(f"/api/jobs/{job_id}/")
        assert job["status"] not in ({"failed", "refused", "cancelled", "succeeded"} - {wanted}), (job["status"], job["error"])
        return job if job["status"] == wanted else None

    return eventually(reached, seconds=seconds, interval=0.5, what=f"job {job_id} is {wanted} at {site.party_id}")


def _paused_at_both(scene, job):
    ours, theirs = _status(scene["bank"], job["id"], "paused"), _status(scene["telco"], job["id"], "paused")
    for seen in (ours, theirs):
        assert seen["status_label"] == "Paused for a decision"
        assert seen["gate"]["node"] == "psi" and seen["gate"]["overlap"] == scene["overlap"]
        assert {(t["node"], t["status"]) for t in seen["tasks"] if t["node"] == "split"} == {("split", "waiting")}
    return ours, theirs


def _refused_call(fn, status):
    with pytest.raises(ApiError) as info:
        fn()
    assert info.value.status == status, info.value.body
    return info.value.body


def _insider_emits_continue(site, job_id) -> int:
    """Someone with a shell at the site sends a job.continue past the site's own permission check."""
    return int(site.shell(
        "from django.db import transaction\n"
        "from fedweb.proxy.events import emit\n"
        "from jobs.models import Job\n"
        f"job = Job.objects.select_related('project__partner').get(pk='{job_id}')\n"
        "with transaction.atomic():\n"
        "    event = emit(job.project.partner, 'job.continue', {'job_id': str(job.pk), 'node': 'psi', "
        "'attempt': job.attempt, 'by': 'insider'}, project=job.project)\n"
        "print(event.pk)\n"))


def _outbox_answer(site, event_pk) -> dict:
    return json.loads(site.shell(
        "import json\nfrom fedweb.proxy.models import OutboxEvent\n"
        f"e = OutboxEvent.objects.get(pk={event_pk})\n"
        "print(json.dumps({'status': e.status, 'error': e.last_error}))\n"))


def test_a_gated_job_pauses_at_both_sites_and_goes_on_when_the_initiator_continues(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _gated_job(scene, "Gated, continued")
    assert job["pause_after"] == ["psi"]
    _ours, theirs = _paused_at_both(scene, job)
    assert theirs["gate"]["can_decide"] is False and theirs["gate"]["decider_party"] == "bank"

    # The partner may not decide here: its site says no, and the bank refuses the event sent around that check.
    body = _refused_call(lambda: telco.post(f"/api/jobs/{job['id']}/continue/"), 403)
    assert "Demo Bank decides" in json.dumps(body)
    forged = _insider_emits_continue(telco, job["id"])
    answer = eventually(lambda: (a := _outbox_answer(telco, forged))["status"] == "refused" and a, seconds=60,
                        what="the bank refuses the forged continue")
    assert "not the partner" in answer["error"]
    assert bank.get(f"/api/jobs/{job['id']}/")["status"] == "paused"
    rejections = bank.get("/api/audit/?action=proxy_reject")["results"]
    assert any("not the partner" in r["details"].get("reason", "") for r in rejections)

    continued = bank.post(f"/api/jobs/{job['id']}/continue/")
    assert continued["status"] == "running" and continued["gates_passed"] == ["psi"]
    ours, theirs = _status(bank, job["id"], "succeeded"), _status(telco, job["id"], "succeeded")
    assert {(t["node"], t["site"], t["status"]) for t in ours["tasks"]} == {
        ("psi", "ours", "succeeded"), ("psi", "partner", "succeeded"),
        ("split", "ours", "succeeded"), ("split", "partner", "succeeded")}
    assert theirs["gates_passed"] == ["psi"]
    assert bank.get("/api/audit/?action=job_gate_continue")["results"][0]["details"]["overlap"] == scene["overlap"]
    assert telco.get("/api/audit/?action=job_continued")["results"][0]["details"]["job"] == job["id"]


def test_a_job_stopped_at_the_gate_is_cancelled_at_both_sites_with_who_and_why(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _gated_job(scene, "Gated, stopped")
    _paused_at_both(scene, job)
    bank.post(f"/api/jobs/{job['id']}/stop/", {"reason": "the overlap is too small"})
    ours, theirs = _status(bank, job["id"], "cancelled", 60), _status(telco, job["id"], "cancelled", 60)
    words = "Stopped after the overlap by admin at Demo Bank: the overlap is too small"
    assert ours["error"] == theirs["error"] == words
    assert all(t["status"] == "cancelled" for t in ours["tasks"] + theirs["tasks"] if t["node"] == "split")
    assert bank.get("/api/audit/?action=job_gate_stop")["results"][0]["details"]["reason"] == "the overlap is too small"


def test_with_the_partners_admin_deciding_the_initiator_cannot_continue_and_the_partners_admin_can(scene):
    bank, telco = scene["bank"], scene["telco"]
    for site in (bank, telco):
        site.api("PATCH", f"/api/projects/{scene['pid']}/job-settings/", {"gate_decider": "partner_admin"})
    try:
        job = _gated_job(scene, "Gated, partner decides")
        ours, theirs = _paused_at_both(scene, job)
        assert ours["gate"]["can_decide"] is False and theirs["gate"]["can_decide"] is True
        _refused_call(lambda: bank.post(f"/api/jobs/{job['id']}/continue/"), 403)
        forged = _insider_emits_continue(bank, job["id"])
        answer = eventually(lambda: (a := _outbox_answer(bank, forged))["status"] == "refused" and a, seconds=60,
                            what="telco refuses the bank's own continue")
        assert "not the partner" in answer["error"]
        telco.post(f"/api/jobs/{job['id']}/continue/")
        assert _status(bank, job["id"], "succeeded")["status"] == _status(telco, job["id"], "succeeded")["status"]
    finally:
        for site in (bank, telco):
            site.api("PATCH", f"/api/projects/{scene['pid']}/job-settings/", {"gate_decider": "initiator"})


def test_the_initiator_sees_who_refused_its_job_and_why(scene):
    bank, telco = scene["bank"], scene["telco"]
    telco.api("PATCH", f"/api/projects/{scene['pid']}/job-settings/", {"approve_partner_jobs": True})
    try:
        job = bank.post("/api/jobs/", {"project": scene["pid"], "template": "psi", "our_table": scene["bank_table"],
                                       "partner_table": scene["telco_table"], "name": "To refuse"}, expect=201)
        _status(telco, job["id"], "approval", 60)
        telco.post(f"/api/jobs/{job['id']}/refuse/", {"reason": "not this week"})
        final = _status(bank, job["id"], "refused", 60)
        assert final["error"] == "not this week" and final["refused_by"] == "admin"
        assert final["refusal"] == "admin at Demo Telco refused the job: not this week"
        assert telco.get(f"/api/jobs/{job['id']}/")["refusal"] == final["refusal"]
    finally:
        telco.api("PATCH", f"/api/projects/{scene['pid']}/job-settings/", {"approve_partner_jobs": False})
