"""Verify every request that reaches the proxy, before any handler reads it.

mTLS authenticates a site; this module decides whether that site may make *this*
request. Every RPC takes the same path, in this order, and the first failure wins:

1. **parse** the envelope with bounded sizes, and its body as the RPC's format (JSON
   objects of bounded size and nesting depth, text, or raw chunk bytes) — nothing in
   the body is looked at yet;
2. **kind**: the envelope's kind is the one its RPC carries (an abort cannot be sent
   as an event, an event cannot open a session);
3. **pinned sender**: the TLS peer's certificate is pinned for an active partner, and
   the envelope names that partner as sender and this site as receiver;
4. **project**: the project exists, the partner is its member, and its state lets this
   kind of request through (``KINDS_BY_STATUS``; a rejected or revoked project refuses
   everything);
5. **MAC** under the project's cooperation token, then the **timestamp** within
   ``FRESHNESS_SECONDS`` of our clock, then the **nonce** never seen before from this
   sender (recorded only now, so forged requests cannot fill the table);
6. only then does the handler read the body.

The one request without a MAC is an invitation (``Deliver``) to a project id this site
has never seen: there is no token yet, so the pinned certificate and the TLS channel
authenticate it, and the inbox applies nothing but an invitation opening a new stream.
A ping names no project and has no MAC either; it changes nothing but the nonce table.

Every refusal, at any step and in the handlers, is audited once (``proxy_reject``)
by the caller of ``verify`` (see ``server.serve``).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fedweb.audit.models import AuditOutcome
from fedweb.audit.services import record
from projects.models import Partner, PartnerCertificate, Project, ProjectStatus
from projects.tokens import tokens_for

from . import envelope as envelopes
from .models import InboxEvent, SeenNonce

log = logging.getLogger(__name__)

# The envelope kind each RPC carries.
KIND_OF_RPC = {"Ping": "ping", "Deliver": "event", "OpenSession": "session", "Push": "chunk", "Abort": "abort",
               "Score": "score", "Ledger": "ledger", "Tunnel": "tunnel"}

# What a project's state lets through, decided from the header alone. Which *events*
# apply in which state is the appliers' business (``@applier(..., states=...)``), after
# the MAC. Rejected and revoked projects are absent: they refuse everything.
KINDS_BY_STATUS = {
    ProjectStatus.ACTIVE: {"event", "session", "chunk", "abort", "score", "ledger", "tunnel"},
    # A suspended project scores nothing, but the two sites can still settle what was scored.
    ProjectStatus.SUSPENDED: {"event", "abort", "ledger"},
    ProjectStatus.INVITED: {"event"},
    ProjectStatus.PENDING: {"event"},
}
NOT_NOW = {
    ProjectStatus.SUSPENDED: "the project is suspended",
    ProjectStatus.INVITED: "this site has not answered the invitation yet",
    ProjectStatus.PENDING: "the project has not been accepted yet",
}

# Bounds of the parse step. JSON bodies are small control messages; chunks are bounded
# by the transport's chunk size (plus room), gRPC bounds the whole message.
MAX_JSON_BYTES = {"event": 1024 * 1024, "session": 64 * 1024, "score": 512 * 1024, "ledger": 4096}
MAX_JSON_DEPTH = 16
MAX_TEXT_BYTES = {"abort": 4096, "ping": 1024}
MAX_CHUNK_BYTES = 8 * 1024 * 1024
MAX_FIELD = {"sender": 63, "receiver": 63, "project_id": 36, "kind": 16, "session_id": 64, "key": 512}
MAC_BYTES = 32


class Rejected(Exception):
    """A refused request. ``status`` is the gRPC status code name the caller gets."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Verified:
    """A request that passed every check: who sent it, about which project, and its parsed body."""

    rpc: str
    env: Any
    partner: Partner
    project: Project | None
    body: Any  # dict for events, sessions, scoring and ledger requests; str for aborts and pings; bytes for chunks and tunnels


# --- 1. Parse ----------------------------------------------------------------------------

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """The nesting depth of a JSON text, without parsing it (so without recursion)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json_object(raw: bytes, *, max_bytes: int, what: str = "the request body") -> dict:
    """A JSON object of bounded size and depth, or ValueError in plain words."""
    if len(raw) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes} bytes")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    if b"\\u0000" in raw:
        raise ValueError(f"{what} contains a NUL character")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def parse(rpc: str, env) -> Any:
    """Step 1: bounded fields, and the body in the RPC's format (not interpreted yet)."""
    for field, limit in MAX_FIELD.items():
        if len(getattr(env, field)) > limit:
            raise Rejected("INVALID_ARGUMENT", f"the envelope's {field} is longer than {limit} characters")
    if len(env.nonce) != envelopes.NONCE_BYTES:
        raise Rejected("INVALID_ARGUMENT", "the request has no valid nonce")
    if env.mac and len(env.mac) != MAC_BYTES:
        raise Rejected("INVALID_ARGUMENT", "the request's MAC has the wrong length")
    kind = KIND_OF_RPC[rpc]
    try:
        if kind in MAX_JSON_BYTES:
            return parse_json_object(env.body, max_bytes=MAX_JSON_BYTES[kind])
        if kind in MAX_TEXT_BYTES:
            if len(env.body) > MAX_TEXT_BYTES[kind]:
                raise ValueError(f"the request body is larger than {MAX_TEXT_BYTES[kind]} bytes")
            try:
                return env.body.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("the request body is not UTF-8 text") from None
    except ValueError as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None
    if len(env.body) > MAX_CHUNK_BYTES:
        raise Rejected("INVALID_ARGUMENT", f"a chunk is larger than {MAX_CHUNK_BYTES} bytes")
    return env.body


