"""The federation context: what an algorithm uses to talk to the other parties.

A component's per-role function receives a :class:`Context`::

    def guest(ctx, params, inputs):
        ctx.peer.send("sizes", {"rows": n})          # to the single other party
        their = ctx.peer.recv("sizes")               # waits, with a deadline
        for epoch, ectx in ctx.range("epoch", 10):   # names: epoch.0/..., epoch.1/...
            ectx.peer.send("gradient", grad)
        ...

Message names are relative to the context's namespace: ``ctx.sub("stats")``
and ``ctx.range("epoch", n)`` give child contexts whose messages cannot
collide with their parent's or their siblings'. A name is made of
``[A-Za-z0-9_-]``; ``/`` separates namespaces and ``.`` precedes an
iteration index, so generated names never clash with chosen ones.

Every value is encoded with :mod:`engine.wire` before it reaches the
transport and decoded after, even in memory, so what a test exercises is
exactly what crosses organisations. Every ``recv`` has a deadline
(``timeout`` argument, else the context's ``default_timeout``, else
:data:`DEFAULT_TIMEOUT`). When a party fails, the runner calls
:meth:`Context.abort`, and the other parties' pending ``recv`` raise
:class:`~engine.errors.PeerFailed` with its message.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from engine import wire
from engine.errors import (
    DuplicateMessage,
    EngineError,
    FederationError,
    FederationTimeout,
    WireError,
)
from engine.federation.transport import Transport

__all__ = ["Context", "Peer", "DEFAULT_TIMEOUT", "Reporter"]

T = TypeVar("T")
Reporter = Callable[..., None]
"""Called as ``reporter(fraction=..., stage=..., metrics=...)`` by :meth:`Context.report`."""


def _default_timeout() -> float:
    raw = os.environ.get("FEDWEB_RECV_TIMEOUT")
    if raw is None:
        return 600.0
    try:
        value = float(raw)
    except ValueError:
        raise EngineError(f"FEDWEB_RECV_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not 0 < value < math.inf:
        raise EngineError(f"FEDWEB_RECV_TIMEOUT must be positive and finite, got {raw!r}")
    return value


DEFAULT_TIMEOUT: float = _default_timeout()
"""Seconds a ``recv`` waits when neither it nor its context says otherwise.

600 s unless the ``FEDWEB_RECV_TIMEOUT`` environment variable says otherwise:
long enough for a peer to blind a million ids before answering.
"""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise EngineError(
            f"{what} {name!r} is not valid: use 1-128 characters from [A-Za-z0-9_-] "
            "('/' and '.' are reserved for namespaces and iteration indices)"
        )
    return name


class _SentLog:
    """Message ids already sent from one context tree, to catch reused names early."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: set[tuple[str, str]] = set()

    def claim(self, dst: str, key: str) -> None:
        with self._lock:
            if (dst, key) in self._sent:
                raise DuplicateMessage(
                    f"message {key!r} to party {dst!r} was already sent in this session "
                    "(use ctx.sub/ctx.range to give repeated messages distinct names)"
                )
            self._sent.add((dst, key))


