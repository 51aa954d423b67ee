"""The OT-based PSI (RR22) between two real sites: each site's library runs in its own
Celery worker, and its traffic crosses only through the two proxies (a Tunnel call per
connection, every chunk MAC'd and verified). The tables' PSI rules apply to it."""

import base64
import csv
import io

import grpc
import pandas as pd
import pytest

from datasets.ingest import neutralise
from fedweb.proxy import envelope as envelopes
from fedweb.proxy.proxy_pb2_grpc import ProxyStub

from .harness import active_project, eventually, start_pair
from .test_jobs import _download, _finished
from .test_proxy_attacks import _stolen_key

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-rr22")]

GUEST_RULES = {"runs_per_day": 50, "min_set_size": 10, "max_set_size": 10_000, "max_size_ratio": 5, "min_overlap": 10,
               "partner_may_receive": True}
HOST_RULES = {**GUEST_RULES, "min_overlap": 0, "runs_per_day": 3}

# Ids that a CSV file, a hash or a library could get wrong.
TRICKY = ["a,b", '"quoted"', "k", "=SUM(1)", "日本", "e\u0301", "é", "0012345", "12345", " padded ", "ａ", "🎉"]


def _table(prefix: str, shared: int, own: int, extra: list[str]) -> str:
    ids = [f"c{i:05d}" for i in range(shared)] + [f"{prefix}{i:05d}" for i in range(own)] + extra
    frame = pd.DataFrame({"id": ids, f"{prefix}_x": range(len(ids))})
    return frame.to_csv(index=False)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bank, telco = start_pair(tmp_path_factory.mktemp("rr22"), workers=True)
    try:
        pid = active_project(bank, telco, name="Fast overlap")
        bank_csv = _table("b", 3000, 900, TRICKY[:8])
        telco_csv = _table("t", 3000, 1500, TRICKY[2:])
        bank_table = bank.upload("Bank customers", bank_csv)
        telco_table = telco.upload("Telco subscribers", telco_csv)
        strict_table = telco.upload("Telco strict", telco_csv)
        assert {t["status"] for t in (bank_table, telco_table, strict_table)} == {"ready"}
        bank.post(f"/api/projects/{pid}/tables/", {"dataset": bank_table["id"], "policy": GUEST_RULES}, expect=201)
        telco.post(f"/api/projects/{pid}/tables/", {"dataset": telco_table["id"], "policy": HOST_RULES}, expect=201)
        telco.post(f"/api/projects/{pid}/tables/", {"dataset": strict_table["id"], "policy": {**HOST_RULES, "min_overlap": 10}},
                   expect=201)
        eventually(lambda: len(bank.get(f"/api/projects/{pid}/partner-tables/")) == 2 or None, what="telco's tables reach bank")
        yield {"bank": bank, "telco": telco, "pid": pid, "bank_table": bank_table["id"], "telco_table": telco_table["id"],
               "strict_table": strict_table["id"], "bank_csv": bank_csv, "telco_csv": telco_csv}
    finally:
        for site in (bank, telco):
            site.stop()


def _ids(text: str) -> set[str]:
    return {row["id"] for row in csv.DictReader(io.StringIO(text))}


def _rr22_job(scene, partner_table=None, name="RR22 overlap", **options):
    body = {"project": scene["pid"], "template": "psi", "our_table": scene["bank_table"],
            "partner_table": partner_table or scene["telco_table"], "options": {"protocol": "rr22", **options},
            "name": name}
    return scene["bank"].post("/api/jobs/", body, expect=None)


