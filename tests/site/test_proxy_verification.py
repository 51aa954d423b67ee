"""The proxy's one verification path, called as the gRPC servicer calls it (no socket).

Each finding of the outside review is reproduced here as the partner would send it;
every refusal must leave the site unchanged and write exactly one audit row.
"""

import time

import pytest

from fedweb.audit.services import verify_chain
from fedweb.proxy import authz, server
from fedweb.proxy import envelope as envelopes
from fedweb.proxy.authz import Rejected
from fedweb.proxy.models import InboxEvent
from projects.models import JobSession, Project, ProjectStatus

from .proxy_scene import build, refusals, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(admin, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SITE_PARTY_ID = "site-1"
    return build(admin, tmp_path)


def refused(scene, rpc, env, *, status=None, words=None, fingerprint=None):
    """Assert the request is refused, changes nothing and is audited once; returns the reason."""
    before, audits = snapshot(scene), refusals()
    with pytest.raises(Rejected) as info:
        server.serve(rpc, env, fingerprint or scene.fingerprint)
    assert snapshot(scene) == before
    assert refusals() == audits + 1
    if status:
        assert info.value.status == status, info.value.reason
    if words:
        assert words in info.value.reason
    return info.value.reason


def accepted(scene, rpc, env):
    return server.serve(rpc, env, scene.fingerprint)


# --- 1. The MAC cannot be skipped -------------------------------------------------------

def test_an_invitation_to_an_existing_project_needs_a_mac(scene):
    body = scene.event("project.invite", name="x", purpose="y", label_holder="site-1")
    refused(scene, "Deliver", scene.env("event", body=body, mac="none"), status="UNAUTHENTICATED", words="MAC")


def test_open_session_and_abort_without_a_mac_are_refused(scene):
    session = envelopes.json_body({"purpose": "psi", "session_id": "s-12345678", "table_id": "00000000-0000-0000-0000-000000000000",
                                   "set_size": 200, "wants_intersection": False})
    refused(scene, "OpenSession", scene.env("session", body=session, mac="none"), status="UNAUTHENTICATED")
    refused(scene, "Abort", scene.env("abort", body=b"stop", mac="none", session_id="sess-active-1"), status="UNAUTHENTICATED")
    assert not (scene.mailbox / "sess-active-1").exists()


@pytest.mark.parametrize("rpc, kind", [("OpenSession", "event"), ("Abort", "event"), ("Deliver", "abort"),
                                       ("Deliver", "session"), ("Ping", "event"), ("Abort", "chunk")])
def test_each_rpc_takes_only_its_own_kind_of_envelope(scene, rpc, kind):
    body = scene.event("project.invite", name="x", purpose="y", label_holder="site-1") if rpc != "Abort" else b"stop"
    refused(scene, rpc, scene.env(kind, body=body, session_id="sess-active-1"), status="INVALID_ARGUMENT", words="carries")


def test_a_valid_abort_marks_the_session_for_the_waiting_job(scene):
    accepted(scene, "Abort", scene.env("abort", body="out of memory".encode(), session_id="sess-active-1"))
    assert (scene.mailbox / "sess-active-1" / "_abort__telco").read_text() == "out of memory"


# --- 2. Nothing makes genuine events look like duplicates -------------------------------

def test_a_forged_invitation_with_a_huge_sequence_number_is_refused_and_later_events_still_apply(scene):
    forged = scene.event("project.invite", seq=10**12, name="x", purpose="y", label_holder="site-1")
    refused(scene, "Deliver", scene.env("event", body=forged, mac="none"), status="UNAUTHENTICATED")
    # The partner's genuine suspension, MAC'd, is the stream's first event: applied.
    answer = accepted(scene, "Deliver", scene.env("event", body=scene.event("project.suspend", comment="")))
    assert answer.detail == "applied"
    assert Project.objects.get(pk=scene.projects["active"].pk).status == ProjectStatus.SUSPENDED


def test_a_mac_valid_jump_in_sequence_numbers_is_refused_and_a_small_gap_waits(scene):
    jump = scene.event("table.removed", seq=10**12, table_id="x")
    refused(scene, "Deliver", scene.env("event", body=jump), status="INVALID_ARGUMENT", words="expected before")
    gap = scene.event("table.removed", seq=3, table_id="x")
    refused(scene, "Deliver", scene.env("event", body=gap), status="FAILED_PRECONDITION", words="expected before")


def test_an_invitation_to_a_new_project_must_open_its_stream(scene):
    import uuid

    pid = str(uuid.uuid4())
    def invite(seq):
        return envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": pid, "seq": seq, "type": "project.invite",
                                    "payload": {"name": "New", "purpose": "p", "label_holder": "site-1", "version": 1,
                                                "token": __import__("base64").b64encode(b"k" * 32).decode()}})
    refused(scene, "Deliver", scene.env("event", project=pid, body=invite(10**12), mac="none"), words="expected before")
    not_an_invite = envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": pid, "seq": 1, "type": "project.suspend", "payload": {}})
    refused(scene, "Deliver", scene.env("event", project=pid, body=not_an_invite, mac="none"), words="does not know this project")
    refused(scene, "OpenSession", scene.env("session", project=pid, body=b"{}", mac="none"), status="NOT_FOUND")
    assert accepted(scene, "Deliver", scene.env("event", project=pid, body=invite(1), mac="none")).detail == "applied"
    assert Project.objects.get(pk=pid).status == ProjectStatus.INVITED


