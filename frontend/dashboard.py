"""The home page's blocks: what needs the signed-in user now.

Each block reads only what the user may see (``visible_jobs``, ``visible_projects``), so a user who is
not in a project learns nothing of it here either. Decisions are offered only to whoever can take them:
a partner's job waiting for approval and a project invitation to site admins, a job paused at a gate to
whoever decides at its gates (the initiating site's analysts, or the other site's admins, as the project
chose).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Prefetch
from django.utils import timezone

from jobs import listing
from jobs import services as job_services
from jobs.models import Job, JobStatus, Task, TaskStatus
from jobs.services import visible_jobs
from projects.models import ProjectStatus, ProjectTable, RemoteTable
from projects.services import visible_projects

RECENT_DAYS = 7
RECENT_LIMIT = 10
EXPIRY_DAYS = 14
RUNNING_LIMIT = 10
# Compared as a plain string: the gate status may not exist in JobStatus on every version of the site.
PAUSED = "paused"


@dataclass
class RunningJob:
    job: Job
    progress: float  # 0..1, the mean over this site's tasks
    stage: str  # what the running task is doing, e.g. "lr: epoch 3 of 10"
    at_partner: bool  # nothing of ours runs right now: the stage is the partner's


@dataclass
class ExpiringTable:
    name: str
    project: object
    expires_at: dt.datetime
    ours: bool  # our table (our admin renews it) or the partner's (their admin does)


@dataclass
class Dashboard:
    running: list[RunningJob] = field(default_factory=list)
    running_more: bool = False
    approvals: list[Job] = field(default_factory=list)
    paused: list[Job] = field(default_factory=list)
    invitations: list = field(default_factory=list)
    recent: list[listing.JobRow] = field(default_factory=list)
    expiring: list[ExpiringTable] = field(default_factory=list)

    @property
    def decisions(self) -> bool:
        return bool(self.approvals or self.paused or self.invitations)

    @property
    def anything(self) -> bool:
        return bool(self.running or self.decisions or self.recent or self.expiring)


def _progress(job: Job) -> RunningJob:
    tasks = list(job.tasks.all())  # prefetched
    ours = [t for t in tasks if t.site == Task.OURS]
    progress = sum(min(max(t.progress, 0.0), 1.0) for t in ours) / len(ours) if ours else 0.0
    running = next((t for t in ours if t.status == TaskStatus.RUNNING), None)
    at_partner = running is None
    if running is None:
        running = next((t for t in tasks if t.site == Task.PARTNER and t.status == TaskStatus.RUNNING), None)
    stage = ""
    if running is not None:
        stage = f"{running.node}: {running.stage}" if running.stage else running.node
    return RunningJob(job=job, progress=progress, stage=stage, at_partner=at_partner and running is not None)


def decides_gate(user, job: Job) -> bool:
    """Whether ``user`` decides if a job paused at a gate goes on. The jobs layer's own rule when it has one;
    otherwise the project's rule as the job carries it (the site that started it, by default)."""
    rule = getattr(job_services, "can_decide_gate", None)
    if rule is not None:
        return bool(rule(user, job))
    if getattr(job, "gate_decider", "initiator") == "partner_admin":
        return user.is_site_admin and not job.we_initiated
    return user.can_write and job.we_initiated


def running_jobs(user) -> tuple[list[RunningJob], bool]:
    tasks = Task.objects.only("job_id", "node", "site", "status", "progress", "stage").order_by("id")
    # A job waiting for the partner to accept it is under way too: its starter wants to see it here.
    jobs = list(visible_jobs(user).filter(status__in=(JobStatus.PENDING, JobStatus.RUNNING, JobStatus.CANCELLING))
                .prefetch_related(Prefetch("tasks", queryset=tasks)).order_by("-accepted_at", "-created_at")
                [:RUNNING_LIMIT + 1])
    return [_progress(job) for job in jobs[:RUNNING_LIMIT]], len(jobs) > RUNNING_LIMIT


def recent_jobs(user, now: dt.datetime) -> list[listing.JobRow]:
    jobs = (visible_jobs(user).select_related("created_by")
            .filter(status__in=JobStatus.terminal(), finished_at__gte=now - dt.timedelta(days=RECENT_DAYS))
            .order_by("-finished_at")[:RECENT_LIMIT])
    return listing.rows(jobs)


def expiring_tables(user, now: dt.datetime) -> list[ExpiringTable]:
    """Tables whose authorisation ends within EXPIRY_DAYS in the open projects the user can see: jobs on
    them will be refused once it has ended."""
    projects = visible_projects(user).exclude(status__in=ProjectStatus.closed())
    soon = now + dt.timedelta(days=EXPIRY_DAYS)
    ours = (ProjectTable.objects.live().filter(project__in=projects, expires_at__lte=soon)
            .select_related("dataset", "project"))
    theirs = (RemoteTable.objects.filter(project__in=projects, is_authorised=True, expires_at__gt=now,
                                         expires_at__lte=soon).select_related("project"))
    tables = [ExpiringTable(t.dataset.name, t.project, t.expires_at, True) for t in ours]
    tables += [ExpiringTable(t.name, t.project, t.expires_at, False) for t in theirs]
    return sorted(tables, key=lambda t: t.expires_at)


def for_user(user) -> Dashboard:
    now = timezone.now()
    board = Dashboard()
    board.running, board.running_more = running_jobs(user)
    if user.is_site_admin:
        board.approvals = list(visible_jobs(user).filter(status=JobStatus.APPROVAL).order_by("created_at"))
        board.invitations = list(visible_projects(user).filter(status=ProjectStatus.INVITED).order_by("created_at"))
    paused = visible_jobs(user).filter(status=PAUSED).order_by("updated_at")
    board.paused = [job for job in paused if decides_gate(user, job)]
    board.recent = recent_jobs(user, now)
    board.expiring = expiring_tables(user, now)
    return board
