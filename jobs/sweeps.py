"""Parameter sweeps: one job per value of a setting (or per pair of values of two), started from a
finished job, compared side by side.

Each job of a sweep is a rerun of the base job with one change, so every node upstream of the
changed setting is reused from the base job at both sites (``jobs/runner.py``'s reuse
agreement) and only the nodes the change affects run again.
"""

from __future__ import annotations

import itertools

from django.db import transaction
from django.utils.translation import gettext as _

from fedweb.api.errors import ServiceError
from fedweb.audit.services import record

from . import listing, results
from .models import Job, JobStatus, Sweep, Task

MAX_JOBS = 12  # a sweep is a comparison, not a search: more values than this belong in separate sweeps


def metrics_of(job: Job) -> dict:
    """The job's headline figures at this site: validation AUC and KS from its evaluation, if any."""
    task = next((t for t in job.tasks.all() if t.site == Task.OURS and t.component == "evaluation"), None)
    report = listing.evaluation_report((task.metrics or {}).get("final")) if task else None
    return {name: report.get(name) for name in ("auc", "ks") if (report or {}).get(name) is not None}


def create(*, user, job: Job, axes: list[dict], request=None) -> Sweep:
    """Start one job per combination of the axes' values ([{"node", "param", "values"}], one or two axes)."""
    if job.status != JobStatus.SUCCEEDED:
        raise ServiceError(_("A sweep starts from a job that succeeded, so that its first steps can be reused."),
                           code="not_succeeded", status_code=409)
    if not 1 <= len(axes) <= 2:
        raise ServiceError(_("Choose one setting to vary, or two for a small grid."), code="axes")
    combinations = list(itertools.product(*[axis["values"] for axis in axes]))
    if len(combinations) < 2:
        raise ServiceError(_("Give at least two values to compare."), code="too_few")
    if len(combinations) > MAX_JOBS:
        raise ServiceError(_("A sweep runs at most %(n)s jobs; give fewer values.") % {"n": MAX_JOBS}, code="too_many")
    names = " × ".join(f"{axis['param']}" for axis in axes)
    with transaction.atomic():
        sweep = Sweep.objects.create(project=job.project, base_job=job, name=f"{job.name} — {names}", axes=axes,
                                     created_by=user)
        for values in combinations:
            changes: dict = {}
            for axis, value in zip(axes, values):
                changes.setdefault(axis["node"], {"common": {}})["common"][axis["param"]] = value
            label = ", ".join(f"{axis['param']}={value}" for axis, value in zip(axes, values))
            rerun = results.rerun(user=user, job=job, changes=changes, request=request, name=f"{job.name} ({label})")
            Job.objects.filter(pk=rerun.pk).update(sweep=sweep)
        record("job_sweep", actor=user, request=request, obj=job.project,
               details={"sweep": str(sweep.pk), "job": str(job.pk), "axes": axes, "jobs": len(combinations)})
    return sweep


def comparison(sweep: Sweep) -> list[dict]:
    """One row per job: its values on the axes, status, AUC, KS and run time; the best AUC marked."""
    rows = []
    for job in sweep.jobs.prefetch_related("tasks").order_by("created_at"):
        values = []
        for axis in sweep.axes:
            node = next((n for n in job.spec.get("nodes", []) if n.get("id") == axis["node"]), {})
            values.append(((node.get("params") or {}).get("common") or {}).get(axis["param"]))
        rows.append({"job": job, "values": values, "metrics": metrics_of(job), "seconds": listing.job_seconds(job) if job.finished_at else None,
                     "best": False})
    scored = [r for r in rows if r["metrics"].get("auc") is not None]
    if scored:
        max(scored, key=lambda r: r["metrics"]["auc"])["best"] = True
    return rows
