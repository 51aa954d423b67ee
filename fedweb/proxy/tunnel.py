"""Byte streams between the two sites' protocol libraries, carried through both proxies.

A protocol library with its own network protocol (the RR22 PSI, see
``engine.components.psi.rr22``) runs in a child process of the job at each site. It
listens on a Unix socket in the site's data folder and dials a local relay::

    bank: library ──dials──▶ relay (worker) ══ Tunnel RPC, mTLS ══▶ telco proxy ──▶ telco library's socket
    telco: library ──dials──▶ relay (worker) ══ Tunnel RPC, mTLS ══▶ bank proxy ──▶ bank library's socket

Each connection the library opens becomes one ``Tunnel`` call. The caller's bytes travel
as envelopes of kind ``tunnel`` that the partner's proxy verifies one by one on the same
path as every request (``authz.verify``: pinned certificate, project, MAC under the
cooperation token, freshness, nonce), and in order (``chunk_index`` counts them). The
call must name an open session of this project whose node runs such a protocol here,
and the stream that node uses. The answering proxy MACs its replies under the same token
and numbers them; the relay checks both before a byte reaches the library.

The library's socket is in ``<data>/tunnels/<digest>/`` (mode 0700), shared by the worker
and the proxy (one volume). A Unix socket path holds at most 107 bytes, so both sides
reach the folder through ``/proc/self/fd/<n>/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import grpc
from django.conf import settings

from engine.federation.transport import StreamLink

from . import envelope as envelopes
from .authz import Rejected

log = logging.getLogger(__name__)

READ_BYTES = 1 << 20  # per envelope: what the library wrote since the last read, up to 1 MiB
CONNECT_WAIT_SECONDS = 30  # the partner's library may dial before ours listens
SETTLE_SECONDS = 0.5
LISTEN_NAME = "in.sock"
# The RR22 step's stream, and its fresh ones when the library starts again (engine.components.psi.rr22).
STREAM_KEY = re.compile(r"psi(/retry-[12])?/rr22")


def folder(session_id: str, key: str) -> Path:
    """Where the library of ``session_id``'s stream ``key`` listens at this site."""
    digest = hashlib.sha256(f"{session_id}\0{key}".encode()).hexdigest()[:32]
    path = Path(settings.DATA_DIR) / "tunnels" / digest
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def short_path(directory: Path, name: str):
    """``directory/name`` as a path short enough for a Unix socket (through an open descriptor)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


# --- The answering side (our proxy) --------------------------------------------------

def check_allowed(session, key: str) -> None:
    """Only a node that runs a byte-stream protocol here opens a tunnel, on its own stream."""
    from jobs import spec as specs
    from jobs.models import Job

    job = Job.objects.filter(pk=(session.details or {}).get("job"), project=session.project).first()
    if job is None:
        raise Rejected("PERMISSION_DENIED", "this session belongs to no job of the project")
    try:
        node = specs.validate(job.spec, job.project, check_tables=False).node(session.details.get("node"))
    except (specs.SpecError, KeyError):
        raise Rejected("PERMISSION_DENIED", "this session's job step cannot be found") from None
    params = node.params.get(specs.our_role(job.project), {})
    if node.component.name != "psi" or params.get("protocol") != "rr22":
        raise Rejected("PERMISSION_DENIED", "this session's step does not use a byte-stream protocol")
    if not STREAM_KEY.fullmatch(key):
        raise Rejected("PERMISSION_DENIED", "this session's step has no such stream")


def connect_library(session_id: str, key: str) -> socket.socket:
    """A connection to our library's socket, waiting a little for it to start listening."""
    directory = folder(session_id, key)
    deadline = time.monotonic() + CONNECT_WAIT_SECONDS
    waited = False
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if waited:
                # The library's socket accepts a moment before its link is ready for messages;
                # connecting at once sometimes lost the first one (a stalled handshake).
                time.sleep(SETTLE_SECONDS)
            with short_path(directory, LISTEN_NAME) as path:
                sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            waited = True
            if time.monotonic() > deadline:
                raise Rejected("UNAVAILABLE", "this site's side of the protocol is not running") from None
            time.sleep(0.1)


