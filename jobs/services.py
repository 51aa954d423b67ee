"""What changes a job: create, accept or refuse, approve, cancel, resume, continue or stop
at a gate, and the status both sites converge on. Each change is one transaction that
also queues the event the partner must learn (``fedweb.proxy.events.emit``) and an audit
row; Celery work starts only after the commit (``jobs.scheduler``). The partner's side of
each event is in ``jobs/appliers.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.audit.services import record
from fedweb.proxy.events import emit
from projects.models import GateDecider, JobSession, ProjectStatus, RemoteTable
from projects.services import visible_projects
from projects.sessions import SessionRefused, check_psi_policy

from . import registry
from . import spec as specs
from .models import Job, JobStatus, Task, TaskStatus

CANCEL_PARTY = "cancel"  # the mailbox abort marker a local cancel leaves: wakes our own waits


def lock_job(job_id) -> Job | None:
    """Lock a job for a change, in the one order every job transaction takes — the partner's
    row (which the inbox and the outbox lock), then the job, then its tasks — so a worker
    finishing a task and the proxy applying the partner's news can never deadlock."""
    from projects.models import Partner

    partner_id = Job.objects.filter(pk=job_id).values_list("project__partner_id", flat=True).first()
    if partner_id is None:
        return None
    Partner.objects.select_for_update().filter(pk=partner_id).first()
    return Job.objects.select_for_update(of=("self",)).select_related("project", "project__partner").filter(pk=job_id).first()


def visible_jobs(user):
    return Job.objects.filter(project__in=visible_projects(user)).select_related("project", "project__partner")


def _require_writer(user, project) -> None:
    if not user.can_write:
        raise PermissionDenied(_("Viewers cannot run or change jobs."))
    if not visible_projects(user).filter(pk=project.pk).exists():
        raise PermissionDenied(_("You are not a member of this project."))


def _spec_error(exc: specs.SpecError) -> ServiceError:
    details = {}
    for err in exc.errors:
        key = ".".join(part for part in (err["node"], err["field"]) if part) or "spec"
        details.setdefault(key, []).append(err["message"])
    return ServiceError(_("The job cannot run: %(reason)s") % {"reason": exc}, code="invalid_spec", details=details)


def _make_tasks(job: Job, plan: specs.Plan) -> None:
    """Our task for each node we play a role in, and a mirror of the partner's."""
    roles = specs.roles_of(job.project)
    mine = specs.our_role(job.project)
    for node_id in plan.order:
        node = plan.node(node_id)
        for role in node.roles:
            Task.objects.create(
                job=job, node=node_id, site=Task.OURS if role == mine else Task.PARTNER, party=roles[role], role=role,
                component=node.component.name, version=node.component.version, attempt=job.attempt,
            )


def _open_sessions(job: Job, plan: specs.Plan, *, nodes=None, psi_checked: bool = False) -> None:
    """Data-plane sessions for the two-party nodes of this attempt (the proxy refuses any other)."""
    mine = specs.our_role(job.project)
    for task in job.tasks.filter(site=Task.OURS, status=TaskStatus.WAITING):
        node = plan.node(task.node)
        if len(node.roles) < 2 or (nodes is not None and task.node not in nodes):
            continue
        table = specs.psi_table(job.project, node, mine) if node.component.name == "psi" and psi_checked else None
        JobSession.objects.get_or_create(
            session_id=task.session_id,
            defaults={"project": job.project, "purpose": "psi" if table is not None else "job", "table": table,
                      "opened_by": job.initiator, "details": {"job": str(job.pk), "node": task.node, "attempt": task.attempt}},
        )


