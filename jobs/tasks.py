"""The Celery task that runs our half of one node.

Takes a task id, never an object. Acknowledged late and rejected when its worker is
lost, so a killed worker's task is delivered again; it then finds its task still
*running* with the same attempt and fails it in plain words (the other half's session
cannot be replayed), so the job can be resumed from its checkpoints. While it runs, a
heartbeat lets the watchdog tell a live task from one whose worker vanished.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from engine.errors import EngineError, FederationError, FederationTimeout, PeerFailed

from . import artifacts, registry, runner, scheduler, services
from .models import Job, JobStatus, Task, TaskStatus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
REPORT_SECONDS = 1.0  # progress is written at most this often
RELAY_SECONDS = 5.0  # and told to the partner at most this often


def log_path(task: Task) -> Path:
    return Path(settings.ARTIFACT_DIR) / "logs" / str(task.job_id) / f"{task.node}.{task.attempt}.log"


class _Progress:
    """The engine's ``ctx.report`` → the task row (throttled), the browser and the partner."""

    def __init__(self, task_id: int, job_id):
        self.task_id, self.job_id = task_id, job_id
        self.series: dict[str, list] = {}
        self.last_write = self.last_relay = 0.0
        self.lock = threading.Lock()

    def __call__(self, *, fraction=None, stage=None, metrics=None):
        with self.lock:
            for name, value in (metrics or {}).items():
                self.series.setdefault(name, []).append(_plain(value))
            now = time.monotonic()
            if now - self.last_write < REPORT_SECONDS and not metrics:
                return
            self.last_write = now
            relay = now - self.last_relay >= RELAY_SECONDS
            if relay:
                self.last_relay = now
        fields = {"heartbeat_at": timezone.now(), "metrics": {"series": self.series}}
        if fraction is not None:
            fields["progress"] = fraction
        if stage:
            fields["stage"] = str(stage)[:200]
        with transaction.atomic():
            if relay:
                services.lock_job(self.job_id)
            Task.objects.filter(pk=self.task_id, status=TaskStatus.RUNNING).update(**fields)
            if relay:
                task = Task.objects.filter(pk=self.task_id).select_related("job__project__partner").first()
                if task is not None and task.status == TaskStatus.RUNNING:
                    services.relay_task(task)
        scheduler.push_job_id(self.job_id)


def _plain(value):
    """JSON the database accepts: numpy values as numbers, NaN and infinities as null."""
    try:
        return _finite(json.loads(json.dumps(value, default=artifacts._plain)))
    except (TypeError, ValueError):
        return str(value)


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    return value


class _Heartbeat(threading.Thread):
    def __init__(self, task_id: int):
        super().__init__(daemon=True, name=f"heartbeat-{task_id}")
        self.task_id = task_id
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                Task.objects.filter(pk=self.task_id, status=TaskStatus.RUNNING).update(heartbeat_at=timezone.now())
            except Exception:
                log.warning("heartbeat of task %s failed", self.task_id, exc_info=True)
            finally:
                close_old_connections()


def _claim(task_id: int) -> Task | None:
    """Mark the task running, or say why it must not run."""
    with transaction.atomic():
        job_id = Task.objects.filter(pk=task_id).values_list("job_id", flat=True).first()
        if job_id is not None:
            services.lock_job(job_id)
        task = Task.objects.select_for_update(of=("self",)).select_related("job", "job__project", "job__project__partner").filter(
            pk=task_id, site=Task.OURS).first()
        if task is None or task.status not in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            return None  # cancelled or finished meanwhile: a redelivery is harmless
        if task.status == TaskStatus.RUNNING:
            task.finish(TaskStatus.FAILED, retryable=True, error=_(
                "The worker running this task stopped (it may have been killed); the job goes on from its last "
                "checkpoint."))
        elif task.job.status != JobStatus.RUNNING:
            task.finish(TaskStatus.CANCELLED, error=task.job.error or _("The job stopped before this task started."))
        else:
            task.start()
        task.save()
        services.relay_task(task)
        if task.status != TaskStatus.RUNNING:
            services.refresh_status(task.job)
            return None
    return task


