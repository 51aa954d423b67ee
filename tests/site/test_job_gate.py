"""Gates: a job that stops after a node (``pause_after``) until the project's decider says whether
it goes on, and refusals the initiator sees with who refused and why.

The partner's events are delivered through the proxy's one verification path (``server.serve``),
MAC'd under the project's token, as the partner's site would send them.
"""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from fedweb.api.errors import ServiceError
from fedweb.audit.models import AuditEvent
from fedweb.proxy import envelope as envelopes
from fedweb.proxy import pki, server
from fedweb.proxy.authz import Rejected
from fedweb.proxy.models import InboxEvent, OutboxEvent
from jobs import scheduler, services, templates
from jobs import spec as specs
from jobs.models import Job, JobStatus, Task, TaskStatus
from projects import pairing, tokens
from projects import services as project_services
from projects.models import GateDecider, Project, ProjectMember, ProjectStatus, RemoteTable

pytestmark = pytest.mark.django_db

OURS_CSV = "id,y,x1,x2\n" + "".join(f"{i:04d},{i % 2},{i * 0.5},{i % 7}\n" for i in range(200))
THEIRS = "11111111-1111-1111-1111-111111111111"
TOKEN = b"t" * 32


@pytest.fixture
def project(admin, alice, make_dataset, settings):
    settings.SITE_PARTY_ID, settings.SITE_NAME = "site-1", "Demo Bank"
    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Demo Telco",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    project = Project(name="p", purpose="x", partner=partner, initiator="site-1", label_holder="site-1",
                      status=ProjectStatus.ACTIVE)
    tokens.set_token(project, TOKEN, 1, issued_here=False)
    project.save()
    ProjectMember.objects.create(project=project, user=alice)
    dataset = make_dataset(alice, OURS_CSV, name="Ours")
    project_services.authorise_table(user=admin, project=project, dataset=dataset,
                                     policy={"min_set_size": 10, "runs_per_day": 50, "partner_may_receive": True})
    RemoteTable.objects.create(project=project, table_id=THEIRS, name="Theirs", row_count=180,
                               columns=[{"name": "id", "role": "id"}, {"name": "z", "role": "feature"}])
    project.ours = str(dataset.pk)
    return project


def _gated_spec(project, **extra):
    """psi → split, paused after the overlap."""
    spec = templates.build("psi", project, our_table=project.ours, partner_table=THEIRS)
    spec["nodes"].append({"id": "split", "component": "split", "params": {"guest": {"label_column": "y"}},
                          "inputs": {"data": {"node": "psi", "output": "data"}}})
    spec["pause_after"] = ["psi"]
    spec.update(extra)
    return spec


def _deliver(project, event_type, **payload):
    """The partner's event, through the proxy's one path; returns the answer or raises Rejected."""
    stream = str(project.pk)
    body = envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": stream,
                                "seq": InboxEvent.objects.filter(stream=stream).count() + 1,
                                "type": event_type, "payload": payload})
    env = envelopes.build(sender="telco", receiver="site-1", kind="event", project_id=stream, body=body, token=TOKEN,
                          token_version=1)
    return server.serve("Deliver", env, project.partner.certificates.get().fingerprint)


def _refused(project, event_type, words, **payload):
    before = AuditEvent.objects.filter(action="proxy_reject").count()
    with pytest.raises(Rejected) as info:
        _deliver(project, event_type, **payload)
    assert words in info.value.reason, info.value.reason
    assert AuditEvent.objects.filter(action="proxy_reject").count() == before + 1
    return info.value.reason


def _finish(task, status=TaskStatus.SUCCEEDED, metrics=None):
    task.finish(status)
    task.metrics = {"final": metrics or {}}
    task.save()


def _ours_job(project, user, spec=None) -> Job:
    """A gated job we started, accepted by the partner and running."""
    job = services.create_job(user=user, project=project, spec=spec or _gated_spec(project), name="Gated")
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, accepted_at=timezone.now())
    return Job.objects.get(pk=job.pk)