def _check_psi_policies(project, plan: specs.Plan) -> None:
    """Our PSI policy for each of our tables a PSI node reads (raises SessionRefused)."""
    mine = specs.our_role(project)
    theirs = "host" if mine == "guest" else "guest"
    for node in plan.nodes.values():
        if node.component.name != "psi":
            continue
        source = node.inputs["data"]
        table = specs.psi_table(project, node, mine)
        remote = RemoteTable.objects.filter(project=project, table_id=source.by_role[theirs]).first()
        reveal = node.params[mine].get("reveal", "both")
        wants = reveal == "both" if mine == "guest" else reveal in ("both", "guest")  # does the partner learn rows?
        try:
            check_psi_policy(table, partner_set_size=(remote.row_count or 0) if remote else 0, wants_intersection=wants)
            if node.params[mine].get("protocol") == "rr22" and mine == "host" and table.psi_min_overlap:
                # RR22 shows the guest the intersection before anyone counts it.
                raise SessionRefused(
                    f"the table's PSI rules reveal nothing below {table.psi_min_overlap} shared ids, and the RR22 "
                    "protocol shows the partner the intersection at once: use the ECDH protocol, or set the "
                    "table's smallest overlap to 0")
        except SessionRefused as exc:
            raise SessionRefused(f"node {node.id!r}: {exc.reason}", exc.status) from None


def _announce_job(job: Job, event_type: str, payload: dict, *, user=None, request=None, action: str | None = None,
                  details: dict | None = None):
    emit(job.project.partner, event_type, {"job_id": str(job.pk), **payload}, project=job.project)
    record(action or event_type.replace(".", "_"), actor=user, actor_name=None if user else job.project.partner.party_id,
           request=request, obj=job.project, details={"job": str(job.pk), "name": job.name, **(details or {})})


# --- The project's job settings ----------------------------------------------------------

def update_job_settings(*, user, project, approve_partner_jobs: bool | None = None, gate_decider: str | None = None,
                        auto_confirm_models: bool | None = None, request=None):
    """Our admin's choices for the project's jobs: whether the partner's jobs wait for approval here,
    who decides at a job's gates, and whether the partner's models are published here without a
    confirmation. Only settings given change; all are audited."""
    from projects.models import Partner, Project

    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins change a project's job settings."))
    if gate_decider is not None and gate_decider not in GateDecider.values:
        raise ServiceError(_("Choose who decides at a job's gates."), details={"gate_decider": [_("Unknown choice.")]})
    fields = ("approve_partner_jobs", "gate_decider", "auto_confirm_models")
    given = {"approve_partner_jobs": approve_partner_jobs, "gate_decider": gate_decider,
             "auto_confirm_models": auto_confirm_models}
    with transaction.atomic():
        Partner.objects.select_for_update().filter(pk=project.partner_id).first()  # the inbox's lock order
        project = Project.objects.select_for_update().get(pk=project.pk)
        before = {name: getattr(project, name) for name in fields}
        for name, value in given.items():
            if value is not None:
                setattr(project, name, value)
        after = {name: getattr(project, name) for name in fields}
        if after != before:
            project.save(update_fields=[*fields, "updated_at"])
            record("project_job_settings", actor=user, request=request, obj=project,
                   details={"before": before, "after": after})
    return project


# --- Creating a job ---------------------------------------------------------------------

