"""What the job pages show, prepared from the models and services (the views stay thin): the
pipeline graph with each node's state at both sites, the estimate, which steps a retune reuses,
and which buttons this user may press."""

from __future__ import annotations

from django.utils.translation import gettext as _

from . import estimate, graph, listing, pipelines, services
from .models import Job, JobStatus, Task, TaskStatus


def titles_for(template: str, nodes: list[dict]) -> dict[str, str]:
    """Plain-words titles of a job's nodes: the pipeline's step titles, else the component's name."""
    steps = {s.id: s.title for s in pipelines.PIPELINES.get(template, [])}
    return {n["id"]: str(steps.get(n["id"]) or n.get("component") or n["id"]) for n in nodes}


def _graph_nodes(form) -> list[dict]:
    """The nodes the form would run, for drawing, even before its settings are valid."""
    if form.template == "score":
        return [{"id": "psi", "component": "psi", "inputs": {}},
                {"id": "score", "component": "score", "inputs": {"data": {"node": "psi", "output": "data"}}}]
    if form.retune:
        chosen = {f.step.id for f in form.steps}
    else:
        chosen = {f.step.id for f in form.steps if f.step.optional and f.included}
    on = pipelines.included(form.template, chosen)
    return [{"id": s.id, "component": s.component, "inputs": {} if s.id == "psi" else s.inputs(on)}
            for s in pipelines.steps_of(form.template) if s.id in on]


def _downstream(nodes: list[dict], changed: set[str]) -> set[str]:
    affected = set(changed)
    for node in nodes:  # nodes come after the nodes they read
        if any(u in affected for u in graph.upstream(node)):
            affected.add(node["id"])
    return affected


def preview(form) -> dict:
    """The pipeline graph, the estimate and (for a retune) the steps that will be reused."""
    nodes = _graph_nodes(form)
    result = {"graph": graph.layout(nodes, titles_for(form.template, nodes)), "estimate": None, "reused": set(),
              "problem": ""}
    spec = None
    if form.head.is_bound:
        if form.is_valid():
            spec = form.spec() if not form.retune else form.job.spec
        else:
            result["problem"] = _("Complete the form to see how long the job will take.")
    elif form.our_tables and form.partner_tables:
        if form.retune:
            spec = form.job.spec
        elif form.template in pipelines.PIPELINES:
            spec = pipelines.build(form.template, form.project, our_table=form.our_tables[0][0],
                                   partner_table=form.partner_tables[0][0])
    if spec is not None:
        if form.retune and form.head.is_bound:
            affected = _downstream(spec["nodes"], set(form.changes()))
        else:
            affected = {n["id"] for n in spec["nodes"]} if not form.retune else set()
        if form.retune:
            done = {t.node for t in form.job.tasks.all() if t.site == Task.OURS and t.is_done}
            result["reused"] = {n["id"] for n in spec["nodes"] if n["id"] not in affected and n["id"] in done}
        try:
            est = estimate.for_spec(spec, form.project)
        except Exception as exc:  # noqa: BLE001 - an estimate never stops anyone from starting a job
            result["problem"] = _("No estimate: %(reason)s") % {"reason": exc}
        else:
            if est is not None:
                seconds = _without(est, result["reused"])
                result["estimate"] = {"seconds": seconds * estimate.history_factor(), "shape": est.shape}
    return result


def _without(est, reused: set[str]) -> float:
    return est.seconds - sum(seconds for node, seconds in est.per_node.items() if node in reused)


def _reused_from_original(job: Job) -> set[str]:
    """For a rerun: the nodes upstream of every change, which the original job already ran."""
    original = job.rerun_of
    if original is None:
        return set()
    before = {n["id"]: n for n in original.spec.get("nodes", [])}
    changed = {n["id"] for n in job.spec.get("nodes", []) if before.get(n["id"]) != n}
    affected = _downstream(job.spec.get("nodes", []), changed)
    done = {t.node for t in original.tasks.all() if t.site == Task.OURS and t.is_done}
    return {n["id"] for n in job.spec.get("nodes", []) if n["id"] not in affected and n["id"] in done}