# --- 3. Closed projects refuse everything ----------------------------------------------

@pytest.mark.parametrize("state", ["revoked", "rejected"])
@pytest.mark.parametrize("mac", ["none", "valid"])
def test_a_closed_project_refuses_everything_and_audits_it(scene, state, mac):
    body = scene.event("project.invite", project=state, name="x", purpose="y", label_holder="site-1")
    refused(scene, "Deliver", scene.env("event", project=state, body=body, mac=mac), status="PERMISSION_DENIED", words=state)


# --- 4. Malformed bodies are refused and audited ----------------------------------------

@pytest.mark.parametrize("body, words", [
    (b"[1, 2, 3]", "must be a JSON object"),
    (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested deeper"),
    (b"\xff\xfe not utf-8", "not valid JSON"),
    (b'{"type": NaN}', "not valid JSON"),
    (b'{"type": "project.invite", "x": "\\u0000"}', "NUL"),
    (b"{" + b'"k": "' + b"x" * (1024 * 1024) + b'"}', "larger than"),
])
@pytest.mark.parametrize("mac", ["none", "valid"])
def test_a_malformed_body_is_refused_and_audited_before_anything_else(scene, body, words, mac):
    refused(scene, "Deliver", scene.env("event", body=body, mac=mac), status="INVALID_ARGUMENT", words=words)


def test_an_event_body_missing_its_fields_is_refused_and_audited(scene):
    refused(scene, "Deliver", scene.env("event", body=b'{"type": "project.suspend"}'), status="INVALID_ARGUMENT", words="missing")


def test_an_oversized_header_field_is_refused(scene):
    refused(scene, "Ping", scene.env("ping", project=None, sender="t" * 1000), words="longer than")


def test_an_unexpected_failure_in_a_handler_is_audited_too(scene, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.events, "receive", broken)
    reason = refused(scene, "Deliver", scene.env("event", body=scene.event("project.suspend")), status="INTERNAL")
    assert "disk" not in reason  # the partner learns nothing of our internals


# --- 5. A suspension is lifted only by the side that made it ----------------------------

def test_the_partner_cannot_lift_our_suspension(scene):
    body = scene.event("project.resume", project="suspended", comment="")
    before = refusals()  # the refusal is stored under its number (see below), so checked by hand
    with pytest.raises(Rejected, match="only this site can lift"):
        server.serve("Deliver", scene.env("event", project="suspended", body=body), scene.fingerprint)
    assert refusals() == before + 1
    project = Project.objects.get(pk=scene.projects["suspended"].pk)
    assert project.status == ProjectStatus.SUSPENDED and project.suspended_here


def test_both_suspensions_must_be_lifted_before_work_resumes(scene, admin):
    from projects import services

    project = scene.projects["active"]
    accepted(scene, "Deliver", scene.env("event", body=scene.event("project.suspend", comment="")))
    services.suspend(user=admin, project=project)
    accepted(scene, "Deliver", scene.env("event", body=scene.event("project.resume", comment="")))
    project.refresh_from_db()
    assert project.status == ProjectStatus.SUSPENDED and project.suspended_here and not project.suspended_by_partner
    services.resume(user=admin, project=project)
    project.refresh_from_db()
    assert project.status == ProjectStatus.ACTIVE


def test_we_cannot_lift_the_partners_suspension(scene, admin):
    from fedweb.api.errors import ServiceError
    from projects import services

    accepted(scene, "Deliver", scene.env("event", body=scene.event("project.suspend", comment="")))
    with pytest.raises(ServiceError, match="only the partner can lift"):
        services.resume(user=admin, project=scene.projects["active"])


# --- The rest of the order: sender, membership, state, MAC, freshness, nonce -------------

def test_a_certificate_of_another_paired_site_cannot_speak_for_the_partner(scene):
    refused(scene, "Ping", scene.env("ping", project=None), fingerprint=scene.other_fingerprint, status="PERMISSION_DENIED",
            words="belongs to eve")


def test_a_paired_site_outside_the_project_is_refused(scene):
    env = scene.env("event", project="eve", body=scene.event("project.suspend", project="eve"), mac="none")
    refused(scene, "Deliver", env, status="PERMISSION_DENIED", words="not a member")


def test_a_suspended_project_refuses_sessions_and_chunks(scene):
    session = envelopes.json_body({"purpose": "psi", "session_id": "s-12345678", "table_id": "x", "set_size": 1})
    refused(scene, "OpenSession", scene.env("session", project="suspended", body=session), status="FAILED_PRECONDITION",
            words="suspended")


def test_the_timestamp_and_nonce_are_checked_after_the_mac(scene):
    stale = scene.env("ping", project=None, timestamp_ms=int((time.time() - 3600) * 1000))
    refused(scene, "Ping", stale, status="UNAUTHENTICATED", words="timestamp")
    ping = scene.env("ping", project=None)
    accepted(scene, "Ping", ping)
    refused(scene, "Ping", ping, status="PERMISSION_DENIED", words="replay")


def test_a_forged_request_does_not_use_up_a_nonce(scene):
    from fedweb.proxy.models import SeenNonce

    forged = scene.env("event", body=scene.event("project.suspend"), mac="wrong")
    refused(scene, "Deliver", forged, status="UNAUTHENTICATED", words="MAC")
    assert not SeenNonce.objects.filter(nonce=forged.nonce.hex()).exists()


def test_a_psi_policy_refusal_is_audited_once(scene):
    session = envelopes.json_body({"purpose": "psi", "session_id": "s-12345678", "table_id": "00000000-0000-0000-0000-000000000000",
                                   "set_size": 200, "wants_intersection": False})
    refused(scene, "OpenSession", scene.env("session", body=session), status="PERMISSION_DENIED", words="not authorised")
    assert not JobSession.objects.filter(session_id="s-12345678").exists()


def test_the_audit_chain_is_intact_after_the_refusals(scene):
    for body in (b"[]", b"{" * 50 + b"}" * 50, b"junk"):
        with pytest.raises(Rejected):
            server.serve("Deliver", scene.env("event", body=body, mac="none"), scene.fingerprint)
    assert verify_chain().ok


def test_the_depth_of_json_is_measured_without_recursion():
    assert authz.json_depth(b'{"a": [1, {"b": "[[[[["}]}') == 3
    assert authz.json_depth(b"[" * 1_000_000) == 1_000_000
    assert authz.json_depth(b'"\\"[["') == 0


def test_a_refused_event_is_kept_under_its_number_so_the_stream_moves_on(scene):
    bad = scene.event("table.authorised", table_id="not-a-uuid")
    with pytest.raises(Rejected, match="malformed"):
        server.serve("Deliver", scene.env("event", body=bad), scene.fingerprint)
    assert InboxEvent.objects.get(stream=str(scene.projects["active"].pk)).error
    good = scene.event("table.authorised", table_id="00000000-0000-0000-0000-000000000001", name="t", columns=[])
    assert accepted(scene, "Deliver", scene.env("event", body=good)).detail == "applied"


def _invitation(project_id):
    import base64
    import uuid

    return envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": project_id, "seq": 1, "type": "project.invite",
                                "payload": {"name": "Spam", "purpose": "p", "label_holder": "site-1", "version": 1,
                                            "token": base64.b64encode(b"k" * 32).decode()}})


