"""Calling a partner's proxy: channels with mutual TLS, pinned to the partner's certificates.

The channel trusts only the partner's pinned certificates and checks that the server
certificate names the partner's party id (``ssl_target_name_override``), so a
certificate of one partner can never answer for another. There is no plaintext
fallback: a TLS failure is an error.
"""

from __future__ import annotations

import grpc
from django.conf import settings

from projects.models import Partner

from . import envelope as envelopes
from . import pki
from .proxy_pb2_grpc import ProxyStub

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # one chunk plus headers; large payloads are chunked
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Keepalive detects a vanished partner on long streams; 30 s is above gRPC's
    # server-side minimum so the partner does not answer with GOAWAY "too_many_pings".
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.enable_retries", 0),  # the outbox retries; a hidden retry would double-send chunks
]


def channel_for(partner: Partner, *, key_and_cert: tuple[bytes, bytes] | None = None,
                options: list[tuple] | None = None) -> grpc.Channel:
    pins = [c.certificate_pem for c in partner.pinned()]
    if not pins:
        raise PartnerUnusable(f"no valid pinned certificate for {partner.party_id}: import its current site bundle")
    key, cert = key_and_cert or pki.current_key_and_cert()
    credentials = grpc.ssl_channel_credentials(
        root_certificates="".join(pins).encode(), private_key=key, certificate_chain=cert
    )
    options = CHANNEL_OPTIONS + (options or []) + [("grpc.ssl_target_name_override", partner.party_id)]
    return grpc.secure_channel(partner.proxy_address, credentials, options=options)


class PartnerUnusable(Exception):
    """The partner cannot be called at all (nothing pinned, no identity of our own)."""


def stub_for(partner: Partner) -> tuple[grpc.Channel, ProxyStub]:
    channel = channel_for(partner)
    return channel, ProxyStub(channel)


def envelope_to(partner: Partner, kind: str, *, project=None, body: bytes = b"", **fields):
    """An envelope from this site to ``partner``, MAC'd under the project's token when it has one."""
    from projects.tokens import unseal

    token = unseal(project.token_encrypted) if project is not None and project.token_encrypted else None
    return envelopes.build(
        sender=settings.SITE_PARTY_ID, receiver=partner.party_id, kind=kind,
        project_id=str(project.pk) if project is not None else fields.pop("project_id", ""),
        body=body, token=token, token_version=project.token_version if project is not None else 0, **fields,
    )
