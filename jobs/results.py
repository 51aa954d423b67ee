"""Reading what a job produced: an output table as CSV, a task's log, reruns with changes."""

from __future__ import annotations

import copy

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from datasets.ingest.export import iter_csv_bytes
from datasets.services import download_filename
from fedweb.api.errors import ServiceError
from fedweb.audit.services import record

from . import artifacts, services
from .models import Job, Task
from .tasks import log_path


def output_table(*, user, job: Job, node: str, port: str = "data", request=None):
    """(file name, CSV chunks) of one of our tasks' table outputs, formula-safe like dataset downloads.

    A PSI output exists at our site only if the tables' policies revealed the overlap to
    us, so what can be downloaded here is exactly what we were allowed to learn.
    """
    if not user.can_write:
        raise PermissionDenied(_("Viewers cannot download job outputs."))
    task = job.tasks.filter(site=Task.OURS, node=node).first()
    if task is None or not task.is_done:
        raise ServiceError(_("This node has no finished output at this site."), code="not_ready", status_code=409)
    artifact_id = (task.outputs or {}).get(port)
    if artifact_id is None:
        raise ServiceError(_("This node has no %(port)s output at this site.") % {"port": port}, code="no_output",
                           status_code=404)
    artifact = artifacts.Artifact.objects.get(pk=artifact_id)
    if artifact.kind != "table":
        raise ServiceError(_("Only tables can be downloaded as CSV."), code="not_a_table")
    if not artifacts.exists(artifact_id):
        raise ServiceError(_("The output is missing from the artifact store."), code="missing", status_code=410)
    path = artifacts.path_of(artifact.id, artifact.kind)
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    numeric = [f.name for f in schema if str(f.type).startswith(("int", "uint", "float", "double"))]
    record("job_output_download", actor=user, request=request, obj=job.project,
           details={"job": str(job.pk), "node": node, "port": port, "artifact": artifact_id, "rows": artifact.rows})
    return download_filename(f"{job.name}-{node}-{port}"), iter_csv_bytes(path, numeric_columns=numeric)


def task_log(job: Job, node: str, attempt: int | None = None) -> str:
    task = job.tasks.filter(site=Task.OURS, node=node).first()
    if task is None:
        raise ServiceError(_("This site has no task for this node."), code="not_found", status_code=404)
    parts = []
    for n in range(1, task.attempt + 1) if attempt is None else [attempt]:
        task.attempt = n
        path = log_path(task)
        if path.exists():
            parts.append(f"--- attempt {n} ---\n" + path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def rerun(*, user, job: Job, changes: dict, request=None, name: str | None = None) -> Job:
    """A new job with the same spec but ``changes`` ({node: {"common"|"guest"|"host": {param: value}}});
    nodes whose inputs and parameters did not change are reused from this one."""
    spec = copy.deepcopy(job.spec)
    nodes = {n.get("id"): n for n in spec.get("nodes", [])}
    for node_id, scopes in (changes or {}).items():
        if node_id not in nodes or not isinstance(scopes, dict):
            raise ServiceError(_("There is no node %(node)s in this job.") % {"node": node_id}, details={node_id: ["Unknown node."]})
        params = nodes[node_id].setdefault("params", {})
        for scope, values in scopes.items():
            if not isinstance(values, dict):
                raise ServiceError(_("Changes are given per node and role."), details={node_id: ["Not an object."]})
            params.setdefault(scope, {}).update(values)
    return services.create_job(user=user, project=job.project, spec=spec, name=name or job.name, template=job.template,
                               rerun_of=job, request=request)
