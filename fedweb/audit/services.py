"""Record and verify audit events.

``record`` is the one way to write the trail. It serialises writers on the chain
head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions are
IMMEDIATE, see settings) so every row links to exactly one predecessor.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import AuditChainHead, AuditEvent, AuditOutcome

GENESIS_HASH = "0" * 64


def client_ip(request) -> str | None:
    """The caller's address: REMOTE_ADDR, or the right X-Forwarded-For hop when proxies are trusted."""
    if request is None:
        return None
    candidate = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "seq": event.seq,
        "event_id": str(event.event_id),
        "created_at": event.created_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "outcome": event.outcome,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "ip_address": event.ip_address,
        "details": event.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + _canonical(event)).hexdigest()


def record(
    action: str,
    *,
    actor=None,
    actor_name: str | None = None,
    request=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    outcome: str = AuditOutcome.SUCCESS,
    details: dict | None = None,
    event_id=None,
) -> AuditEvent:
    """Append one event to the trail and return it."""
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            actor = request.user
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    # Normalise through JSON so the hashed form equals what the database gives back.
    clean_details = json.loads(json.dumps(details or {}, default=str))
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor=actor,
            actor_name=(actor_name if actor_name is not None else (actor.get_username() if actor else ""))[:150],
            action=action,
            outcome=outcome,
            object_type=object_type[:64],
            object_id=str(object_id)[:64],
            object_repr=str(object_repr)[:255],
            ip_address=client_ip(request),
            details=clean_details,
            prev_hash=head.hash,
        )
        if event_id is not None:
            event.event_id = event_id
        event.hash = compute_hash(head.hash, event)
        event.save()
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    return event


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str]


def verify_chain(*, max_problems: int = 50) -> VerifyResult:
    """Walk the whole trail in order; report every broken link, changed row and gap."""
    problems: list[str] = []
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        checked += 1
        if event.seq != expected_seq:
            problems.append(f"rows {expected_seq}..{event.seq - 1} are missing (deleted)")
        if event.prev_hash != prev_hash:
            problems.append(f"row {event.seq}: does not link to the row before it")
        if compute_hash(event.prev_hash, event) != event.hash:
            problems.append(f"row {event.seq}: its content was changed after it was written")
        prev_hash = event.hash
        expected_seq = event.seq + 1
        if len(problems) >= max_problems:
            problems.append("stopping after too many problems")
            return VerifyResult(False, checked, problems)
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        problems.append(
            f"the newest row should be #{head_seq} but the trail ends at #{expected_seq - 1} "
            "(rows at the end were deleted or the chain head was changed)"
        )
    return VerifyResult(not problems, checked, problems)


# --- Reading the trail --------------------------------------------------------------------

EXPORT_COLUMNS = [
    "seq", "event_id", "created_at", "actor_name", "action", "outcome",
    "object_type", "object_id", "object_repr", "ip_address", "details", "hash",
]


def _parse_day(value, end: bool):
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


def sees_everything(user) -> bool:
    """Site admins read the whole trail; everyone else reads only what they did themselves."""
    return user.is_site_admin


def visible_events(user, params):
    """The events ``user`` may read that match the filter (the Audit page, its CSV export, the API)."""
    qs = AuditEvent.objects.select_related("actor")
    if not sees_everything(user):
        qs = qs.filter(actor=user)
    if params.get("action"):
        qs = qs.filter(action=params["action"])
    if params.get("outcome"):
        qs = qs.filter(outcome=params["outcome"])
    if params.get("actor"):
        qs = qs.filter(actor_name__icontains=params["actor"])
    if params.get("object"):
        qs = qs.filter(object_id=params["object"]) | qs.filter(object_repr__icontains=params["object"])
    start, end = _parse_day(params.get("from"), False), _parse_day(params.get("to"), True)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lte=end)
    return qs.order_by("-seq")


def export_values(event: AuditEvent) -> list[str]:
    """One CSV row's cells: the details as JSON (what scripts and other tools read), never Python's repr."""
    values = []
    for column in EXPORT_COLUMNS:
        value = getattr(event, column)
        if column == "details":
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        values.append("" if value is None else str(value))
    return values