def create_job(*, user, project, spec: dict, name: str = "", template: str = "", rerun_of: Job | None = None,
               request=None) -> Job:
    """Validate ``spec`` as this site sees it, then send it to the partner."""
    _require_writer(user, project)
    if not project.is_active:
        raise ServiceError(_("Jobs run in an active project only."), code="wrong_state", status_code=409)
    try:
        plan = specs.validate(spec, project)
    except specs.SpecError as exc:
        raise _spec_error(exc) from None
    try:
        _check_psi_policies(project, plan)
    except SessionRefused as exc:
        raise ServiceError(_("This site's PSI rules refuse the job: %(reason)s") % {"reason": exc.reason},
                           code="psi_policy", status_code=409) from None
    unpublished = registry.unpublished_models(project, plan)
    if unpublished:
        raise ServiceError(unpublished, code="not_published", status_code=409)
    with transaction.atomic():
        job = Job.objects.create(
            project=project, name=(name or template or _("Job"))[:200], template=template[:64], spec=spec,
            initiator=settings.SITE_PARTY_ID, created_by=user, created_by_name=user.get_username(), rerun_of=rerun_of,
            gate_decider=project.gate_decider,
        )
        registry.name_job(job)
        job.save(update_fields=["model_name", "model_number"])
        _make_tasks(job, plan)
        # Open now: the partner starts as soon as it accepts, possibly before its answer reaches us.
        _open_sessions(job, plan, psi_checked=True)
        _announce_job(job, "job.submit", {"name": job.name, "spec": spec, "template": job.template,
                                          "created_by": user.get_username(), "gate_decider": job.gate_decider,
                                          "rerun_of": str(rerun_of.pk) if rerun_of else None,
                                          "model_name": job.model_name, "model_number": job.model_number},
                      user=user, request=request, action="job_create")
    return job


# --- The partner's job arrives -------------------------------------------------------------

def receive_job(*, partner, project, payload: dict) -> Job:
    """Our side of a partner's ``job.submit``: validate against OUR authorisations, then
    accept, hold for our admin's approval, or refuse — never on the initiator's word."""
    spec = payload.get("spec")
    job = Job(
        id=payload["job_id"], project=project, name=str(payload.get("name") or "")[:200] or _("Job"),
        template=str(payload.get("template") or "")[:64], spec=spec if isinstance(spec, dict) else {},
        initiator=partner.party_id, created_by_name=str(payload.get("created_by") or "")[:150],
        gate_decider=str(payload.get("gate_decider") or GateDecider.INITIATOR)[:16],
    )
    rerun = payload.get("rerun_of")
    if rerun:
        job.rerun_of = Job.objects.filter(pk=rerun, project=project).first()
    registry.name_received_job(job, payload)
    try:
        plan = specs.validate(spec, project)
        _check_psi_policies(job.project, plan)
        reason = _gate_rule_differs(job, plan) or registry.unpublished_models(project, plan)
    except (specs.SpecError, SessionRefused) as exc:
        reason = str(exc) if isinstance(exc, specs.SpecError) else exc.reason
    if reason:
        job.status, job.error, job.finished_at = JobStatus.REFUSED, reason, timezone.now()
        job.save(force_insert=True)
        _announce_job(job, "job.refuse", {"reason": reason}, action="job_refuse", details={"reason": reason})
        return job
    job.save(force_insert=True)
    _make_tasks(job, plan)
    if project.approve_partner_jobs:
        job.status = JobStatus.APPROVAL
        job.save(update_fields=["status", "updated_at"])
        record("job_received", actor_name=partner.party_id, obj=project,
               details={"job": str(job.pk), "name": job.name, "needs_approval": True})
        return job
    return _accept(job, plan)


def _decider_words(decider: str) -> str:
    return {GateDecider.INITIATOR: _("someone who can run jobs at the site that started the job"),
            GateDecider.PARTNER_ADMIN: _("a site admin of the other site")}[decider]


def _gate_rule_differs(job: Job, plan: specs.Plan) -> str:
    """Why a gated job cannot run under the rule it names ("" when it can): who decides at a gate
    must be what both sites chose for the project, or each would let a different side decide.
    The words are read at the initiator's site too, so they name this site rather than say "here"."""
    if job.gate_decider not in GateDecider.values:
        return _("The job names an unknown rule for who decides at its gates.")
    if plan.pause_after and job.gate_decider != job.project.gate_decider:
        return _("At %(site)s the project lets %(ours)s decide at a job's gates, but this job lets %(theirs)s "
                 "decide. The admins of both sites can choose the same in the project's settings.") % {
            "site": settings.SITE_NAME, "ours": _decider_words(job.project.gate_decider),
            "theirs": _decider_words(job.gate_decider)}
    return ""