# --- 3. Pinned sender --------------------------------------------------------------------

def partner_for_certificate(der_fingerprint: str | None) -> Partner:
    if not der_fingerprint:
        raise Rejected("UNAUTHENTICATED", "no client certificate was presented")
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


def _check_sender(env, fingerprint) -> Partner:
    partner = partner_for_certificate(fingerprint)
    if env.sender != partner.party_id:
        raise Rejected("PERMISSION_DENIED", f"the certificate belongs to {partner.party_id}, not to {printable(env.sender) or 'nobody'}")
    if env.receiver != settings.SITE_PARTY_ID:
        raise Rejected("INVALID_ARGUMENT", f"the request is addressed to {printable(env.receiver)!r}, not to this site")
    return partner


# --- 4. Project --------------------------------------------------------------------------

def never_seen(project_id: uuid.UUID) -> bool:
    """No project and no event stream of this id exists here (from any partner)."""
    return not (Project.objects.filter(pk=project_id).exists() or InboxEvent.objects.filter(stream=str(project_id)).exists())


def _check_project(rpc: str, env, partner: Partner) -> tuple[Project | None, bool]:
    """The project the request is about, and whether it must carry a MAC."""
    if rpc == "Ping":
        if env.project_id:
            raise Rejected("INVALID_ARGUMENT", "a ping names no project")
        return None, False
    if not env.project_id:
        raise Rejected("INVALID_ARGUMENT", "this request must name a project")
    try:
        project_id = uuid.UUID(env.project_id)
    except ValueError:
        raise Rejected("INVALID_ARGUMENT", "the project id is malformed") from None
    project = Project.objects.filter(pk=project_id).select_related("partner").first()
    if project is None:
        if rpc == "Deliver" and never_seen(project_id):
            _check_room_for_an_invitation(partner)
            return None, False  # an invitation: the inbox accepts nothing else here
        raise Rejected("NOT_FOUND", "no such project")
    if project.partner_id != partner.pk:
        raise Rejected("PERMISSION_DENIED", "the partner is not a member of this project")
    allowed = KINDS_BY_STATUS.get(project.status)
    if allowed is None:
        raise Rejected("PERMISSION_DENIED", f"the project is {project.status}")
    if env.kind not in allowed:
        raise Rejected("FAILED_PRECONDITION", NOT_NOW.get(project.status, f"the project is {project.status}"))
    return project, True


def _check_room_for_an_invitation(partner: Partner) -> None:
    """A partner cannot bury our admins in invitations (the sender retries later)."""
    waiting = Project.objects.filter(partner=partner, status=ProjectStatus.INVITED).count()
    if waiting >= settings.MAX_WAITING_INVITATIONS:
        raise Rejected("RESOURCE_EXHAUSTED", f"{waiting} invitations from this partner already wait for an answer here")


# --- 5. MAC, timestamp, nonce ------------------------------------------------------------

def _check_mac(env, project: Project) -> None:
    token = tokens_for(project, env.token_version)
    if token is None:
        raise Rejected("UNAUTHENTICATED", "the request uses an unknown or expired cooperation token")
    if not envelopes.mac_is_valid(env, token):
        raise Rejected("UNAUTHENTICATED", "the request's MAC is not valid for this project's token")


def _remember_nonce(env) -> None:
    try:
        with transaction.atomic():
            SeenNonce.objects.create(sender=env.sender, nonce=env.nonce.hex())
    except IntegrityError:
        raise Rejected("PERMISSION_DENIED", "this request was already received once (replay)") from None


def verify(rpc: str, env, fingerprint: str | None) -> Verified:
    """Steps 1-5 for one envelope of ``rpc``; raises Rejected at the first failure."""
    body = parse(rpc, env)
    if env.kind != KIND_OF_RPC[rpc]:
        raise Rejected("INVALID_ARGUMENT", f"{rpc} carries {KIND_OF_RPC[rpc]!r} requests, not {printable(env.kind)!r}")
    partner = _check_sender(env, fingerprint)
    project, needs_mac = _check_project(rpc, env, partner)
    if needs_mac:
        _check_mac(env, project)
    if not envelopes.is_fresh(env):
        raise Rejected("UNAUTHENTICATED", "the request's timestamp is too old or in the future (check both sites' clocks)")
    _remember_nonce(env)
    return Verified(rpc=rpc, env=env, partner=partner, project=project, body=body)


def forget_old_nonces() -> int:
    cutoff = timezone.now() - timedelta(seconds=2 * envelopes.FRESHNESS_SECONDS)
    deleted, _ = SeenNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


# --- Auditing ----------------------------------------------------------------------------

def printable(text: str, limit: int = 150) -> str:
    """Partner-controlled text made safe for the audit trail and logs (no control characters)."""
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in (text or "")[:limit])


def audit_rejection(rpc: str, env, fingerprint: str | None, rejection: Rejected, peer_address: str | None = None) -> None:
    """One audit row per refused request, whatever step refused it."""
    sender = printable(env.sender) if env is not None else ""
    project_id = printable(env.project_id, 64) if env is not None else ""
    log.warning("proxy refused %s from %s: %s", rpc, sender or "?", rejection.reason)
    record(
        "proxy_reject",
        actor_name=sender or "unknown site",
        object_type="projects.project" if project_id else "",
        object_id=project_id,
        outcome=AuditOutcome.DENIED,
        details={
            "rpc": rpc, "reason": printable(rejection.reason, 1000), "status": rejection.status,
            "kind": printable(env.kind, 16) if env is not None else "",
            "session": printable(env.session_id, 64) if env is not None else "",
            "certificate": (fingerprint or "")[:64], "peer": printable(peer_address or "", 200),
        },
    )