def _explain(exc: BaseException, task: Task) -> tuple[str, str]:
    """(status, plain words) for a failed run."""
    partner = task.job.project.partner.name
    if isinstance(exc, PeerFailed):
        if exc.peer == services.CANCEL_PARTY:
            return TaskStatus.CANCELLED, exc.peer_message
        return TaskStatus.CANCELLED, _("Stopped: %(partner)s reported a failure: %(error)s") % {
            "partner": partner, "error": exc.peer_message}
    if isinstance(exc, FederationTimeout):
        return TaskStatus.FAILED, _("%(partner)s's site did not answer in time (waited %(s)s s for %(what)s).") % {
            "partner": partner, "s": f"{exc.timeout:g}" if exc.timeout else "?", "what": exc.key}
    if isinstance(exc, FederationError):
        return TaskStatus.FAILED, _("Could not reach %(partner)s's site: %(error)s") % {"partner": partner, "error": exc}
    if isinstance(exc, (EngineError, artifacts.ArtifactMissing)):
        return TaskStatus.FAILED, str(exc)
    from .spec import SpecError

    if isinstance(exc, SpecError):
        return TaskStatus.FAILED, _("The job can no longer run here: %(reason)s") % {"reason": exc}
    return TaskStatus.FAILED, _("An internal error stopped this task (%(kind)s); the site's log has the details.") % {
        "kind": type(exc).__name__}


def _task_logger(task: Task) -> logging.Handler:
    path = log_path(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("engine", "jobs", "fedweb.proxy"):
        logging.getLogger(name).addHandler(handler)
    return handler


def _drop_logger(handler: logging.Handler) -> None:
    for name in ("engine", "jobs", "fedweb.proxy"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


@shared_task(name="jobs.run_task", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_task(task_id: int) -> None:
    task = _claim(task_id)
    if task is None:
        scheduler.advance_all()
        return
    heartbeat = _Heartbeat(task.pk)
    heartbeat.start()
    handler = _task_logger(task)
    tlog = logging.getLogger("jobs.task")
    tlog.setLevel(logging.INFO)
    tlog.info("attempt %s of node %s (%s %s, role %s) started", task.attempt, task.node, task.component, task.version, task.role)
    result, status, error = runner.Result(outputs={}, metrics={}), TaskStatus.SUCCEEDED, ""
    started = time.monotonic()
    try:
        result = runner.execute(task, _Progress(task.pk, task.job_id))
        if result.reused_from is not None:
            status = TaskStatus.REUSED
            tlog.info("reused the outputs of job %s (both sites still hold them)", result.reused_from.job_id)
    except BaseException as exc:  # noqa: BLE001 - every failure ends the task in plain words
        status, error = _explain(exc, task)
        (tlog.warning if status == TaskStatus.CANCELLED else tlog.exception)("%s", error)
        if not isinstance(exc, Exception):
            raise
    finally:
        heartbeat.stop.set()
        tlog.info("finished as %s after %.1f s", status, time.monotonic() - started)
        _drop_logger(handler)
    try:
        _finish(task.pk, status, error, result)
    except Exception:
        log.exception("could not record the end of task %s", task.pk)
        _finish(task.pk, TaskStatus.FAILED, _("The task finished but its results could not be recorded; the site's log "
                                              "has the details."), runner.Result(outputs={}, metrics={}))
    scheduler.advance_all()  # this job's next tasks, and any a freed slot now allows


def _finish(task_id: int, status: str, error: str, result: runner.Result) -> None:
    outputs = result.outputs
    with transaction.atomic():
        job = services.lock_job(Task.objects.filter(pk=task_id).values_list("job_id", flat=True).get())
        task = Task.objects.select_for_update(of=("self",)).select_related("job", "job__project__partner").get(pk=task_id)
        if task.status != TaskStatus.RUNNING:
            return  # the watchdog already ended it
        task.outputs = outputs
        series = (task.metrics or {}).get("series", {})
        if result.reused_from is not None:
            task.reused_from = result.reused_from
            series = (result.reused_from.metrics or {}).get("series", {})
        task.metrics = {"series": series, "final": _plain(result.metrics)}
        task.finish(status, error=error)
        task.save()
        if status in TaskStatus.done() and task.component in runner.TRAINERS and "model" in outputs:
            registry.register_trained(task, outputs, task.metrics["final"])
        services.relay_task(task)
        job.refresh_from_db()
        services.refresh_status(job)
    scheduler.push_job_id(task.job_id)