def _accept(job: Job, plan: specs.Plan, *, user=None, request=None) -> Job:
    _open_sessions(job, plan, psi_checked=True)
    job.status, job.accepted_at = JobStatus.RUNNING, timezone.now()
    job.save(update_fields=["status", "accepted_at", "approved_by", "updated_at"])
    _announce_job(job, "job.accept", {}, user=user, request=request, action="job_accept")
    from .scheduler import advance_on_commit

    advance_on_commit(job)
    return job


def approve(*, user, job: Job, request=None) -> Job:
    """Our admin lets a partner's job run on our hardware."""
    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins approve the partner's jobs."))
    with transaction.atomic():
        job = lock_job(job.pk)
        if job.status != JobStatus.APPROVAL:
            raise ServiceError(_("This job is not waiting for approval."), code="wrong_state", status_code=409)
        try:
            plan = specs.validate(job.spec, job.project)  # our authorisations may have changed since
            _check_psi_policies(job.project, plan)
        except (specs.SpecError, SessionRefused) as exc:
            raise ServiceError(_("The job can no longer run here: %(reason)s") % {"reason": exc}, code="invalid_spec",
                               status_code=409) from None
        differs = _gate_rule_differs(job, plan)  # the project's setting may have changed since
        if differs:
            raise ServiceError(_("The job can no longer run here: %(reason)s") % {"reason": differs},
                               code="gate_rule", status_code=409)
        job.approved_by = user
        return _accept(job, plan, user=user, request=request)


def refuse(*, user, job: Job, reason: str = "", request=None) -> Job:
    if not user.is_site_admin:
        raise PermissionDenied(_("Only site admins refuse the partner's jobs."))
    with transaction.atomic():
        job = lock_job(job.pk)
        if job.status != JobStatus.APPROVAL:
            raise ServiceError(_("This job is not waiting for approval."), code="wrong_state", status_code=409)
        reason = reason.strip() or _("No reason was given.")
        job.finish(JobStatus.REFUSED, error=reason, party=settings.SITE_PARTY_ID)
        job.refused_by = user.get_username()
        job.save()
        job.tasks.filter(status__in=TaskStatus.active()).update(status=TaskStatus.CANCELLED, finished_at=timezone.now())
        # Who refused travels with the reason: the initiator's analyst sees both.
        _announce_job(job, "job.refuse", {"reason": reason, "by": job.refused_by}, user=user, request=request,
                      action="job_refuse", details={"reason": reason})
    return job


def refusal_words(job: Job) -> str:
    """Who refused the job and why, in plain words, the same at both sites ("" unless it was refused)."""
    if job.status != JobStatus.REFUSED:
        return ""
    here = job.failed_party in ("", settings.SITE_PARTY_ID)
    site = settings.SITE_NAME if here else job.project.partner.name
    if job.refused_by:
        return _("%(user)s at %(site)s refused the job: %(reason)s") % {
            "user": job.refused_by, "site": site, "reason": job.error}
    # Nobody refused it by hand: the site's own checks of the spec did.
    return _("%(site)s refused the job: %(reason)s") % {"site": site, "reason": job.error}


# --- Cancel and resume -----------------------------------------------------------------------

def cancel(*, user, job: Job, request=None) -> Job:
    _require_writer(user, job.project)
    with transaction.atomic():
        job = lock_job(job.pk)
        if job.status not in JobStatus.active():
            raise ServiceError(_("Only a job that is still running can be cancelled."), code="wrong_state", status_code=409)
        reason = _("Cancelled by %(user)s at %(site)s.") % {"user": user.get_username(), "site": settings.SITE_NAME}
        stop_job(job, reason=reason, party=settings.SITE_PARTY_ID)
        _announce_job(job, "job.cancel", {"reason": reason}, user=user, request=request, action="job_cancel")
    return job


