"""The job spec: a versioned JSON DAG of engine components, validated before anything runs.

::

    {"format": "fedweb-job/1",
     "nodes": [
       {"id": "psi", "component": "psi", "version": "1.0.0",
        "params": {"common": {"reveal": "both"}, "guest": {"id_column": "id"}, "host": {"id_column": "phone"}},
        "inputs": {"data": {"table": {"guest": "<dataset id at the guest>", "host": "<dataset id at the host>"}}}},
       {"id": "split", "component": "split",
        "inputs": {"data": {"node": "psi", "output": "data"}}}]}

Roles: the project's label holder is the ``guest``, the other site the ``host``. A node
runs at every site whose role its component declares. Tables are named by the owning
site's dataset id, so both sites validate the *same* spec, each against its own view:
at the owner a live authorisation of its dataset into the project, at the other site
the partner's announced table (``RemoteTable``). That is how the partner checks a job
against its own authorisations, never trusting the initiator's.

A spec may also name **gates**: ``"pause_after": ["psi"]`` stops the job once every
task of those nodes has finished at both sites, until someone decides whether it goes
on (``jobs.services.continue_job`` / ``stop_at_gate``). A gate holds back the whole job,
so every other node must come before or after it.

``validate`` returns a :class:`Plan` (per node: component, roles, params per role,
inputs, the order to run, the gates) or raises :class:`SpecError` listing every problem,
each naming the node and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from engine.errors import ComponentNotFound, InvalidParameters
from engine.registry import get_component

FORMAT = "fedweb-job/1"
MAX_NODES = 50
_NODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
PARAM_SCOPES = ("common", "guest", "host")


class SpecError(Exception):
    """A spec that cannot run; ``errors`` is a list of ``{"node", "field", "message"}``."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        first = errors[0]
        where = f"node {first['node']!r}, " if first.get("node") else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{where}{first['field']}: {first['message']}{more}")


@dataclass
class TableInput:
    by_role: dict[str, str]  # role -> dataset id at the site playing that role


@dataclass
class NodeInput:
    node: str
    output: str


@dataclass
class JobOutput:
    """An output of a node of an earlier, finished job of the same project (a trained model,
    the scaling it was trained with): both sites hold their own half of it."""

    job: str
    node: str
    output: str


@dataclass
class PlannedNode:
    id: str
    component: Any  # engine.registry.Component
    roles: tuple[str, ...]
    params: dict[str, dict]  # role -> validated params (as a plain dict)
    inputs: dict[str, TableInput | NodeInput | JobOutput]
    upstream: set[str] = field(default_factory=set)


@dataclass
class Plan:
    nodes: dict[str, PlannedNode]
    order: list[str]  # a topological order
    pause_after: list[str] = field(default_factory=list)  # the gated nodes, as the spec lists them

    def node(self, node_id: str) -> PlannedNode:
        return self.nodes[node_id]


def roles_of(project) -> dict[str, str]:
    """``{role: party id}`` in this project."""
    partner = project.partner.party_id
    guest = project.label_holder
    return {"guest": guest, "host": partner if guest == settings.SITE_PARTY_ID else settings.SITE_PARTY_ID}


def psi_table(project, node: PlannedNode, role: str):
    """Our live authorisation of the table a PSI node reads as ``role``, or None (the node reads
    an earlier step's output, or the table is no longer authorised)."""
    from projects.models import ProjectTable

    by_role = getattr(node.inputs.get("data"), "by_role", None)
    if not by_role or role not in by_role:
        return None
    return ProjectTable.objects.live().select_related("dataset").filter(project=project, dataset_id=by_role[role]).first()


def our_role(project) -> str:
    return "guest" if project.label_holder == settings.SITE_PARTY_ID else "host"


class _Errors:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, node: str | None, field_name: str, message: str) -> None:
        self.items.append({"node": node or "", "field": field_name, "message": message})


