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
2      G<->H  (stream)         RR22 on the keys ``K(x) = BLAKE2b-128(salt, x)``;
                               the guest is the receiver, the result is not
                               broadcast (the host's library outputs nothing)
3      G<->H  ``status``       each side's library finished, or why it failed
4      G->H   ``verdict``      ``{"proceed": c >= min_overlap, "intersection_size"}``
5      G->H   ``matched``      the matched keys, ascending (only if proceeding and
                               ``reveal="both"``), in chunks of 65,536
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

Keys. Ids are hashed with a per-run salt both parties contribute to, so the
library sees fixed-width hexadecimal keys (no CSV quoting, no Unicode, no
length limits) and nothing is comparable across runs. 128 bits is the width
RR22 itself hashes items to. Each party also adds one random key that cannot
match: the library skips the protocol when both key sets hash to the same
digest, which would tell the sender that the sets are equal.

Output order: both sides order the intersection by key (ascending), which both
know and which is pseudorandom, so outputs align row for row.

Security model: semi-honest, as published for RR22 and as implemented by the
library (its malicious variant is not used). The library's network messages are
carried, not inspected, by our transport.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.components.psi import protocol
from engine.components.psi.table import IdColumn, check_duplicates, read_ids, rows_for, take_rows
from engine.errors import EngineError, FederationTimeout, PeerFailed, PolicyViolation, ProtocolError
from engine.federation.context import Context

PROTOCOL = "fedweb-psi-rr22-v1"
LIBRARY = "spu 0.9.5"
KEY_BYTES = 16
RUNNER = Path(__file__).with_name("_spu_runner.py")
PSI_PYTHON_ENV = "FEDWEB_PSI_PYTHON"
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
    ids, keys, peer_size, min_overlap = _prepare(ctx, params, table)
    matched = _run_library(ctx, keys, rank=RECEIVER)  # indices into ids.unique
    size = len(matched)
    proceed = size >= min_overlap
    ctx.peer.send("verdict", {"proceed": proceed, "intersection_size": size if proceed else None})
    if not proceed:
        raise PolicyViolation(f"the intersection is smaller than min_overlap={min_overlap}: nothing revealed")
    matched = matched[protocol.bytewise_order(_rows(keys, matched))]
    if params.reveal == "both":
        protocol.send_rows(ctx, "matched", _rows(keys, matched))
    return _output(table, ids, params, peer_size, matched)


def host(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    table = inputs["data"]
    ids, keys, peer_size, min_overlap = _prepare(ctx, params, table)
    _run_library(ctx, keys, rank=SENDER)
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
    received = protocol.recv_rows(ctx, "matched", size, KEY_BYTES)
    position = {key: i for i, key in enumerate(keys)}
    flat = received.tobytes()
    matched = np.fromiter((position.get(flat[i:i + KEY_BYTES], -1) for i in range(0, len(flat), KEY_BYTES)),
                          dtype=np.int64, count=size)
    if (matched < 0).any() or len(np.unique(matched)) != size:
        raise ProtocolError("the guest sent keys that are not this party's, or the same key twice")
    if (protocol.bytewise_order(received) != np.arange(size)).any():
        raise ProtocolError("the guest's matched keys are not in ascending order")
    return _output(table, ids, params, peer_size, matched)


# ---------------------------------------------------------------------- steps


def _prepare(ctx: Context, params: Any, table: Any) -> tuple[IdColumn, list[bytes], int, int]:
    """Read ids, exchange hellos, hash the ids to keys; refuse what RR22 cannot honour."""
    ids = read_ids(table, params.id_column)
    check_duplicates(ids, params.duplicate_ids, params.id_column)
    if params.reveal == "cardinality":
        raise PolicyViolation("RR22 shows the guest the intersection itself; a size-only PSI needs protocol 'ecdh'")
    if ctx.role == "host" and params.min_overlap > 0:
        raise PolicyViolation(
            f"this party asks for a minimum overlap of {params.min_overlap}, which RR22 cannot hold back "
            "(the guest sees the intersection before it is counted); use protocol 'ecdh'"
        )
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
    their_nonce, their_size, their_min = theirs.get("nonce"), theirs.get("size"), theirs.get("min_overlap")
    if not (isinstance(their_nonce, bytes) and len(their_nonce) == 32):
        raise ProtocolError("the other party's nonce is malformed")
    if type(their_size) is not int or their_size < 0:
        raise ProtocolError("the other party's set size is malformed")
    if type(their_min) is not int or their_min < 0:
        raise ProtocolError("the other party's min_overlap is malformed")
    if ctx.role == "guest" and their_min > 0:
        raise PolicyViolation(
            f"the host asks for a minimum overlap of {their_min}, which RR22 cannot hold back; use protocol 'ecdh'"
        )
    guest_nonce, host_nonce = (nonce, their_nonce) if ctx.role == "guest" else (their_nonce, nonce)
    salt = hashlib.sha512(b"FedWeb PSI-RR22 salt v1" + guest_nonce + host_nonce).digest()[:32]
    keys = [hashlib.blake2b(value, digest_size=KEY_BYTES, key=salt).digest() for value in ids.unique]
    if len(set(keys)) != len(keys):  # 2^-128 per pair: a broken hash, not bad luck
        raise EngineError("two different ids hashed to the same key")
    return ids, keys, their_size, max(params.min_overlap, their_min)


def _run_library(ctx: Context, keys: list[bytes], *, rank: int) -> np.ndarray:
    """Run the library's party; the receiver gets the indices of its matched keys."""
    python = psi_python()
    private = Path(tempfile.mkdtemp(prefix="fedweb-rr22-"))  # 0700: our keys and the library's files
    link = None
    child = None
    try:
        hex_keys = [key.hex() for key in keys] + [os.urandom(KEY_BYTES).hex()]  # the unmatchable key
        np.random.default_rng(int.from_bytes(os.urandom(8), "big")).shuffle(hex_keys)  # file order says nothing
        (private / "in.csv").write_text("k\n" + "\n".join(hex_keys) + "\n", encoding="ascii")
        del hex_keys
        link = ctx.peer.open_stream("rr22")
        parties = [link.listen, link.connect] if rank == RECEIVER else [link.connect, link.listen]
        config = {
            "rank": rank, "parties": parties, "link_id": f"fedweb-{hashlib.sha256(ctx.session_id.encode()).hexdigest()[:24]}",
            "input": str(private / "in.csv"), "output": str(private / "out.csv"), "report": str(private / "report.json"),
            "receiver_rank": RECEIVER, "broadcast": False, "recv_timeout_ms": int(ctx.default_timeout * 1000),
            "library": LIBRARY,
        }
        env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}, "TMPDIR": str(private)}
        ctx.report(stage="intersecting (RR22)")
        with open(private / "library.log", "wb") as log:
            child = subprocess.Popen(
                [python, str(RUNNER)], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                cwd=private, env=env, pass_fds=link.pass_fds, start_new_session=True,
            )
            child.stdin.write(json.dumps(config).encode())
            child.stdin.close()
            failure, theirs = _wait(ctx, child, private)
        ctx.peer.send("status", {"ok": failure is None, "error": failure})
        if failure is not None:
            raise EngineError(f"the RR22 library failed: {failure}")
        if theirs is None:
            theirs = ctx.peer.recv("status")
        if not isinstance(theirs, dict) or theirs.get("ok") is not True:
            error = str(theirs.get("error"))[:300] if isinstance(theirs, dict) else "a malformed status"
            raise ProtocolError(f"the other party's RR22 library failed: {error}")
        if rank != RECEIVER:
            return np.empty(0, np.int64)
        return _matched(private / "out.csv", keys)
    finally:
        if child is not None and child.poll() is None:
            _kill(child)
        if link is not None:
            link.close()
        shutil.rmtree(private, ignore_errors=True)