def stop_job(job: Job, *, reason: str, party: str) -> None:
    """Stop our half: waiting tasks end now, running ones are woken by an abort in their session."""
    from fedweb.proxy import mailbox

    now = timezone.now()
    # A job that ran (or waits at a gate) has tasks at both sites: cancelled once the partner confirmed.
    started = (JobStatus.RUNNING, JobStatus.PAUSED, JobStatus.CANCELLING)
    job.status = JobStatus.CANCELLING if job.status in started else JobStatus.CANCELLED
    if not job.error:
        job.error, job.failed_party = reason[:4000], party
    if job.status == JobStatus.CANCELLED:
        job.finished_at = now
    job.save()
    for task in job.tasks.filter(site=Task.OURS, status__in=TaskStatus.active()):
        if task.status == TaskStatus.RUNNING:
            mailbox.record_abort(task.session_id, CANCEL_PARTY, reason)
        else:
            task.finish(TaskStatus.CANCELLED, error=reason)
            task.save()
            relay_task(task)
    if job.project.status in ProjectStatus.closed():
        # No word can come from the partner any more; its site stops its half on the same revocation.
        job.tasks.filter(site=Task.PARTNER, status__in=TaskStatus.active()).update(
            status=TaskStatus.CANCELLED, error=reason[:4000], finished_at=now)
    refresh_status(job)


def stop_jobs(project, *, reason: str, table_id: str | None = None) -> int:
    """Stop the project's active jobs (those reading ``table_id``, when given): a revocation or a
    suspension ends the work it affects at once, at both sites."""
    stopped = 0
    for job_id in Job.objects.filter(project=project, status__in=JobStatus.active()).values_list("pk", flat=True):
        job = lock_job(job_id)
        if job is None or job.status not in JobStatus.active():
            continue
        if table_id is not None and table_id not in _tables_of(job):
            continue
        stop_job(job, reason=reason, party=settings.SITE_PARTY_ID)
        stopped += 1
    return stopped


def _tables_of(job: Job) -> set[str]:
    """Every dataset id (ours and the partner's) the job's spec reads."""
    tables = set()
    for node in (job.spec or {}).get("nodes", []):
        for source in (node.get("inputs") or {}).values():
            if isinstance(source, dict) and isinstance(source.get("table"), dict):
                tables.update(str(v) for v in source["table"].values())
    return tables


def resume(*, user, job: Job, request=None) -> Job:
    """Run a failed or cancelled job again in place: finished nodes are kept, the rest get a new attempt."""
    _require_writer(user, job.project)
    if not job.we_initiated:
        raise ServiceError(_("Only the site that started the job can resume it."), code="wrong_state", status_code=409)
    if not job.project.is_active:
        raise ServiceError(_("Jobs run in an active project only."), code="wrong_state", status_code=409)
    with transaction.atomic():
        job = lock_job(job.pk)
        if job.status not in JobStatus.resumable():
            raise ServiceError(_("Only a failed or cancelled job can be resumed."), code="wrong_state", status_code=409)
        try:
            _next_attempt(job, user=user, request=request)
        except specs.SpecError as exc:
            raise _spec_error(exc) from None
    return job


def auto_resume(job_id) -> None:
    """A worker was lost: start the next attempt without anyone asking (from the checkpoints)."""
    with transaction.atomic():
        job = lock_job(job_id)
        if job.status != JobStatus.FAILED or not job.project.is_active:
            return
        _next_attempt(job, automatic=True)


def _next_attempt(job: Job, *, user=None, request=None, automatic: bool = False) -> None:
    """The initiator's side of a resume: a new attempt here, then ask the partner for its own."""
    plan = specs.validate(job.spec, job.project)
    nodes = _restart(job)
    _open_sessions(job, plan, nodes=nodes)
    job.status = JobStatus.PENDING
    job.save()
    details = {"attempt": job.attempt, "nodes": sorted(nodes), **({"automatic": True} if automatic else {})}
    _announce_job(job, "job.resume", {"attempt": job.attempt}, user=user, request=request, action="job_resume",
                  details=details)


