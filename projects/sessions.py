"""Job sessions and the PSI policy, enforced by the data owner.

Before a PSI touches one of our tables, the partner's site must ask us to open a
session (``OpenSession`` on our proxy). We check OUR policy for that table in that
project, whatever the partner's site claims about itself: the table is authorised and
not expired, today's run count, the partner's set size within our bounds, the ratio of
the two set sizes, and whether the partner may receive the intersection. The minimum
overlap travels to the PSI itself: below it nothing is revealed (the engine's PSI
checks the count first). This is what stops a partner from enumerating our customer
ids (seed 000, 会话式项目合作Token).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import grpc
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fedweb.audit.models import AuditOutcome
from fedweb.audit.services import record

from .models import JobSession, Project, ProjectTable

_SESSION = re.compile(r"[A-Za-z0-9_.-]{8,64}")


class SessionRefused(Exception):
    def __init__(self, reason: str, status: str = "PERMISSION_DENIED"):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def check_psi_policy(table: ProjectTable, *, partner_set_size: int, wants_intersection: bool) -> None:
    """Raise SessionRefused naming the first rule the request breaks."""
    if not table.is_live:
        raise SessionRefused("the table is no longer authorised in this project")
    ours = table.dataset.row_count or 0
    if partner_set_size < table.psi_min_set_size:
        raise SessionRefused(f"the partner's set ({partner_set_size}) is smaller than the minimum of {table.psi_min_set_size}")
    if partner_set_size > table.psi_max_set_size:
        raise SessionRefused(f"the partner's set ({partner_set_size}) is larger than the maximum of {table.psi_max_set_size}")
    small, large = sorted((max(partner_set_size, 1), max(ours, 1)))
    if large / small > table.psi_max_size_ratio:
        raise SessionRefused(
            f"the two sets differ in size by more than the allowed ratio of {table.psi_max_size_ratio:g}"
        )
    if wants_intersection and not table.psi_partner_may_receive:
        raise SessionRefused("the partner may not receive the intersection of this table")
    since = timezone.now() - timedelta(days=1)
    # Counted over every authorisation of the dataset in the project (any version, removed or
    # not): authorising again, or moving to a new version, starts no fresh day.
    runs = JobSession.objects.filter(table__project_id=table.project_id, table__dataset__lineage_id=table.dataset.lineage_id,
                                     purpose="psi", opened_at__gte=since).count()
    if runs >= table.psi_runs_per_day:
        raise SessionRefused(f"the table's limit of {table.psi_runs_per_day} PSI runs per day is reached", "RESOURCE_EXHAUSTED")


def open_session(partner, project: Project, body: dict) -> dict:
    """Handle a partner's OpenSession on OUR proxy; returns the terms both sides run with."""
    purpose, session_id = body.get("purpose"), body.get("session_id")
    if purpose != "psi":
        raise ValueError("unknown session purpose")
    if not isinstance(session_id, str) or not _SESSION.fullmatch(session_id):
        raise ValueError("the session id must be 8-64 letters, digits, '.', '_' or '-'")
    partner_set_size, wants_intersection = body.get("set_size"), body.get("wants_intersection", False)
    if not isinstance(partner_set_size, int) or isinstance(partner_set_size, bool) or partner_set_size < 0:
        raise ValueError("the partner's set size must be a whole number")
    if not isinstance(wants_intersection, bool):
        raise ValueError("wants_intersection must be true or false")
    try:
        table_id = uuid.UUID(str(body.get("table_id", "")))
    except ValueError:
        raise ValueError("the request must name our table") from None
    # A refusal is audited once, by the proxy (``proxy_reject``, with this reason).
    with transaction.atomic():
        table = (
            ProjectTable.objects.select_for_update().select_related("dataset")
            .filter(project=project, dataset_id=table_id, revoked_at__isnull=True).first()
        )
        if table is None:
            raise SessionRefused("this table is not authorised in this project")
        check_psi_policy(table, partner_set_size=partner_set_size, wants_intersection=wants_intersection)
        if JobSession.objects.filter(session_id=session_id).exists():
            raise SessionRefused("this session id is already used", "ALREADY_EXISTS")
        JobSession.objects.create(
            session_id=session_id, project=project, purpose="psi", opened_by=partner.party_id, table=table,
            details={"partner_set_size": partner_set_size, "wants_intersection": wants_intersection},
        )
        record(
            "psi_session_open", actor_name=partner.party_id, obj=project, outcome=AuditOutcome.SUCCESS,
            details={"session": session_id, "table": str(table_id)},
        )
    return {
        "session_id": session_id,
        "set_size": table.dataset.row_count,
        "min_overlap": table.psi_min_overlap,
        "reveal_to_partner": wants_intersection and table.psi_partner_may_receive,
    }


def request_psi_session(project: Project, *, remote_table_id: str, our_set_size: int, wants_intersection: bool,
                        session_id: str | None = None) -> dict:
    """Ask the partner (the data owner) to open a PSI session; opens it here too.

    Returns the owner's terms (its set size, the minimum overlap, whether we may receive
    the intersection). Raises SessionRefused with the owner's reason.
    """
    from fedweb.proxy import envelope as envelopes
    from fedweb.proxy.client import envelope_to, stub_for

    session_id = session_id or f"psi-{uuid.uuid4().hex}"
    body = {"purpose": "psi", "session_id": session_id, "table_id": remote_table_id, "set_size": our_set_size,
            "wants_intersection": wants_intersection}
    channel, stub = stub_for(project.partner)
    try:
        answer = stub.OpenSession(envelope_to(project.partner, "session", project=project, body=envelopes.json_body(body)), timeout=15)
    except grpc.RpcError as exc:
        raise SessionRefused(exc.details() or exc.code().name, exc.code().name) from None
    finally:
        channel.close()
    terms = json.loads(answer.detail)
    JobSession.objects.create(session_id=session_id, project=project, purpose="psi", opened_by=settings.SITE_PARTY_ID,
                              details={"remote_table": remote_table_id, "terms": terms})
    return terms
