"""The transport interface: how payload bytes move between parties.

Algorithms never see a transport; they use a :class:`~engine.federation.Context`,
which encodes values with :mod:`engine.wire` and hands opaque ``bytes`` to a
:class:`Transport`. Backends:

* :class:`~engine.federation.memory.InMemoryTransport` -- all parties in one
  process (threads); what ``run_local`` and the tests use.
* :class:`~engine.federation.sockets.SocketTransport` -- parties as separate
  processes on one machine over Unix/TCP sockets (benchmarks, manual tests).
* a proxy backend (gRPC mailbox between organisations) implements the same
  three methods; algorithms need no change.

Contract (what every backend must guarantee)
============================================

Addressing. A message is identified by ``(session_id, src, dst, key)``:
``session_id`` is one run of a job, shared by all its parties; ``src`` and
``dst`` are party ids; ``key`` is the namespaced message name built by the
context (e.g. ``"psi/blinded.3"``: characters ``[A-Za-z0-9_.-/]``).

``push(session_id, src, dst, key, payload)``
    Make ``payload`` available to ``dst``. Must not wait for ``dst`` to pull
    (messages are buffered: both parties of a protocol commonly send before
    they receive, and waiting would deadlock). It may block briefly for flow
    control. Each ``(session_id, src, dst, key)`` is pushed at most once;
    a second push of a message not yet pulled raises
    :class:`~engine.errors.DuplicateMessage`. Payloads can be large (tens of
    MB, e.g. a million 32-byte group elements): a network backend must stream
    or chunk them itself. Delivery problems raise
    :class:`~engine.errors.FederationError`.

``pull(session_id, dst, src, key, deadline) -> bytes``
    Wait for the message ``src -> dst`` named ``key`` and return its payload,
    removing it (each message is pulled exactly once). ``deadline`` is an
    absolute time on this process's ``time.monotonic()`` clock. If the
    message is already there it is returned, even if the session has since
    been aborted. Otherwise, while waiting:

    * if any party other than ``dst`` has called ``abort`` for the session,
      raise :class:`~engine.errors.PeerFailed` ``(party, error_message)``
      promptly (the point of aborts: nobody waits for a timeout when a peer
      is already dead);
    * when ``deadline`` passes, raise
      :class:`~engine.errors.FederationTimeout` ``(key, src, None)``.

``abort(session_id, src, error_message)``
    Tell every other party of the session that ``src`` failed, with a short
    human-readable message (it crosses organisations: no data values). Best
    effort: must not raise because a peer is unreachable. Idempotent enough
    to be called more than once.

Thread safety: all three methods may be called concurrently from several
threads (one per local party in tests, several per party in algorithms).

Byte streams (optional)
=======================

``open_stream(session_id, src, dst, name) -> StreamLink``
    For a protocol run by an external library that speaks its own network
    protocol (the OT-based PSI, see :mod:`engine.components.psi.rr22`): the
    library in party ``src`` listens on ``link.listen`` (where ``dst``'s
    connections arrive) and dials ``link.connect`` to reach ``dst``. Both are
    ``"unix:<path>"`` addresses on this machine; the backend carries the bytes
    (the proxy backend through the partner's proxy, MAC'd and authorised like
    every message). A backend that cannot raises
    :class:`~engine.errors.FederationError`, the default.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import DuplicateMessage, FederationError, FederationTimeout, PeerFailed

__all__ = ["Transport", "Mailbox", "StreamLink"]


@dataclass
class StreamLink:
    """Addresses for one byte stream between two parties (see the module docs).

    ``pass_fds`` are file descriptors the library's process must inherit for
    the addresses to resolve (a long folder is reached as ``/proc/self/fd/N``,
    because a Unix socket's path may hold only 107 bytes).
    """

    listen: str
    connect: str
    pass_fds: tuple[int, ...] = ()
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> StreamLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport(ABC):
    """Moves opaque payloads between the parties of a session. See module docs."""

    @abstractmethod
    def push(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        """Deliver ``payload`` to ``dst`` without waiting for it to be pulled."""

    @abstractmethod
    def pull(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        """Wait (until ``deadline``, a ``time.monotonic()`` value) for a message and return it."""

    @abstractmethod
    def abort(self, session_id: str, src: str, error_message: str) -> None:
        """Tell the other parties of the session that ``src`` failed."""

    def open_stream(self, session_id: str, src: str, dst: str, name: str) -> StreamLink:
        """Addresses for a byte stream ``src`` <-> ``dst`` (see the module docs)."""
        raise FederationError(f"the {type(self).__name__} carries messages only, not the byte streams {name!r} needs")


class Mailbox:
    """Thread-safe store of delivered messages and aborts, with blocking take.

    The receiving half shared by the in-memory and socket backends: whatever
    carries the bytes, they end up here, and ``take`` implements the
    ``pull`` contract (return if present, else PeerFailed / timeout).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._messages: dict[tuple[str, str, str, str], bytes] = {}
        self._aborts: dict[str, list[tuple[str, str]]] = {}

    def put(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        """Store a message; raises DuplicateMessage if one with that id is pending."""
        ident = (session_id, src, dst, key)
        with self._cond:
            if ident in self._messages:
                raise DuplicateMessage(
                    f"message {key!r} from {src!r} to {dst!r} was sent twice "
                    "(use ctx.sub/ctx.range to give repeated messages distinct names)"
                )
            self._messages[ident] = payload
            self._cond.notify_all()

    def abort(self, session_id: str, src: str, error_message: str) -> None:
        """Record that ``src`` failed, waking every waiting ``take``."""
        with self._cond:
            self._aborts.setdefault(session_id, []).append((src, error_message))
            self._cond.notify_all()

    def take(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        """Remove and return a message, waiting as the ``pull`` contract says."""
        ident = (session_id, src, dst, key)
        with self._cond:
            while True:
                payload = self._messages.pop(ident, None)
                if payload is not None:
                    return payload
                for party, message in self._aborts.get(session_id, ()):
                    if party != dst:
                        raise PeerFailed(party, message)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FederationTimeout(key, src, None)
                self._cond.wait(remaining)

    def pending(self) -> int:
        """Number of delivered messages not yet taken (for tests and diagnostics)."""
        with self._cond:
            return len(self._messages)