def replies(sock: socket.socket, request, *, token: bytes, token_version: int):
    """Envelopes of what our library sends back, numbered and MAC'd under the project's token."""
    env = request.env
    index = 0
    while True:
        data = sock.recv(READ_BYTES)
        if not data:
            return
        yield envelopes.build(
            sender=settings.SITE_PARTY_ID, receiver=request.partner.party_id, kind="tunnel", project_id=env.project_id,
            token=token, token_version=token_version, session_id=env.session_id, key=env.key, chunk_index=index,
            body=data,
        )
        index += 1


# --- The calling side (the job's worker) ------------------------------------------------

def open_link(transport, session_id: str, key: str) -> StreamLink:
    """The addresses the library uses at this site; a relay forwards what it dials."""
    listen_dir = folder(session_id, key)
    shutil.rmtree(listen_dir, ignore_errors=True)  # a socket left by an earlier attempt
    listen_dir.mkdir(mode=0o700)
    fd = os.open(listen_dir, os.O_RDONLY | os.O_DIRECTORY)
    relay = Relay(transport, session_id, key)

    def release() -> None:
        relay.close()
        os.close(fd)
        shutil.rmtree(listen_dir, ignore_errors=True)

    return StreamLink(listen=f"unix:/proc/self/fd/{fd}/{LISTEN_NAME}", connect=f"unix:{relay.path}",
                      pass_fds=(fd,), _release=release)


class Relay:
    """Accepts the library's connections on a private socket; each one becomes a Tunnel call."""

    def __init__(self, transport, session_id: str, key: str):
        self.transport = transport
        self.session_id = session_id
        self.key = key
        self._dir = tempfile.mkdtemp(prefix="fedweb-relay-")
        self.path = os.path.join(self._dir, "out.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"relay-{key}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._connections.add(conn)
            threading.Thread(target=self._forward, args=(conn,), name=f"relay-{self.key}-conn", daemon=True).start()

    def _forward(self, conn: socket.socket) -> None:
        t = self.transport
        token = t.token()
        project_id = str(t.project.pk)

        def requests():
            index = 0
            data = b""  # the first envelope opens the call at once, so the partner connects early
            while True:
                yield envelopes.build(
                    sender=settings.SITE_PARTY_ID, receiver=t.partner.party_id, kind="tunnel", project_id=project_id,
                    token=token, token_version=t.project.token_version, session_id=self.session_id, key=self.key,
                    chunk_index=index, body=data,
                )
                index += 1
                try:
                    data = conn.recv(READ_BYTES)
                except OSError:
                    return
                if not data:
                    return

        expected = 0
        try:
            for reply in t.stub.Tunnel(requests(), timeout=settings.JOBS_RECV_TIMEOUT * 6):
                problem = self._check_reply(reply, token, project_id, expected)
                if problem:
                    log.warning("tunnel %s of session %s: dropped: %s", self.key, self.session_id, problem)
                    return
                conn.sendall(reply.body)
                expected += 1
        except grpc.RpcError as exc:
            if not self._closed:
                log.warning("tunnel %s of session %s ended: %s: %s", self.key, self.session_id, exc.code().name, exc.details())
        except OSError:
            pass  # our library closed its end
        finally:
            with self._lock:
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _check_reply(self, reply, token: bytes, project_id: str, expected: int) -> str | None:
        t = self.transport
        header = (reply.sender, reply.receiver, reply.kind, reply.project_id, reply.session_id, reply.key)
        if header != (t.partner.party_id, settings.SITE_PARTY_ID, "tunnel", project_id, self.session_id, self.key):
            return "a reply with another header"
        if reply.chunk_index != expected:
            return f"reply {reply.chunk_index} arrived, {expected} was expected"
        if reply.token_version != t.project.token_version or not envelopes.mac_is_valid(reply, token):
            return "a reply whose MAC is not valid"
        if not envelopes.is_fresh(reply):
            return "a stale reply"
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        shutil.rmtree(self._dir, ignore_errors=True)
