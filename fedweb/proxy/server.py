"""The proxy's gRPC server: one port, mutual TLS, every handler authorised first.

Handlers are plain functions of (envelope, Authorized) so tests can call them without
a socket; ``ProxyServicer`` wraps each one so that it authorises, closes stale database
connections, audits refusals and maps errors to gRPC status codes.
"""

from __future__ import annotations

import json
import logging
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

from . import authz, events, mailbox, pki
from .authz import Authorized, Rejected
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


# --- Handlers: plain functions -------------------------------------------------------

def handle_ping(env, auth: Authorized) -> Ack:
    return Ack(ok=True, detail=json.dumps({"party_id": settings.SITE_PARTY_ID, "name": settings.SITE_NAME}))


def handle_deliver(env, auth: Authorized) -> Ack:
    if env.kind != "event":
        raise Rejected("INVALID_ARGUMENT", "Deliver carries events only")
    from .envelope import parse_json_body

    try:
        body = parse_json_body(env)
        outcome = events.receive(auth.partner, env.project_id, auth.project, body)
    except (ValueError, events.EventRejected) as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None
    return Ack(ok=True, detail=outcome)


def handle_open_session(env, auth: Authorized) -> Ack:
    from projects.sessions import SessionRefused, open_session
    from .envelope import parse_json_body

    if auth.project is None or not auth.project.is_active:
        raise Rejected("FAILED_PRECONDITION", "sessions are opened inside an active project")
    try:
        answer = open_session(auth.partner, auth.project, parse_json_body(env))
    except ValueError as exc:
        raise Rejected("INVALID_ARGUMENT", str(exc)) from None
    except SessionRefused as exc:
        raise Rejected(exc.status, exc.reason) from None
    return Ack(ok=True, detail=json.dumps(answer))


def _open_session_for(env, auth: Authorized) -> JobSession:
    session = JobSession.objects.filter(session_id=env.session_id, project=auth.project, closed_at__isnull=True).first()
    if session is None:
        raise Rejected("PERMISSION_DENIED", "no open session with this id in this project")
    return session


def handle_abort(env, auth: Authorized) -> Ack:
    _open_session_for(env, auth)
    mailbox.record_abort(env.session_id, auth.partner.party_id, env.body.decode("utf-8", "replace"))
    return Ack(ok=True)


# --- The servicer ------------------------------------------------------------------

class ProxyServicer(_Base):
    def _run(self, handler, env, context):
        close_old_connections()
        fingerprint = peer_fingerprint(context)
        try:
            auth = authz.authorize(env, fingerprint)
            return handler(env, auth)
        except Rejected as rejection:
            authz.audit_rejection(env, fingerprint, rejection, context.peer())
            context.abort(getattr(grpc.StatusCode, rejection.status), rejection.reason)
        except Exception:
            log.exception("proxy handler %s failed", handler.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "the partner site failed to handle the request")
        finally:
            close_old_connections()

    def Ping(self, request, context):
        return self._run(handle_ping, request, context)

    def Deliver(self, request, context):
        return self._run(handle_deliver, request, context)

    def OpenSession(self, request, context):
        return self._run(handle_open_session, request, context)

    def Abort(self, request, context):
        return self._run(handle_abort, request, context)

    def Push(self, request_iterator, context):
        close_old_connections()
        fingerprint = peer_fingerprint(context)
        writer = None
        first = None
        try:
            for env in request_iterator:
                first = first or env
                auth = authz.authorize(env, fingerprint)  # every chunk: MAC, freshness, nonce
                if env.kind != "chunk" or auth.project is None:
                    raise Rejected("INVALID_ARGUMENT", "Push carries the chunks of one message of a project session")
                if writer is None:
                    _open_session_for(env, auth)
                    if not 0 < env.chunk_count <= 1_000_000:
                        raise Rejected("INVALID_ARGUMENT", "the chunk count is not valid")
                    writer = mailbox.Writer(env.session_id, auth.partner.party_id, settings.SITE_PARTY_ID, env.key, env.chunk_count)
                    ident = (env.session_id, env.key)
                elif (env.session_id, env.key) != ident:
                    raise Rejected("INVALID_ARGUMENT", "all chunks of a push belong to one message")
                writer.write(env.chunk_index, env.body)
            if writer is None:
                raise Rejected("INVALID_ARGUMENT", "an empty push")
            writer.close()
            writer = None
            return Ack(ok=True)
        except Rejected as rejection:
            authz.audit_rejection(first or _empty(), fingerprint, rejection, context.peer())
            context.abort(getattr(grpc.StatusCode, rejection.status), rejection.reason)
        except (ValueError, DuplicateMessage) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Exception:
            log.exception("proxy push failed")
            context.abort(grpc.StatusCode.INTERNAL, "the partner site failed to store the message")
        finally:
            if writer is not None:
                writer.discard()
            close_old_connections()


def _empty():
    from .proxy_pb2 import Envelope

    return Envelope()


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