def test_a_partner_cannot_bury_our_admins_in_invitations(scene, settings):
    import uuid

    settings.MAX_WAITING_INVITATIONS = 3  # the scene already holds one invitation from telco
    for _ in range(2):
        pid = str(uuid.uuid4())
        accepted(scene, "Deliver", scene.env("event", project=pid, body=_invitation(pid), mac="none"))
    pid = str(uuid.uuid4())
    refused(scene, "Deliver", scene.env("event", project=pid, body=_invitation(pid), mac="none"),
            status="RESOURCE_EXHAUSTED", words="wait for an answer")


def test_a_partner_cannot_fill_a_sessions_mailbox(scene, settings):
    settings.MAILBOX_SESSION_BYTES = 100
    first = scene.env("chunk", body=b"x" * 60, session_id="sess-active-1", key="m1", chunk_index=0, chunk_count=1)
    server.serve_push(iter([first]), scene.fingerprint)
    second = scene.env("chunk", body=b"x" * 60, session_id="sess-active-1", key="m2", chunk_index=0, chunk_count=1)
    before = refusals()
    with pytest.raises(Rejected, match="mailbox is full"):
        server.serve_push(iter([second]), scene.fingerprint)
    assert refusals() == before + 1
    assert sorted(p.name for p in (scene.mailbox / "sess-active-1").iterdir()) == ["telco__site-1__bTE"]


def test_all_chunks_of_a_push_must_belong_to_one_message(scene):
    chunks = [scene.env("chunk", body=b"a", session_id="sess-active-1", key="m", chunk_index=0, chunk_count=2),
              scene.env("chunk", body=b"b", session_id="sess-active-1", key="other", chunk_index=1, chunk_count=2)]
    with pytest.raises(Rejected, match="one message"):
        server.serve_push(iter(chunks), scene.fingerprint)
    assert not list((scene.mailbox / "sess-active-1").iterdir())
