"""How this site applies a partner's project events (see ``fedweb.proxy.events``).

Each applier runs inside the inbox transaction: it changes only the database, and it
checks that the event makes sense from the partner (a partner cannot, for instance,
accept an invitation it sent itself).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fedweb.audit.services import record
from fedweb.proxy.events import EventRejected, applier

from . import tokens
from .models import Project, ProjectEvent, ProjectStatus, RemoteTable
from .services import stop_running_work


def _history(project, event_id, event_type, partner, summary):
    ProjectEvent.objects.create(
        project=project, event_id=event_id, type=event_type, direction="in", party=partner.party_id, summary=summary[:500]
    )
    record(
        event_type.replace(".", "_"), actor_name=partner.party_id, obj=project, event_id=event_id,
        details={"partner": partner.party_id, "received": True},
    )


def _project(project):
    if project is None:
        raise EventRejected("no such project")
    return project


@applier("project.invite")
def invited(*, partner, project, payload, event_id, project_id, **_):
    if project is not None:
        return  # already known (the inbox de-duplicates; this is belt and braces)
    label_holder = payload.get("label_holder")
    if label_holder not in (partner.party_id, settings.SITE_PARTY_ID):
        raise EventRejected("the label holder must be one of the two sites")
    name, purpose = str(payload.get("name", ""))[:200], str(payload.get("purpose", ""))
    if not name or not purpose:
        raise EventRejected("an invitation needs a name and a purpose")
    project = Project.objects.create(
        id=uuid.UUID(project_id), name=name, purpose=purpose, partner=partner, initiator=partner.party_id,
        label_holder=label_holder, status=ProjectStatus.INVITED, status_changed_by=partner.party_id,
    )
    _history(project, event_id, "project.invite", partner, f"Invitation from {partner.name}: {name}")


@applier("project.accept")
def accepted(*, partner, project, payload, event_id, **_):
    project = _project(project)
    if project.initiator != settings.SITE_PARTY_ID or project.status != ProjectStatus.PENDING:
        raise EventRejected("there is no invitation of ours waiting for this answer")
    try:
        token = tokens.from_b64(str(payload.get("token", "")))
        version = int(payload.get("version", 1))
    except (ValueError, TypeError):
        raise EventRejected("the acceptance does not carry a valid cooperation token") from None
    tokens.set_token(project, token, version)
    project.status, project.status_changed_by = ProjectStatus.ACTIVE, partner.party_id
    project.decision_comment = str(payload.get("comment", ""))
    project.save()
    _history(project, event_id, "project.accept", partner, f"{partner.name} accepted the invitation")


@applier("project.reject")
def rejected(*, partner, project, payload, event_id, **_):
    project = _project(project)
    if project.initiator != settings.SITE_PARTY_ID or project.status != ProjectStatus.PENDING:
        raise EventRejected("there is no invitation of ours waiting for this answer")
    project.status, project.status_changed_by = ProjectStatus.REJECTED, partner.party_id
    project.decision_comment = str(payload.get("comment", ""))
    project.save()
    _history(project, event_id, "project.reject", partner, f"{partner.name} rejected the invitation")


def _status_change(project, partner, event_id, event_type, to, allowed_from, summary):
    project = _project(project)
    if project.status not in allowed_from:
        return  # already there, or closed: nothing to do
    project.status, project.status_changed_by = to, partner.party_id
    project.save(update_fields=["status", "status_changed_by", "updated_at"])
    if to in (ProjectStatus.SUSPENDED, ProjectStatus.REVOKED):
        stop_running_work(project, reason=summary)
    _history(project, event_id, event_type, partner, summary)


@applier("project.suspend")
def suspended(*, partner, project, payload, event_id, **_):
    _status_change(project, partner, event_id, "project.suspend", ProjectStatus.SUSPENDED, {ProjectStatus.ACTIVE},
                   f"{partner.name} suspended the project")


@applier("project.resume")
def resumed(*, partner, project, payload, event_id, **_):
    _status_change(project, partner, event_id, "project.resume", ProjectStatus.ACTIVE, {ProjectStatus.SUSPENDED},
                   f"{partner.name} resumed the project")


@applier("project.revoke")
def revoked(*, partner, project, payload, event_id, **_):
    _status_change(
        project, partner, event_id, "project.revoke", ProjectStatus.REVOKED,
        {ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED, ProjectStatus.INVITED, ProjectStatus.PENDING},
        f"{partner.name} revoked the project",
    )


@applier("project.rotate")
def rotated(*, partner, project, payload, event_id, **_):
    project = _project(project)
    try:
        token = tokens.from_b64(str(payload.get("token", "")))
        version = int(payload["version"])
    except (KeyError, ValueError, TypeError):
        raise EventRejected("the rotation does not carry a valid cooperation token") from None
    if version != project.token_version + 1:
        raise EventRejected(f"token version {version} does not follow {project.token_version}")
    tokens.set_token(project, token, version)
    project.save()
    _history(project, event_id, "project.rotate", partner, f"{partner.name} rotated the cooperation token")


@applier("table.authorised")
def table_authorised(*, partner, project, payload, event_id, **_):
    project = _project(project)
    try:
        table_id = str(uuid.UUID(str(payload["table_id"])))
    except (KeyError, ValueError):
        raise EventRejected("the table id is missing or malformed") from None
    columns = payload.get("columns") or []
    if not isinstance(columns, list):
        raise EventRejected("columns must be a list")
    expires = parse_datetime(payload["expires_at"]) if payload.get("expires_at") else None
    RemoteTable.objects.update_or_create(
        project=project, table_id=table_id,
        defaults={
            "name": str(payload.get("name", ""))[:200],
            "row_count": payload.get("row_count"),
            "columns": [{"name": str(c.get("name", "")), "role": str(c.get("role", "")), "type": c.get("type")} for c in columns if isinstance(c, dict)],
            "expires_at": expires,
            "is_authorised": True,
            "partner_may_receive_intersection": bool(payload.get("partner_may_receive_intersection", False)),
        },
    )
    _history(project, event_id, "table.authorised", partner, f"{partner.name} authorised table “{payload.get('name', '')}”")


@applier("table.removed")
def table_removed(*, partner, project, payload, event_id, **_):
    project = _project(project)
    RemoteTable.objects.filter(project=project, table_id=str(payload.get("table_id", ""))).update(
        is_authorised=False, updated_at=timezone.now()
    )
    _history(project, event_id, "table.removed", partner, f"{partner.name} removed a table")
