"""The model registry: versions of each model name, their lineage, and publication.

A training job's model gets a **name** (that of the job it was first tuned from, so every
retune and sweep of "Credit risk LR" is a version of the same model) and a **number**,
both chosen by the job's initiator and sent with the job, so both sites show the same
"Credit risk LR · v3". Each site holds its own half (``Model.artifact``) and, when the
job prepared the rows before scoring them, the fitted preparation (``Model.transform``).

**Publication** is a consent of each site. Publishing here records ours and sends
``model.publish``; the partner's event records theirs. A model is published when both
consented — the partner's admin confirms on its side, or the partner's project setting
``auto_confirm_models`` confirms at once. Withdrawing (``model.unpublish``) takes one
site and clears both consents everywhere. Archiving hides an unpublished version here.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.audit.services import record
from fedweb.proxy.events import EventRejected, applier, emit
from projects.models import ProjectStatus
from projects.services import visible_projects

from . import runner
from .templates import PREDICTORS
from .models import Job, Model, Task, TaskStatus, model_id



# --- Names and numbers -----------------------------------------------------------------

def trains_a_model(spec: dict) -> bool:
    return any(n.get("component") in runner.TRAINERS for n in (spec or {}).get("nodes", []))


def model_name_for(name: str, rerun_of: Job | None) -> str:
    """The name of the first job of a retune chain (a rerun keeps its model's name)."""
    seen = set()
    job = rerun_of
    while job is not None and job.pk not in seen:
        seen.add(job.pk)
        if job.rerun_of_id is None:
            return job.model_name or job.name
        job = job.rerun_of
    return name


def next_number(project, name: str) -> int:
    last = (Job.objects.filter(project=project, model_name=name, model_number__isnull=False)
            .order_by("-model_number").values_list("model_number", flat=True).first())
    return (last or 0) + 1


def name_job(job: Job) -> None:
    """The initiator names and numbers the model a new job will train (before it is saved)."""
    if trains_a_model(job.spec):
        job.model_name = model_name_for(job.name, job.rerun_of)[:200]
        job.model_number = next_number(job.project, job.model_name)


def name_received_job(job: Job, payload: dict) -> None:
    """The partner's job carries its model's name and number; anything malformed is dropped."""
    name, number = payload.get("model_name"), payload.get("model_number")
    if isinstance(name, str) and isinstance(number, int) and not isinstance(number, bool) and 0 < number < 10**9:
        job.model_name, job.model_number = name[:200], number


def unpublished_models(project, plan) -> str:
    """Why a job may not score with the earlier models it names ("" when every one is published here)."""
    from .spec import JobOutput

    for node in plan.nodes.values():
        source = node.inputs.get("model")
        if node.component.name in PREDICTORS.values() and isinstance(source, JobOutput):
            model = Model.objects.filter(pk=model_id(source.job, source.node), project=project).first()
            if model is None:
                return _("The job scores with a model this site does not hold.")
            if not model.is_published:
                return _("The job scores with %(model)s, which is not published for scoring at this site.") % {
                    "model": model.label}
    return ""


# --- A trainer finished: the Model row -------------------------------------------------------

def _our_output(job: Job, ref: dict | None) -> str | None:
    """The artifact id of a spec input reference ({"node", "output"} or {"job", "node", "output"}) at this site."""
    if not isinstance(ref, dict) or "node" not in ref:
        return None
    task = Task.objects.filter(job_id=ref.get("job") or job.pk, site=Task.OURS, node=ref["node"]).first()
    return (task.outputs or {}).get(ref.get("output", "model")) if task is not None else None


def _scoring_setup(job: Job, node: str, role: str) -> tuple[str | None, dict | None]:
    """How the job scored with this model: the preparation applied first, and the scorecard scaling."""
    nodes = job.spec.get("nodes", [])
    trainer = next((n for n in nodes if n["id"] == node), {})
    scoring = next((n for n in nodes if n.get("component") == PREDICTORS.get(trainer.get("component"))
                    and (n.get("inputs") or {}).get("model", {}).get("node") == node), None)
    transform = _our_output(job, (scoring or {}).get("inputs", {}).get("transform"))
    if transform is None:  # trained on prepared rows without a scoring step: the trainer's own preparation
        transform = _our_output(job, (trainer.get("inputs") or {}).get("transform"))
    card = None
    if scoring is not None:
        card_node = next((n for n in nodes if n.get("component") == "scorecard"
                          and (n.get("inputs") or {}).get("data", {}).get("node") == scoring["id"]), None)
        if card_node is not None:
            params = card_node.get("params") or {}
            card = {**(params.get("common") or {}), **(params.get("guest") or {})}
    return transform, card


def register_trained(task: Task, outputs: dict, metrics: dict) -> Model:
    """The Model row of a trainer task that just finished (inside its transaction)."""
    job = task.job
    transform, card = _scoring_setup(job, task.node, task.role)
    name = job.model_name or model_name_for(job.name, job.rerun_of)
    number = job.model_number or next_number(job.project, name)
    model, _created = Model.objects.update_or_create(
        id=model_id(task.job_id, task.node),
        defaults={"project": job.project, "job": job, "node": task.node, "component": task.component,
                  "version": task.version, "role": task.role, "params": runner.params_of(task),
                  "metrics": metrics, "artifact_id": outputs["model"], "transform_id": transform,
                  "scorecard": card, "name": name[:200], "number": number},
    )
    return model


# --- Who may see and change models ----------------------------------------------------------

def visible_models(user):
    return Model.objects.filter(project__in=visible_projects(user))


def _locked(model: Model) -> Model:
    return Model.objects.select_for_update().select_related("project__partner").get(pk=model.pk)


def _require_writer(user, model: Model) -> None:
    if not user.can_write:
        raise PermissionDenied(_("Viewers cannot publish or archive models."))
    if not visible_projects(user).filter(pk=model.project_id).exists():
        raise PermissionDenied(_("You are not a member of this project."))


def _require_active(model: Model) -> None:
    if model.project.status != ProjectStatus.ACTIVE:
        raise ServiceError(_("Models are published in an active project only."), code="wrong_state", status_code=409)


def _audit(action: str, user, model: Model, request=None, **details) -> None:
    record(action, actor=user, request=request, obj=model.project,
           details={"model": str(model.pk), "name": model.name, "number": model.number, **details})


# --- Publish, withdraw, archive ----------------------------------------------------------------

def publish(*, user, model: Model, request=None) -> Model:
    """Our consent to score with the model. Confirming a partner's request takes a site admin."""
    _require_writer(user, model)
    with transaction.atomic():
        model = _locked(model)
        _require_active(model)
        if model.archived_at is not None:
            raise ServiceError(_("An archived model cannot be published: restore it first."), code="wrong_state",
                               status_code=409)
        if model.consent_here_at is not None:
            return model
        if model.job_id is not None and not model.job.tasks.filter(
                site=Task.PARTNER, node=model.node, status__in=TaskStatus.done()).exists():
            raise ServiceError(_("The partner's half of this model is not ready yet."), code="wrong_state",
                               status_code=409)
        if model.consent_partner_at is not None and not user.is_site_admin:
            raise PermissionDenied(_("The partner asks to publish this model: a site admin of this site confirms it."))
        # Confirming the partner's request answers it; a request of ours waits for the partner's answer.
        _consent(model, user.get_username(), reply=model.consent_partner_at is not None)
        _audit("model_publish", user, model, request, published=model.is_published)
    return model


def _consent(model: Model, by: str, *, reply: bool = False) -> None:
    model.consent_here_at, model.consent_here_by = timezone.now(), by[:150]
    model.save(update_fields=["consent_here_at", "consent_here_by"])
    emit(model.project.partner, "model.publish", {"model_id": str(model.pk), "by": by[:150], "reply": reply},
         project=model.project)


def unpublish(*, user, model: Model, reason: str = "", request=None) -> Model:
    """Withdraw publication (either site alone): scoring with the model stops at both sites."""
    _require_writer(user, model)
    with transaction.atomic():
        model = _locked(model)
        if model.consent_here_at is None and model.consent_partner_at is None:
            return model
        _withdraw(model)
        if model.project.status in (ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED):
            emit(model.project.partner, "model.unpublish",
                 {"model_id": str(model.pk), "by": user.get_username(), "reason": reason[:500]}, project=model.project)
        _audit("model_unpublish", user, model, request, reason=reason[:500])
    return model


def _withdraw(model: Model) -> None:
    model.consent_here_at = model.consent_partner_at = None
    model.consent_here_by = model.consent_partner_by = ""
    model.save(update_fields=["consent_here_at", "consent_here_by", "consent_partner_at", "consent_partner_by"])


def archive(*, user, model: Model, request=None) -> Model:
    """Hide a version from the registry's list here (it stays in the audit trail and can be restored)."""
    _require_writer(user, model)
    with transaction.atomic():
        model = _locked(model)
        if model.is_published or model.consent_here_at is not None:
            raise ServiceError(_("Withdraw the publication before archiving the model."), code="wrong_state",
                               status_code=409)
        model.archived_at = timezone.now()
        model.save(update_fields=["archived_at"])
        _audit("model_archive", user, model, request)
    return model


def restore(*, user, model: Model, request=None) -> Model:
    _require_writer(user, model)
    with transaction.atomic():
        model = _locked(model)
        model.archived_at = None
        model.save(update_fields=["archived_at"])
        _audit("model_restore", user, model, request)
    return model


# --- The partner's side ----------------------------------------------------------------------

def _model_of(project, payload) -> Model:
    try:
        pk = uuid.UUID(str(payload.get("model_id")))
    except ValueError:
        raise EventRejected("the model id is malformed") from None
    model = Model.objects.select_for_update().filter(pk=pk, project=project).first()
    if model is None:
        raise EventRejected("no such model in this project")
    return model


@applier("model.publish", states={ProjectStatus.ACTIVE})
def partner_published(*, partner, project, payload, **_unused):
    model = _model_of(project, payload)
    by = str(payload.get("by") or "")[:150]
    model.consent_partner_at, model.consent_partner_by = timezone.now(), by
    model.save(update_fields=["consent_partner_at", "consent_partner_by"])
    record("model_publish_partner", actor_name=partner.party_id, obj=project,
           details={"model": str(model.pk), "name": model.name, "number": model.number, "by": by})
    if model.consent_here_at is not None:
        # We consented already, but the partner asks: it lost our answer (a rebuilt site, an imported half).
        # Say it again, once: a repeated answer is never answered.
        if not payload.get("reply"):
            emit(partner, "model.publish", {"model_id": str(model.pk), "by": model.consent_here_by, "reply": True},
                 project=project)
    elif project.auto_confirm_models and model.archived_at is None:
        # This site lets the partner publish alone: confirm at once.
        _consent(model, _("automatic (project setting)"), reply=True)
        record("model_publish", actor_name="", obj=project,
               details={"model": str(model.pk), "name": model.name, "number": model.number, "automatic": True})


@applier("model.unpublish", states={ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED})
def partner_unpublished(*, partner, project, payload, **_unused):
    model = _model_of(project, payload)
    _withdraw(model)
    record("model_unpublish_partner", actor_name=partner.party_id, obj=project,
           details={"model": str(model.pk), "name": model.name, "number": model.number,
                    "by": str(payload.get("by") or "")[:150], "reason": str(payload.get("reason") or "")[:500]})