class Context:
    """One party's view of a federated session, scoped to a namespace.

    Attributes:
        session_id: the run this context belongs to (shared by all parties).
        party_id: this party's id (an organisation / participant identifier).
        role: this party's role, e.g. ``"guest"`` (label holder) or ``"host"``.
        parties: every party of the session, ``{party_id: role}``, self included.
        namespace: the prefix of this context's message names (``""`` at the root).
        default_timeout: seconds a ``recv`` waits by default.
    """

    def __init__(
        self,
        *,
        session_id: str,
        party_id: str,
        role: str,
        parties: Mapping[str, str],
        transport: Transport,
        namespace: str = "",
        default_timeout: float | None = None,
        reporter: Reporter | None = None,
        _sent: _SentLog | None = None,
    ):
        if party_id not in parties:
            raise EngineError(f"party {party_id!r} is not one of the session's parties {sorted(parties)}")
        if parties[party_id] != role:
            raise EngineError(f"party {party_id!r} has role {parties[party_id]!r}, not {role!r}")
        timeout = DEFAULT_TIMEOUT if default_timeout is None else float(default_timeout)
        if not 0 < timeout < math.inf:
            raise EngineError(f"default_timeout must be positive and finite, got {default_timeout!r}")
        if namespace:
            for part in namespace.split("/"):
                _check_name(part.split(".")[0], "namespace")
        self.session_id = session_id
        self.party_id = party_id
        self.role = role
        self.parties = dict(parties)
        self.transport = transport
        self.namespace = namespace
        self.default_timeout = timeout
        self.reporter = reporter
        self._sent = _sent if _sent is not None else _SentLog()

    # ------------------------------------------------------------------ peers

    @property
    def peers(self) -> list[Peer]:
        """Every other party of the session, ordered by role then party id."""
        others = sorted(
            (role, party) for party, role in self.parties.items() if party != self.party_id
        )
        return [Peer(self, party, role) for role, party in others]

    @property
    def peer(self) -> Peer:
        """The other party, in a two-party session (raises otherwise)."""
        peers = self.peers
        if len(peers) != 1:
            raise FederationError(
                f"ctx.peer needs exactly one other party, this session has {len(peers)}; "
                "use ctx.peers or ctx.peers_with_role(...)"
            )
        return peers[0]

    def peers_with_role(self, role: str) -> list[Peer]:
        """The other parties that have ``role``."""
        return [p for p in self.peers if p.role == role]

    # ------------------------------------------------------------- namespaces

    def sub(self, name: str) -> Context:
        """A child context whose messages are named ``<namespace>/<name>/...``."""
        return self._child(_check_name(name, "sub-context name"))

    def range(self, name: str, n: int) -> Iterator[tuple[int, Context]]:
        """``(i, ctx)`` for ``i`` in ``range(n)``, each ctx namespaced ``name.i``.

        For loops where every iteration exchanges messages with the same
        names (epochs, batches, chunks)::

            for epoch, ectx in ctx.range("epoch", n_epochs):
                ectx.peer.send("gradient", g)
        """
        _check_name(name, "range name")
        for i in range(n):
            yield i, self._child(f"{name}.{i}")

    def enumerate(self, name: str, items: Iterable[T]) -> Iterator[tuple[int, T, Context]]:
        """Like :meth:`range` over an iterable: yields ``(i, item, ctx)``."""
        _check_name(name, "enumerate name")
        for i, item in enumerate(items):
            yield i, item, self._child(f"{name}.{i}")

    def _child(self, part: str) -> Context:
        namespace = f"{self.namespace}/{part}" if self.namespace else part
        return Context(
            session_id=self.session_id,
            party_id=self.party_id,
            role=self.role,
            parties=self.parties,
            transport=self.transport,
            namespace=namespace,
            default_timeout=self.default_timeout,
            reporter=self.reporter,
            _sent=self._sent,
        )

    def key(self, name: str) -> str:
        """The full message key for ``name`` in this context."""
        _check_name(name, "message name")
        return f"{self.namespace}/{name}" if self.namespace else name

    # --------------------------------------------------------------- progress

    def report(self, *, fraction: float | None = None, stage: str | None = None,
               metrics: Mapping[str, Any] | None = None) -> None:
        """Tell whoever runs this party how far it got: a fraction of the work (0..1),
        the stage in words ("epoch 3 of 10") and running figures (``{"loss": 0.41}``,
        added to a per-name series by the site). A no-op when nobody listens; a failing
        listener never stops the algorithm."""
        if self.reporter is None:
            return
        try:
            self.reporter(fraction=None if fraction is None else min(max(float(fraction), 0.0), 1.0),
                          stage=stage, metrics=dict(metrics or {}))
        except Exception:  # noqa: BLE001 - progress is a hint, never a reason to fail
            pass

    # ---------------------------------------------------------------- failure

    def abort(self, error_message: str) -> None:
        """Tell every other party that this party failed (the runner calls this)."""
        self.transport.abort(self.session_id, self.party_id, error_message)

    def __repr__(self) -> str:
        return (
            f"Context(session={self.session_id!r}, party={self.party_id!r}, "
            f"role={self.role!r}, namespace={self.namespace!r})"
        )


class Peer:
    """Another party, as seen from a context: send to it, receive from it."""

    def __init__(self, ctx: Context, party_id: str, role: str):
        self._ctx = ctx
        self.party_id = party_id
        self.role = role

    def send(self, name: str, value: Any) -> None:
        """Encode ``value`` (see :mod:`engine.wire`) and send it as message ``name``.

        Does not wait for the peer to receive it. Each name can be sent once
        per context; raises :class:`~engine.errors.DuplicateMessage` otherwise,
        and :class:`~engine.errors.WireError` for a value the wire cannot carry.
        """
        ctx = self._ctx
        key = ctx.key(name)
        try:
            payload = wire.encode(value)
        except WireError as exc:
            raise WireError(f"cannot send message {key!r}: {exc}") from None
        ctx._sent.claim(self.party_id, key)
        ctx.transport.push(ctx.session_id, ctx.party_id, self.party_id, key, payload)

    def recv(self, name: str, timeout: float | None = None) -> Any:
        """Wait for message ``name`` from this peer and return its decoded value.

        Waits at most ``timeout`` seconds (default: the context's
        ``default_timeout``); raises :class:`~engine.errors.FederationTimeout`
        naming the message after that, :class:`~engine.errors.PeerFailed` as
        soon as any other party aborts, and :class:`~engine.errors.WireError`
        if the payload is malformed.
        """
        ctx = self._ctx
        key = ctx.key(name)
        wait = ctx.default_timeout if timeout is None else float(timeout)
        if not 0 <= wait < math.inf:
            raise EngineError(f"recv timeout must be non-negative and finite, got {timeout!r}")
        try:
            payload = ctx.transport.pull(
                ctx.session_id, ctx.party_id, self.party_id, key, time.monotonic() + wait
            )
        except FederationTimeout:
            raise FederationTimeout(key, self.party_id, wait) from None
        try:
            return wire.decode(payload)
        except WireError as exc:
            raise WireError(f"message {key!r} from party {self.party_id!r}: {exc}") from None

    def open_stream(self, name: str):
        """Addresses through which an external protocol library talks to this peer
        (a :class:`~engine.federation.transport.StreamLink`; close it when done)."""
        ctx = self._ctx
        return ctx.transport.open_stream(ctx.session_id, ctx.party_id, self.party_id, ctx.key(name))

    def __repr__(self) -> str:
        return f"Peer(party={self.party_id!r}, role={self.role!r})"