def validate(spec: Any, project, *, check_tables: bool = True) -> Plan:
    """Check ``spec`` for ``project`` as this site sees it; returns the plan or raises SpecError."""
    errors = _Errors()
    if not isinstance(spec, dict):
        raise SpecError([{"node": "", "field": "spec", "message": "the spec must be a JSON object"}])
    if spec.get("format") != FORMAT:
        errors.add(None, "format", f"must be {FORMAT!r}")
    raw_nodes = spec.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        errors.add(None, "nodes", "a job needs at least one node")
        raise SpecError(errors.items)
    if len(raw_nodes) > MAX_NODES:
        errors.add(None, "nodes", f"a job has at most {MAX_NODES} nodes")
    nodes: dict[str, PlannedNode] = {}
    raw_by_id: dict[str, dict] = {}
    for index, raw in enumerate(raw_nodes):
        planned = _node(raw, index, errors, raw_by_id)
        if planned is not None:
            nodes[planned.id] = planned
    for node_id, planned in nodes.items():
        _inputs(planned, raw_by_id[node_id].get("inputs"), nodes, errors)
    order = _order(nodes, errors)
    gates = _gates(spec.get("pause_after"), nodes, errors)
    if check_tables:
        for planned in nodes.values():
            for port, source in planned.inputs.items():
                if isinstance(source, TableInput):
                    _check_tables(planned.id, port, source, project, errors)
                elif isinstance(source, JobOutput):
                    _check_job_output(planned.id, port, planned, source, project, errors)
    if errors.items:
        raise SpecError(errors.items)
    return Plan(nodes=nodes, order=order, pause_after=gates)


