"""In-memory transport: every party in one process, one thread each.

Payloads are still wire-encoded bytes (the context encodes before pushing),
so a component tested in memory exercises exactly what a network backend
will carry.
"""

from __future__ import annotations

from engine.federation.transport import Mailbox, Transport

__all__ = ["InMemoryTransport"]


class InMemoryTransport(Transport):
    """A :class:`Transport` backed by one shared :class:`Mailbox`.

    One instance serves every party of any number of sessions; create one per
    test or per ``run_local`` call so that undelivered messages of a failed run
    are garbage-collected with it.
    """

    def __init__(self) -> None:
        self.mailbox = Mailbox()

    def push(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        if not isinstance(payload, bytes):
            raise TypeError("payload must be bytes")
        self.mailbox.put(session_id, src, dst, key, payload)

    def pull(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        return self.mailbox.take(session_id, dst, src, key, deadline)

    def abort(self, session_id: str, src: str, error_message: str) -> None:
        self.mailbox.abort(session_id, src, error_message)
