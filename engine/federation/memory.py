"""In-memory transport: every party in one process, one thread each.

Payloads are still wire-encoded bytes (the context encodes before pushing),
so a component tested in memory exercises exactly what a network backend
will carry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading

from engine.federation.transport import Mailbox, StreamLink, Transport

__all__ = ["InMemoryTransport"]


class InMemoryTransport(Transport):
    """A :class:`Transport` backed by one shared :class:`Mailbox`.

    One instance serves every party of any number of sessions; create one per
    test or per ``run_local`` call so that undelivered messages of a failed run
    are garbage-collected with it.
    """

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self._streams: dict[tuple[str, str], tuple[str, set[str]]] = {}
        self._lock = threading.Lock()

    def push(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        if not isinstance(payload, bytes):
            raise TypeError("payload must be bytes")
        self.mailbox.put(session_id, src, dst, key, payload)

    def pull(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        return self.mailbox.take(session_id, dst, src, key, deadline)

    def abort(self, session_id: str, src: str, error_message: str) -> None:
        self.mailbox.abort(session_id, src, error_message)

    def open_stream(self, session_id: str, src: str, dst: str, name: str) -> StreamLink:
        """Both parties are in this process: each dials the other's socket directly,
        in one private folder per stream (removed when both have closed their link)."""
        stream = (session_id, name)
        with self._lock:
            # In /tmp whatever TMPDIR says: a Unix socket's path holds at most 107 bytes.
            folder, users = self._streams.get(stream) or (tempfile.mkdtemp(prefix="fedweb-stream-", dir=_SHORT_TMP), set())
            users.add(src)
            self._streams[stream] = (folder, users)

        def release() -> None:
            with self._lock:
                users.discard(src)
                if not users:
                    self._streams.pop(stream, None)
                    shutil.rmtree(folder, ignore_errors=True)

        return StreamLink(listen=f"unix:{os.path.join(folder, _slot(src))}",
                          connect=f"unix:{os.path.join(folder, _slot(dst))}", _release=release)


_SHORT_TMP = "/tmp" if os.path.isdir("/tmp") else None


def _slot(party: str) -> str:
    return hashlib.sha256(party.encode()).hexdigest()[:16] + ".sock"  # short, whatever the party id
