"""Attacks on a site's proxy, each refused with a proper gRPC status and audited.

The attacker works from this test process: with a certificate of its own, as a paired
site that is not a member of the project, and with the partner's stolen certificate,
key and cooperation token to forge, replay or age requests.
"""

import json
import time
import uuid

import grpc
import pytest

from fedweb.proxy import envelope as envelopes
from fedweb.proxy.pki import make_self_signed
from fedweb.proxy.proxy_pb2_grpc import ProxyStub

from .harness import active_project, eventually

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-attacks")]

BANK_CSV = "id,y,income\n" + "".join(f"{i:05d},{i % 2},{1000 + i}\n" for i in range(300))


@pytest.fixture(scope="module")
def scene(sites):
    """bank ↔ telco with an active project in which the bank authorised a table (policy: 2 runs a day)."""
    bank, telco = sites
    pid = active_project(bank, telco, name="Attack surface")
    table = bank.upload("Customers", BANK_CSV)
    bank.post(f"/api/projects/{pid}/tables/", {
        "dataset": table["id"],
        "policy": {"runs_per_day": 2, "min_set_size": 100, "max_set_size": 1000, "max_size_ratio": 3, "min_overlap": 10,
                   "partner_may_receive": False},
    }, expect=201)
    unauthorised = bank.upload("Not in the project", BANK_CSV)
    token, version = bank.shell(
        "import base64; from projects.models import Project; from projects.tokens import unseal; "
        f"p = Project.objects.get(pk='{pid}'); print(base64.b64encode(unseal(p.token_encrypted)).decode(), p.token_version)"
    ).split()
    bank_bundle = bank.post("/api/partners/bundle/", {"proxy_address": bank.proxy_address})
    telco_bundle = telco.post("/api/partners/bundle/", {"proxy_address": telco.proxy_address})
    fingerprint = telco.get("/api/partners/")["results"][0]["pinned_certificates"][0]["fingerprint"]
    # telco's key as stolen from telco's data folder (its fingerprint names the file)
    telco_cert = telco_bundle["certificates"][0]
    import base64

    return {
        "bank": bank, "telco": telco, "pid": pid, "table": table["id"], "unauthorised": unauthorised["id"],
        "token": base64.b64decode(token), "version": int(version), "bank_roots": "".join(bank_bundle["certificates"]).encode(),
        "telco_key": _stolen_key(telco, telco_cert), "telco_cert": telco_cert.encode(), "bank_fp": fingerprint,
    }


def _stolen_key(site, cert_pem):
    from fedweb.proxy.pki import fingerprint

    return (site.data / "pki" / f"{fingerprint(cert_pem)}.key").read_bytes()


def _stub(scene, key, cert):
    credentials = grpc.ssl_channel_credentials(root_certificates=scene["bank_roots"], private_key=key, certificate_chain=cert)
    channel = grpc.secure_channel(scene["bank"].proxy_address, credentials, options=[("grpc.ssl_target_name_override", "bank")])
    return ProxyStub(channel)


def _session_request(scene, *, set_size=200, wants=False, table=None, token=None, sender="telco", timestamp_ms=None, session=None):
    body = {"purpose": "psi", "session_id": session or f"s-{time.time_ns()}", "table_id": table or scene["table"],
            "set_size": set_size, "wants_intersection": wants}
    return envelopes.build(
        sender=sender, receiver="bank", kind="session", project_id=scene["pid"], body=envelopes.json_body(body),
        token=scene["token"] if token is None else token, token_version=scene["version"], timestamp_ms=timestamp_ms,
    )


def _envelope(scene, kind, body: bytes, *, mac=True, **fields):
    return envelopes.build(sender="telco", receiver="bank", kind=kind, project_id=scene["pid"], body=body,
                           token=scene["token"] if mac else None, token_version=scene["version"], **fields)


def _event(scene, event_type, seq, **payload):
    return envelopes.json_body({"event_id": str(uuid.uuid4()), "stream": scene["pid"], "seq": seq, "type": event_type,
                                "payload": payload})


