"""The scheduler: a small loop over task states, run after every change.

A task of ours is queued when every upstream node of its inputs is done here (the
partner's half of a two-party node waits for ours in the mailbox, with a deadline), no
gate before it waits for a decision, and only while fewer than ``JOBS_MAX_TASKS`` tasks
of this site are queued or running. The database is the truth: ``advance_all`` can run
at any time (after a task, from the proxy's loop) and only ever moves tasks forward.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import services
from . import spec as specs
from .models import Job, JobStatus, Task, TaskStatus

log = logging.getLogger(__name__)


def advance_on_commit(job: Job) -> None:
    job_id = job.pk
    transaction.on_commit(lambda: advance(job_id))


def advance(job_id) -> list[int]:
    """Queue every task of the job that can start now; returns their ids."""
    with transaction.atomic():
        job = services.lock_job(job_id)
        if job is None or job.status != JobStatus.RUNNING:
            return []
        plan = specs.validate(job.spec, job.project, check_tables=False)
        # A resumed job can be back at a gate nobody decided on without any task changing.
        if services.pause_at_gate(job):
            return []
        held = services.open_gates(job)
        tasks = {t.node: t for t in job.tasks.filter(site=Task.OURS)}
        done = {node for node, t in tasks.items() if t.is_done}
        room = settings.JOBS_MAX_TASKS - Task.objects.filter(site=Task.OURS, status__in=(TaskStatus.QUEUED, TaskStatus.RUNNING)).count()
        queued = []
        for node_id in plan.order:
            task = tasks.get(node_id)
            if task is None or task.status != TaskStatus.WAITING:
                continue
            upstream = {u for u in plan.node(node_id).upstream if u in tasks}
            if not upstream <= done or plan.node(node_id).upstream & held:
                continue
            if room <= 0:
                task.stage = _("waiting for a free slot on this site")
                task.save(update_fields=["stage"])
                continue
            task.status, task.queued_at, task.stage = TaskStatus.QUEUED, timezone.now(), ""
            task.save(update_fields=["status", "queued_at", "stage"])
            queued.append(task.pk)
            room -= 1
        if queued:
            transaction.on_commit(lambda: _send(queued))
    push_job_id(job_id)
    return queued


def _send(task_ids: list[int]) -> None:
    from .tasks import run_task

    for task_id in task_ids:
        result = run_task.apply_async(args=[task_id], queue=settings.JOBS_QUEUE)
        Task.objects.filter(pk=task_id).update(celery_id=result.id or "")


def advance_all() -> None:
    """Move every running job forward (a slot freed up somewhere)."""
    for job_id in Job.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True):
        try:
            advance(job_id)
        except Exception:
            log.exception("could not advance job %s", job_id)


def watchdog() -> int:
    """Fail tasks whose worker vanished (no heartbeat) and jobs the partner never answered.

    A job paused at a gate waits for a person as long as it takes: it has no running task
    and is not waiting for the partner's answer, so neither check touches it."""
    stale = timezone.now() - timedelta(seconds=settings.JOBS_HEARTBEAT_TIMEOUT)
    count = 0
    for task in Task.objects.filter(site=Task.OURS, status=TaskStatus.RUNNING, heartbeat_at__lt=stale).select_related("job"):
        with transaction.atomic():
            services.lock_job(task.job_id)
            task = Task.objects.select_for_update(of=("self",)).select_related("job").get(pk=task.pk)
            if task.status != TaskStatus.RUNNING or task.heartbeat_at >= stale:
                continue
            task.finish(TaskStatus.FAILED, retryable=True, error=_(
                "The worker running this task stopped without a word (it may have been killed or its machine "
                "restarted); the job goes on from its last checkpoint."))
            task.save()
            services.relay_task(task)
            services.refresh_status(task.job)
            count += 1
    unanswered = timezone.now() - timedelta(seconds=settings.JOBS_ACCEPT_TIMEOUT)
    for job in Job.objects.filter(status=JobStatus.PENDING, updated_at__lt=unanswered).select_related("project"):
        with transaction.atomic():
            job = services.lock_job(job.pk)
            if job.status != JobStatus.PENDING:
                continue
            since = timezone.localtime(job.updated_at).strftime("%H:%M")
            job.finish(JobStatus.FAILED, error=_("The partner's site did not answer since %(time)s.") % {"time": since},
                       party=job.project.partner.party_id)
            job.save()
            job.tasks.filter(status__in=TaskStatus.active()).update(status=TaskStatus.CANCELLED, finished_at=timezone.now())
            count += 1
    return count


# --- Live progress ---------------------------------------------------------------------

def group_name(job_id) -> str:
    return f"job-{job_id}"


def push_job(job: Job) -> None:
    transaction.on_commit(lambda: push_job_id(job.pk))


def job_payload(job: Job) -> dict:
    """The job's state as the browser sees it: pushed on a change, and sent on (re)connect."""
    return {"type": "job.update", "job": str(job.pk), "status": job.status,
            "tasks": [{"node": t.node, "site": t.site, "status": t.status, "progress": t.progress, "stage": t.stage}
                      for t in job.tasks.all()]}


def push_job_id(job_id) -> None:
    """A hint to subscribed browsers that the job changed; they read the truth from the API."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(job.pk), job_payload(job))
    except Exception:
        log.debug("could not push job %s", job_id, exc_info=True)
