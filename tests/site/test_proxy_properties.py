"""Property: nothing a partner sends without a valid MAC under the right project's token
changes this site, and every refusal writes exactly one audit row.

Hypothesis draws whole envelopes — every RPC and kind, projects in every state (and
unknown or malformed ids), event types real and invented, sequence numbers near and far,
JSON bodies well-formed, malformed, wrong-shaped and deep, MACs valid, wrong and missing,
stale timestamps, short nonces — and sends them through ``server.serve`` as the gRPC
servicer does. The only requests that may change anything without a MAC are the
invitation to a never-seen project id (which may only create that invitation) and a
ping (which changes nothing).
"""

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedweb.audit.services import verify_chain
from fedweb.proxy import envelope as envelopes
from fedweb.proxy import server
from fedweb.proxy.authz import Rejected
from projects.models import Project, ProjectStatus

from .proxy_scene import SITE, build, refusals, snapshot

pytestmark = pytest.mark.django_db

RPCS = ["Ping", "Deliver", "OpenSession", "Push", "Abort", "Score", "Ledger"]
KINDS = ["ping", "event", "session", "chunk", "abort", "score", "ledger"]
PROJECTS = ["active", "suspended", "revoked", "rejected", "invited", "pending", "eve", "unknown", "malformed", "none"]
EVENT_TYPES = ["project.invite", "project.accept", "project.reject", "project.suspend", "project.resume", "project.revoke",
               "project.rotate", "table.authorised", "table.removed", "job.submit", "evil"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _token_b64():
    return st.binary(min_size=32, max_size=32).map(lambda b: __import__("base64").b64encode(b).decode())


def plausible_payload(event_type):
    """What a genuine partner would send with each event type, so that many drawn
    requests are one defect away from being applied."""
    table_id = st.uuids().map(str)
    return {
        "project.invite": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=10), "purpose": st.just("p"),
                                                 "label_holder": st.sampled_from([SITE, "telco", "mallory"]), "version": st.just(1),
                                                 "token": _token_b64()}),
        "project.accept": st.fixed_dictionaries({"version": st.just(2), "token": _token_b64(), "comment": st.just("")}),
        "project.rotate": st.fixed_dictionaries({"version": st.just(2), "token": _token_b64()}),
        "table.authorised": st.fixed_dictionaries({"table_id": table_id, "name": st.text(max_size=10), "row_count": st.integers(0, 10**6),
                                                   "columns": st.just([{"name": "x", "role": "feature", "type": "float"}])}),
        "table.removed": st.fixed_dictionaries({"table_id": table_id}),
    }.get(event_type, st.fixed_dictionaries({"comment": st.text(max_size=10)}))


@st.composite
def proper_body(draw, rpc, scene, target, project_id):
    """What a genuine partner would send on ``rpc`` (the event's payload may still be refused)."""
    if rpc == "Deliver":
        event_type = draw(st.sampled_from(EVENT_TYPES + ["project.invite"] * (8 if target == "unknown" else 0)))
        seq = scene.next_seq(target) if target in scene.projects else 1
        return envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": project_id, "seq": seq, "type": event_type,
                                    "payload": draw(plausible_payload(event_type))})
    if rpc == "OpenSession":
        return envelopes.json_body({"purpose": "psi", "session_id": f"s-{uuid.uuid4().hex}", "table_id": str(uuid.uuid4()),
                                    "set_size": draw(st.integers(0, 10**6)), "wants_intersection": draw(st.booleans())})
    if rpc == "Abort":
        return draw(st.text(max_size=50)).encode()
    if rpc == "Score":
        return envelopes.json_body({"request_id": str(uuid.uuid4()), "model_id": str(uuid.uuid4()),
                                    "ids": draw(st.lists(st.text(max_size=8), max_size=3))})
    if rpc == "Ledger":
        return envelopes.json_body({"model_id": str(uuid.uuid4()), "day": "2026-12-03", "after": ""})
    if rpc == "Push":
        return draw(st.binary(max_size=64))
    return b""