def _theirs_job(project) -> Job:
    """A gated job the partner started, accepted here."""
    payload = {"job_id": uuid.uuid4(), "spec": _gated_spec(project), "name": "Theirs", "created_by": "tom",
               "gate_decider": project.gate_decider}
    job = services.receive_job(partner=project.partner, project=project, payload=payload)
    assert job.status == JobStatus.RUNNING, job.error
    return job


def _psi_done_at_both(job, overlap=180) -> Job:
    """Both halves of the PSI finish: ours here, the partner's reported by its job.task event."""
    _finish(job.tasks.get(node="psi", site=Task.OURS), metrics={"intersection_size": overlap, "reveal": "both"})
    _deliver(job.project, "job.task", job_id=str(job.pk), node="psi", attempt=job.attempt, status="succeeded",
             progress=1.0, metrics={"intersection_size": overlap})
    job.refresh_from_db()
    return job


def _paused(project, user, overlap=180) -> Job:
    job = _psi_done_at_both(_ours_job(project, user), overlap)
    assert job.status == JobStatus.PAUSED
    return job


def _set_decider(project, decider):
    Project.objects.filter(pk=project.pk).update(gate_decider=decider)
    project.refresh_from_db()


# --- The spec -----------------------------------------------------------------------------

def _gate_errors(spec, project):
    with pytest.raises(specs.SpecError) as info:
        specs.validate(spec, project)
    return [e for e in info.value.errors if e["field"] == "pause_after"]


def test_a_spec_names_known_nodes_to_pause_after_each_once(project):
    assert specs.validate(_gated_spec(project), project).pause_after == ["psi"]
    assert specs.validate(_gated_spec(project, pause_after=[]), project).pause_after == []
    assert "no node 'nope'" in _gate_errors(_gated_spec(project, pause_after=["nope"]), project)[0]["message"]
    twice = _gate_errors(_gated_spec(project, pause_after=["psi", "psi"]), project)
    assert twice[0]["node"] == "psi" and "twice" in twice[0]["message"]
    for shape in ("psi", [1], {"psi": True}):
        assert "list the ids" in _gate_errors(_gated_spec(project, pause_after=shape), project)[0]["message"]


def test_a_gate_must_hold_something_back_and_nothing_may_run_beside_it(project):
    last = _gate_errors(_gated_spec(project, pause_after=["split"]), project)
    assert last[0]["node"] == "split" and "nothing runs after" in last[0]["message"]
    spec = _gated_spec(project)
    beside = templates.build("psi", project, our_table=project.ours, partner_table=THEIRS)["nodes"][0]
    spec["nodes"].append({**beside, "id": "psi2"})
    spec["nodes"].append({"id": "split2", "component": "split", "params": {"guest": {"label_column": "y"}},
                          "inputs": {"data": {"node": "psi2", "output": "data"}}})
    errors = _gate_errors(spec, project)
    assert errors[0]["node"] == "psi" and "'psi2' neither comes before" in errors[0]["message"]


def test_the_model_templates_can_pause_after_the_overlap_and_the_psi_template_cannot(project):
    for name in ("lr", "secureboost"):
        plain = templates.build(name, project, our_table=project.ours, partner_table=THEIRS)
        assert "pause_after" not in plain
        gated = templates.build(name, project, our_table=project.ours, partner_table=THEIRS,
                                options={"pause_after_psi": True})
        assert gated["pause_after"] == ["psi"]
        assert specs.validate(gated, project).pause_after == ["psi"]
    with pytest.raises(templates.TemplateError, match="unknown option"):
        templates.build("psi", project, our_table=project.ours, partner_table=THEIRS, options={"pause_after_psi": True})
    with pytest.raises(templates.TemplateError, match="true or false"):
        templates.build("lr", project, our_table=project.ours, partner_table=THEIRS, options={"pause_after_psi": "yes"})


# --- The status rule both sites apply --------------------------------------------------------

