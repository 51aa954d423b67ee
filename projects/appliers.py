"""How this site applies a partner's project events (see ``fedweb.proxy.events``).

Each applier runs inside the inbox transaction: it changes only the database, and it
checks that the event makes sense from the partner (a partner cannot, for instance,
accept an invitation it sent itself, or lift a suspension this site made). ``states``
says in which of the project's states the event applies at all (``None``: the project
does not exist here yet); the inbox refuses it in any other. An applier refuses with
``EventRejected`` in plain words: the inbox records the refusal (so the partner's
stream moves on) and the partner's outbox shows it.
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


LIVE = {ProjectStatus.ACTIVE, ProjectStatus.SUSPENDED}


def _text(payload, name, limit):
    value = payload.get(name, "")
    if not isinstance(value, str):
        raise EventRejected(f"{name} must be text")
    return value[:limit]


def _token(payload, *, expected_version):
    try:
        token = tokens.from_b64(str(payload.get("token", "")))
        version = int(payload["version"])
    except (KeyError, ValueError, TypeError):
        raise EventRejected("the event does not carry a valid cooperation token") from None
    if version != expected_version:
        raise EventRejected(f"token version {version} does not follow {expected_version - 1}")
    return token, version


@applier("project.invite", states={None})
def invited(*, partner, project, payload, event_id, project_id, **_):
    label_holder = payload.get("label_holder")
    if label_holder not in (partner.party_id, settings.SITE_PARTY_ID):
        raise EventRejected("the label holder must be one of the two sites")
    name, purpose = _text(payload, "name", 200).strip(), _text(payload, "purpose", 5000).strip()
    if not name or not purpose:
        raise EventRejected("an invitation needs a name and a purpose")
    token, version = _token(payload, expected_version=1)
    project = Project(
        id=uuid.UUID(project_id), name=name, purpose=purpose, partner=partner, initiator=partner.party_id,
        label_holder=label_holder, status=ProjectStatus.INVITED, status_changed_by=partner.party_id,
    )
    tokens.set_token(project, token, version, issued_here=False)
    project.save(force_insert=True)
    _history(project, event_id, "project.invite", partner, f"Invitation from {partner.name}: {name}")


@applier("project.accept", states={ProjectStatus.PENDING})
def accepted(*, partner, project, payload, event_id, **_):
    if not project.we_initiated:
        raise EventRejected("there is no invitation of ours waiting for this answer")
    token, version = _token(payload, expected_version=project.token_version + 1)
    tokens.set_token(project, token, version, issued_here=False)
    project.status, project.status_changed_by = ProjectStatus.ACTIVE, partner.party_id
    project.decision_comment = _text(payload, "comment", 5000)
    project.save()
    _history(project, event_id, "project.accept", partner, f"{partner.name} accepted the invitation")


@applier("project.reject", states={ProjectStatus.PENDING})
def rejected(*, partner, project, payload, event_id, **_):
    if not project.we_initiated:
        raise EventRejected("there is no invitation of ours waiting for this answer")
    project.status, project.status_changed_by = ProjectStatus.REJECTED, partner.party_id
    project.decision_comment = _text(payload, "comment", 5000)
    project.save()
    _history(project, event_id, "project.reject", partner, f"{partner.name} rejected the invitation")


def _save_status(project, partner, event_id, event_type, summary, *, was_active):
    project.status_changed_by = partner.party_id
    project.save(update_fields=["status", "status_changed_by", "suspended_by_partner", "updated_at"])
    if was_active and not project.is_active:
        stop_running_work(project, reason=summary)
    _history(project, event_id, event_type, partner, summary)


@applier("project.suspend", states=LIVE)
def suspended(*, partner, project, payload, event_id, **_):
    if project.suspended_by_partner:
        return  # already recorded
    was_active = project.is_active
    project.suspended_by_partner, project.status = True, ProjectStatus.SUSPENDED
    _save_status(project, partner, event_id, "project.suspend", f"{partner.name} suspended the project", was_active=was_active)


@applier("project.resume", states={ProjectStatus.SUSPENDED})
def resumed(*, partner, project, payload, event_id, **_):
    # A suspension is lifted only by the side that made it: the partner can lift its
    # own, never ours.
    if not project.suspended_by_partner:
        raise EventRejected("the partner has no suspension of its own to lift; only this site can lift this site's suspension")
    project.suspended_by_partner = False
    project.status = ProjectStatus.SUSPENDED if project.suspended_here else ProjectStatus.ACTIVE
    _save_status(project, partner, event_id, "project.resume", f"{partner.name} lifted its suspension", was_active=False)


@applier("project.revoke", states=LIVE | {ProjectStatus.INVITED, ProjectStatus.PENDING})
def revoked(*, partner, project, payload, event_id, **_):
    was_active = project.is_active
    project.status = ProjectStatus.REVOKED
    _save_status(project, partner, event_id, "project.revoke", f"{partner.name} revoked the project", was_active=was_active)


@applier("project.rotate", states=LIVE)
def rotated(*, partner, project, payload, event_id, **_):
    token, version = _token(payload, expected_version=project.token_version + 1)
    tokens.set_token(project, token, version, issued_here=False)
    project.save()
    _history(project, event_id, "project.rotate", partner, f"{partner.name} rotated the cooperation token")


def _columns(payload) -> list[dict]:
    columns = payload.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        raise EventRejected("columns must be a list of objects")
    out = []
    for c in columns:
        kind = c.get("type")
        out.append({"name": str(c.get("name", ""))[:200], "role": str(c.get("role", ""))[:32],
                    "type": kind[:32] if isinstance(kind, str) else None})
    return out


@applier("table.authorised", states=LIVE)
def table_authorised(*, partner, project, payload, event_id, **_):
    try:
        table_id = str(uuid.UUID(str(payload["table_id"])))
    except (KeyError, ValueError):
        raise EventRejected("the table id is missing or malformed") from None
    row_count = payload.get("row_count")
    if row_count is not None and (not isinstance(row_count, int) or isinstance(row_count, bool) or not 0 <= row_count < 2**62):
        raise EventRejected("the row count must be a whole number")
    expires = None
    if payload.get("expires_at"):
        try:
            expires = parse_datetime(_text(payload, "expires_at", 64))
        except ValueError:
            expires = None
        if expires is None:
            raise EventRejected("the end date is not a date and time")
    version = payload.get("version")  # absent from older sites
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**31):
        raise EventRejected("the version must be a whole number")
    name = _text(payload, "name", 200)
    RemoteTable.objects.update_or_create(
        project=project, table_id=table_id,
        defaults={
            "name": name,
            "version": version,
            "row_count": row_count,
            "columns": _columns(payload),
            "expires_at": expires,
            "is_authorised": True,
            "partner_may_receive_intersection": payload.get("partner_may_receive_intersection") is True,
        },
    )
    if payload.get("replaces"):  # the partner moved the project to this version of a table
        try:
            replaced = str(uuid.UUID(str(payload["replaces"])))
        except ValueError:
            raise EventRejected("the replaced table id is malformed") from None
        RemoteTable.objects.filter(project=project, table_id=replaced).exclude(table_id=table_id).update(
            replaced_by=table_id, updated_at=timezone.now())
    shown = f"{name}” (version {version})" if version and version > 1 else f"{name}”"
    _history(project, event_id, "table.authorised", partner, f"{partner.name} authorised table “{shown}")


@applier("table.removed", states=LIVE)
def table_removed(*, partner, project, payload, event_id, **_):
    from jobs.services import stop_jobs

    stop_jobs(project, table_id=str(payload.get("table_id", ""))[:64], reason=f"{partner.name} removed a table the job reads")
    RemoteTable.objects.filter(project=project, table_id=str(payload.get("table_id", ""))[:64]).update(
        is_authorised=False, updated_at=timezone.now()
    )
    _history(project, event_id, "table.removed", partner, f"{partner.name} removed a table")
