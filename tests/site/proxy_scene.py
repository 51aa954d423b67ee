"""A site with one partner and projects in every state, for calling the proxy's ``serve``
without a socket; shared by the verification tests and the property-based test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fedweb.audit.models import AuditEvent
from fedweb.proxy import envelope as envelopes
from fedweb.proxy import pki
from fedweb.proxy.models import InboxEvent, OutboxEvent
from jobs.models import ScoringRequest
from projects import pairing, tokens
from projects.models import JobSession, Project, ProjectEvent, ProjectStatus, RemoteTable

SITE = "site-1"
PARTNER = "telco"


def bundle(party_id: str) -> dict:
    _key, cert = pki.make_self_signed(party_id)
    return {"format": "fedweb-site-bundle/1", "party_id": party_id, "name": party_id.title(),
            "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()]}


@dataclass
class Scene:
    partner: object
    fingerprint: str
    other_fingerprint: str
    projects: dict = field(default_factory=dict)  # state name -> Project
    token: dict = field(default_factory=dict)  # state name -> token bytes
    mailbox: Path | None = None

    def env(self, kind: str, *, project: str | None = "active", body: bytes = b"", mac: str = "valid", sender: str = PARTNER,
            token_version: int = 1, **fields):
        """An envelope from the partner; ``mac`` is "valid", "none" or "wrong"."""
        pid = str(self.projects[project].pk) if project in self.projects else (project or "")
        token = {"valid": self.token.get(project), "wrong": b"w" * 32, "none": None}[mac]
        return envelopes.build(sender=sender, receiver=SITE, kind=kind, project_id=pid, body=body, token=token,
                               token_version=token_version, **fields)

    def next_seq(self, project: str) -> int:
        stream = str(self.projects[project].pk)
        return InboxEvent.objects.filter(stream=stream).count() + 1

    def event(self, event_type: str, *, project: str = "active", seq: int | None = None, **payload) -> bytes:
        stream = str(self.projects[project].pk) if project in self.projects else project
        number = self.next_seq(project) if seq is None else seq
        return envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": stream, "seq": number, "type": event_type,
                                    "payload": payload})


def build(admin, data_dir: Path) -> Scene:
    """telco paired with projects in each state (tokens known), eve paired but in none."""
    partner = pairing.import_bundle(bundle(PARTNER), by=admin)
    eve = pairing.import_bundle(bundle("eve"), by=admin)
    scene = Scene(partner=partner, fingerprint=partner.certificates.get().fingerprint,
                  other_fingerprint=eve.certificates.get().fingerprint, mailbox=data_dir / "mailbox")
    states = {
        "active": ProjectStatus.ACTIVE, "suspended": ProjectStatus.SUSPENDED, "revoked": ProjectStatus.REVOKED,
        "rejected": ProjectStatus.REJECTED, "invited": ProjectStatus.INVITED, "pending": ProjectStatus.PENDING,
    }
    for name, status in states.items():
        project = Project(name=name, purpose="x", partner=partner, initiator=SITE if name == "pending" else PARTNER,
                          label_holder=SITE, status=status, suspended_here=(name == "suspended"))
        token = tokens.new_token()
        tokens.set_token(project, token, 1, issued_here=False)
        project.save()
        scene.projects[name], scene.token[name] = project, token
    other = Project(name="eve's", purpose="x", partner=eve, initiator="eve", label_holder=SITE, status=ProjectStatus.ACTIVE)
    tokens.set_token(other, tokens.new_token(), 1, issued_here=False)
    other.save()
    scene.projects["eve"] = other
    JobSession.objects.create(session_id="sess-active-1", project=scene.projects["active"], purpose="psi", opened_by=SITE)
    return scene


def snapshot(scene: Scene) -> dict:
    """Everything a partner's request could change, but the audit trail and the nonce table."""
    files = sorted(str(p.relative_to(scene.mailbox)) for p in scene.mailbox.rglob("*")) if scene.mailbox.exists() else []
    return {
        "projects": sorted(Project.objects.values_list(
            "id", "status", "suspended_here", "suspended_by_partner", "token_version", "token_encrypted", "name")),
        "inbox": sorted(InboxEvent.objects.values_list("event_id", "stream", "seq", "type", "applied_at", "error")),
        "outbox": OutboxEvent.objects.count(),
        "history": ProjectEvent.objects.count(),
        "sessions": sorted(JobSession.objects.values_list("session_id", "closed_at")),
        "remote_tables": sorted(RemoteTable.objects.values_list("table_id", "is_authorised", "name")),
        "mailbox": files,
        "scoring_log": ScoringRequest.objects.count(),
    }


def refusals() -> int:
    return AuditEvent.objects.filter(action="proxy_reject").count()
