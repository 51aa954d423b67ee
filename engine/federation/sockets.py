"""Socket transport: parties as separate processes on one machine.

Used by the benchmarks (two OS processes doing a PSI) and handy to try a
component the way it will really run -- one process per party -- without the
proxy. Each party listens on its own address (a Unix socket path, or a
``(host, port)`` pair) and connects to each peer's address to push. Frames use
``multiprocessing.connection``'s length-prefixed ``send_bytes`` /
``recv_bytes`` only (never its pickling ``send``/``recv``), and connections
are authenticated with a shared ``authkey`` (HMAC challenge) so a stray local
process cannot inject messages.

Not for use between organisations: no encryption, no reconnection, no
persistence. That is the proxy backend's job.

Byte streams (``open_stream``, for the RR22 PSI's library) connect the two
libraries directly, on Unix sockets beside the parties' own (so only between
parties that listen on Unix sockets, in folders both can reach).

A frame is a wire-encoded header dict, followed for messages by the payload::

    {"type": "message", "session": str, "src": str, "dst": str, "key": str}  + payload
    {"type": "abort",   "session": str, "src": str, "error": str}
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from engine import wire
from engine.errors import FederationError
from engine.federation.transport import Mailbox, StreamLink, Transport

__all__ = ["SocketTransport"]

Address = Any  # str (Unix socket path) or tuple[str, int] (TCP)


class SocketTransport(Transport):
    """A :class:`Transport` for one party, talking to peers over local sockets.

    Args:
        party_id: this party's id (``src`` of everything it pushes).
        address: where this party listens for its peers.
        peers: ``{party_id: address}`` of every other party.
        authkey: shared secret bytes; every party must use the same.
        connect_timeout: seconds to keep retrying a connection to a peer that
            is not listening yet (parties start in any order).

    Use as a context manager, or call :meth:`close` when done.
    """

    def __init__(
        self,
        party_id: str,
        address: Address,
        peers: Mapping[str, Address],
        authkey: bytes,
        *,
        connect_timeout: float = 60.0,
    ):
        self.party_id = party_id
        self.peers = dict(peers)
        self.connect_timeout = connect_timeout
        self._authkey = authkey
        self._mailbox = Mailbox()
        self._out: dict[str, Connection] = {}
        self._out_locks = {peer: threading.Lock() for peer in self.peers}
        self._incoming: list[Connection] = []
        self._closed = False
        self._listener = Listener(address, authkey=authkey)
        self.address = self._listener.address
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"accept-{party_id}", daemon=True
        )
        self._accept_thread.start()

    # -------------------------------------------------------------- Transport

    def push(self, session_id: str, src: str, dst: str, key: str, payload: bytes) -> None:
        header = wire.encode(
            {"type": "message", "session": session_id, "src": src, "dst": dst, "key": key}
        )
        # Header and payload must be adjacent on the connection: one lock per peer.
        with self._lock_for(dst):
            conn = self._connection(dst)
            try:
                conn.send_bytes(header)
                conn.send_bytes(payload)
            except OSError as exc:
                raise FederationError(f"could not send {key!r} to party {dst!r}: {exc}") from None

    def pull(self, session_id: str, dst: str, src: str, key: str, deadline: float) -> bytes:
        return self._mailbox.take(session_id, dst, src, key, deadline)

    def abort(self, session_id: str, src: str, error_message: str) -> None:
        header = wire.encode(
            {"type": "abort", "session": session_id, "src": src, "error": error_message}
        )
        for peer in self.peers:
            try:
                with self._lock_for(peer):
                    self._connection(peer, timeout=2.0).send_bytes(header)
            except (OSError, FederationError):
                pass  # best effort: an unreachable peer will time out instead

    def open_stream(self, session_id: str, src: str, dst: str, name: str) -> StreamLink:
        """Each library listens beside its party's socket and dials the peer's directly."""
        own, theirs = self.address, self.peers.get(dst)
        if not (isinstance(own, str) and isinstance(theirs, str)):
            raise FederationError("byte streams need both parties on Unix sockets")

        def beside(address: str, party: str) -> str:
            digest = hashlib.sha256(f"{session_id}\0{name}\0{party}".encode()).hexdigest()[:16]
            return f"unix:{os.path.join(os.path.dirname(os.path.abspath(address)), digest)}.sock"

        listen = beside(own, src)

        def release() -> None:
            try:
                os.unlink(listen[len("unix:"):])
            except FileNotFoundError:
                pass

        return StreamLink(listen=listen, connect=beside(theirs, dst), _release=release)

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        for conn in list(self._out.values()) + self._incoming:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> SocketTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- internals

    def _lock_for(self, peer: str) -> threading.Lock:
        try:
            return self._out_locks[peer]
        except KeyError:
            raise FederationError(f"unknown party {peer!r} (known: {sorted(self.peers)})") from None

    def _connection(self, peer: str, timeout: float | None = None) -> Connection:
        """The outgoing connection to ``peer``, connecting (with retries) if needed."""
        conn = self._out.get(peer)
        if conn is not None:
            return conn
        deadline = time.monotonic() + (self.connect_timeout if timeout is None else timeout)
        delay = 0.02
        while True:
            try:
                conn = Client(self.peers[peer], authkey=self._authkey)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() >= deadline:
                    raise FederationError(f"could not connect to party {peer!r}: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        self._out[peer] = conn
        return conn

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue  # a failed handshake (wrong authkey) must not stop the listener
            except Exception:  # noqa: BLE001 - AuthenticationError and friends
                continue
            self._incoming.append(conn)
            threading.Thread(
                target=self._read_loop, args=(conn,), name=f"read-{self.party_id}", daemon=True
            ).start()

    def _read_loop(self, conn: Connection) -> None:
        while True:
            try:
                header = wire.decode(conn.recv_bytes())
                if not isinstance(header, dict):
                    return
                if header.get("type") == "message":
                    payload = conn.recv_bytes()
                    self._mailbox.put(
                        header["session"], header["src"], header["dst"], header["key"], payload
                    )
                elif header.get("type") == "abort":
                    self._mailbox.abort(header["session"], header["src"], header["error"])
                else:
                    return
            except (EOFError, OSError):
                return  # peer closed the connection
            except Exception:  # noqa: BLE001 - malformed frame: drop this connection
                conn.close()
                return