def _restart(job: Job) -> set[str]:
    """A new attempt for every node not finished at both sites; returns those nodes."""
    job.attempt += 1
    job.error = job.failed_party = job.failed_node = ""
    job.finished_at = None
    # The gates someone already chose to go on after stay passed; one that got no decision pauses again.
    job.paused_after, job.paused_at = "", None
    finished = {}
    for task in job.tasks.all():
        finished.setdefault(task.node, True)
        finished[task.node] &= task.is_done
    nodes = {node for node, done in finished.items() if not done}
    for task in job.tasks.filter(node__in=nodes):
        task.status, task.attempt, task.error, task.progress, task.stage = TaskStatus.WAITING, job.attempt, "", 0.0, ""
        task.retryable = False
        task.started_at = task.finished_at = task.queued_at = None
        task.save()
    return nodes


def accept_resume(job: Job, attempt: int) -> None:
    """Our side of the initiator's ``job.resume`` (called by the applier)."""
    plan = specs.validate(job.spec, job.project)
    if attempt != job.attempt + 1:
        raise ValueError(f"attempt {attempt} does not follow {job.attempt}")
    nodes = _restart(job)
    _check_psi_policies(job.project, plan)
    _open_sessions(job, plan, nodes=nodes, psi_checked=True)
    job.status, job.accepted_at = JobStatus.RUNNING, timezone.now()
    job.save()
    _announce_job(job, "job.accept", {"attempt": job.attempt}, action="job_accept")
    from .scheduler import advance_on_commit

    advance_on_commit(job)


# --- Status -----------------------------------------------------------------------------------

def relay_task(task: Task) -> None:
    """Tell the partner where our half of a node stands (inside the transaction that changed it)."""
    if task.site != Task.OURS:
        return
    project = task.job.project
    if project.status not in (ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED):
        return
    emit(project.partner, "job.task", {
        "job_id": str(task.job_id), "node": task.node, "attempt": task.attempt, "status": task.status,
        "error": task.error[:2000], "stage": task.stage[:200], "progress": task.progress, "retryable": task.retryable,
        "reused_job": str(task.reused_from.job_id) if task.reused_from_id else "",
        "metrics": _summary(task.metrics),
    }, project=project)


def _summary(metrics: dict) -> dict:
    """Only figures (never tables or ids) go to the partner, and not too many."""
    return {k: v for k, v in list((metrics or {}).get("final", {}).items())[:50] if isinstance(v, (int, float, str, bool))}


def refresh_status(job: Job) -> None:
    """The job's status from both sites' tasks: the same rule runs at both sites. A failure wins,
    then the end (every task finished), then a gate (``pause_at_gate``)."""
    if job.status in JobStatus.terminal() or job.status in (JobStatus.PENDING, JobStatus.APPROVAL):
        return
    tasks = list(job.tasks.all())
    failed = next((t for t in sorted(tasks, key=lambda t: t.finished_at or timezone.now()) if t.status == TaskStatus.FAILED), None)
    ours_stopped = all(t.status in TaskStatus.terminal() for t in tasks if t.site == Task.OURS)
    # A cancel is shown only once the partner confirmed its half stopped; a failure as soon as
    # ours has (a partner that vanished cannot confirm anything; its news is applied when it is back).
    if all(t.status in TaskStatus.terminal() for t in tasks) or (failed is not None and ours_stopped):
        if failed is not None:
            job.finish(JobStatus.FAILED, error=failed.error or _("A task failed."), party=failed.party, node=failed.node)
            if failed.retryable and job.we_initiated and job.attempt <= settings.JOBS_AUTO_RESUMES:
                job_id = job.pk
                transaction.on_commit(lambda: auto_resume(job_id))
        elif job.status == JobStatus.CANCELLING or any(t.status == TaskStatus.CANCELLED for t in tasks):
            job.finish(JobStatus.CANCELLED)
        else:
            job.finish(JobStatus.SUCCEEDED)
        job.save()
        _close_sessions(job)
        return
    if failed is not None and job.status in (JobStatus.RUNNING, JobStatus.PAUSED):
        # One half failed: stop ours (the other half's waits are woken by its abort).
        job.error, job.failed_party, job.failed_node = failed.error[:4000], failed.party, failed.node
        job.save()
        stop_job(job, reason=_("Stopped because a task failed: %(error)s") % {"error": failed.error}, party=failed.party)
        return
    pause_at_gate(job)