def remember_estimate(job: Job) -> None:
    """Keep the model's estimate with the job (without the history correction), to compare with
    the time it takes (``estimate.history_factor``)."""
    try:
        est = estimate.for_spec(job.spec, job.project)
    except Exception:  # noqa: BLE001 - see preview()
        return
    if est is not None:
        Job.objects.filter(pk=job.pk).update(estimate_seconds=_without(est, _reused_from_original(job)))


def launch(*, user, project, form, request=None) -> Job:
    """Start the job the form describes (``jobs.services.create_job``) and keep its estimate."""
    job = services.create_job(user=user, project=project, spec=form.spec(), name=form.head.cleaned_data["name"],
                              template=form.template, request=request)
    remember_estimate(job)
    return job


STATE_CLASS = {TaskStatus.WAITING: "waiting", TaskStatus.QUEUED: "queued", TaskStatus.RUNNING: "running",
               TaskStatus.SUCCEEDED: "succeeded", TaskStatus.REUSED: "reused", TaskStatus.FAILED: "failed",
               TaskStatus.CANCELLED: "cancelled"}


def _tables_used(job: Job) -> list[str]:
    """Names of this site's tables the job reads (what the partner's admin approves)."""
    from datasets.models import Dataset

    ours, _theirs = pipelines.tables_of(job.spec, job.project)
    names = list(Dataset.objects.filter(pk=ours).values_list("name", flat=True)) if ours else []
    return names


def _gate_decider(user, job) -> bool:
    check = getattr(services, "can_decide_gate", None)
    return bool(check and check(user, job))


def job_page(job: Job, user) -> dict:
    tasks = list(job.tasks.all())
    nodes = job.spec.get("nodes", [])
    titles = titles_for(job.template, nodes)
    layout = graph.layout(nodes, titles)
    by_node: dict[str, dict] = {n["id"]: {"id": n["id"], "title": titles[n["id"]], "component": n.get("component"),
                                          "ours": None, "partner": None} for n in nodes}
    for task in tasks:
        if task.node in by_node:
            by_node[task.node][task.site] = task
    for box in layout["boxes"]:
        box.ours = by_node[box.id]["ours"]
        box.partner = by_node[box.id]["partner"]
    est = job.estimate_seconds
    if est is None:
        try:
            computed = estimate.for_spec(job.spec, job.project)
            est = computed.seconds if computed else None
        except Exception:  # noqa: BLE001 - see preview()
            est = None
    if est is not None:
        est *= estimate.history_factor()
    terminal = job.status in JobStatus.terminal()
    writer = user.can_write and job.project.is_active
    psi = by_node.get("psi", {}).get("ours")
    return {
        "job": job, "project": job.project, "graph": layout, "nodes": list(by_node.values()),
        "estimate": est, "elapsed": listing.job_seconds(job), "titles": titles, "state_class": STATE_CLASS,
        "started_by": job.created_by_name or (job.created_by.get_username() if job.created_by else ""),
        "psi_metrics": (psi.metrics or {}).get("final", {}) if psi else {},
        "tables_used": _tables_used(job),
        "can_cancel": user.can_write and job.is_active and job.status != JobStatus.CANCELLING,
        "can_resume": writer and job.status in JobStatus.resumable(),
        "can_rerun": writer and terminal and job.template in pipelines.PIPELINES,
        "can_sweep": writer and job.status == JobStatus.SUCCEEDED and job.template in ("lr", "secureboost"),
        "can_approve": user.is_site_admin and job.status == JobStatus.APPROVAL and not job.we_initiated,
        "can_decide_gate": job.status == "paused" and _gate_decider(user, job),
        "terminal": terminal,
        "refusal": services.refusal_words(job),
        "status_words": {"task": dict(TaskStatus.choices), "job": dict(JobStatus.choices),
                         "seconds": _("{n} s"), "minutes": _("{n} min")},
    }


def axis_titles(sweep) -> list[str]:
    out = []
    for axis in sweep.axes:
        component = next((n.get("component") for n in (sweep.base_job.spec if sweep.base_job else {}).get("nodes", [])
                          if n.get("id") == axis["node"]), None)
        schema = pipelines.properties(component).get(axis["param"], {}) if component else {}
        out.append(_(schema.get("title")) if schema.get("title") else axis["param"])
    return out
