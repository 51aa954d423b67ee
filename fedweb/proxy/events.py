"""Reliable control events between sites: the outbox (sending side) and inbox (receiving side).

Sending: ``emit`` writes an event in the caller's transaction, so it exists exactly when
the change it announces was committed. The proxy's sender (``sender.py``) delivers each
(partner, stream) strictly in ``seq`` order with retries and backoff.

Receiving: ``receive`` stores the event and applies it in ONE transaction, keyed by the
event id: a duplicate delivery changes nothing, and a crash half-way rolls back both the
store and the changes, so the sender's retry applies it exactly once. Events older than
the newest applied one of their stream are duplicates by definition (the sender only
moves on after an acknowledgement).

Appliers register with ``@applier("type")``; they run inside the transaction and must
only touch the database.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Callable

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .models import InboxEvent, OutboxEvent

log = logging.getLogger(__name__)

APPLIERS: dict[str, Callable] = {}


class EventRejected(Exception):
    """The event is well-formed but cannot be applied (a permanent refusal)."""


def applier(event_type: str):
    def register(fn):
        if event_type in APPLIERS:
            raise ValueError(f"two appliers for {event_type}")
        APPLIERS[event_type] = fn
        return fn

    return register


def stream_of(project_id) -> str:
    return str(project_id) if project_id else "site"


def emit(partner, event_type: str, payload: dict, *, project=None, token_version: int | None = None) -> OutboxEvent:
    """Queue an event for ``partner``; call inside the transaction that makes the change.

    Payload values under keys starting with ``sealed:`` are stored encrypted and only
    opened when the event is sent (a new cooperation token travels this way).
    """
    from projects.models import Partner

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must run inside the transaction that makes the change")
    stream = stream_of(project.pk if project is not None else None)
    # Locking the partner row serialises sequence numbers of concurrent emitters.
    Partner.objects.select_for_update().filter(pk=partner.pk).first()
    last = OutboxEvent.objects.filter(partner=partner, stream=stream).aggregate(m=Max("seq"))["m"] or 0
    return OutboxEvent.objects.create(
        partner=partner, stream=stream, seq=last + 1, type=event_type, payload=payload,
        token_version=project.token_version if token_version is None and project is not None else (token_version or 0),
        next_attempt_at=timezone.now(),
    )


def event_body(event: OutboxEvent) -> dict:
    """What goes on the wire: sealed values are opened at the last moment."""
    from projects.tokens import unseal

    payload = {}
    for name, value in event.payload.items():
        if name.startswith("sealed:"):
            payload[name.removeprefix("sealed:")] = base64.b64encode(unseal(base64.b64decode(value))).decode()
        else:
            payload[name] = value
    return {"event_id": str(event.event_id), "stream": event.stream, "seq": event.seq, "type": event.type, "payload": payload}


SECRET_FIELDS = {"token"}


def redacted(payload: dict) -> dict:
    return {k: ("(secret)" if k in SECRET_FIELDS else v) for k, v in payload.items()}


def _fault_injection(event_type: str) -> None:
    """Test hook: FEDWEB_FAULT_CRASH_APPLYING=<event type> kills the process half-way
    through applying that event (after its changes, before the commit). Inert unless set."""
    if os.environ.get("FEDWEB_FAULT_CRASH_APPLYING") == event_type:
        log.error("fault injection: crashing while applying %s", event_type)
        os._exit(86)


def receive(partner, project_id: str, project, body: dict) -> str:
    """Store and apply one event exactly once; returns a short answer for the sender."""
    try:
        event_id = uuid.UUID(str(body["event_id"]))
        seq = int(body["seq"])
        event_type = str(body["type"])
        stream = str(body["stream"])
        payload = body.get("payload") or {}
    except (KeyError, TypeError, ValueError):
        raise EventRejected("the event is missing its id, sequence number, type or stream") from None
    if not isinstance(payload, dict):
        raise EventRejected("the event payload must be an object")
    if stream != stream_of(project_id):
        raise EventRejected("the event's stream does not match its project")
    fn = APPLIERS.get(event_type)
    if fn is None:
        raise EventRejected(f"this site does not know events of type {event_type!r}")
    with transaction.atomic():
        from projects.models import Partner

        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        if InboxEvent.objects.filter(event_id=event_id).exists():
            return "duplicate"
        last = InboxEvent.objects.filter(partner=partner, stream=stream).aggregate(m=Max("seq"))["m"] or 0
        if seq <= last:
            return "duplicate"
        InboxEvent.objects.create(
            event_id=event_id, partner=partner, stream=stream, seq=seq, type=event_type, payload=redacted(payload)
        )
        fn(partner=partner, project=project, project_id=project_id, payload=payload, event_id=event_id)
        _fault_injection(event_type)
        InboxEvent.objects.filter(event_id=event_id).update(applied_at=timezone.now())
    return "applied"
