"""How this site applies the partner's job events (see ``fedweb.proxy.events``).

They run inside the inbox transaction, after the proxy verified the request. A job
event only ever names a job of the same project: the job is looked up in the project
the event came in, so a partner cannot touch another project's jobs.
"""

from __future__ import annotations

import uuid

from django.utils import timezone
# Appliers take their unused arguments as ``**_``, so gettext keeps its own name here.
from django.utils.translation import gettext

from fedweb.audit.services import record
from fedweb.proxy.events import EventRejected, applier
from projects.models import ProjectStatus

from . import services
from .models import Job, JobStatus, Task, TaskStatus

LIVE = {ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED}


def _job(project, payload, *, initiated_here: bool | None = None) -> Job:
    try:
        job_id = uuid.UUID(str(payload.get("job_id")))
    except ValueError:
        raise EventRejected("the job id is malformed") from None
    job = Job.objects.select_for_update().filter(pk=job_id, project=project).first()
    if job is None:
        raise EventRejected("no such job in this project")
    if initiated_here is not None and job.we_initiated != initiated_here:
        raise EventRejected("this event does not come from the right side of the job")
    return job


@applier("job.submit", states={ProjectStatus.ACTIVE})
def submitted(*, partner, project, payload, **_):
    try:
        job_id = uuid.UUID(str(payload.get("job_id")))
    except ValueError:
        raise EventRejected("the job id is malformed") from None
    if Job.objects.filter(pk=job_id).exists():
        raise EventRejected("a job with this id exists already")
    payload = {**payload, "job_id": job_id}
    services.receive_job(partner=partner, project=project, payload=payload)


@applier("job.accept", states={ProjectStatus.ACTIVE})
def accepted(*, partner, project, payload, **_):
    job = _job(project, payload, initiated_here=True)
    if job.status != JobStatus.PENDING:
        return  # cancelled meanwhile: our job.cancel is on its way
    job.status, job.accepted_at = JobStatus.RUNNING, timezone.now()
    job.save(update_fields=["status", "accepted_at", "updated_at"])
    record("job_accepted", actor_name=partner.party_id, obj=project, details={"job": str(job.pk), "name": job.name})
    from .scheduler import advance_on_commit

    advance_on_commit(job)


@applier("job.refuse", states=LIVE)
def refused(*, partner, project, payload, **_):
    job = _job(project, payload, initiated_here=True)
    reason = str(payload.get("reason") or "")[:4000]
    job.finish(JobStatus.REFUSED, error=reason or gettext("No reason was given."), party=partner.party_id)
    # The partner's admin who refused it; none when the partner's site refused it on its own checks.
    job.refused_by = str(payload.get("by") or "")[:150]
    job.save()
    job.tasks.filter(status__in=TaskStatus.active()).update(status=TaskStatus.CANCELLED, finished_at=timezone.now())
    services._close_sessions(job)
    record("job_refused", actor_name=partner.party_id, obj=project,
           details={"job": str(job.pk), "reason": reason, "by": job.refused_by})


@applier("job.cancel", states=LIVE)
def cancelled(*, partner, project, payload, **_):
    job = _job(project, payload)
    if job.status in JobStatus.terminal():
        return
    reason = str(payload.get("reason") or gettext("The partner cancelled the job."))[:4000]
    gate = str(payload.get("gate") or "")[:32]  # set when the partner's decider stopped the job at a gate
    services.stop_job(job, reason=reason, party=partner.party_id)
    record("job_cancelled", actor_name=partner.party_id, obj=project,
           details={"job": str(job.pk), "reason": reason, **({"gate": gate} if gate else {})})


@applier("job.continue", states={ProjectStatus.ACTIVE})
def continued(*, partner, project, payload, **_):
    """The partner's decider let a paused job go on. Refused unless the job waits at that very
    gate here, in the same attempt, and the project's rule (fixed on the job when both sites
    accepted it) lets the partner's side decide: a site that may not decide cannot make it go on."""
    job = _job(project, payload)
    if job.status != JobStatus.PAUSED:
        raise EventRejected(f"the job is {job.status} here, not waiting at a gate")
    node = str(payload.get("node", ""))[:32]
    if node != job.paused_after:
        raise EventRejected(f"the job waits after node {job.paused_after!r} here, not after {node!r}")
    try:
        attempt = int(payload.get("attempt", 0))
    except (TypeError, ValueError):
        raise EventRejected("the attempt must be a number") from None
    if attempt != job.attempt:
        raise EventRejected(f"the decision is for attempt {attempt}; the job is in attempt {job.attempt} here")
    if services.gate_decider_party(job) != partner.party_id:
        raise EventRejected(f"at this job's gates {services.gate_decider_party(job)} decides ({job.gate_decider}), "
                            "not the partner")
    by = str(payload.get("by") or "")[:150]
    services.pass_gate(job)
    record("job_continued", actor_name=partner.party_id, obj=project,
           details={"job": str(job.pk), "node": node, "by": by, "overlap": services.gate_overlap(job)})
    from .scheduler import push_job

    push_job(job)


@applier("job.resume", states={ProjectStatus.ACTIVE})
def resumed(*, partner, project, payload, **_):
    job = _job(project, payload, initiated_here=False)
    if job.status not in JobStatus.resumable():
        raise EventRejected(f"the job is {job.status} here and cannot be resumed")
    try:
        services.accept_resume(job, int(payload.get("attempt", 0)))
    except (ValueError, TypeError) as exc:
        raise EventRejected(str(exc)) from None


@applier("job.task", states=LIVE)
def task_status(*, partner, project, payload, **_):
    job = _job(project, payload)
    task = job.tasks.filter(site=Task.PARTNER, node=str(payload.get("node", ""))[:32]).first()
    if task is None:
        raise EventRejected("the job has no such node for the partner")
    status = payload.get("status")
    if status not in TaskStatus.values:
        raise EventRejected("unknown task status")
    try:
        attempt = int(payload.get("attempt", 0))
        progress = float(payload.get("progress", 0.0))
    except (TypeError, ValueError):
        raise EventRejected("the task's attempt and progress must be numbers") from None
    if attempt < task.attempt:
        return  # news of an earlier attempt
    task.attempt, task.status = attempt, status
    task.progress = min(max(progress, 0.0), 1.0)
    task.stage, task.error = str(payload.get("stage", ""))[:200], str(payload.get("error", ""))[:4000]
    task.reused_job = str(payload.get("reused_job", ""))[:36]
    task.retryable = payload.get("retryable") is True
    metrics = payload.get("metrics")
    if isinstance(metrics, dict):
        task.metrics = {"final": metrics}
    if status in TaskStatus.terminal():
        task.finished_at = timezone.now()
    elif status == TaskStatus.RUNNING and task.started_at is None:
        task.started_at = timezone.now()
    task.save()
    services.refresh_status(job)
    from .scheduler import push_job

    push_job(job)