def _wait(ctx: Context, child: subprocess.Popen, private: Path) -> tuple[str | None, Any]:
    """Wait for the library; stop it at once if the peer's failed or the deadline passed.

    Returns (our failure or None, the peer's status if it already arrived)."""
    deadline = time.monotonic() + ctx.default_timeout
    theirs = None
    while child.poll() is None:
        if theirs is None:
            try:
                theirs = ctx.peer.recv("status", timeout=0.25)
            except FederationTimeout:
                pass
            except PeerFailed:
                _kill(child)
                raise
            else:
                if not (isinstance(theirs, dict) and theirs.get("ok") is True):
                    _kill(child)  # the peer's library is gone: ours would wait for its deadline
                    return "the other party's library stopped", theirs
        else:
            time.sleep(0.1)
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


def _matched(path: Path, keys: list[bytes]) -> np.ndarray:
    """Indices of our keys in the library's output (a header line, then one key per line)."""
    position = {key.hex(): i for i, key in enumerate(keys)}
    found = []
    with open(path, encoding="ascii") as handle:
        next(handle, None)
        for line in handle:
            key = line.strip().strip('"')
            if key:
                index = position.get(key)
                if index is None:
                    raise ProtocolError("the RR22 library returned a key this party never had")
                found.append(index)
    matched = np.asarray(found, dtype=np.int64)
    if len(np.unique(matched)) != len(matched):
        raise ProtocolError("the RR22 library returned a key twice")
    return matched


def _rows(keys: list[bytes], selected: np.ndarray) -> np.ndarray:
    """The selected keys as an (n, 16) uint8 array."""
    joined = b"".join(keys[i] for i in selected)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(selected), KEY_BYTES)


def _output(table, ids: IdColumn, params, peer_size: int, matched: np.ndarray, *, revealed: bool = True) -> dict:
    rows = rows_for(ids, matched, params.duplicate_ids)
    metrics = {
        "input_rows": ids.rows, "unique_ids": len(ids.unique), "duplicate_rows": ids.duplicate_rows,
        "peer_unique_ids": peer_size, "intersection_size": len(matched), "output_rows": len(rows),
        "rows_revealed": revealed, "reveal": params.reveal, "protocol": "rr22", "warnings": protocol.warnings(ids, params),
    }
    return {"data": take_rows(table, rows), "metrics": metrics}


__all__ = ["guest", "host", "PROTOCOL", "LIBRARY", "psi_python"]
