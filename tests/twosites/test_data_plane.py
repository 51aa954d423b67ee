"""The algorithm data plane between two real sites: chunked messages, aborts, revocation."""

import pytest

from .harness import active_project, eventually

pytestmark = [pytest.mark.twosites, pytest.mark.xdist_group("twosites-dataplane")]

CSV = "id,x\n" + "".join(f"{i:05d},{i}\n" for i in range(500))

OPEN = (
    "from projects.models import Project; from projects.sessions import request_psi_session; "
    "p = Project.objects.get(pk='{pid}'); "
    "print(request_psi_session(p, remote_table_id='{table}', our_set_size=500, wants_intersection=False, session_id='{sid}'))"
)
PUSH = (
    "import hashlib, os; from projects.models import Project; from fedweb.proxy.transport import ProxyTransport; "
    "p = Project.objects.get(pk='{pid}'); t = ProxyTransport(p); data = os.urandom({size}); "
    "t.push('{sid}', 'bank', 'telco', 'psi/blinded', data); print(hashlib.sha256(data).hexdigest())"
)
PULL = (
    "import hashlib, time; from fedweb.proxy import mailbox; "
    "print(hashlib.sha256(mailbox.take('{sid}', 'telco', 'bank', 'psi/blinded', time.monotonic() + 30)).hexdigest())"
)
WAIT_FOR_ABORT = (
    "import time; from fedweb.proxy import mailbox; from engine.errors import PeerFailed\n"
    "started = time.monotonic()\n"
    "try:\n    mailbox.take('{sid}', 'telco', 'bank', 'never', time.monotonic() + 60)\n"
    "except PeerFailed as e:\n    print(f'{{e.peer}} failed after {{time.monotonic() - started:.1f}}s: {{e.peer_message}}')"
)


@pytest.fixture(scope="module")
def session(sites):
    bank, telco = sites
    pid = active_project(bank, telco, name="Data plane")
    table = telco.upload("Telco ids", CSV)
    telco.post(f"/api/projects/{pid}/tables/", {"dataset": table["id"], "policy": {"runs_per_day": 10}}, expect=201)
    return bank, telco, pid, table["id"]


def test_a_large_message_crosses_in_chunks_and_arrives_intact(session):
    bank, telco, pid, table = session
    sid = "psi-large-message"
    terms = bank.shell(OPEN.format(pid=pid, table=table, sid=sid))
    assert "'min_overlap': 10" in terms
    sent = bank.shell(PUSH.format(pid=pid, sid=sid, size=10 * 1024 * 1024 + 12345))  # three chunks
    received = telco.shell(PULL.format(sid=sid))
    assert sent == received


def test_a_message_for_a_session_that_was_never_opened_is_refused(session):
    bank, telco, pid, table = session
    result = bank.manage("shell", "--no-imports", "-c", PUSH.format(pid=pid, sid="psi-not-opened", size=10), check=False)
    assert result.returncode != 0
    assert "no open session" in result.stderr


def test_an_abort_reaches_the_waiting_partner_at_once(session):
    bank, telco, pid, table = session
    import subprocess
    import sys

    sid = "psi-aborted"
    bank.shell(OPEN.format(pid=pid, table=table, sid=sid))
    from .harness import ROOT

    waiter = subprocess.Popen([sys.executable, "manage.py", "shell", "--no-imports", "-c", WAIT_FOR_ABORT.format(sid=sid)],
                              cwd=ROOT, env=telco.env, stdout=subprocess.PIPE, text=True)
    bank.shell(
        "from projects.models import Project; from fedweb.proxy.transport import ProxyTransport; "
        f"ProxyTransport(Project.objects.get(pk='{pid}')).abort('{sid}', 'bank', 'the bank ran out of memory')"
    )
    out, _ = waiter.communicate(timeout=60)
    assert "bank failed after" in out and "ran out of memory" in out


def test_revoking_the_project_stops_running_work_at_once(session):
    bank, telco, pid, table = session
    sid = "psi-revoked"
    bank.shell(OPEN.format(pid=pid, table=table, sid=sid))
    telco.post(f"/api/projects/{pid}/revoke/")
    # The telco's own waiting jobs are woken at once...
    out = telco.shell(WAIT_FOR_ABORT.format(sid=sid))
    assert "Project revoked" in out
    # ...and the bank's pushes are refused as soon as its proxy is asked.
    result = bank.manage("shell", "--no-imports", "-c", PUSH.format(pid=pid, sid=sid, size=10), check=False)
    assert result.returncode != 0 and "revoked" in result.stderr
    eventually(lambda: bank.get(f"/api/projects/{pid}/")["status"] == "revoked")
