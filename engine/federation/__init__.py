"""Federation: contexts, the transport interface and its local backends.

* :class:`Context` / :class:`Peer` -- what algorithms use (``ctx.peer.send``,
  ``ctx.peer.recv``, ``ctx.sub``, ``ctx.range``).
* :class:`Transport` -- the three-method interface a backend implements
  (``push``, ``pull``, ``abort``); its contract is in
  :mod:`engine.federation.transport`.
* :class:`InMemoryTransport` (threads, one process) and
  :class:`SocketTransport` (processes on one machine).
* :func:`run_local` -- run every role of a component in threads.
"""

from engine.federation.context import DEFAULT_TIMEOUT, Context, Peer
from engine.federation.local import run_local
from engine.federation.memory import InMemoryTransport
from engine.federation.sockets import SocketTransport
from engine.federation.transport import Mailbox, Transport

__all__ = [
    "DEFAULT_TIMEOUT",
    "Context",
    "Peer",
    "Transport",
    "Mailbox",
    "InMemoryTransport",
    "SocketTransport",
    "run_local",
]
