"""The proxy's gRPC server: one port, mutual TLS, every handler authorised first.

Every request takes one path, ``serve`` (``serve_push`` for the chunks of a message):
``authz.verify`` runs the checks in their fixed order, then a handler — a plain
function of the verified request — reads the body. Any refusal, wherever it happens,
is audited once and becomes a gRPC status. Tests call ``serve`` without a socket;
``ProxyServicer`` only adds the TLS peer and fresh database connections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import close_old_connections
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from engine.errors import DuplicateMessage
from projects.models import JobSession, PartnerCertificate

from . import authz, events, mailbox, pki, tunnel
from .authz import Rejected, Verified
from .client import MAX_MESSAGE_BYTES
from .proxy_pb2 import Ack
from .proxy_pb2_grpc import ProxyServicer as _Base
from .proxy_pb2_grpc import add_ProxyServicer_to_server

log = logging.getLogger(__name__)

SERVICE_NAME = "fedweb.proxy.v1.Proxy"


def peer_fingerprint(context) -> str | None:
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    cert = x509.load_pem_x509_certificate(pems[0])
    return pki.fingerprint_der(cert.public_bytes(serialization.Encoding.DER))


# --- Handlers: plain functions of a verified request ---------------------------------

def handle_ping(request: Verified) -> Ack:
    return Ack(ok=True, detail=json.dumps({"party_id": settings.SITE_PARTY_ID, "name": settings.SITE_NAME}))


def handle_deliver(request: Verified) -> Ack:
    try:
        outcome = events.receive(request.partner, request.env.project_id, request.project, request.body)
    except events.EventOutOfOrder as exc:
        # A gap waits: the sender retries until the events before this one arrived.
        raise Rejected("FAILED_PRECONDITION" if exc.retry else "INVALID_ARGUMENT", str(exc)) from None
    except events.EventRejected as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None
    return Ack(ok=True, detail=outcome)


def handle_open_session(request: Verified) -> Ack:
    from projects.sessions import SessionRefused, open_session

    try:
        answer = open_session(request.partner, request.project, request.body)
    except ValueError as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None
    except SessionRefused as exc:
        raise Rejected(exc.status, exc.reason) from None
    return Ack(ok=True, detail=json.dumps(answer))


def _open_session_for(request: Verified) -> JobSession:
    session = JobSession.objects.filter(
        session_id=request.env.session_id, project=request.project, closed_at__isnull=True
    ).first()
    if session is None:
        raise Rejected("PERMISSION_DENIED", "no open session with this id in this project")
    return session


def handle_abort(request: Verified) -> Ack:
    _open_session_for(request)
    mailbox.record_abort(request.env.session_id, request.partner.party_id, request.body)
    return Ack(ok=True)


def handle_score(request: Verified) -> Ack:
    from jobs.serving import ScoringRefused, answer

    try:
        return Ack(ok=True, detail=json.dumps(answer(request.partner, request.project, request.body), allow_nan=False))
    except ScoringRefused as exc:
        raise Rejected(exc.status, exc.reason) from None


def handle_ledger(request: Verified) -> Ack:
    from jobs.ledger import LedgerRefused, ledger_page

    try:
        return Ack(ok=True, detail=json.dumps(ledger_page(request.project, request.body)))
    except LedgerRefused as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None


HANDLERS = {"Ping": handle_ping, "Deliver": handle_deliver, "OpenSession": handle_open_session, "Abort": handle_abort,
            "Score": handle_score, "Ledger": handle_ledger}


# --- The one path every request takes -------------------------------------------------

INTERNAL = "the partner site failed to handle the request"


def _refuse(rpc, env, fingerprint, peer, rejection: Rejected) -> Rejected:
    try:
        authz.audit_rejection(rpc, env, fingerprint, rejection, peer)
    except Exception:
        log.exception("could not audit a refused %s request", rpc)
    return rejection


def serve(rpc: str, env, fingerprint: str | None, peer: str | None = None) -> Ack:
    """Verify, then handle, one unary request; every refusal is audited once and raised."""
    try:
        return HANDLERS[rpc](authz.verify(rpc, env, fingerprint))
    except Rejected as rejection:
        raise _refuse(rpc, env, fingerprint, peer, rejection) from None
    except Exception:
        log.exception("proxy handler for %s failed", rpc)
        raise _refuse(rpc, env, fingerprint, peer, Rejected("INTERNAL", INTERNAL)) from None


def serve_push(envs, fingerprint: str | None, peer: str | None = None) -> Ack:
    """Verify every chunk of one message, then publish it to the mailbox at once."""
    writer = None
    env = None
    try:
        for env in envs:
            request = authz.verify("Push", env, fingerprint)  # every chunk: MAC, freshness, nonce
            ident = (env.project_id, env.session_id, env.key, env.chunk_count)
            if writer is None:
                _open_session_for(request)
                if not 0 < env.chunk_count <= 1_000_000:
                    raise Rejected("INVALID_ARGUMENT", "the chunk count is not valid")
                first = ident
                writer = mailbox.Writer(env.session_id, request.partner.party_id, settings.SITE_PARTY_ID, env.key, env.chunk_count)
            elif ident != first:
                raise Rejected("INVALID_ARGUMENT", "all chunks of a push belong to one message")
            writer.write(env.chunk_index, request.body)
        if writer is None:
            raise Rejected("INVALID_ARGUMENT", "an empty push")
        writer.close()
        writer = None
        return Ack(ok=True)
    except Rejected as rejection:
        raise _refuse("Push", env, fingerprint, peer, rejection) from None
    except (ValueError, DuplicateMessage) as exc:
        raise _refuse("Push", env, fingerprint, peer, Rejected("INVALID_ARGUMENT", str(exc))) from None
    except Exception:
        log.exception("proxy push failed")
        raise _refuse("Push", env, fingerprint, peer, Rejected("INTERNAL", "the partner site failed to store the message")) from None
    finally:
        if writer is not None:
            writer.discard()


def serve_tunnel(envs, fingerprint: str | None, peer: str | None = None):
    """Verify every envelope of a byte stream and pass its bytes to our library; yield what
    the library answers. The first refusal ends the stream both ways and is raised."""
    from projects.tokens import tokens_for

    refused: list[Rejected] = []
    sock = None
    env = None
    try:
        env = next(envs, None)
        if env is None:
            raise Rejected("INVALID_ARGUMENT", "an empty tunnel")
        first = authz.verify("Tunnel", env, fingerprint)
        if env.chunk_index != 0:
            raise Rejected("INVALID_ARGUMENT", "a tunnel starts at chunk 0")
        tunnel.check_allowed(_open_session_for(first), env.key)
        sock = tunnel.connect_library(env.session_id, env.key)
        sock.sendall(first.body)
    except Rejected as rejection:
        if sock is not None:
            sock.close()
        raise _refuse("Tunnel", env, fingerprint, peer, rejection) from None
    except Exception:
        log.exception("proxy tunnel failed to open")
        raise _refuse("Tunnel", env, fingerprint, peer, Rejected("INTERNAL", INTERNAL)) from None
    ident = (env.project_id, env.session_id, env.key)

    def upstream() -> None:
        later = None
        try:
            for index, later in enumerate(envs, start=1):
                request = authz.verify("Tunnel", later, fingerprint)  # every chunk: MAC, freshness, nonce
                if (later.project_id, later.session_id, later.key) != ident or later.chunk_index != index:
                    raise Rejected("INVALID_ARGUMENT", "a tunnel's chunks belong to one stream, in order")
                sock.sendall(request.body)
            sock.shutdown(socket.SHUT_WR)
        except Rejected as rejection:
            refused.append(_refuse("Tunnel", later, fingerprint, peer, rejection))
            sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # the stream was cancelled, or our library went away
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        finally:
            close_old_connections()

    writer = threading.Thread(target=upstream, name="tunnel-upstream", daemon=True)
    writer.start()
    try:
        # Replies use the token version the caller chose (both stay valid while a rotation settles).
        yield from tunnel.replies(sock, first, token=tokens_for(first.project, env.token_version),
                                  token_version=env.token_version)
    except OSError:
        pass
    finally:
        sock.close()
    writer.join(1)  # a refusal mid-stream is what ended it: the caller hears which
    if refused:
        raise refused[0]


class ProxyServicer(_Base):
    """gRPC glue: fresh database connections around each call, refusals as status codes."""

    def _call(self, context, fn, *args):
        close_old_connections()
        try:
            return fn(*args, peer_fingerprint(context), context.peer())
        except Rejected as rejection:
            context.abort(getattr(grpc.StatusCode, rejection.status), rejection.reason)
        finally:
            close_old_connections()

    def Ping(self, request, context):
        return self._call(context, serve, "Ping", request)

    def Deliver(self, request, context):
        return self._call(context, serve, "Deliver", request)

    def OpenSession(self, request, context):
        return self._call(context, serve, "OpenSession", request)

    def Abort(self, request, context):
        return self._call(context, serve, "Abort", request)

    def Score(self, request, context):
        return self._call(context, serve, "Score", request)

    def Ledger(self, request, context):
        return self._call(context, serve, "Ledger", request)

    def Push(self, request_iterator, context):
        return self._call(context, serve_push, request_iterator)

    def Tunnel(self, request_iterator, context):
        close_old_connections()
        try:
            yield from serve_tunnel(request_iterator, peer_fingerprint(context), context.peer())
        except Rejected as rejection:
            context.abort(getattr(grpc.StatusCode, rejection.status), rejection.reason)
        finally:
            close_old_connections()


# --- TLS that follows the database: pins and certificate changes need no restart --------

class _CertificateConfig:
    def __init__(self):
        self._lock = threading.Lock()
        self._state = None

    def _state_now(self):
        current = pki.current()
        pins = sorted(PartnerCertificate.objects.filter(retired_at__isnull=True, partner__is_active=True).values_list("fingerprint", flat=True))
        return current.fingerprint, tuple(pins)

    def build(self):
        key, cert = pki.current_key_and_cert()
        pins = "".join(
            PartnerCertificate.objects.filter(retired_at__isnull=True, partner__is_active=True).values_list("certificate_pem", flat=True)
        )
        # With no partner yet, trust only ourselves: nobody else can complete a handshake.
        roots = (pins or cert.decode()).encode()
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=roots)

    def initial(self):
        with self._lock:
            self._state = self._state_now()
            return self.build()

    def fetch(self):
        """Called by gRPC before each handshake: a new configuration only when something changed."""
        close_old_connections()
        try:
            with self._lock:
                state = self._state_now()
                if state == self._state:
                    return None
                self._state = state
                log.info("proxy TLS configuration changed: reloading certificates and pins")
                return self.build()
        except Exception:
            log.exception("could not reload the proxy's certificates; keeping the previous ones")
            return None


def build_server(address: str, *, max_workers: int = 16) -> tuple[grpc.Server, int]:
    config = _CertificateConfig()
    credentials = grpc.dynamic_ssl_server_credentials(config.initial(), config.fetch, require_client_authentication=True)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="proxy"),
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
            ("grpc.max_connection_idle_ms", 15 * 60_000),
        ],
    )
    add_ProxyServicer_to_server(ProxyServicer(), server)
    health_servicer = health.HealthServicer()
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_secure_port(address, credentials)
    if port == 0:
        raise RuntimeError(f"the proxy could not listen on {address}")
    return server, port