def _close_sessions(job: Job) -> None:
    from fedweb.proxy import mailbox

    for session in JobSession.objects.filter(project=job.project, details__job=str(job.pk), closed_at__isnull=True):
        session.closed_at = timezone.now()
        session.save(update_fields=["closed_at"])
        transaction.on_commit(lambda sid=session.session_id: mailbox.drop_session(sid))


# --- Gates ------------------------------------------------------------------------------------
#
# A spec's ``pause_after`` names nodes after which the job waits for a person. Each site pauses
# the job by itself from the same facts (every task of the gated node done, ours and the
# partner's mirror), and holds back every node after it until the decision arrives. Who decides
# is the project's ``gate_decider``, fixed on the job when both sites accepted it.

def open_gates(job: Job) -> set[str]:
    """The gated nodes nobody has decided on yet: nothing after them may start."""
    return set((job.spec or {}).get("pause_after") or []) - set(job.gates_passed or [])


def pause_at_gate(job: Job) -> bool:
    """Pause a running job whose gated node has finished at both sites; True if it paused now."""
    if job.status != JobStatus.RUNNING:
        return False
    waiting = [node for node in (job.spec or {}).get("pause_after") or [] if node not in (job.gates_passed or [])]
    if not waiting:
        return False
    tasks = list(job.tasks.filter(node__in=waiting))
    for node in waiting:
        halves = [t for t in tasks if t.node == node]
        if halves and all(t.is_done for t in halves):
            job.status, job.paused_after, job.paused_at = JobStatus.PAUSED, node, timezone.now()
            job.save(update_fields=["status", "paused_after", "paused_at", "updated_at"])
            record("job_paused", actor_name=settings.SITE_PARTY_ID, obj=job.project,
                   details={"job": str(job.pk), "name": job.name, "node": node, "overlap": gate_overlap(job)})
            from .scheduler import push_job

            push_job(job)
            return True
    return False


def gate_overlap(job: Job) -> int | None:
    """The overlap size the job's PSI reported. Whatever the PSI's ``reveal``, both sites learn
    the size (only the rows are revealed or not), so it is in our own task's figures."""
    nodes = [n.get("id") for n in (job.spec or {}).get("nodes", []) if n.get("component") == "psi"]
    nodes.sort(key=lambda node: node != job.paused_after)  # the gated PSI first, if it is one
    tasks = {(t.node, t.site): t for t in job.tasks.filter(node__in=nodes)}
    for node in nodes:
        for site in (Task.OURS, Task.PARTNER):
            task = tasks.get((node, site))
            size = ((task.metrics or {}).get("final") or {}).get("intersection_size") if task and task.is_done else None
            if isinstance(size, int) and not isinstance(size, bool):
                return size
    return None


def gate_decider_party(job: Job) -> str:
    """The party id of the site where the person who decides at this job's gates works."""
    if job.gate_decider == GateDecider.PARTNER_ADMIN:
        return job.project.partner.party_id if job.we_initiated else settings.SITE_PARTY_ID
    return job.initiator