def _gates(raw: Any, nodes: dict[str, PlannedNode], errors: _Errors) -> list[str]:
    """``pause_after``: known nodes, each once, each with something after it, and no node beside it
    (while a job waits at a gate nothing of it runs, so a branch that neither feeds the gated node
    nor follows it would be stopped half-way or left behind)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        errors.add(None, "pause_after", _("list the ids of the nodes to pause after, for example [\"psi\"]"))
        return []
    children: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for node_id, planned in nodes.items():
        for upstream in planned.upstream:
            children[upstream].add(node_id)

    def reach(start: str, step) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    gates: list[str] = []
    for node_id in raw:
        if node_id not in nodes:
            errors.add(None, "pause_after", _("there is no node %(node)r to pause after") % {"node": node_id})
            continue
        if node_id in gates:
            errors.add(node_id, "pause_after", _("this node is listed twice"))
            continue
        gates.append(node_id)
        after = reach(node_id, lambda n: children[n])
        if not after:
            errors.add(node_id, "pause_after", _("nothing runs after this node, so a pause here would decide nothing"))
            continue
        before = reach(node_id, lambda n: nodes[n].upstream)
        beside = sorted(set(nodes) - after - before - {node_id})
        if beside:
            errors.add(node_id, "pause_after", _(
                "node %(other)r neither comes before this node nor after it; a pause holds back the whole job, "
                "so every other node must do one or the other") % {"other": beside[0]})
    return gates


def _node(raw: Any, index: int, errors: _Errors, raw_by_id: dict) -> PlannedNode | None:
    where = f"nodes[{index}]"
    if not isinstance(raw, dict):
        errors.add(None, where, "each node must be an object")
        return None
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not _NODE.fullmatch(node_id):
        errors.add(None, f"{where}.id", "a node id is 1-32 lowercase letters, digits or '_', starting with a letter")
        return None
    if node_id in raw_by_id:
        errors.add(node_id, "id", "two nodes have this id")
        return None
    raw_by_id[node_id] = raw
    unknown = set(raw) - {"id", "component", "version", "params", "inputs", "label"}
    if unknown:
        errors.add(node_id, sorted(unknown)[0], "unknown field of a node")
    try:
        component = get_component(str(raw.get("component", "")), raw.get("version"))
    except ComponentNotFound as exc:
        errors.add(node_id, "component", str(exc))
        return None
    params = raw.get("params") or {}
    if not isinstance(params, dict) or set(params) - set(PARAM_SCOPES):
        bad = sorted(set(params) - set(PARAM_SCOPES))[0] if isinstance(params, dict) else "params"
        errors.add(node_id, f"params.{bad}" if isinstance(params, dict) else "params",
                   "parameters are given as {\"common\": {...}, \"guest\": {...}, \"host\": {...}}")
        return None
    by_role = {}
    for role in ("guest", "host"):
        if role in params and role not in component.roles:
            errors.add(node_id, f"params.{role}", f"{component.name} has no {role} role (roles: {', '.join(component.roles)})")
    for role in component.roles:
        common, own = params.get("common") or {}, params.get(role) or {}
        if not isinstance(common, dict) or not isinstance(own, dict):
            errors.add(node_id, f"params.{role}", "must be an object")
            continue
        try:
            by_role[role] = component.validate_params({**common, **own}).model_dump(mode="json")
        except InvalidParameters as exc:
            for problem in exc.errors or [{"param": exc.param, "message": str(exc)}]:
                scope = role if (problem.get("param") or "").split(".")[0] in own else "common"
                errors.add(node_id, f"params.{scope}.{problem.get('param') or ''}".rstrip("."), problem["message"])
    return PlannedNode(id=node_id, component=component, roles=tuple(component.roles), params=by_role, inputs={})


def _inputs(planned: PlannedNode, raw: Any, nodes: dict[str, PlannedNode], errors: _Errors) -> None:
    component = planned.component
    raw = raw or {}
    if not isinstance(raw, dict):
        errors.add(planned.id, "inputs", "must be an object of input name → source")
        return
    ports = {p.name: p for p in component.inputs}
    for name, source in raw.items():
        port = ports.get(name)
        if port is None:
            errors.add(planned.id, f"inputs.{name}", f"{component.name} has no input {name!r} (inputs: {', '.join(ports)})")
            continue
        if not isinstance(source, dict) or len(source) != 1 and set(source) not in ({"node", "output"}, {"job", "node", "output"}):
            errors.add(planned.id, f"inputs.{name}", "an input is {\"table\": {...}}, {\"node\": ..., \"output\": ...} "
                                                     "or {\"job\": ..., \"node\": ..., \"output\": ...}")
            continue
        if "job" in source:
            earlier = _job_output(planned, name, port, source, errors)
            if earlier is not None:
                planned.inputs[name] = earlier
            continue
        if "table" in source:
            tables = source["table"]
            if port.type != "table":
                errors.add(planned.id, f"inputs.{name}", f"this input takes a {port.type}, not a table")
            elif not isinstance(tables, dict) or not all(isinstance(v, str) for v in tables.values()):
                errors.add(planned.id, f"inputs.{name}.table", "name a dataset id for each role")
            else:
                for role in tables:
                    if role not in planned.roles or not port.applies_to(role):
                        errors.add(planned.id, f"inputs.{name}.table.{role}", f"the {role} has no {name!r} input here")
                planned.inputs[name] = TableInput(by_role=dict(tables))
            continue
        upstream = nodes.get(source.get("node"))
        if upstream is None:
            errors.add(planned.id, f"inputs.{name}.node", f"there is no node {source.get('node')!r}")
            continue
        out = next((p for p in upstream.component.outputs if p.name == source.get("output")), None)
        if out is None:
            names = ", ".join(p.name for p in upstream.component.outputs)
            errors.add(planned.id, f"inputs.{name}.output", f"node {upstream.id!r} has no output {source.get('output')!r} (outputs: {names})")
            continue
        if out.type != port.type:
            errors.add(planned.id, f"inputs.{name}", f"this input takes a {port.type}, but {upstream.id}.{out.name} is a {out.type}")
            continue
        for role in planned.roles:
            if port.applies_to(role) and not out.applies_to(role):
                errors.add(planned.id, f"inputs.{name}", f"the {role} gets no {out.name!r} from node {upstream.id!r}")
        planned.inputs[name] = NodeInput(node=upstream.id, output=out.name)
        planned.upstream.add(upstream.id)
    for role in planned.roles:
        for port in component.inputs_for(role):
            source = planned.inputs.get(port.name)
            missing = source is None or isinstance(source, TableInput) and role not in source.by_role
            if missing and not port.optional and not any(e["field"].startswith(f"inputs.{port.name}") and e["node"] == planned.id
                                                      for e in errors.items):
                errors.add(planned.id, f"inputs.{port.name}", f"the {role} needs this input ({port.type})")


def _job_output(planned: PlannedNode, name: str, port, source: dict, errors: _Errors) -> JobOutput | None:
    """Check the shape here; that the job exists, finished, in this project, is checked with the tables."""
    job, node, output = source.get("job"), source.get("node"), source.get("output")
    if not all(isinstance(v, str) and v for v in (job, node, output)):
        errors.add(planned.id, f"inputs.{name}", "name the earlier job, its node and the output")
        return None
    return JobOutput(job=job, node=node, output=output)


def _check_job_output(node_id: str, port_name: str, planned: PlannedNode, source: JobOutput, project, errors: _Errors) -> None:
    from .models import Job, JobStatus

    where = f"inputs.{port_name}"
    job = Job.objects.filter(pk=_uuid_or_none(source.job), project=project).first()
    if job is None:
        errors.add(node_id, f"{where}.job", "there is no such job in this project")
        return
    if job.status != JobStatus.SUCCEEDED:
        errors.add(node_id, f"{where}.job", "that job did not succeed")
        return
    earlier = next((n for n in (job.spec or {}).get("nodes", []) if n.get("id") == source.node), None)
    if earlier is None:
        errors.add(node_id, f"{where}.node", f"that job has no node {source.node!r}")
        return
    try:
        component = get_component(earlier["component"], earlier.get("version"))
    except ComponentNotFound as exc:
        errors.add(node_id, f"{where}.node", str(exc))
        return
    out = next((p for p in component.outputs if p.name == source.output), None)
    port = next(p for p in planned.component.inputs if p.name == port_name)
    if out is None or out.type != port.type:
        errors.add(node_id, f"{where}.output", f"node {source.node!r} of that job has no {port.type} output {source.output!r}")
        return
    for role in planned.roles:
        if port.applies_to(role) and not out.applies_to(role):
            errors.add(node_id, where, f"the {role} holds no {source.output!r} of that node")


def _order(nodes: dict[str, PlannedNode], errors: _Errors) -> list[str]:
    order, done, visiting = [], set(), set()

    def visit(node_id: str, path: list[str]) -> None:
        if node_id in done:
            return
        if node_id in visiting:
            cycle = path[path.index(node_id):] + [node_id]
            errors.add(node_id, "inputs", "the nodes form a cycle: " + " → ".join(cycle))
            return
        visiting.add(node_id)
        for upstream in sorted(nodes[node_id].upstream):
            visit(upstream, path + [node_id])
        visiting.discard(node_id)
        done.add(node_id)
        order.append(node_id)

    for node_id in nodes:
        if node_id not in done:
            visit(node_id, [])
    return order


def _check_tables(node_id: str, port: str, source: TableInput, project, errors: _Errors) -> None:
    """Each role's table exists in THIS site's view of the project: ours authorised, theirs announced."""
    from projects.models import ProjectTable, RemoteTable

    mine = our_role(project)
    now = timezone.now()
    for role, table_id in source.by_role.items():
        where = f"inputs.{port}.table.{role}"
        if role == mine:
            table = ProjectTable.objects.live().filter(project=project, dataset_id=_uuid_or_none(table_id)).select_related("dataset").first()
            if table is None:
                errors.add(node_id, where, "this table of ours is not authorised in this project (or its authorisation ended)")
            elif not table.dataset.is_ready or table.dataset.deleted_at is not None:
                errors.add(node_id, where, "this table of ours is not ready")
        else:
            remote = RemoteTable.objects.filter(project=project, table_id=table_id, is_authorised=True).first()
            if remote is None:
                errors.add(node_id, where, "the partner has not authorised this table in this project")
            elif remote.expires_at is not None and remote.expires_at <= now:
                errors.add(node_id, where, "the partner's authorisation of this table has ended")


def _uuid_or_none(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None

