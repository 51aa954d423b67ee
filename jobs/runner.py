"""The one place the site calls the engine: a task's inputs in, its outputs out as artifacts.

The engine knows nothing of Django. This module turns a task into a component run:
our authorised dataset or an upstream node's artifacts become the component's inputs,
a federation context carries the node's data-plane session over ``ProxyTransport``
(or, for a node only this site plays, nothing at all), and the outputs become
content-addressed artifacts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings

from datasets import storage
from datasets.models import Dataset
from engine.federation.context import Context
from engine.federation.memory import InMemoryTransport

from . import artifacts
from . import spec as specs
from .models import Task, TaskStatus

# Components whose "model" output is a trained model worth a Model row.
TRAINERS = {"hetero_lr", "hetero_secureboost"}


def read_dataset(dataset_id: str, project) -> pd.DataFrame:
    """One of our datasets as a component reads it: typed, without the ignored columns."""
    from projects.models import ProjectTable

    table = ProjectTable.objects.live().filter(project=project, dataset_id=dataset_id).select_related("dataset").first()
    if table is None:
        raise artifacts.ArtifactMissing("the table is no longer authorised in this project")
    dataset: Dataset = table.dataset
    frame = pd.read_parquet(storage.path(dataset.storage_key, storage.DATA))
    ignored = [c["name"] for c in dataset.columns if c.get("role") == "ignored" and c["name"] in frame.columns]
    return frame.drop(columns=ignored)


def _upstream(job, source) -> Task | None:
    """Our task that produced a node input: in this job, or in the earlier job it names."""
    job_id = source.job if isinstance(source, specs.JobOutput) else job.pk
    return Task.objects.filter(job_id=job_id, site=Task.OURS, node=source.node).first()


def inputs_for(task: Task, node: specs.PlannedNode) -> dict[str, Any]:
    job = task.job
    inputs: dict[str, Any] = {}
    for port in node.component.inputs_for(task.role):
        source = node.inputs.get(port.name)
        if source is None:
            continue
        if isinstance(source, specs.TableInput):
            inputs[port.name] = read_dataset(source.by_role[task.role], job.project)
            continue
        upstream = _upstream(job, source)
        artifact_id = (upstream.outputs or {}).get(source.output) if upstream is not None else None
        if artifact_id is None:
            if port.optional:
                continue
            raise artifacts.ArtifactMissing(f"node {source.node!r} left no {source.output!r} output")
        inputs[port.name] = artifacts.load(artifact_id)
    return inputs


@dataclass
class Result:
    outputs: dict[str, str]  # port -> artifact id
    metrics: dict
    reused_from: Task | None = None


def cache_key(task: Task, node: specs.PlannedNode) -> str:
    """What makes a node's outputs what they are: component, version, role, parameters, inputs."""
    sources = {}
    for port, source in sorted(node.inputs.items()):
        if isinstance(source, specs.TableInput):
            if task.role in source.by_role:
                dataset = Dataset.objects.filter(pk=source.by_role[task.role]).first()
                sources[port] = {"dataset": source.by_role[task.role], "sha256": dataset.sha256 if dataset else "",
                                 "columns": dataset.columns if dataset else None}
        else:
            upstream = _upstream(task.job, source)
            if upstream is not None:
                sources[port] = (upstream.outputs or {}).get(source.output)
    material = {"component": node.component.name, "version": node.component.version, "role": task.role,
                "params": node.params.get(task.role), "inputs": sources}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _cached(task: Task, key: str) -> list[Task]:
    """Earlier finished runs of the same key in this project whose outputs are all still intact."""
    candidates = (Task.objects.filter(site=Task.OURS, cache_key=key, status__in=TaskStatus.done(),
                                      job__project=task.job.project).exclude(pk=task.pk).order_by("-finished_at")[:20])
    return [c for c in candidates if c.outputs and all(artifacts.exists(a) for a in c.outputs.values())]