def _why_not_decider(user, job: Job) -> str:
    """Why ``user`` may not decide at this job's gates ("" if they may)."""
    if gate_decider_party(job) != settings.SITE_PARTY_ID:
        return _("At this job's gates %(site)s decides, not this site.") % {"site": job.project.partner.name}
    if job.gate_decider == GateDecider.PARTNER_ADMIN:
        if not user.is_site_admin:
            return _("Only a site admin decides at the gates of the partner's jobs.")
        return ""
    if not user.can_write:
        return _("Viewers cannot decide at a job's gate.")
    if not visible_projects(user).filter(pk=job.project_id).exists():
        return _("You are not a member of this project.")
    return ""


def can_decide_gate(user, job: Job) -> bool:
    """Whether ``user`` may continue or stop this job now: it waits at a gate and they are its decider."""
    return job.status == JobStatus.PAUSED and not _why_not_decider(user, job)


def gate_summary(job: Job, user=None) -> dict | None:
    """What a paused job shows about its gate (None when it is not paused)."""
    if job.status != JobStatus.PAUSED:
        return None
    return {"node": job.paused_after, "overlap": gate_overlap(job), "paused_at": job.paused_at,
            "decider": job.gate_decider, "decider_party": gate_decider_party(job),
            "can_decide": bool(user is not None and can_decide_gate(user, job))}


def _locked_at_gate(user, job: Job) -> Job:
    why = _why_not_decider(user, job)
    if why:
        raise PermissionDenied(why)
    job = lock_job(job.pk)
    if job.status != JobStatus.PAUSED:
        raise ServiceError(_("This job is not waiting for a decision."), code="wrong_state", status_code=409)
    return job


def pass_gate(job: Job) -> str:
    """Both sites' side of a decision to go on: the gate stays passed (a resume does not ask
    again) and the nodes after it may start. Returns the gated node."""
    node = job.paused_after
    job.gates_passed = [*(job.gates_passed or []), node]
    job.status, job.paused_after, job.paused_at = JobStatus.RUNNING, "", None
    job.save(update_fields=["gates_passed", "status", "paused_after", "paused_at", "updated_at"])
    from .scheduler import advance_on_commit

    advance_on_commit(job)
    return node


def continue_job(*, user, job: Job, request=None) -> Job:
    """The decider lets a paused job go on: here now, at the partner when its ``job.continue`` arrives."""
    with transaction.atomic():
        job = _locked_at_gate(user, job)
        if not job.project.is_active:
            raise ServiceError(_("Jobs run in an active project only."), code="wrong_state", status_code=409)
        overlap = gate_overlap(job)
        node = pass_gate(job)
        _announce_job(job, "job.continue", {"node": node, "attempt": job.attempt, "by": user.get_username()},
                      user=user, request=request, action="job_gate_continue",
                      details={"node": node, "overlap": overlap})
    return job


def stop_at_gate(*, user, job: Job, reason: str = "", request=None) -> Job:
    """The decider ends a paused job: cancelled at both sites, with who and why as its error.

    The partner learns it as a cancel, which either site may send at any time anyway."""
    reason = (reason or "").strip()[:2000]
    with transaction.atomic():
        job = _locked_at_gate(user, job)
        node = job.paused_after
        component = next((n.get("component") for n in job.spec.get("nodes", []) if n.get("id") == node), "")
        who = {"user": user.get_username(), "site": settings.SITE_NAME, "node": node, "reason": reason}
        if component == "psi":
            words = (_("Stopped after the overlap by %(user)s at %(site)s: %(reason)s") if reason
                     else _("Stopped after the overlap by %(user)s at %(site)s.")) % who
        else:
            words = (_("Stopped after %(node)s by %(user)s at %(site)s: %(reason)s") if reason
                     else _("Stopped after %(node)s by %(user)s at %(site)s.")) % who
        stop_job(job, reason=words, party=settings.SITE_PARTY_ID)
        _announce_job(job, "job.cancel", {"reason": words, "gate": node}, user=user, request=request,
                      action="job_gate_stop", details={"node": node, "reason": reason, "overlap": gate_overlap(job)})
    return job
