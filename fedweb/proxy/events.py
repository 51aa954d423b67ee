"""Reliable control events between sites: the outbox (sending side) and inbox (receiving side).

Sending: ``emit`` writes an event in the caller's transaction, so it exists exactly when
the change it announces was committed. The proxy's sender (``sender.py``) delivers each
(partner, stream) strictly in ``seq`` order with retries and backoff.

Receiving: ``receive`` runs only after the proxy verified the request (``authz``), and
stores and applies the event in ONE transaction, keyed by the event id: a duplicate
delivery changes nothing, and a crash half-way rolls back both the store and the
changes, so the sender's retry applies it exactly once.

Sequence numbers are strict: a stream's next event must carry the next number. A
repeated event id is a duplicate; an earlier number under a new id is refused; a later
number waits (the sender retries until the events before it arrived) or, far ahead, is
refused. So nothing can make the partner's genuine events look like duplicates.

An authenticated event that cannot be applied (wrong state, bad payload, unknown type)
is refused, and the refusal is stored under its sequence number: the partner's stream
moves on and its later events still arrive.

Appliers register with ``@applier("type", states={...})``; they run inside the
transaction and must only touch the database.
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

# A sequence number this far ahead of the expected one cannot be a delay: refused.
MAX_GAP = 1000

APPLIERS: dict[str, Callable] = {}
STATES: dict[str, frozenset] = {}


class EventRejected(Exception):
    """The event cannot be applied (a permanent refusal)."""


class EventOutOfOrder(EventRejected):
    """The event comes after one this site has not received yet."""

    def __init__(self, reason: str, *, retry: bool):
        super().__init__(reason)
        self.retry = retry


def applier(event_type: str, *, states):
    """Register the applier of ``event_type``, applied only in the project ``states``
    (project status values; ``None`` for a project this site does not know yet)."""

    def register(fn):
        if event_type in APPLIERS:
            raise ValueError(f"two appliers for {event_type}")
        APPLIERS[event_type] = fn
        STATES[event_type] = frozenset(states)
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


def _fields(body: dict) -> tuple[uuid.UUID, int, str, str, dict]:
    try:
        event_id = uuid.UUID(str(body["event_id"]))
        seq, event_type, stream = body["seq"], body["type"], body["stream"]
        payload = body.get("payload") or {}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise EventRejected("the event is missing its id, sequence number, type or stream") from None
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(event_type, str) or not isinstance(stream, str):
        raise EventRejected("the event's sequence number must be a whole number, its type and stream text")
    if not isinstance(payload, dict):
        raise EventRejected("the event payload must be an object")
    return event_id, seq, event_type, stream, payload


def _check_order(partner, stream: str, event_id, seq: int) -> str | None:
    """"duplicate" for a repeated event, None for the next one; raises for anything else."""
    existing = InboxEvent.objects.filter(event_id=event_id).first()
    if existing is not None:
        if (existing.partner_id, existing.stream, existing.seq) != (partner.pk, stream, seq):
            raise EventRejected("this event id was already used for another event")
        if existing.error:
            raise EventRejected(existing.error)  # refused before: the same answer again
        return "duplicate"
    expected = (InboxEvent.objects.filter(partner=partner, stream=stream).aggregate(m=Max("seq"))["m"] or 0) + 1
    if seq < expected:
        raise EventRejected(f"event number {seq} was already used by another event; the next expected is {expected}")
    if seq > expected:
        retry = seq - expected < MAX_GAP
        raise EventOutOfOrder(f"event number {expected} is expected before number {seq}", retry=retry)
    return None


def receive(partner, project_id: str, project, body: dict) -> str:
    """Store and apply one verified event exactly once; returns a short answer for the sender.

    ``project`` is None only for the invitation to a project id this site has never
    seen, the one request the proxy accepts without a MAC: nothing but an invitation
    opening the stream at number 1 is applied then, and a refusal stores nothing.
    """
    event_id, seq, event_type, stream, payload = _fields(body)
    if stream != stream_of(project_id):
        raise EventRejected("the event's stream does not match its project")
    refusal = None
    with transaction.atomic():
        from projects.models import Partner

        # Locking the partner row serialises this partner's deliveries.
        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        if _check_order(partner, stream, event_id, seq) == "duplicate":
            return "duplicate"
        fn = APPLIERS.get(event_type)
        if project is None:
            if fn is None or None not in STATES[event_type]:
                raise EventRejected("this site does not know this project")
        event = InboxEvent.objects.create(
            event_id=event_id, partner=partner, stream=stream, seq=seq, type=event_type[:64], payload=redacted(payload)
        )
        try:
            with transaction.atomic():
                if fn is None:
                    raise EventRejected(f"this site does not know events of type {event_type[:64]!r}")
                status = project.status if project is not None else None
                if status not in STATES[event_type]:
                    raise EventRejected(f"a {event_type} event cannot be applied to a project that is {status}")
                fn(partner=partner, project=project, project_id=project_id, payload=payload, event_id=event_id)
                _fault_injection(event_type)
        except EventRejected as exc:
            if project is None:
                raise  # unauthenticated: store nothing
            refusal = exc
            InboxEvent.objects.filter(pk=event.pk).update(error=str(exc)[:2000])
        else:
            InboxEvent.objects.filter(pk=event.pk).update(applied_at=timezone.now())
    if refusal is not None:
        raise refusal
    return "applied"
