"""OT-based private set intersection: SecretFlow's RR22 (from the ``spu`` wheel), one function per role.

RR22 (Raghuraman & Rindal, "Blazing Fast PSI from Improved OKVS and Subfield VOLE",
CCS 2022) builds an oblivious PRF from vector OLE instead of a public-key operation
per id, so a million ids cost seconds rather than minutes. We do not implement it:
``spu``'s ``libpsi`` does, in a child process (:mod:`._spu_runner`) with its own
interpreter, whose network traffic runs over a byte stream the transport provides
(``ctx.peer.open_stream``; between sites, a tunnel through both proxies, MAC'd and
authorised on every chunk like the rest of the data plane).

Message table (our messages, through the context; the library's own traffic runs
inside the stream)
==================

=====  =====  ===============  =====================================================
step   dir    message          content
=====  =====  ===============  =====================================================
1      G<->H  ``hello``        protocol id, library version, 32-byte nonce, set
                               size, ``reveal``, ``min_overlap``. Salt = SHA-512
                               of both nonces.
2      G<->H  (stream)         RR22 on the 128-bit keys ``K(x)`` (see Keys);
                               the guest is the receiver; the library gives the
                               host the result too only when ``reveal="both"``
                               and the guest's ``min_overlap`` is 0
3      G<->H  ``status``       each side's library finished, or why it failed
4      G->H   ``verdict``      ``{"proceed": c >= min_overlap, "intersection_size"}``
5      G->H   ``matched``      the matched keys, ascending (only if proceeding,
                               ``reveal="both"`` and the library did not give the
                               host the result), in chunks of 65,536
=====  =====  ===============  =====================================================

What each side learns
=====================

* Both: the other's set size (step 1).
* The guest (receiver) learns the intersection itself: which of its ids the host
  also holds. The host learns nothing from RR22 (the sender's view is
  pseudorandom given the receiver's set size).
* ``reveal="guest"``: the host then learns only ``c``; ``"both"``: it also gets
  the matched keys, which it maps back to its own ids.
* ``reveal="cardinality"`` is not offered: the guest cannot be kept from the
  rows, so use the ECDH protocol for a size-only PSI.
* Minimum overlap: the guest learns the intersection before anyone can count it,
  so the host's own threshold cannot hold anything back. The host therefore
  refuses to run RR22 with a ``min_overlap`` above 0 on its side (and its site
  refuses tables whose PSI policy sets one: see ``jobs.services``). The guest's
  threshold is kept: below it the guest sends nothing more and the host learns
  neither rows nor the count.

Keys. Ids are hashed to 128 bits (two SipHash-2-4 values, see ``_keys``) with
keys from a per-run salt both parties contribute to, so the library sees
fixed-width hexadecimal keys (no CSV quoting, no Unicode, no length limits)
and nothing is comparable across runs. 128 bits is the width RR22 itself
hashes items to. Each party also adds one random key that cannot
match: the library skips the protocol when both key sets hash to the same
digest, which would tell the sender that the sets are equal.

Output order: both sides order the intersection by key (ascending), which both
know and which is pseudorandom, so outputs align row for row.

Security model: semi-honest, as published for RR22 and as implemented by the
library (its malicious variant is not used). The library's network messages are
carried, not inspected, by our transport.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import string
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pandas.util import hash_array

from engine.components.psi import protocol
from engine.components.psi.table import IdColumn, check_duplicates, read_ids, rows_for, take_rows
from engine.errors import EngineError, FederationTimeout, PeerFailed, PolicyViolation, ProtocolError
from engine.federation.context import Context

PROTOCOL = "fedweb-psi-rr22-v1"
LIBRARY = "spu 0.9.5"
KEY_BYTES = 16
RUNNER = Path(__file__).with_name("_spu_runner.py")
PSI_PYTHON_ENV = "FEDWEB_PSI_PYTHON"
ATTEMPTS = 3
# The library's opening handshake takes well under a second; it logs this line once it is done.
STALL_SECONDS = 30.0
HANDSHAKE_DONE = b"[AbstractPsiParty::Init][Check csv pre-process] start"
STALLED = "its opening handshake did not complete"
RECEIVER, SENDER = 0, 1  # the guest's and the host's rank in the library


def psi_python() -> str:
    """The interpreter of the PSI library's environment (``.venv-psi`` by default)."""
    configured = os.environ.get(PSI_PYTHON_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / ".venv-psi" / "bin" / "python"
    if not path.is_file():
        raise EngineError(
            f"the RR22 PSI needs the spu library, which is not installed here ({path} is missing): "
            f"run `make venv`, or set {PSI_PYTHON_ENV} to a Python that has spu installed"
        )
    return str(path)


def guest(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    table = inputs["data"]
    with _Library(ctx) as library:
        ids, keys, peer_size, min_overlap = _prepare(ctx, params, table)
        broadcast = _broadcast(params, min_overlap)
        matched = _intersect(ctx, library, keys, rank=RECEIVER, broadcast=broadcast)  # indices into ids.unique
    size = len(matched)
    proceed = size >= min_overlap
    ctx.peer.send("verdict", {"proceed": proceed, "intersection_size": size if proceed else None})
    if not proceed:
        raise PolicyViolation(f"the intersection is smaller than min_overlap={min_overlap}: nothing revealed")
    matched = matched[protocol.bytewise_order(keys[matched])]
    if params.reveal == "both" and not broadcast:
        protocol.send_rows(ctx, "matched", keys[matched])
    return _output(table, ids, params, peer_size, matched)


def host(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    table = inputs["data"]
    _check_host(params)
    with _Library(ctx) as library:
        ids, keys, peer_size, min_overlap = _prepare(ctx, params, table)
        broadcast = _broadcast(params, min_overlap)
        own = _intersect(ctx, library, keys, rank=SENDER, broadcast=broadcast)  # the library's result, when broadcast
    verdict = ctx.peer.recv("verdict")
    if not isinstance(verdict, dict) or not isinstance(verdict.get("proceed"), bool):
        raise ProtocolError("the guest's verdict is malformed")
    if not verdict["proceed"]:
        raise PolicyViolation(f"the intersection is smaller than min_overlap={min_overlap}: nothing revealed")
    size = verdict.get("intersection_size")
    if type(size) is not int or not 0 <= size <= min(len(ids.unique), peer_size):
        raise ProtocolError("the guest reported an impossible intersection size")
    if params.reveal == "guest":
        result = _output(table, ids, params, peer_size, np.empty(0, np.int64), revealed=False)
        result["metrics"]["intersection_size"] = size
        return result
    if broadcast:
        if len(own) != size:
            raise ProtocolError("the guest's intersection size is not the one the library gave this party")
        return _output(table, ids, params, peer_size, own[protocol.bytewise_order(keys[own])])
    received = protocol.recv_rows(ctx, "matched", size, KEY_BYTES)
    matched = _locate(keys, received)
    if (matched < 0).any() or len(np.unique(matched)) != size:
        raise ProtocolError("the guest sent keys that are not this party's, or the same key twice")
    if (protocol.bytewise_order(received) != np.arange(size)).any():
        raise ProtocolError("the guest's matched keys are not in ascending order")
    return _output(table, ids, params, peer_size, matched)


# ---------------------------------------------------------------------- steps


def _broadcast(params: Any, min_overlap: int) -> bool:
    """Whether the library gives the host its result too: only when the host gets rows anyway
    and the guest holds nothing back (no minimum overlap), so there is no count to wait for."""
    return params.reveal == "both" and min_overlap == 0


def _check_host(params: Any) -> None:
    """What RR22 cannot honour, refused before anything starts."""
    if params.min_overlap > 0:
        raise PolicyViolation(
            f"this party asks for a minimum overlap of {params.min_overlap}, which RR22 cannot hold back "
            "(the guest sees the intersection before it is counted); use protocol 'ecdh'"
        )


def _prepare(ctx: Context, params: Any, table: Any) -> tuple[IdColumn, np.ndarray, int, int]:
    """Read ids, exchange hellos, hash the ids to keys; refuse what RR22 cannot honour."""
    ids = read_ids(table, params.id_column)
    check_duplicates(ids, params.duplicate_ids, params.id_column)
    nonce = os.urandom(32)
    ctx.peer.send("hello", {"protocol": PROTOCOL, "library": LIBRARY, "nonce": nonce, "size": len(ids.unique),
                            "reveal": params.reveal, "min_overlap": params.min_overlap})
    theirs = ctx.peer.recv("hello")
    if not isinstance(theirs, dict):
        raise ProtocolError("the other party's hello is not a dict")
    for name, ours in (("protocol", PROTOCOL), ("library", LIBRARY), ("reveal", params.reveal)):
        if theirs.get(name) != ours:
            raise ProtocolError(f"the parties disagree on {name!r}: {ctx.role} has {ours!r}, "
                                f"{ctx.peer.role} has {str(theirs.get(name))[:80]!r}")
    their_nonce, their_size, their_min = protocol.hello_fields(theirs)
    if ctx.role == "guest" and their_min > 0:
        raise PolicyViolation(
            f"the host asks for a minimum overlap of {their_min}, which RR22 cannot hold back; use protocol 'ecdh'"
        )
    guest_nonce, host_nonce = (nonce, their_nonce) if ctx.role == "guest" else (their_nonce, nonce)
    salt = hashlib.sha512(b"FedWeb PSI-RR22 salt v1" + guest_nonce + host_nonce).digest()
    keys = _keys(ids.unique, salt)
    if len(np.unique(keys.view(f"V{KEY_BYTES}"))) != len(keys):  # 2^-128 per pair: a broken hash, not bad luck
        raise EngineError("two different ids hashed to the same key")
    return ids, keys, their_size, max(params.min_overlap, their_min)


_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


def _keys(unique: list[bytes], salt: bytes) -> np.ndarray:
    """Each id's 128-bit key: two SipHash-2-4 values under two keys drawn from the run's salt.

    SipHash is a keyed pseudorandom function (pandas' ``hash_array`` computes it in C, ten
    times as fast as a BLAKE2b per id in Python, which was most of our own time at a million
    ids): for two different ids the keys collide with probability about 2**-128, and since
    the keys come from both parties' fresh nonces, nobody can choose ids that collide. Each
    key is 16 characters of a 64-letter alphabet (96 bits): pandas takes the key as text.
    """
    values = np.empty(len(unique), dtype=object)
    values[:] = unique
    words = np.empty((len(unique), 2), dtype=">u8")
    for half in range(2):
        key = "".join(_KEY_ALPHABET[b % 64] for b in salt[16 * half:16 * half + 16])
        words[:, half] = hash_array(values, hash_key=key, categorize=False) if len(values) else []
    return words.view(np.uint8).reshape(len(unique), KEY_BYTES)


class _Stalled(Exception):
    """The library's opening handshake did not complete: both sides start again."""


def _intersect(ctx: Context, first: _Library, keys: np.ndarray, *, rank: int, broadcast: bool) -> np.ndarray:
    """Run the library, starting again (fresh stream, link and files) when its opening handshake
    stalls, which brpc occasionally does: up to ``ATTEMPTS`` times, each side told by the other's
    ``status`` when it was the one that noticed."""
    for attempt in range(ATTEMPTS):
        # The first attempt's library is the caller's (already started); later ones are ours to stop.
        with contextlib.nullcontext(first) if attempt == 0 else _Library(ctx.sub(f"retry-{attempt}")) as library:
            try:
                return library.run(keys, rank=rank, broadcast=broadcast)
            except _Stalled as stalled:
                logging.getLogger(__name__).warning("RR22 attempt %d of %d: %s", attempt + 1, ATTEMPTS, stalled)
                if attempt == ATTEMPTS - 1:
                    raise EngineError(f"the RR22 library failed: {stalled} ({ATTEMPTS} attempts)") from None
    raise AssertionError("unreachable")


class _Library:
    """One party's run of the library: its private folder, its byte stream and its process.

    The process starts first (with the stream's addresses, before the ids are even read), so
    that loading the library overlaps our own preparation; everything is stopped and removed
    on the way out, whatever happened.
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.private = Path(tempfile.mkdtemp(prefix="fedweb-rr22-"))  # 0700: our keys and the library's files
        self.link = None
        self.child = None

    def __enter__(self) -> _Library:
        try:
            python = psi_python()
            self.link = self.ctx.peer.open_stream("rr22")
            env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")},
                   "TMPDIR": str(self.private)}
            with open(self.private / "library.log", "wb") as log:
                self.child = subprocess.Popen(
                    [python, str(RUNNER), LIBRARY], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.private, env=env, pass_fds=self.link.pass_fds, start_new_session=True,
                )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.child is not None and self.child.poll() is None:
            _kill(self.child)
        if self.link is not None:
            self.link.close()
        shutil.rmtree(self.private, ignore_errors=True)

    def run(self, keys: np.ndarray, *, rank: int, broadcast: bool) -> np.ndarray:
        """Give the library its keys; the indices of the matched ones for the receiver (and,
        when the result is broadcast, for the sender)."""
        ctx, private, link, child = self.ctx, self.private, self.link, self.child
        _write_keys(private / "in.csv", keys)
        parties = [link.listen, link.connect] if rank == RECEIVER else [link.connect, link.listen]
        config = {
            "rank": rank, "parties": parties, "link_id": f"fedweb-{hashlib.sha256(ctx.session_id.encode()).hexdigest()[:24]}",
            "input": str(private / "in.csv"), "output": str(private / "out.csv"), "report": str(private / "report.json"),
            "receiver_rank": RECEIVER, "broadcast": broadcast, "recv_timeout_ms": int(ctx.default_timeout * 1000),
        }
        ctx.report(stage="intersecting (RR22)")
        try:
            child.stdin.write(json.dumps(config).encode())
            child.stdin.close()
        except BrokenPipeError:
            pass  # it stopped already; _wait reads why
        ctx.peer.send("configured", True)  # the handshake's clock starts once both libraries have theirs
        failure, theirs = _wait(ctx, child, private)
        retry = failure == STALLED or (isinstance(theirs, dict) and theirs.get("retry") is True)
        ctx.peer.send("status", {"ok": failure is None, "error": failure, "retry": retry})
        if retry:
            raise _Stalled(failure if failure == STALLED else "the other party's library stalled")
        if failure is not None:
            raise EngineError(f"the RR22 library failed: {failure}")
        if theirs is None:
            theirs = ctx.peer.recv("status")
        if not isinstance(theirs, dict) or theirs.get("ok") is not True:
            error = str(theirs.get("error"))[:300] if isinstance(theirs, dict) else "a malformed status"
            raise ProtocolError(f"the other party's RR22 library failed: {error}")
        if rank != RECEIVER and not broadcast:
            return np.empty(0, np.int64)
        return _matched(private / "out.csv", keys)


def _wait(ctx: Context, child: subprocess.Popen, private: Path) -> tuple[str | None, Any]:
    """Wait for the library; stop it at once if the peer's failed or the deadline passed.

    Returns (our failure or None, the peer's status if it already arrived)."""
    started = time.monotonic()
    deadline = started + ctx.default_timeout
    theirs = None
    handshake_done = peer_configured = False
    next_look = deadline
    while True:
        try:
            child.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        if not peer_configured:
            try:
                peer_configured = ctx.peer.recv("configured", timeout=0) is True
            except FederationTimeout:
                pass
            if peer_configured:
                next_look = time.monotonic() + STALL_SECONDS
        if not handshake_done and time.monotonic() > next_look:
            handshake_done = HANDSHAKE_DONE in (private / "library.log").read_bytes()
            if not handshake_done:
                _kill(child)
                return STALLED, theirs
            next_look = deadline
        if theirs is None:
            try:
                theirs = ctx.peer.recv("status", timeout=0)
            except FederationTimeout:
                pass
            except PeerFailed:
                _kill(child)
                raise
            else:
                if not (isinstance(theirs, dict) and theirs.get("ok") is True):
                    _kill(child)  # the peer's library is gone: ours would wait for its deadline
                    return "the other party's library stopped", theirs
        if time.monotonic() > deadline:
            _kill(child)
            return f"no result after {ctx.default_timeout:.0f} s", theirs
    if child.returncode == 0 and (private / "report.json").is_file():
        return None, theirs
    return _reason(child.returncode, private / "library.log"), theirs


def _reason(returncode: int, log: Path) -> str:
    """One line on why the library failed (never id values: it only ever saw hashed keys)."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else []
    ours = [line.split("FEDWEB-ERROR: ", 1)[1] for line in lines if "FEDWEB-ERROR: " in line]
    if ours:
        return ours[-1][:300]
    if returncode < 0:
        return f"the library's process ended on signal {signal.Signals(-returncode).name}"
    return f"the library's process exited with status {returncode}"


def _kill(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _write_keys(path: Path, keys: np.ndarray) -> None:
    """The library's input: a header, then one hexadecimal key per line in a random order,
    and one random key that matches nothing."""
    rows = np.concatenate([keys, np.frombuffer(os.urandom(KEY_BYTES), dtype=np.uint8)[None, :]])
    rows = rows[protocol.secure_permutation(len(rows))]  # the file's order says nothing
    lines = np.empty((len(rows), 2 * KEY_BYTES + 1), dtype=np.uint8)
    lines[:, :-1] = np.frombuffer(binascii.hexlify(rows.tobytes()), dtype=np.uint8).reshape(len(rows), -1)
    lines[:, -1] = ord("\n")
    with open(path, "wb") as handle:
        handle.write(b"k\n")
        handle.write(lines.tobytes())


def _matched(path: Path, keys: np.ndarray) -> np.ndarray:
    """Indices of our keys in the library's output (a header line, then one key per line)."""
    data = path.read_bytes()
    body = data[data.index(b"\n") + 1:] if b"\n" in data else b""
    width = 2 * KEY_BYTES + 1
    lines = np.frombuffer(body, dtype=np.uint8)
    if len(body) % width == 0 and (lines.reshape(-1, width)[:, -1] == ord("\n")).all():
        hexed = lines.reshape(-1, width)[:, :-1].tobytes()
    else:  # not the plain layout (quoted, or CRLF): line by line
        hexed = b"".join(line.strip().strip(b'"') for line in body.splitlines() if line.strip())
    try:
        found = np.frombuffer(binascii.unhexlify(hexed), dtype=np.uint8).reshape(-1, KEY_BYTES)
    except (binascii.Error, ValueError):
        raise ProtocolError("the RR22 library's output is not a list of keys") from None
    matched = _locate(keys, found)
    if (matched < 0).any():
        raise ProtocolError("the RR22 library returned a key this party never had")
    if len(np.unique(matched)) != len(matched):
        raise ProtocolError("the RR22 library returned a key twice")
    return matched


def _locate(keys: np.ndarray, found: np.ndarray) -> np.ndarray:
    """For each row of ``found``, its row in ``keys`` (both (n, 16) uint8, ``keys`` distinct), or -1.

    Searched on the keys' first 64 bits, then checked on all 128: when two of our keys share
    their first 64 bits (about 2**-25 for a million pseudorandom keys) by a dict instead."""
    if not len(found) or not len(keys):
        return np.full(len(found), -1, dtype=np.int64)
    ours, theirs = keys.view(">u8"), np.ascontiguousarray(found).view(">u8")
    order = np.argsort(ours[:, 0], kind="stable")
    first = ours[order, 0]
    if len(first) > 1 and (first[1:] == first[:-1]).any():
        position = {bytes(key): i for i, key in enumerate(keys)}
        return np.fromiter((position.get(bytes(key), -1) for key in found), dtype=np.int64, count=len(found))
    candidate = order[np.minimum(np.searchsorted(first, theirs[:, 0]), len(order) - 1)]
    hit = (ours[candidate, 0] == theirs[:, 0]) & (ours[candidate, 1] == theirs[:, 1])
    return np.where(hit, candidate, -1).astype(np.int64)


def _output(table, ids: IdColumn, params, peer_size: int, matched: np.ndarray, *, revealed: bool = True) -> dict:
    rows = rows_for(ids, matched, params.duplicate_ids)
    metrics = {
        "input_rows": ids.rows, "unique_ids": len(ids.unique), "duplicate_rows": ids.duplicate_rows,
        "peer_unique_ids": peer_size, "intersection_size": len(matched), "output_rows": len(rows),
        "rows_revealed": revealed, "reveal": params.reveal, "protocol": "rr22", "warnings": protocol.warnings(ids, params),
    }
    return {"data": take_rows(table, rows), "metrics": metrics}


__all__ = ["guest", "host", "PROTOCOL", "LIBRARY", "psi_python"]