def test_the_job_pauses_only_once_the_gated_node_finished_at_both_sites_and_holds_what_follows(project, alice):
    job = _ours_job(project, alice)
    _finish(job.tasks.get(node="psi", site=Task.OURS), metrics={"intersection_size": 180})
    services.refresh_status(job)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # the partner's half is still running
    assert scheduler.advance(job.pk) == []  # and nothing after the gate starts meanwhile
    assert job.tasks.get(node="split", site=Task.OURS).status == TaskStatus.WAITING

    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0,
             metrics={"intersection_size": 180})
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED and job.paused_after == "psi"
    assert job.get_status_display() == "Paused for a decision"
    assert scheduler.advance(job.pk) == []
    gate = services.gate_summary(job, alice)
    assert gate["node"] == "psi" and gate["overlap"] == 180 and gate["can_decide"] is True
    assert gate["decider"] == "initiator" and gate["decider_party"] == "site-1"
    paused = AuditEvent.objects.get(action="job_paused")
    assert paused.details["node"] == "psi" and paused.details["overlap"] == 180


def test_the_partners_site_pauses_by_the_same_rule(project):
    job = _theirs_job(project)
    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0,
             metrics={"intersection_size": 97})
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING  # our half has not finished yet
    _finish(job.tasks.get(node="psi", site=Task.OURS), metrics={"intersection_size": 97})
    services.refresh_status(job)
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED
    assert services.gate_overlap(job) == 97


