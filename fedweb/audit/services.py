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
