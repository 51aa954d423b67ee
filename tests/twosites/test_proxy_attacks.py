"""Attacks on a site's proxy, each refused with a proper gRPC status and audited.

The attacker works from this test process: with a certificate of its own, as a paired
site that is not a member of the project, and with the partner's stolen certificate,
key and cooperation token to forge, replay or age requests.
"""

import json
import time

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
    token = bank.shell(
        "import base64; from projects.models import Project; from projects.tokens import unseal; "
        f"print(base64.b64encode(unseal(Project.objects.get(pk='{pid}').token_encrypted)).decode())"
    )
    bank_bundle = bank.post("/api/partners/bundle/", {"proxy_address": bank.proxy_address})
    telco_bundle = telco.post("/api/partners/bundle/", {"proxy_address": telco.proxy_address})
    fingerprint = telco.get("/api/partners/")["results"][0]["pinned_certificates"][0]["fingerprint"]
    # telco's key as stolen from telco's data folder (its fingerprint names the file)
    telco_cert = telco_bundle["certificates"][0]
    import base64

    return {
        "bank": bank, "telco": telco, "pid": pid, "table": table["id"], "unauthorised": unauthorised["id"],
        "token": base64.b64decode(token), "bank_roots": "".join(bank_bundle["certificates"]).encode(),
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
        token=scene["token"] if token is None else token, token_version=1, timestamp_ms=timestamp_ms,
    )


def _refused(call, code):
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def _rejections(bank, reason_part):
    events = bank.get("/api/audit/?action=proxy_reject")["results"]
    return [e for e in events if reason_part in e["details"]["reason"]]


def test_a_well_formed_request_from_the_partner_is_accepted(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    answer = stub.OpenSession(_session_request(scene), timeout=10)
    assert json.loads(answer.detail)["min_overlap"] == 10


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
    denied = scene["bank"].get("/api/audit/?action=psi_session_open&outcome=denied")["results"]
    assert any(words in e["details"]["reason"] for e in denied)


def test_psi_runs_per_day_are_limited(scene):
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    # Earlier tests in this module already opened sessions; the policy allows 2 a day.
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "runs per day" in details


def test_suspended_and_revoked_projects_refuse_requests(scene):
    bank, telco = scene["bank"], scene["telco"]
    stub = _stub(scene, scene["telco_key"], scene["telco_cert"])
    bank.post(f"/api/projects/{scene['pid']}/suspend/")
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.FAILED_PRECONDITION)
    assert "suspended" in details
    bank.post(f"/api/projects/{scene['pid']}/revoke/")
    details = _refused(lambda: stub.OpenSession(_session_request(scene), timeout=5), grpc.StatusCode.PERMISSION_DENIED)
    assert "revoked" in details
    eventually(lambda: telco.get(f"/api/projects/{scene['pid']}/")["status"] == "revoked")
