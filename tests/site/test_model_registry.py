"""The registry's rules at one site: names and numbers both sites agree on, consent events from the
partner (confirmed automatically only where this site said so, repeated once when the partner lost
them), and a partner's job that scores with a model not published here is refused."""

import uuid

import pytest
from django.utils import timezone

from fedweb.proxy.models import OutboxEvent
from jobs import artifacts, registry, services, templates
from jobs.models import Job, JobStatus, Model, model_id
from projects.models import Project

from .job_scene import PARTNER_TABLE, job_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(admin, alice, make_dataset, settings):
    project, dataset = job_project(admin=admin, members=[alice], make_dataset=make_dataset, settings=settings)
    project.ours = str(dataset.pk)
    return project


def _lr(project):
    return templates.build("lr", project, our_table=project.ours, partner_table=PARTNER_TABLE)


def _model(project, job, **fields):
    return Model.objects.create(id=model_id(job.pk, "lr"), project=project, job=job, node="lr", component="hetero_lr",
                                version="1.0.0", role="guest", artifact=artifacts.store("model", {"x": 1}),
                                name=job.model_name, number=job.model_number, **fields)


def test_retunes_are_versions_of_the_first_jobs_name_and_the_partner_is_told(project, alice):
    first = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk")
    retune = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk (lr=0.1)",
                                 rerun_of=first)
    again = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk (lr=0.3)",
                                rerun_of=retune)
    other = services.create_job(user=alice, project=project, spec=_lr(project), name="Churn")
    assert [(j.model_name, j.model_number) for j in (first, retune, again, other)] == [
        ("Credit risk", 1), ("Credit risk", 2), ("Credit risk", 3), ("Churn", 1)]
    submit = OutboxEvent.objects.filter(type="job.submit").order_by("seq").last()
    assert (submit.payload["model_name"], submit.payload["model_number"]) == ("Churn", 1)
    psi = services.create_job(user=alice, project=project, spec=templates.build(
        "psi", project, our_table=project.ours, partner_table=PARTNER_TABLE), name="Overlap")
    assert (psi.model_name, psi.model_number) == ("", None)  # trains nothing


def test_a_received_jobs_model_name_is_taken_only_when_well_formed():
    job = Job(name="x")
    registry.name_received_job(job, {"model_name": "Credit", "model_number": True})
    assert (job.model_name, job.model_number) == ("", None)
    registry.name_received_job(job, {"model_name": "Credit" * 100, "model_number": 4})
    assert (len(job.model_name), job.model_number) == (200, 4)


def _partner_consents(project, model, **payload):
    registry.partner_published(partner=project.partner, project=project,
                               payload={"model_id": str(model.pk), "by": "telco admin", **payload})
    model.refresh_from_db()
    return list(OutboxEvent.objects.filter(type="model.publish").values_list("payload", flat=True))


def test_the_partners_request_waits_for_our_admin_unless_the_project_says_otherwise(project, alice):
    from django.db import transaction

    job = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk")
    model = _model(project, job)
    with transaction.atomic():
        assert _partner_consents(project, model) == []
    assert model.status == "asked" and model.consent_partner_by == "telco admin"
    Project.objects.filter(pk=project.pk).update(auto_confirm_models=True)
    project.refresh_from_db()
    Model.objects.filter(pk=model.pk).update(consent_partner_at=None)
    with transaction.atomic():
        sent = _partner_consents(project, model)
    assert model.is_published and [p["reply"] for p in sent] == [True]


def test_a_consent_the_partner_lost_is_repeated_once_never_in_a_loop(project, alice):
    from django.db import transaction

    job = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk")
    model = _model(project, job, consent_here_at=timezone.now(), consent_here_by="alice")
    with transaction.atomic():
        assert [p["reply"] for p in _partner_consents(project, model)] == [True]
        assert len(_partner_consents(project, model, reply=True)) == 1  # an answer is not answered
    assert model.is_published


def test_a_partners_job_scoring_with_a_model_not_published_here_is_refused(project, alice):
    trained = services.create_job(user=alice, project=project, spec=_lr(project), name="Credit risk")
    Job.objects.filter(pk=trained.pk).update(status=JobStatus.SUCCEEDED)
    model = _model(project, trained, consent_here_at=timezone.now(), consent_partner_at=timezone.now())
    spec = templates.build("score", project, our_table=project.ours, partner_table=PARTNER_TABLE,
                           options={"model": str(model.pk)})
    Model.objects.filter(pk=model.pk).update(consent_here_at=None)  # withdrawn here meanwhile
    job = services.receive_job(partner=project.partner, project=project,
                               payload={"job_id": uuid.uuid4(), "name": "Scoring", "spec": spec})
    assert job.status == JobStatus.REFUSED and "not published" in job.error
    with pytest.raises(Exception, match="not published"):
        services.create_job(user=alice, project=project, spec=spec, name="Scoring here")
