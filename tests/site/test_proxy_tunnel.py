"""The proxy's Tunnel RPC, called as the gRPC servicer calls it, against a real Unix socket.

Every envelope of a tunnel takes the one verification path (``authz.verify``); the call
must name an open session of a job step that runs the RR22 PSI here, and its stream.
"""

import socket
import threading
import uuid

import pytest

from fedweb.proxy import envelope as envelopes
from fedweb.proxy import server, tunnel
from fedweb.proxy.authz import Rejected
from jobs.models import Job
from projects.models import JobSession

from .proxy_scene import SITE, build, refusals, snapshot

pytestmark = pytest.mark.django_db(transaction=True)  # the tunnel verifies later chunks on its own thread


@pytest.fixture
def scene(admin, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SITE_PARTY_ID = SITE
    scene = build(admin, tmp_path)
    project = scene.projects["active"]
    for protocol, session in (("rr22", "job-rr22-session"), ("ecdh", "job-ecdh-session")):
        spec = {"format": "fedweb-job/1", "nodes": [{
            "id": "psi", "component": "psi", "version": "1.0.0", "params": {"common": {"protocol": protocol}},
            "inputs": {"data": {"table": {"guest": str(uuid.uuid4()), "host": str(uuid.uuid4())}}}}]}
        job = Job.objects.create(project=project, name=protocol, spec=spec, initiator="telco")
        JobSession.objects.create(session_id=session, project=project, purpose="psi", opened_by="telco",
                                  details={"job": str(job.pk), "node": "psi", "attempt": 1})
    return scene


class Library:
    """Stands in for our side's protocol library: listens where the real one would."""

    def __init__(self, session_id, key="psi/rr22", answer=b"pong"):
        self.received = bytearray()
        self.answer = answer
        directory = tunnel.folder(session_id, key)
        directory.mkdir(mode=0o700, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with tunnel.short_path(directory, tunnel.LISTEN_NAME) as path:
            self.server.bind(path)
        self.server.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        conn.sendall(self.answer)
        while data := conn.recv(65536):
            self.received += data
        conn.close()


def chunk(scene, index, body=b"", *, session="job-rr22-session", key="psi/rr22", mac="valid", **fields):
    return scene.env("tunnel", body=body, mac=mac, session_id=session, key=key, chunk_index=index, **fields)


def run(scene, envs):
    return list(server.serve_tunnel(iter(envs), scene.fingerprint))


def refused(scene, envs, *, status, words):
    before, audits = snapshot(scene), refusals()
    with pytest.raises(Rejected) as info:
        run(scene, envs)
    assert (info.value.status, words in info.value.reason) == (status, True), info.value.reason
    assert snapshot(scene) == before and refusals() == audits + 1
    return info.value


def test_bytes_reach_our_library_in_order_and_its_answer_comes_back_numbered_and_macd(scene):
    library = Library("job-rr22-session")
    replies = run(scene, [chunk(scene, 0, b"one "), chunk(scene, 1, b"two "), chunk(scene, 2, b"three")])
    library.thread.join(5)
    assert bytes(library.received) == b"one two three"
    assert b"".join(r.body for r in replies) == b"pong"
    token = scene.token["active"]
    for index, reply in enumerate(replies):
        assert (reply.sender, reply.receiver, reply.kind, reply.chunk_index) == (SITE, "telco", "tunnel", index)
        assert envelopes.mac_is_valid(reply, token)


def test_a_tunnel_without_a_valid_mac_is_refused_before_anything_connects(scene):
    refused(scene, [chunk(scene, 0, b"x", mac="none")], status="UNAUTHENTICATED", words="MAC")
    refused(scene, [chunk(scene, 0, b"x", mac="wrong")], status="UNAUTHENTICATED", words="MAC")


def test_a_tunnel_needs_an_open_session_of_an_rr22_step_and_names_its_stream(scene):
    refused(scene, [chunk(scene, 0, session="job-nobody-session")], status="PERMISSION_DENIED", words="no open session")
    refused(scene, [chunk(scene, 0, session="sess-active-1")], status="PERMISSION_DENIED", words="belongs to no job")
    refused(scene, [chunk(scene, 0, session="job-ecdh-session")], status="PERMISSION_DENIED",
            words="does not use a byte-stream protocol")
    refused(scene, [chunk(scene, 0, key="psi/other")], status="PERMISSION_DENIED", words="no such stream")
    JobSession.objects.filter(session_id="job-rr22-session").update(closed_at="2026-01-01T00:00:00Z")
    refused(scene, [chunk(scene, 0)], status="PERMISSION_DENIED", words="no open session")


def test_a_suspended_project_opens_no_tunnel(scene):
    refused(scene, [scene.env("tunnel", project="suspended", session_id="job-rr22-session", key="psi/rr22")],
            status="FAILED_PRECONDITION", words="suspended")


def test_our_side_not_running_is_refused_as_unavailable(scene, monkeypatch):
    monkeypatch.setattr(tunnel, "CONNECT_WAIT_SECONDS", 0.2)
    refused(scene, [chunk(scene, 0)], status="UNAVAILABLE", words="not running")


@pytest.mark.parametrize("problem", ["forged", "replayed", "out_of_order", "other_stream"])
def test_a_bad_chunk_mid_stream_ends_the_tunnel_both_ways_and_is_audited(scene, problem):
    library = Library("job-rr22-session")
    first, second = chunk(scene, 0, b"good"), chunk(scene, 1, b"also good")
    bad = {
        "forged": chunk(scene, 2, b"evil", mac="wrong"),
        "replayed": second,
        "out_of_order": chunk(scene, 5, b"skip"),
        "other_stream": chunk(scene, 2, b"x", session="job-ecdh-session"),
    }[problem]
    audits = refusals()
    with pytest.raises(Rejected):
        run(scene, [first, second, bad, chunk(scene, 3, b"after")])
    library.thread.join(5)
    assert bytes(library.received) == b"goodalso good"  # nothing from the bad chunk on
    assert refusals() == audits + 1