def test_a_paused_job_is_not_failed_by_the_watchdog_and_can_still_be_cancelled(project, alice):
    job = _paused(project, alice)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(days=3))
    scheduler.watchdog()
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED
    services.cancel(user=alice, job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLING  # until the partner confirms its half stopped
    assert OutboxEvent.objects.filter(type="job.cancel").exists()


# --- Who decides -------------------------------------------------------------------------------

def test_with_the_initiator_deciding_members_who_can_run_jobs_at_our_site_decide_our_jobs(project, admin, alice, bob, vera):
    ProjectMember.objects.create(project=project, user=vera)
    job = _paused(project, alice)
    assert services.can_decide_gate(alice, job) and services.can_decide_gate(admin, job)
    assert not services.can_decide_gate(vera, job)  # a viewer
    assert not services.can_decide_gate(bob, job)  # not a member
    with pytest.raises(PermissionDenied, match="Viewers"):
        services.continue_job(user=vera, job=job)
    with pytest.raises(PermissionDenied, match="not a member"):
        services.stop_at_gate(user=bob, job=job)


def test_with_the_initiator_deciding_nobody_here_decides_the_partners_job(project, admin):
    job = _theirs_job(project)
    _finish(job.tasks.get(node="psi", site=Task.OURS), metrics={"intersection_size": 50})
    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED
    assert not services.can_decide_gate(admin, job)
    with pytest.raises(PermissionDenied, match="Demo Telco decides"):
        services.continue_job(user=admin, job=job)
    assert services.gate_summary(job, admin)["decider_party"] == "telco"


def test_with_the_partners_admin_deciding_our_admin_decides_the_partners_jobs_and_not_ours(project, admin, alice):
    _set_decider(project, GateDecider.PARTNER_ADMIN)
    theirs = _theirs_job(project)
    assert theirs.gate_decider == GateDecider.PARTNER_ADMIN
    _finish(theirs.tasks.get(node="psi", site=Task.OURS))
    _deliver(project, "job.task", job_id=str(theirs.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    theirs.refresh_from_db()
    assert services.can_decide_gate(admin, theirs) and not services.can_decide_gate(alice, theirs)
    with pytest.raises(PermissionDenied, match="site admin"):
        services.continue_job(user=alice, job=theirs)
    ours = _paused(project, alice)
    assert ours.gate_decider == GateDecider.PARTNER_ADMIN
    assert not services.can_decide_gate(admin, ours) and not services.can_decide_gate(alice, ours)
    services.continue_job(user=admin, job=theirs)
    theirs.refresh_from_db()
    assert theirs.status == JobStatus.RUNNING


# --- Continue and stop --------------------------------------------------------------------------

def test_continuing_tells_the_partner_is_audited_and_starts_what_follows(project, alice):
    job = _paused(project, alice, overlap=123)
    services.continue_job(user=alice, job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.gates_passed == ["psi"] and job.paused_after == ""
    event = OutboxEvent.objects.get(type="job.continue")
    assert event.payload == {"job_id": str(job.pk), "node": "psi", "attempt": 1, "by": "alice"}
    row = AuditEvent.objects.get(action="job_gate_continue")
    assert row.actor == alice and row.actor_name == "alice" and row.details["overlap"] == 123  # the CSV names who
    split = job.tasks.get(node="split", site=Task.OURS)
    assert scheduler.advance(job.pk) == [split.pk]
    with pytest.raises(ServiceError, match="not waiting for a decision"):
        services.continue_job(user=alice, job=job)


def test_stopping_at_the_gate_cancels_the_job_at_both_sites_with_who_and_why(project, alice):
    job = _paused(project, alice)
    services.stop_at_gate(user=alice, job=job, reason="  the overlap is too small ")
    job.refresh_from_db()
    words = "Stopped after the overlap by alice at Demo Bank: the overlap is too small"
    assert job.status == JobStatus.CANCELLING and job.error == words
    assert job.tasks.get(node="split", site=Task.OURS).status == TaskStatus.CANCELLED
    event = OutboxEvent.objects.get(type="job.cancel")
    assert event.payload["reason"] == words and event.payload["gate"] == "psi"
    row = AuditEvent.objects.get(action="job_gate_stop")
    assert row.actor == alice and row.details["reason"] == "the overlap is too small"
    # The partner's half confirms it stopped: cancelled here too, with the same words.
    _deliver(project, "job.task", job_id=str(job.pk), node="split", attempt=1, status="cancelled", progress=0.0,
             error=words)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == words


def test_the_partners_stop_at_the_gate_arrives_as_a_cancel_with_its_words(project):
    job = _theirs_job(project)
    _finish(job.tasks.get(node="psi", site=Task.OURS))
    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    words = "Stopped after the overlap by tom at Demo Telco: not worth it"
    _deliver(project, "job.cancel", job_id=str(job.pk), reason=words, gate="psi")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLING and job.error == words
    assert AuditEvent.objects.get(action="job_cancelled").details["gate"] == "psi"


# --- The partner's job.continue, on the proxy's one path ----------------------------------------

def test_the_partner_cannot_continue_a_gate_only_we_decide(project, alice):
    job = _paused(project, alice)
    _refused(project, "job.continue", "not the partner", job_id=str(job.pk), node="psi", attempt=1, by="mallory")
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED and job.gates_passed == []
    assert InboxEvent.objects.get(type="job.continue").error


def test_a_continue_for_a_job_not_paused_or_another_gate_or_attempt_is_refused(project):
    job = _theirs_job(project)
    _refused(project, "job.continue", "not waiting at a gate", job_id=str(job.pk), node="psi", attempt=1)
    _finish(job.tasks.get(node="psi", site=Task.OURS))
    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    _refused(project, "job.continue", "not after 'split'", job_id=str(job.pk), node="split", attempt=1)
    _refused(project, "job.continue", "attempt 2", job_id=str(job.pk), node="psi", attempt=2)
    _refused(project, "job.continue", "no such job", job_id=str(uuid.uuid4()), node="psi", attempt=1)
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED


def test_the_initiators_continue_is_applied_and_audited(project):
    job = _theirs_job(project)
    _finish(job.tasks.get(node="psi", site=Task.OURS), metrics={"intersection_size": 64})
    _deliver(project, "job.task", job_id=str(job.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    assert _deliver(project, "job.continue", job_id=str(job.pk), node="psi", attempt=1, by="tom").detail == "applied"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.gates_passed == ["psi"]
    row = AuditEvent.objects.get(action="job_continued")
    assert row.actor_name == "telco" and row.details["by"] == "tom" and row.details["overlap"] == 64


def test_with_the_partners_admin_deciding_the_partner_continues_our_job_but_not_its_own(project, alice):
    _set_decider(project, GateDecider.PARTNER_ADMIN)
    theirs = _theirs_job(project)
    _finish(theirs.tasks.get(node="psi", site=Task.OURS))
    _deliver(project, "job.task", job_id=str(theirs.pk), node="psi", attempt=1, status="succeeded", progress=1.0)
    _refused(project, "job.continue", "not the partner", job_id=str(theirs.pk), node="psi", attempt=1)
    ours = _paused(project, alice)
    _deliver(project, "job.continue", job_id=str(ours.pk), node="psi", attempt=1, by="telco-admin")
    ours.refresh_from_db()
    assert ours.status == JobStatus.RUNNING


def test_a_continue_in_a_suspended_project_is_refused_by_its_declared_states(project, alice):
    job = _paused(project, alice)
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.SUSPENDED, suspended_here=True)
    _refused(project, "job.continue", "cannot be applied to a project that is suspended", job_id=str(job.pk),
             node="psi", attempt=1)


def test_a_partners_gated_job_under_another_rule_than_ours_is_refused_saying_so(project):
    payload = {"job_id": uuid.uuid4(), "spec": _gated_spec(project), "gate_decider": GateDecider.PARTNER_ADMIN}
    job = services.receive_job(partner=project.partner, project=project, payload=payload)
    assert job.status == JobStatus.REFUSED
    assert job.error == ("At Demo Bank the project lets someone who can run jobs at the site that started the job decide "
                         "at a job's gates, but this job lets a site admin of the other site decide. The admins of both "
                         "sites can choose the same in the project's settings.")
    assert OutboxEvent.objects.get(type="job.refuse").payload["reason"] == job.error
    # The rule matters only to a job with a gate.
    plain = services.receive_job(partner=project.partner, project=project, payload={
        "job_id": uuid.uuid4(), "spec": _gated_spec(project, pause_after=[]), "gate_decider": GateDecider.PARTNER_ADMIN})
    assert plain.status == JobStatus.RUNNING


def test_our_job_carries_our_rule_to_the_partner(project, alice):
    _set_decider(project, GateDecider.PARTNER_ADMIN)
    job = services.create_job(user=alice, project=project, spec=_gated_spec(project))
    assert job.gate_decider == GateDecider.PARTNER_ADMIN
    assert OutboxEvent.objects.get(type="job.submit").payload["gate_decider"] == "partner_admin"


# --- Resume -------------------------------------------------------------------------------

def test_a_job_stopped_at_the_gate_and_resumed_waits_at_the_gate_again(project, alice):
    job = _paused(project, alice)
    services.stop_at_gate(user=alice, job=job)
    _deliver(project, "job.task", job_id=str(job.pk), node="split", attempt=1, status="cancelled", progress=0.0)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == "Stopped after the overlap by alice at Demo Bank."
    services.resume(user=alice, job=job)
    _deliver(project, "job.accept", job_id=str(job.pk), attempt=2)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.tasks.get(node="psi", site=Task.OURS).attempt == 1
    assert scheduler.advance(job.pk) == []  # no decision was made: back at the gate
    job.refresh_from_db()
    assert job.status == JobStatus.PAUSED and job.paused_after == "psi"


def test_a_job_resumed_after_its_gate_passed_does_not_pause_again(project, alice):
    job = _paused(project, alice)
    services.continue_job(user=alice, job=job)
    split = job.tasks.get(node="split", site=Task.OURS)
    _finish(split, TaskStatus.FAILED)
    services.refresh_status(Job.objects.get(pk=job.pk))
    _deliver(project, "job.task", job_id=str(job.pk), node="split", attempt=1, status="cancelled", progress=0.0)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    services.resume(user=alice, job=job)
    _deliver(project, "job.accept", job_id=str(job.pk), attempt=2)
    assert scheduler.advance(job.pk) == [split.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.gates_passed == ["psi"]


# --- The API ------------------------------------------------------------------------------

def test_continue_and_stop_through_the_api(project, alice, vera, api_as):
    ProjectMember.objects.create(project=project, user=vera)
    job = _paused(project, alice)
    shown = api_as(alice).get(f"/api/jobs/{job.pk}/").json()
    assert shown["status"] == "paused" and shown["status_label"] == "Paused for a decision"
    assert shown["gate"]["overlap"] == 180 and shown["gate"]["can_decide"] is True and shown["pause_after"] == ["psi"]
    assert api_as(vera).get(f"/api/jobs/{job.pk}/").json()["gate"]["can_decide"] is False
    assert api_as(vera).post(f"/api/jobs/{job.pk}/continue/").status_code == 403
    answer = api_as(alice).post(f"/api/jobs/{job.pk}/continue/")
    assert answer.status_code == 200 and answer.json()["status"] == "running" and answer.json()["gate"] is None
    assert api_as(alice).post(f"/api/jobs/{job.pk}/stop/", {"reason": "x"}, format="json").status_code == 409

    second = _paused(project, alice)
    answer = api_as(alice).post(f"/api/jobs/{second.pk}/stop/", {"reason": "too few"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["error"] == "Stopped after the overlap by alice at Demo Bank: too few"


def test_the_projects_job_settings_are_shown_and_changed_by_admins_only(project, admin, alice, api_as):
    assert api_as(alice).get(f"/api/projects/{project.pk}/").json()["gate_decider"] == "initiator"
    url = f"/api/projects/{project.pk}/job-settings/"
    assert api_as(alice).patch(url, {"gate_decider": "partner_admin"}, format="json").status_code == 403
    assert api_as(admin).patch(url, {"gate_decider": "everyone"}, format="json").status_code == 400
    answer = api_as(admin).patch(url, {"gate_decider": "partner_admin"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["gate_decider"] == "partner_admin" and answer.json()["approve_partner_jobs"] is False
    project.refresh_from_db()
    assert project.gate_decider == "partner_admin"
    row = AuditEvent.objects.get(action="project_job_settings")
    assert row.details["before"]["gate_decider"] == "initiator" and row.details["after"]["gate_decider"] == "partner_admin"


# --- Refusal reasons ---------------------------------------------------------------------------

def test_the_initiator_sees_who_refused_the_job_and_why(project, alice, api_as):
    job = services.create_job(user=alice, project=project, spec=_gated_spec(project, pause_after=[]))
    _deliver(project, "job.refuse", job_id=str(job.pk), reason="not this week", by="tom")
    job.refresh_from_db()
    assert job.status == JobStatus.REFUSED and job.error == "not this week" and job.refused_by == "tom"
    assert job.failed_party == "telco"
    shown = api_as(alice).get(f"/api/jobs/{job.pk}/").json()
    assert shown["refusal"] == "tom at Demo Telco refused the job: not this week"
    assert AuditEvent.objects.get(action="job_refused").details["by"] == "tom"


def test_a_refusal_by_the_partners_own_checks_says_so(project, alice):
    job = services.create_job(user=alice, project=project, spec=_gated_spec(project, pause_after=[]))
    _deliver(project, "job.refuse", job_id=str(job.pk), reason="node 'psi': the table is not authorised")
    job.refresh_from_db()
    assert job.refused_by == ""
    assert services.refusal_words(job) == "Demo Telco refused the job: node 'psi': the table is not authorised"


def test_our_admin_refusing_the_partners_job_sends_who_and_why(project, admin):
    Project.objects.filter(pk=project.pk).update(approve_partner_jobs=True)
    project.refresh_from_db()
    job = services.receive_job(partner=project.partner, project=project,
                               payload={"job_id": uuid.uuid4(), "spec": _gated_spec(project, pause_after=[])})
    assert job.status == JobStatus.APPROVAL
    services.refuse(user=admin, job=job, reason="")
    job.refresh_from_db()
    assert job.refused_by == "admin" and job.error == "No reason was given."
    assert OutboxEvent.objects.get(type="job.refuse").payload == {"job_id": str(job.pk), "reason": "No reason was given.",
                                                                  "by": "admin"}
    assert services.refusal_words(job) == "admin at Demo Bank refused the job: No reason was given."
