"""Job specs are validated before anything runs; each problem names the node and the field."""

import copy
import datetime as dt
import uuid

import pytest
from django.utils import timezone

from fedweb.proxy import pki
from fedweb.proxy.models import OutboxEvent
from jobs import spec as specs
from jobs import templates
from jobs.models import Job, JobStatus, Task
from projects import pairing, services
from projects.models import Project, ProjectMember, ProjectStatus, RemoteTable

pytestmark = pytest.mark.django_db

OURS_CSV = "id,y,x1,x2\n" + "".join(f"{i:04d},{i % 2},{i * 0.5},{i % 7}\n" for i in range(200))


@pytest.fixture
def project(admin, alice, make_dataset, settings):
    settings.SITE_PARTY_ID = "site-1"
    pki.create_site_certificate()
    _key, cert = pki.make_self_signed("telco")
    partner = pairing.import_bundle({"format": "fedweb-site-bundle/1", "party_id": "telco", "name": "Telco",
                                     "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}, by=admin)
    project = Project.objects.create(name="p", purpose="x", partner=partner, initiator="site-1", label_holder="site-1",
                                     status=ProjectStatus.ACTIVE)
    ProjectMember.objects.create(project=project, user=alice)
    dataset = make_dataset(alice, OURS_CSV, name="Ours")
    services.authorise_table(user=admin, project=project, dataset=dataset, policy={"min_set_size": 10, "runs_per_day": 9, "partner_may_receive": True})
    RemoteTable.objects.create(project=project, table_id="11111111-1111-1111-1111-111111111111", name="Theirs",
                               row_count=180, columns=[{"name": "id", "role": "id"}, {"name": "z", "role": "feature"}])
    project.ours = str(dataset.pk)
    project.theirs = "11111111-1111-1111-1111-111111111111"
    return project


def _lr(project):
    return templates.build("lr", project, our_table=project.ours, partner_table=project.theirs)


def _errors(spec, project):
    with pytest.raises(specs.SpecError) as info:
        specs.validate(spec, project)
    return info.value.errors


def test_every_template_builds_a_spec_that_validates(project):
    for name in ("psi", "lr", "secureboost"):
        plan = specs.validate(templates.build(name, project, our_table=project.ours, partner_table=project.theirs), project)
        assert plan.order[0] == "psi"
    lr = specs.validate(_lr(project), project)
    assert lr.order.index("lr") > lr.order.index("selection") > lr.order.index("binning")
    assert lr.node("evaluation").roles == ("guest",)


def test_the_scoring_template_scores_with_the_model_and_preparation_of_a_finished_job(project, alice):
    from django.utils import timezone

    from jobs import artifacts
    from jobs import services as job_services
    from jobs.models import Model, model_id

    with pytest.raises(templates.TemplateError, match="choose the model"):
        templates.build("score", project, our_table=project.ours, partner_table=project.theirs)
    trained = job_services.create_job(user=alice, project=project, spec=_lr(project), name="LR")
    assert (trained.model_name, trained.model_number) == ("LR", 1)
    half = artifacts.store("model", {"component": "hetero_lr"})
    model = Model.objects.create(id=model_id(trained.pk, "lr"), project=project, job=trained, node="lr",
                                 component="hetero_lr", version="1.0.0", role="guest", artifact=half, name="LR")
    with pytest.raises(templates.TemplateError, match="not published"):
        templates.build("score", project, our_table=project.ours, partner_table=project.theirs,
                        options={"model": str(model.pk)})
    Model.objects.filter(pk=model.pk).update(consent_here_at=timezone.now(), consent_partner_at=timezone.now())
    spec = templates.build("score", project, our_table=project.ours, partner_table=project.theirs,
                           options={"model": str(model.pk)})
    assert spec == templates.build("score", project, our_table=project.ours, partner_table=project.theirs,
                                   options={"model_job": str(trained.pk)})
    score = spec["nodes"][1]
    assert score["component"] == "hetero_lr_predict"
    assert score["inputs"]["model"] == {"job": str(trained.pk), "node": "lr", "output": "model"}
    assert score["inputs"]["transform"] == {"job": str(trained.pk), "node": "scale", "output": "model"}
    errors = _errors(spec, project)  # the training job has not succeeded yet
    assert errors[0]["field"] == "inputs.model.job" and "did not succeed" in errors[0]["message"]
    Job.objects.filter(pk=trained.pk).update(status=JobStatus.SUCCEEDED)
    assert specs.validate(spec, project).node("score").inputs["model"].node == "lr"
    spec["nodes"][1]["inputs"]["model"]["output"] = "metrics"
    assert "no model output" in _errors(spec, project)[0]["message"]
    spec["nodes"][1]["inputs"]["model"] = {"job": str(uuid.uuid4()), "node": "lr", "output": "model"}
    assert "no such job" in _errors(spec, project)[0]["message"]


def test_an_unknown_component_is_refused_naming_the_node(project):
    spec = _lr(project)
    spec["nodes"][1]["component"] = "magic"
    assert {"node": "split", "field": "component"}.items() <= _errors(spec, project)[0].items()


def test_a_bad_parameter_is_refused_naming_the_node_and_the_parameter(project):
    spec = _lr(project)
    lr = next(n for n in spec["nodes"] if n["id"] == "lr")
    lr["params"]["common"]["learning_rate"] = -1
    lr["params"]["guest"]["no_such_thing"] = 1
    fields = {(e["node"], e["field"]) for e in _errors(spec, project)}
    assert ("lr", "params.common.learning_rate") in fields
    assert ("lr", "params.guest.no_such_thing") in fields


def test_a_port_type_mismatch_is_refused(project):
    spec = _lr(project)
    lr = next(n for n in spec["nodes"] if n["id"] == "lr")
    lr["inputs"]["data"] = {"node": "binning", "output": "model"}
    errors = _errors(spec, project)
    assert any(e["node"] == "lr" and "takes a table" in e["message"] for e in errors)


def test_a_cycle_is_refused(project):
    spec = _lr(project)
    split = next(n for n in spec["nodes"] if n["id"] == "split")
    split["inputs"]["data"] = {"node": "predict", "output": "predictions"}
    errors = _errors(spec, project)
    assert any("cycle" in e["message"] for e in errors)


def test_a_host_input_from_a_guest_only_output_is_refused(project):
    spec = _lr(project)
    selection = next(n for n in spec["nodes"] if n["id"] == "selection")
    selection["inputs"]["data"] = {"node": "predict", "output": "predictions"}
    assert any("the host gets no 'predictions'" in e["message"] for e in _errors(spec, project))


def test_tables_not_authorised_or_expired_are_refused(project, admin):
    spec = templates.build("psi", project, our_table=project.ours, partner_table=project.theirs)
    other = copy.deepcopy(spec)
    other["nodes"][0]["inputs"]["data"]["table"]["guest"] = str(uuid.uuid4())
    assert _errors(other, project)[0]["field"] == "inputs.data.table.guest"
    RemoteTable.objects.filter(table_id=project.theirs).update(expires_at=timezone.now() - dt.timedelta(days=1))
    assert "ended" in _errors(spec, project)[0]["message"]
    RemoteTable.objects.filter(table_id=project.theirs).update(expires_at=None, is_authorised=False)
    assert "not authorised" in _errors(spec, project)[0]["message"]


def test_a_role_the_component_does_not_have_is_refused(project):
    spec = _lr(project)
    evaluation = next(n for n in spec["nodes"] if n["id"] == "evaluation")
    evaluation["params"]["host"] = {"threshold": 0.3}
    assert any(e["field"] == "params.host" and "no host role" in e["message"] for e in _errors(spec, project))


def test_a_malformed_spec_is_refused_in_plain_words(project):
    for spec, words in [([], "JSON object"), ({"format": "x", "nodes": []}, "at least one node"),
                        ({"format": specs.FORMAT, "nodes": [{"id": "Bad Id"}]}, "node id")]:
        errors = _errors(spec, project)
        assert any(words in e["message"] or words in e["field"] for e in errors), errors


def test_creating_a_job_through_the_api_queues_its_submission_to_the_partner(project, alice, api_as):
    api = api_as(alice)
    answer = api.post("/api/jobs/", {"project": str(project.pk), "template": "psi", "our_table": project.ours,
                                     "partner_table": project.theirs}, format="json")
    assert answer.status_code == 201, answer.json()
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.PENDING
    assert set(job.tasks.values_list("node", "site")) == {("psi", Task.OURS), ("psi", Task.PARTNER)}
    event = OutboxEvent.objects.get(type="job.submit")
    assert event.payload["spec"] == job.spec
    assert api.get(f"/api/jobs/{job.pk}/").status_code == 200


def test_a_bad_spec_through_the_api_answers_with_the_node_and_field(project, alice, api_as):
    spec = _lr(project)
    spec["nodes"][0]["params"]["common"]["reveal"] = "everything"
    answer = api_as(alice).post("/api/jobs/", {"project": str(project.pk), "spec": spec}, format="json")
    assert answer.status_code == 400
    assert "psi.params.common.reveal" in answer.json()["error"]["details"]
    assert not Job.objects.exists()


def test_someone_elses_job_is_not_found_and_viewers_cannot_run_jobs(project, alice, bob, vera, api_as):
    answer = api_as(alice).post("/api/jobs/", {"project": str(project.pk), "template": "psi", "our_table": project.ours,
                                               "partner_table": project.theirs}, format="json")
    job_id = answer.json()["id"]
    assert api_as(bob).get(f"/api/jobs/{job_id}/").status_code == 404
    assert api_as(bob).post(f"/api/jobs/{job_id}/cancel/").status_code == 404
    assert job_id not in {j["id"] for j in api_as(bob).get("/api/jobs/").json()["results"]}
    ProjectMember.objects.create(project=project, user=vera)
    refused = api_as(vera).post("/api/jobs/", {"project": str(project.pk), "template": "psi", "our_table": project.ours,
                                               "partner_table": project.theirs}, format="json")
    assert refused.status_code == 403


def test_the_partners_job_naming_a_table_of_ours_not_authorised_is_refused_with_why(project):
    from jobs import services as job_services

    spec = templates.build("psi", project, our_table=project.ours, partner_table=project.theirs)
    spec["nodes"][0]["inputs"]["data"]["table"]["guest"] = str(uuid.uuid4())  # not authorised here
    job = job_services.receive_job(partner=project.partner, project=project,
                                   payload={"job_id": uuid.uuid4(), "spec": spec, "name": "sneaky"})
    assert job.status == JobStatus.REFUSED and "not authorised" in job.error
    refusal = OutboxEvent.objects.get(type="job.refuse")
    assert "not authorised" in refusal.payload["reason"]


def test_a_partners_job_waits_for_our_admins_approval_when_the_project_asks_for_it(project, admin, alice):
    from jobs import services as job_services

    project.approve_partner_jobs = True
    project.save()
    spec = templates.build("psi", project, our_table=project.ours, partner_table=project.theirs)
    job = job_services.receive_job(partner=project.partner, project=project, payload={"job_id": uuid.uuid4(), "spec": spec})
    assert job.status == JobStatus.APPROVAL
    assert not OutboxEvent.objects.filter(type="job.accept").exists()
    with pytest.raises(Exception):
        job_services.approve(user=alice, job=job)
    job_services.approve(user=admin, job=job)
    job.refresh_from_db()
    assert job.status in (JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.FAILED)  # no partner to talk to here
    assert OutboxEvent.objects.filter(type="job.accept").exists()


def test_our_psi_policy_refuses_a_job_that_would_reveal_our_overlap(project, admin, alice):
    from fedweb.api.errors import ServiceError
    from jobs import services as job_services

    services.update_policy(user=admin, table=project.tables.get(), policy={"partner_may_receive": False})
    spec = templates.build("psi", project, our_table=project.ours, partner_table=project.theirs)  # reveal: both
    with pytest.raises(ServiceError, match="may not receive the intersection"):
        job_services.create_job(user=alice, project=project, spec=spec)
    spec["nodes"][0]["params"]["common"]["reveal"] = "guest"  # only we (the guest) learn it
    assert job_services.create_job(user=alice, project=project, spec=spec).status == JobStatus.PENDING
