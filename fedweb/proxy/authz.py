"""Authorise every request that reaches the proxy, before any handler runs.

mTLS authenticates a site; this module decides whether that site may make *this*
request. The checks run in a fixed order and the first failure wins:

1. the TLS peer's certificate is pinned for an active partner;
2. the envelope names that partner as sender and this site as receiver;
3. the timestamp is within ``FRESHNESS_SECONDS`` of our clock;
4. the project, when named, exists and the partner is its member, and its status
   allows the request (see ``_check_status``);
5. the MAC under the project's cooperation token is valid;
6. the nonce has never been seen from this sender (recorded only after 1-5 pass,
   so forged requests cannot fill the table).

Pairing-level requests (ping) and a project's first messages (the invitation, and
the answer that carries the new token) have no token to MAC with yet: for them the
pinned certificate and the TLS channel are the authentication, plus 2, 3 and 6.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fedweb.audit.models import AuditOutcome
from fedweb.audit.services import record
from projects.models import Partner, PartnerCertificate, Project, ProjectStatus
from projects.tokens import tokens_for

from . import envelope as envelopes
from .models import SeenNonce

log = logging.getLogger(__name__)

# Events that may arrive before the project has a token at the receiver.
OPENING_EVENTS = {"project.invite"}
ANSWER_EVENTS = {"project.accept", "project.reject"}
# Events a suspended project still accepts: status changes, and removals (which only
# ever reduce what the partner may use, and must not block a revocation behind them).
SUSPENDED_EVENTS = {"project.resume", "project.revoke", "project.suspend", "project.rotate", "table.removed"}


class Rejected(Exception):
    """A refused request. ``status`` is the gRPC status code name the caller gets."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Authorized:
    partner: Partner
    project: Project | None


def partner_for_certificate(der_fingerprint: str) -> Partner:
    now = timezone.now()
    pin = (
        PartnerCertificate.objects.select_related("partner")
        .filter(fingerprint=der_fingerprint, retired_at__isnull=True, partner__is_active=True)
        .first()
    )
    if pin is None:
        raise Rejected("UNAUTHENTICATED", "the client certificate is not pinned for any partner of this site")
    if pin.not_after <= now or pin.not_before > now:
        raise Rejected("UNAUTHENTICATED", "the partner's pinned certificate has expired or is not yet valid")
    return pin.partner


def _event_type(env) -> str:
    if env.kind != "event":
        return ""
    try:
        return str(envelopes.parse_json_body(env).get("type", ""))
    except ValueError:
        raise Rejected("INVALID_ARGUMENT", "the event body is not valid JSON") from None


def _check_status(project: Project, env, event_type: str) -> bool:
    """Whether the request is allowed in the project's state; returns True if a MAC is required."""
    status = project.status
    if status in ProjectStatus.closed():
        raise Rejected("PERMISSION_DENIED", f"the project is {status}")
    if status == ProjectStatus.PENDING:
        # We invited and wait for the answer, which brings the token.
        if event_type in ANSWER_EVENTS and project.initiator == settings.SITE_PARTY_ID:
            return False
        raise Rejected("FAILED_PRECONDITION", "the project has not been accepted yet")
    if status == ProjectStatus.INVITED:
        if event_type == "project.revoke" and project.initiator != settings.SITE_PARTY_ID:
            return False  # the inviter withdraws an invitation we have not answered
        raise Rejected("FAILED_PRECONDITION", "this site has not answered the invitation yet")
    if status == ProjectStatus.SUSPENDED and event_type not in SUSPENDED_EVENTS:
        raise Rejected("FAILED_PRECONDITION", "the project is suspended")
    return True


def authorize(env, peer_fingerprint: str | None) -> Authorized:
    if not peer_fingerprint:
        raise Rejected("UNAUTHENTICATED", "no client certificate was presented")
    partner = partner_for_certificate(peer_fingerprint)
    if env.sender != partner.party_id:
        raise Rejected("PERMISSION_DENIED", f"the certificate belongs to {partner.party_id}, not to {env.sender or 'nobody'}")
    if env.receiver != settings.SITE_PARTY_ID:
        raise Rejected("INVALID_ARGUMENT", f"the request is addressed to {env.receiver!r}, not to this site")
    if not envelopes.is_fresh(env):
        raise Rejected("UNAUTHENTICATED", "the request's timestamp is too old or in the future (check both sites' clocks)")
    if len(env.nonce) != envelopes.NONCE_BYTES:
        raise Rejected("INVALID_ARGUMENT", "the request has no valid nonce")

    project = None
    if env.project_id:
        try:
            project_uuid = uuid.UUID(env.project_id)
        except ValueError:
            raise Rejected("INVALID_ARGUMENT", "the project id is malformed") from None
        event_type = _event_type(env)
        project = Project.objects.filter(pk=project_uuid).select_related("partner").first()
        if project is None:
            if event_type not in OPENING_EVENTS:
                raise Rejected("NOT_FOUND", "no such project")
        else:
            if project.partner_id != partner.pk:
                raise Rejected("PERMISSION_DENIED", "the partner is not a member of this project")
            if event_type in OPENING_EVENTS:
                pass  # a re-delivered invitation: the inbox de-duplicates it
            elif _check_status(project, env, event_type):
                token = tokens_for(project, env.token_version)
                if token is None:
                    raise Rejected("UNAUTHENTICATED", "the request uses an unknown or expired cooperation token")
                if not envelopes.mac_is_valid(env, token):
                    raise Rejected("UNAUTHENTICATED", "the request's MAC is not valid for this project's token")
    elif env.kind != "ping":
        raise Rejected("INVALID_ARGUMENT", "this request must name a project")

    _remember_nonce(env)
    return Authorized(partner=partner, project=project)


def _remember_nonce(env) -> None:
    try:
        with transaction.atomic():
            SeenNonce.objects.create(sender=env.sender, nonce=env.nonce.hex())
    except IntegrityError:
        raise Rejected("PERMISSION_DENIED", "this request was already received once (replay)") from None


def forget_old_nonces() -> int:
    cutoff = timezone.now() - timedelta(seconds=2 * envelopes.FRESHNESS_SECONDS)
    deleted, _ = SeenNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


def audit_rejection(env, peer_fingerprint: str | None, rejection: Rejected, peer_address: str | None = None) -> None:
    log.warning("proxy refused %s from %s: %s", env.kind or "request", env.sender or "?", rejection.reason)
    record(
        "proxy_reject",
        actor_name=(env.sender or "unknown site")[:150],
        object_type="projects.project" if env.project_id else "",
        object_id=env.project_id[:64],
        outcome=AuditOutcome.DENIED,
        details={
            "reason": rejection.reason, "status": rejection.status, "kind": env.kind,
            "certificate": (peer_fingerprint or "")[:64], "peer": peer_address or "",
        },
    )