def _agree_on_reuse(ctx: Context, mine: list[Task], two_party: bool) -> Task | None:
    """Reuse only outputs of the same earlier job at both sites, so the two halves match."""
    if not two_party:
        return mine[0] if mine else None
    rctx = ctx.sub("reuse")
    rctx.peer.send("offer", [str(t.job_id) for t in mine])
    theirs = rctx.peer.recv("offer")
    theirs = {str(j) for j in theirs} if isinstance(theirs, list) else set()
    return next((t for t in mine if str(t.job_id) in theirs), None)


# Components that write a checkpoint each epoch or tree and take it back as their "resume" input.
CHECKPOINTED = {"hetero_lr": "epoch", "hetero_secureboost": "tree"}


def checkpoint_dir(task: Task) -> Path:
    return Path(settings.ARTIFACT_DIR) / "checkpoints" / str(task.job_id) / task.node


def _agree_on_checkpoint(ctx: Context, task: Task, unit: str) -> dict | None:
    """The latest epoch (or tree) checkpointed at BOTH sites (a half-written or one-sided one is never used)."""
    from engine.ml import model_io

    folder = checkpoint_dir(task) / task.role
    mine = sorted(int(p.stem.split("-")[1]) for p in folder.glob(f"{unit}-*.json")) if folder.exists() else []
    cctx = ctx.sub("checkpoint")
    cctx.peer.send("offer", mine)
    theirs = cctx.peer.recv("offer")
    common = set(mine) & {e for e in theirs if isinstance(e, int)} if isinstance(theirs, list) else set()
    if not common:
        return None
    number = max(common)
    logging.getLogger("jobs.task").info("continuing from %s %s, checkpointed at both sites", unit, number)
    return model_io.load(folder / f"{unit}-{number:05d}.json")


def execute(task: Task, reporter: Callable[..., None] | None = None) -> Result:
    """Run our half of the task's node (or reuse an earlier run both sites still hold)."""
    from fedweb.proxy.transport import ProxyTransport

    job = task.job
    project = job.project
    plan = specs.validate(job.spec, project)  # authorisations may have ended since the job started
    node = plan.node(task.node)
    roles = specs.roles_of(project)
    parties = {roles[role]: role for role in node.roles}
    two_party = len(node.roles) > 1
    transport = ProxyTransport(project) if two_party else InMemoryTransport()
    ctx = Context(
        session_id=task.session_id, party_id=settings.SITE_PARTY_ID, role=task.role, parties=parties,
        transport=transport, namespace=node.component.name, default_timeout=settings.JOBS_RECV_TIMEOUT,
        reporter=reporter,
    )
    try:
        key = cache_key(task, node)
        Task.objects.filter(pk=task.pk).update(cache_key=key)
        reused = _agree_on_reuse(ctx, _cached(task, key), two_party)
        if reused is not None:
            return Result(outputs=dict(reused.outputs), metrics=(reused.metrics or {}).get("final", {}), reused_from=reused)
        inputs = inputs_for(task, node)
        params = dict(node.params[task.role])
        if node.component.name == "psi":
            params["min_overlap"] = max(params.get("min_overlap") or 0, _policy_min_overlap(project, node, task.role))
        if node.component.name in CHECKPOINTED:
            params["checkpoint_dir"] = str(checkpoint_dir(task))
            resume = _agree_on_checkpoint(ctx, task, CHECKPOINTED[node.component.name]) if task.attempt > 1 else None
            if resume is not None:
                inputs["resume"] = resume
        outputs = node.component.run(ctx, task.role, params, inputs)
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    stored = {}
    for port in node.component.outputs_for(task.role):
        value = outputs.get(port.name)
        if value is not None:
            stored[port.name] = artifacts.store(port.type, value).id
    metrics = outputs.get("metrics")
    return Result(outputs=stored, metrics=metrics if isinstance(metrics, dict) else {})


def _policy_min_overlap(project, node, role: str) -> int:
    """Our table's PSI rule: below this many shared ids, nothing is revealed (whatever the job asks)."""
    table = specs.psi_table(project, node, role)
    return table.psi_min_overlap if table is not None else 0


def params_of(task: Task) -> dict:
    plan = specs.validate(task.job.spec, task.job.project, check_tables=False)
    return plan.node(task.node).params.get(task.role, {})
