"""The engine's Transport over the proxy: how a job on this site talks to its partner.

``push`` streams a message to the partner's proxy in chunks, each one an envelope
MAC'd under the project's token (so the partner authorises every chunk); ``pull``
waits in this site's mailbox, where our proxy put what the partner pushed; ``abort``
tells the partner's proxy that our side failed. Algorithms do not change: they see
only ``ctx.peer.send/recv``.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime

import grpc
from django.conf import settings

from engine.errors import FederationError
from engine.federation.transport import Transport
from projects.models import Project
from projects.tokens import unseal

from . import envelope as envelopes
from . import mailbox
from .client import stub_for

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
# The partner's proxy is unreachable, slow, or stopping (it cancels open streams as it shuts down).
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
PUSH_DEADLINE_SECONDS = 600


class ProxyTransport(Transport):
    """One project's data plane; ``session_id`` values must be sessions open on both sites."""

    def __init__(self, project: Project):
        self.project = project
        self.partner = project.partner
        self._channel, self._stub = stub_for(self.partner)

    def close(self) -> None:
        self._channel.close()

    @property
    def stub(self):
        return self._stub

    def token(self) -> bytes:
        return unseal(self.project.token_encrypted)

    def open_stream(self, session_id: str, src: str, dst: str, name: str):
        """A byte stream to the partner's library, through both proxies (see ``tunnel``)."""
        from . import tunnel

        if dst != self.partner.party_id or src != settings.SITE_PARTY_ID:
            raise FederationError(f"this transport carries {settings.SITE_PARTY_ID} → {self.partner.party_id} only")
        return tunnel.open_link(self, session_id, name)

    def _envelopes(self, session_id: str, dst: str, key: str, payload: bytes):
        token = self.token()
        count = max(1, math.ceil(len(payload) / CHUNK_BYTES))
        for index in range(count):
            yield envelopes.build(
                sender=settings.SITE_PARTY_ID, receiver=dst, kind="chunk", project_id=str(self.project.pk),
                token=token, token_version=self.project.token_version, session_id=session_id, key=key,
                chunk_index=index, chunk_count=count, body=payload[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES],
            )

    def push(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        """Send one message; a partner that is briefly unreachable is retried with backoff
        (every attempt is freshly MAC'd, and a message that did arrive is not sent twice)."""
        if dst != self.partner.party_id or src != settings.SITE_PARTY_ID:
            raise FederationError(f"this transport carries {settings.SITE_PARTY_ID} → {self.partner.party_id} only")
        since, deadline, wait = None, 0.0, 0.5
        while True:
            # The partner's failure arrives as an abort: report that, not the refusal it causes.
            mailbox.raise_if_aborted(session_id, src)
            try:
                self._stub.Push(self._envelopes(session_id, dst, key, payload), timeout=PUSH_DEADLINE_SECONDS)
                return
            except grpc.RpcError as exc:
                code = exc.code()
                if since is not None and code == grpc.StatusCode.INVALID_ARGUMENT and "already delivered" in (exc.details() or ""):
                    return  # an earlier attempt arrived; only its answer was lost
                if code not in RETRYABLE:
                    mailbox.raise_if_aborted(session_id, src)
                    raise FederationError(f"the partner's proxy refused message {key!r}: {code.name}: {exc.details()}") from None
                if since is None:
                    since, deadline = datetime.now(), time.monotonic() + settings.PARTNER_RETRY_SECONDS
                if time.monotonic() + wait > deadline:
                    raise FederationError(
                        f"the partner's site did not answer since {since:%H:%M} ({code.name}: {exc.details()})") from None
                log.info("partner %s unreachable (%s); retrying message %s in %.1f s", self.partner.party_id, code.name, key, wait)
                time.sleep(wait)
                mailbox.raise_if_aborted(session_id, src)  # a cancel or the partner's failure ends the wait
                wait = min(wait * 2, 10.0)

    def pull(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        return mailbox.take(session_id, dst, src, key, deadline)

    def abort(self, session_id: str, src: str, error_message: str) -> None:
        mailbox.record_abort(session_id, src, error_message)  # wakes our own waiting threads too
        env = envelopes.build(
            sender=settings.SITE_PARTY_ID, receiver=self.partner.party_id, kind="abort", project_id=str(self.project.pk),
            token=self.token(), token_version=self.project.token_version,
            session_id=session_id, body=error_message[:1000].encode(),
        )
        try:
            self._stub.Abort(env, timeout=10)
        except grpc.RpcError as exc:  # best effort: the partner's waits have deadlines anyway
            log.warning("could not tell %s that session %s failed: %s", self.partner.party_id, session_id, exc.details())