def malformed_body():
    return st.one_of(
        st.lists(json_values, max_size=3).map(envelopes.json_body),
        st.integers(15, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
        json_values.map(envelopes.json_body),
        st.text(max_size=50).map(str.encode),
        st.binary(max_size=64),
        st.fixed_dictionaries({"event_id": json_values, "stream": json_values, "seq": json_values,
                               "type": st.sampled_from(EVENT_TYPES) | st.text(max_size=10), "payload": json_values}
                              ).map(envelopes.json_body),
    )


KIND_OF = {"Ping": "ping", "Deliver": "event", "OpenSession": "session", "Push": "chunk", "Abort": "abort",
           "Score": "score", "Ledger": "ledger"}
# Each defect spoils one thing of an otherwise genuine request.
DEFECTS = {
    "kind": lambda draw: {"kind": draw(st.sampled_from(KINDS + ["", "invite"]))},
    "sender": lambda draw: {"sender": draw(st.sampled_from(["eve", SITE, ""]))},
    "receiver": lambda draw: {"receiver": draw(st.sampled_from(["telco", "", "x" * 70]))},
    "token_version": lambda draw: {"token_version": draw(st.sampled_from([0, 2, 7]))},
    "session": lambda draw: {"session_id": draw(st.sampled_from(["", "../x", "other-session"]))},
    "chunks": lambda draw: {"chunk_index": draw(st.integers(1, 5)), "chunk_count": draw(st.sampled_from([0, 3, 2_000_000]))},
    "stale": lambda draw: {"timestamp_ms": draw(st.sampled_from([0, 2**62]))},
    "body": lambda draw: {"body": draw(malformed_body())},
    "seq": lambda draw: {"seq": draw(st.sampled_from([0, -1, 2, 10**12]) | json_values)},
    "stream": lambda draw: {"stream": draw(st.text(max_size=40))},
}


@st.composite
def requests(draw, scene):
    """A genuine-looking request with zero to two defects, under a valid or invalid MAC."""
    rpc = draw(st.sampled_from(RPCS + ["Deliver", "Deliver"]))
    target = "none" if rpc == "Ping" and draw(st.booleans()) else draw(st.sampled_from(PROJECTS + ["unknown"] * 2))
    if target in scene.projects:
        project_id = str(scene.projects[target].pk)
    else:
        project_id = {"unknown": str(uuid.uuid4()), "malformed": draw(st.text(max_size=40)), "none": ""}[target]
    fields = {"sender": "telco", "receiver": SITE, "kind": KIND_OF[rpc], "project_id": project_id, "token_version": 1,
              "session_id": "sess-active-1", "key": "psi/blinded", "chunk_index": 0, "chunk_count": 1, "timestamp_ms": None,
              "body": draw(proper_body(rpc, scene, target, project_id))}
    defects = draw(st.lists(st.sampled_from(sorted(DEFECTS)), max_size=2, unique=True))
    for defect in defects:
        change = DEFECTS[defect](draw)
        if set(change) <= {"seq", "stream"}:
            try:
                body = json.loads(fields["body"])
            except (ValueError, RecursionError):  # the body is already malformed
                continue
            if isinstance(body, dict):
                fields["body"] = envelopes.json_body({**body, **change})
        else:
            fields.update(change)
    env = envelopes.build(**fields)
    mac = draw(st.sampled_from(["valid", "valid", "valid", "wrong", "none", "other-project"]))
    token = {"valid": scene.token.get(target), "wrong": b"w" * 32, "none": None,
             "other-project": scene.token["active" if target != "active" else "suspended"]}[mac]
    if token is not None:
        env.mac = envelopes.compute_mac(env, token)
    if not draw(st.integers(0, 19)):
        env.nonce = b"short"
    certificate = "partner" if draw(st.integers(0, 5)) else draw(st.sampled_from(["eve", "none"]))
    return rpc, env, target, mac == "valid" and target in scene.token, certificate


@pytest.fixture
def scene(admin, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SITE_PARTY_ID = SITE
    return build(admin, tmp_path)


def _send(scene, rpc, env, certificate):
    fingerprint = {"partner": scene.fingerprint, "eve": scene.other_fingerprint, "none": None}[certificate]
    if rpc == "Push":
        return server.serve_push(iter([env]), fingerprint)
    return server.serve(rpc, env, fingerprint)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_without_a_valid_mac_changes_anything_and_every_refusal_is_audited_once(scene, data):
    rpc, env, target, mac_valid, certificate = data.draw(requests(scene))
    before, audits = snapshot(scene), refusals()
    try:
        _send(scene, rpc, env, certificate)
        accepted = True
    except Rejected:
        accepted = False
    after = snapshot(scene)
    if not accepted:
        assert refusals() == audits + 1, "a refusal must write exactly one audit row"
    if mac_valid and certificate == "partner":
        return  # an authenticated request may change what it is entitled to change
    if accepted and rpc == "Deliver" and target == "unknown":
        # The one unauthenticated change: an invitation to a never-seen project id.
        new = Project.objects.get(pk=env.project_id)
        assert new.status == ProjectStatus.INVITED and new.partner == scene.partner
        return
    assert after == before, f"{rpc} {env.kind!r} to {target} changed the site without a valid MAC"
    if accepted:
        assert rpc == "Ping"


def test_the_audit_chain_survives_a_storm_of_random_requests(scene):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def storm(data):
        rpc, env, _target, _valid, certificate = data.draw(requests(scene))
        try:
            _send(scene, rpc, env, certificate)
        except Rejected:
            pass

    storm()
    assert verify_chain().ok
