"""Deliver queued control events to partners: in order per stream, with retries and backoff.

A stream's events go strictly one after another: the next is sent only once the
previous one was acknowledged (or permanently refused), so the partner applies them in
the order they happened. A partner that is down simply accumulates pending events; they
all go out, in order, when it is back.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import grpc
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from projects.models import Partner, Project

from . import envelope as envelopes
from .client import PartnerUnusable, stub_for
from .events import event_body
from .models import OutboxEvent, OutboxStatus

log = logging.getLogger(__name__)

# The partner understood the request and said no: retrying cannot help.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
MAX_BACKOFF = timedelta(minutes=5)
DELIVERY_DEADLINE_SECONDS = 15


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 12)) / 4, MAX_BACKOFF)


def _project_for(event: OutboxEvent) -> Project | None:
    if event.stream == "site":
        return None
    return Project.objects.filter(pk=uuid.UUID(event.stream)).first()


def send_event(event: OutboxEvent, stub) -> None:
    from projects.tokens import tokens_for

    project = _project_for(event)
    token = tokens_for(project, event.token_version) if project is not None and event.token_version else None
    env = envelopes.build(
        sender=settings.SITE_PARTY_ID, receiver=event.partner.party_id, kind="event",
        project_id="" if event.stream == "site" else event.stream,
        body=envelopes.json_body(event_body(event)), token=token, token_version=event.token_version,
    )
    stub.Deliver(env, timeout=DELIVERY_DEADLINE_SECONDS)


def deliver_pending(*, partner: Partner | None = None) -> int:
    """One pass over every stream with a due event; returns how many were delivered."""
    delivered = 0
    pending = OutboxEvent.objects.filter(status=OutboxStatus.PENDING)
    if partner is not None:
        pending = pending.filter(partner=partner)
    streams = pending.values_list("partner_id", "stream").distinct()
    channels: dict[int, tuple] = {}
    try:
        for partner_id, stream in set(streams):
            while True:
                event = (
                    OutboxEvent.objects.select_related("partner")
                    .filter(partner_id=partner_id, stream=stream, status=OutboxStatus.PENDING)
                    .order_by("seq")
                    .first()
                )
                if event is None or (event.next_attempt_at and event.next_attempt_at > timezone.now()):
                    break
                try:
                    if partner_id not in channels:
                        channels[partner_id] = stub_for(event.partner)
                    send_event(event, channels[partner_id][1])
                except PartnerUnusable as exc:
                    _failed(event, str(exc), permanent=False)
                    break
                except grpc.RpcError as exc:
                    code = exc.code()
                    _failed(event, f"{code.name}: {exc.details()}", permanent=code in PERMANENT)
                    if code not in PERMANENT:
                        break  # keep the order: nothing after it goes before it
                    continue
                event.status, event.delivered_at = OutboxStatus.DELIVERED, timezone.now()
                event.attempts += 1
                event.last_error = ""
                event.save(update_fields=["status", "delivered_at", "attempts", "last_error"])
                _after_delivery(event)
                delivered += 1
    finally:
        for channel, _stub in channels.values():
            channel.close()
    return delivered


# Events that carry a token this site issued: once delivered, the partner uses it.
TOKEN_EVENTS = {"project.accept", "project.rotate"}


def _after_delivery(event: OutboxEvent) -> None:
    if event.type in TOKEN_EVENTS:
        from projects.tokens import confirm_delivered

        project = _project_for(event)
        if project is not None:
            confirm_delivered(project)


def _failed(event: OutboxEvent, error: str, *, permanent: bool) -> None:
    event.attempts += 1
    event.last_error = error[:2000]
    if permanent:
        event.status = OutboxStatus.REFUSED
        log.warning("partner %s refused event %s (%s): %s", event.partner.party_id, event.event_id, event.type, error)
    else:
        event.next_attempt_at = timezone.now() + backoff(event.attempts)
        log.info("event %s to %s not delivered yet (attempt %d): %s", event.type, event.partner.party_id, event.attempts, error)
    event.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


def run_forever(stop: threading.Event, *, interval: float = 0.5) -> None:
    """The proxy process's sending loop."""
    while not stop.is_set():
        try:
            close_old_connections()
            deliver_pending()
        except Exception:
            log.exception("outbox delivery pass failed; trying again")
        stop.wait(interval)