def test_an_rr22_psi_job_finds_the_exact_overlap_through_both_proxies(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _rr22_job(scene)
    assert job.get("status") == "pending", job
    psi_params = job["spec"]["nodes"][0]["params"]
    assert {**psi_params.get("common", {}), **psi_params.get("guest", {})}.get("protocol") == "rr22"
    ours, theirs = _finished(bank, job["id"]), _finished(telco, job["id"])
    assert ours["status"] == theirs["status"] == "succeeded", (ours["error"], theirs["error"])
    expected = _ids(scene["bank_csv"]) & _ids(scene["telco_csv"])
    assert len(expected) == 3000 + 6
    bank_rows, _ = _download(bank, f"/api/jobs/{job['id']}/nodes/psi/download/")
    telco_rows, _ = _download(telco, f"/api/jobs/{job['id']}/nodes/psi/download/")
    assert _ids(bank_rows) == _ids(telco_rows) == {neutralise(i) for i in expected}  # downloads defuse formulas
    bank_order = [row["id"] for row in csv.DictReader(io.StringIO(bank_rows))]
    assert bank_order == [row["id"] for row in csv.DictReader(io.StringIO(telco_rows))]  # aligned row for row
    metrics = next(t for t in ours["tasks"] if t["site"] == "ours")["metrics"]["final"]
    assert metrics["protocol"] == "rr22" and metrics["intersection_size"] == len(expected)
    # Nothing was refused on the way: every tunnel chunk passed the proxies' checks.
    for site in (bank, telco):
        assert site.get("/api/audit/?action=proxy_reject")["results"] == []


def test_a_table_whose_rules_ask_for_a_smallest_overlap_refuses_rr22_at_its_own_site(scene):
    bank, telco = scene["bank"], scene["telco"]
    job = _rr22_job(scene, partner_table=scene["strict_table"], name="Strict")
    theirs = _finished(telco, job["id"])
    assert theirs["status"] in ("refused", "failed")
    assert "smallest overlap to 0" in (theirs["error"] or "")
    ours = _finished(bank, job["id"])
    assert ours["status"] in ("refused", "failed") and "smallest overlap" in (ours["error"] or "")


def test_the_runs_per_day_limit_counts_rr22_runs_and_refuses_the_next(scene):
    bank, telco = scene["bank"], scene["telco"]
    done = 0
    for attempt in range(HOST_RULES["runs_per_day"] + 1):
        job = _rr22_job(scene, name=f"Run {attempt}")
        theirs = _finished(telco, job["id"])
        if theirs["status"] == "succeeded":
            done += 1
            continue
        assert "PSI runs per day" in (theirs["error"] or ""), theirs
        break
    else:
        pytest.fail("the owner's limit of PSI runs per day never applied")
    assert done <= HOST_RULES["runs_per_day"]  # fewer when another test's run already counted


def test_a_forged_tunnel_into_a_job_session_is_refused_and_audited(scene):
    """With the bank's certificate but not the project's token, or with the token but no open
    RR22 session, nothing gets through to telco, and each refusal is audited there."""
    bank, telco, pid = scene["bank"], scene["telco"], scene["pid"]
    token, version = bank.shell(
        "import base64; from projects.models import Project; from projects.tokens import unseal; "
        f"p = Project.objects.get(pk='{pid}'); print(base64.b64encode(unseal(p.token_encrypted)).decode(), p.token_version)"
    ).split()
    bank_cert = bank.post("/api/partners/bundle/", {"proxy_address": bank.proxy_address})["certificates"][0]
    telco_roots = "".join(telco.post("/api/partners/bundle/", {"proxy_address": telco.proxy_address})["certificates"])
    credentials = grpc.ssl_channel_credentials(root_certificates=telco_roots.encode(),
                                               private_key=_stolen_key(bank, bank_cert), certificate_chain=bank_cert.encode())
    channel = grpc.secure_channel(telco.proxy_address, credentials, options=[("grpc.ssl_target_name_override", "telco")])
    stub = ProxyStub(channel)
    before = len(telco.get("/api/audit/?action=proxy_reject")["results"])

    def tunnel(key: bytes, session: str):
        env = envelopes.build(sender="bank", receiver="telco", kind="tunnel", project_id=pid, token=key,
                              token_version=int(version), session_id=session, key="psi/rr22", body=b"hello")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Tunnel(iter([env]), timeout=20))
        return refused.value.code()

    assert tunnel(b"x" * 32, "job-0000000000") == grpc.StatusCode.UNAUTHENTICATED
    assert tunnel(base64.b64decode(token), "job-0000000000") == grpc.StatusCode.PERMISSION_DENIED
    channel.close()
    after = telco.get("/api/audit/?action=proxy_reject")["results"]
    assert len(after) == before + 2 and {e["details"]["rpc"] for e in after[:2]} == {"Tunnel"}