def _refused(call, code):
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def _rejections(bank, reason_part):
    events = bank.get("/api/audit/?action=proxy_reject")["results"]
    return [e for e in events if reason_part in e["details"]["reason"]]


def test_a_well_formed_request_from_the_partner_is_accepted_and_one_without_a_mac_is_not(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.OpenSession(_session_request(scene, token=b""), timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    assert "MAC" in details
    session = f"s-{time.time_ns()}"
    answer = stub.OpenSession(_session_request(scene, session=session), timeout=10)
    assert json.loads(answer.detail)["min_overlap"] == 10
    scene["session"] = session


def test_an_abort_without_a_mac_cannot_kill_a_running_session(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    forged = _envelope(scene, "abort", b"die", mac=False, session_id=scene["session"])
    _refused(lambda: stub.Abort(forged, timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    as_event = _envelope(scene, "event", b"die", session_id=scene["session"])
    _refused(lambda: stub.Abort(as_event, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
    assert not (scene["bank"].data / "mailbox" / scene["session"] / "_abort__telco").exists()


def test_a_forged_invitation_cannot_poison_the_event_stream(scene):
    bank, telco = scene["bank"], scene["telco"]
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    forged = _envelope(scene, "event", _event(scene, "project.invite", 10**12, name="x", purpose="y", label_holder="bank"), mac=False)
    _refused(lambda: stub.Deliver(forged, timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    # Even under the stolen token, a jump in sequence numbers is refused, not stored.
    jump = _envelope(scene, "event", _event(scene, "project.invite", 10**12, name="x", purpose="y", label_holder="bank"))
    assert "expected before" in _refused(lambda: stub.Deliver(jump, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
    assert _rejections(bank, "expected before")
    # The partner's genuine events still arrive: both sides agree.
    telco.post(f"/api/projects/{scene['pid']}/suspend/", {"comment": "checking"})
    eventually(lambda: bank.get(f"/api/projects/{scene['pid']}/")["status"] == "suspended", what="the genuine suspension arrives")
    telco.post(f"/api/projects/{scene['pid']}/resume/")
    eventually(lambda: bank.get(f"/api/projects/{scene['pid']}/")["status"] == "active", what="the genuine resumption arrives")


def test_job_events_take_the_same_path_a_bad_mac_or_a_replay_is_refused(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    cancel = _event(scene, "job.cancel", 1, job_id=str(uuid.uuid4()), reason="stop")
    forged = _envelope(scene, "event", cancel, mac=False)
    assert "MAC" in _refused(lambda: stub.Deliver(forged, timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    wrong = envelopes.build(sender="telco", receiver="bank", kind="event", project_id=scene["pid"], body=cancel,
                            token=b"x" * 32, token_version=scene["version"])
    assert "MAC" in _refused(lambda: stub.Deliver(wrong, timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    submit = _envelope(scene, "event", _event(scene, "job.submit", 10**9, job_id=str(uuid.uuid4()), spec={}))
    _refused(lambda: stub.Deliver(submit, timeout=5), grpc.StatusCode.INVALID_ARGUMENT)
    assert "replay" in _refused(lambda: stub.Deliver(submit, timeout=5), grpc.StatusCode.PERMISSION_DENIED)


@pytest.mark.parametrize("body, words", [
    (b"[1, 2]", "must be a JSON object"),
    (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    (b"\xff not json", "not valid JSON"),
])
def test_a_malformed_body_is_refused_and_audited_even_without_a_mac(scene, body, words):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.Deliver(_envelope(scene, "event", body, mac=False), timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert words in details
    assert _rejections(scene["bank"], words)


def test_a_certificate_from_an_unknown_site_is_refused_in_the_handshake(scene):
    key, cert = make_self_signed("mallory")
    stub = _stub(scene, key, cert)
    _refused(lambda: stub.OpenSession(_session_request(scene, sender="mallory"), timeout=5), grpc.StatusCode.UNAVAILABLE)


def test_a_paired_site_that_is_not_a_member_is_refused_and_audited(scene):
    bank = scene["bank"]
    key, cert = make_self_signed("eve")
    bank.post("/api/partners/import/", {"bundle": {
        "format": "fedweb-site-bundle/1", "party_id": "eve", "name": "Eve Ltd", "proxy_address": "127.0.0.1:9", "certificates": [cert.decode()],
    }}, expect=201)
    stub = eventually(lambda: _stub(scene, key, cert))
    details = eventually(
        lambda: _refused(lambda: stub.OpenSession(_session_request(scene, sender="eve"), timeout=5), grpc.StatusCode.PERMISSION_DENIED),
        what="eve's certificate is trusted by the TLS layer",
    )
    assert "not a member" in details
    assert _rejections(bank, "not a member")


def test_a_wrong_mac_is_refused_and_audited(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.OpenSession(_session_request(scene, token=b"x" * 32), timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    assert "MAC" in details
    assert _rejections(scene["bank"], "MAC")


def test_a_replayed_request_is_refused_and_audited(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    captured = _session_request(scene)
    stub.OpenSession(captured, timeout=5)
    details = _refused(lambda: stub.OpenSession(captured, timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert "replay" in details
    assert _rejections(scene["bank"], "replay")


def test_a_stale_timestamp_is_refused_and_audited(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    old = int((time.time() - 600) * 1000)
    details = _refused(lambda: stub.OpenSession(_session_request(scene, timestamp_ms=old), timeout=5), grpc.StatusCode.UNAUTHENTICATED)
    assert "timestamp" in details
    assert _rejections(scene["bank"], "timestamp")


def test_a_table_not_authorised_in_the_project_is_refused(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.OpenSession(_session_request(scene, table=scene["unauthorised"]), timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert "not authorised" in details
    assert _rejections(scene["bank"], "not authorised")


@pytest.mark.parametrize("request_args, words", [
    ({"set_size": 50}, "smaller than the minimum"),
    ({"set_size": 5000}, "larger than the maximum"),
    ({"set_size": 950}, "ratio"),
    ({"wants": True}, "may not receive the intersection"),
])
def test_a_psi_request_over_the_policy_limits_is_refused_and_audited(scene, request_args, words):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.OpenSession(_session_request(scene, **request_args), timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert words in details
    assert _rejections(scene["bank"], words)


def test_psi_runs_per_day_are_limited(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    # Earlier tests in this module already opened sessions; the policy allows 2 a day.
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "runs per day" in details


def test_the_partner_cannot_lift_our_suspension(scene):
    bank, telco = scene["bank"], scene["telco"]
    bank.post(f"/api/projects/{scene['pid']}/suspend/")
    eventually(lambda: telco.get(f"/api/projects/{scene['pid']}/")["status"] == "suspended", what="suspension arrives")
    refused = telco.post(f"/api/projects/{scene['pid']}/resume/", expect=409)
    assert "only the partner can lift" in refused["error"]["message"]
    # Under the stolen token, a resumption at every plausible sequence number is refused.
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    for seq in range(1, 12):
        with pytest.raises(grpc.RpcError):
            stub.Deliver(_envelope(scene, "event", _event(scene, "project.resume", seq, comment="")), timeout=5)
    assert bank.get(f"/api/projects/{scene['pid']}/")["status"] == "suspended"


def test_suspended_and_revoked_projects_refuse_requests(scene):
    bank, telco = scene["bank"], scene["telco"]
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.FAILED_PRECONDITION)
    assert "suspended" in details
    bank.post(f"/api/projects/{scene['pid']}/revoke/")
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert "revoked" in details
    eventually(lambda: telco.get(f"/api/projects/{scene['pid']}/")["status"] == "revoked")
    forged = _envelope(scene, "event", _event(scene, "project.invite", 10**12, name="x", purpose="y", label_holder="bank"), mac=False)
    assert "revoked" in _refused(lambda: stub.Deliver(forged, timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert _rejections(bank, "the project is revoked")


def test_both_audit_chains_are_intact_after_the_attacks(scene):
    for site in (scene["bank"], scene["telco"]):
        result = site.manage("verify_audit", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
