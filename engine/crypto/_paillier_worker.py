"""Helper processes for the heaviest Paillier kernels (``X.T @ [[d]]`` and bucket sums).

Why processes here when threads serve everywhere else: those two kernels
are long loops of single 4096-bit multiplications, and with threads every
operation hands the GIL back and forth. Measured on this repository's
2-core machine, two threads reach only ~1.4x on them, while two
interpreters reach ~1.97x. Encryption (long runs inside one element) and
decryption (whole lists inside ``powmod_base_list``) already scale ~1.9x on
threads, so they stay there.

How: ``python -m engine.crypto._paillier_worker`` is started lazily with
``subprocess`` (not ``multiprocessing``: no pickling, no re-import of the
caller's ``__main__``, and it works inside daemonic Celery workers). The
parent splits the *rows* of a job: it sends each helper its rows'
ciphertexts as fixed-width bytes, computes its own share meanwhile, and
multiplies the partial results together (exponents add over a row
partition, so this is exact). Only our own local data crosses the pipe.

Protocol on the helper's stdin/stdout, little-endian, no pickle::

    request   b"FWPH" | op: u8 | length: u64 | payload
    response  status: u8 (0 ok, 1 error) | length: u64 | payload (error: UTF-8 text)
    payload   a sequence of fields, each  length: u64 | bytes

If a helper cannot be started or fails, the parent computes that share
itself and stops using helpers for the rest of the process: correctness
never depends on them. ``FEDWEB_PAILLIER_HELPERS=0`` disables them.
"""

from __future__ import annotations

import atexit
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gmpy2 import mpz

MAGIC = b"FWPH"
OP_PING = 0
OP_COLUMN_SUMS = 1
OP_BUCKET_SUMS = 2
_REQUEST = struct.Struct("<4sBQ")
_RESPONSE = struct.Struct("<BQ")
_LENGTH = struct.Struct("<Q")


# ------------------------------------------------------------------ framing


def pack_fields(fields: Sequence[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(f)) + bytes(f) for f in fields)


def unpack_fields(payload: bytes | memoryview) -> list[memoryview]:
    view = memoryview(payload)
    fields = []
    offset = 0
    while offset < len(view):
        if offset + 8 > len(view):
            raise ValueError("truncated field header")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 8
        if offset + length > len(view):
            raise ValueError("truncated field")
        fields.append(view[offset : offset + length])
        offset += length
    return fields


def _u64(value: int) -> bytes:
    return _LENGTH.pack(value)


def _read_u64(field: memoryview) -> int:
    return _LENGTH.unpack(field)[0]


def ciphertexts_to_bytes(values: Sequence[mpz], width: int) -> bytes:
    return b"".join(v.to_bytes(width, "little") for v in values)


def ciphertexts_from_bytes(blob: memoryview, width: int) -> list[mpz]:
    return [mpz.from_bytes(blob[i : i + width], "little") for i in range(0, len(blob), width)]


def optional_ciphertexts_to_bytes(values: Sequence[mpz | None], width: int) -> bytes:
    # One presence byte per value: None (an empty product) is common and meaningful.
    return b"".join(b"\x00" if v is None else b"\x01" + v.to_bytes(width, "little") for v in values)


def optional_ciphertexts_from_bytes(blob: memoryview, width: int) -> list[mpz | None]:
    out: list[mpz | None] = []
    offset = 0
    while offset < len(blob):
        present = blob[offset]
        offset += 1
        if present:
            out.append(mpz.from_bytes(blob[offset : offset + width], "little"))
            offset += width
        else:
            out.append(None)
    return out


# ------------------------------------------------------------ child side


def _handle(op: int, fields: list[memoryview]) -> bytes:
    from engine.crypto import _paillier_kernels as kernels

    if op == OP_PING:
        return b"pong"
    modulus = mpz.from_bytes(fields[0], "little")
    width = _read_u64(fields[1])
    cts = ciphertexts_from_bytes(fields[2], width)
    n_cols = _read_u64(fields[4])
    if op == OP_COLUMN_SUMS:
        weights = np.frombuffer(fields[3], dtype="<u8").reshape(len(cts), n_cols)
        with_total = bool(_read_u64(fields[5]))
        columns, total = kernels.weighted_column_sums(cts, weights, with_total, modulus)
        return optional_ciphertexts_to_bytes([*columns, total], width)
    if op == OP_BUCKET_SUMS:
        ids = np.frombuffer(fields[3], dtype="<i8").reshape(len(cts), n_cols)
        n_buckets = _read_u64(fields[5])
        return optional_ciphertexts_to_bytes(kernels.bucket_tables(cts, ids, n_buckets, modulus), width)
    raise ValueError(f"unknown operation {op}")


def _read_exact(fd: int, count: int) -> bytes | None:
    buffer = bytearray(count)
    view = memoryview(buffer)
    got = 0
    while got < count:
        chunk = os.readv(fd, [view[got:]])
        if chunk == 0:
            return None
        got += chunk
    return bytes(buffer)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve() -> None:
    """The helper's main loop: answer requests on stdin until it closes."""
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    # Anything else that prints (a warning, a stray print) must not corrupt the protocol.
    os.dup2(2, 1)
    while True:
        header = _read_exact(in_fd, _REQUEST.size)
        if header is None:
            return
        magic, op, length = _REQUEST.unpack(header)
        if magic != MAGIC:
            return
        payload = _read_exact(in_fd, length) if length else b""
        if payload is None:
            return
        try:
            result, status = _handle(op, unpack_fields(payload)), 0
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which falls back
            result, status = f"{type(exc).__name__}: {exc}".encode(), 1
        _write_all(out_fd, _RESPONSE.pack(status, len(result)) + result)


# ----------------------------------------------------------- parent side


class HelperError(RuntimeError):
    """A helper process failed; the caller computes the work itself."""


class _Helper:
    def __init__(self) -> None:
        repo_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH", "")) if p)
        env["FEDWEB_CRYPTO_THREADS"] = "1"
        env["FEDWEB_PAILLIER_HELPERS"] = "0"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.crypto._paillier_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.busy = False

    def send(self, op: int, fields: Sequence[bytes]) -> None:
        payload = pack_fields(fields)
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(_REQUEST.pack(MAGIC, op, len(payload)))
            self.process.stdin.write(payload)
            self.process.stdin.flush()
        except (OSError, ValueError) as exc:
            raise HelperError(f"cannot reach the Paillier helper process: {exc}") from exc

    def receive(self) -> bytes:
        assert self.process.stdout is not None
        header = self.process.stdout.read(_RESPONSE.size)
        if len(header) != _RESPONSE.size:
            raise HelperError("the Paillier helper process exited")
        status, length = _RESPONSE.unpack(header)
        body = self.process.stdout.read(length)
        if len(body) != length:
            raise HelperError("the Paillier helper process exited mid-answer")
        if status:
            raise HelperError(body.decode("utf-8", "replace"))
        return body

    def close(self) -> None:
        try:
            if self.process.stdin:
                self.process.stdin.close()
            self.process.wait(timeout=2)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            self.process.kill()


_lock = threading.Lock()
_helpers: list[_Helper] = []
_disabled = False


def _enabled() -> bool:
    return not _disabled and os.environ.get("FEDWEB_PAILLIER_HELPERS", "1") != "0" and bool(sys.executable)


def acquire(count: int) -> list[_Helper]:
    """Up to ``count`` idle helpers (started on first use), marked busy."""
    global _disabled
    if count <= 0 or not _enabled():
        return []
    with _lock:
        while len(_helpers) < count:
            try:
                helper = _Helper()
            except OSError:
                _disabled = True
                return []
            try:
                helper.send(OP_PING, [])
                if helper.receive() != b"pong":
                    raise HelperError("unexpected answer from the Paillier helper process")
            except HelperError:
                helper.close()
                _disabled = True
                return []
            _helpers.append(helper)
        chosen = [h for h in _helpers if not h.busy][:count]
        for helper in chosen:
            helper.busy = True
        return chosen


def release(helpers: Sequence[_Helper], *, failed: bool = False) -> None:
    global _disabled
    with _lock:
        for helper in helpers:
            helper.busy = False
        if failed:
            _disabled = True
            for helper in _helpers:
                helper.close()
            _helpers.clear()


def warm_up(count: int) -> int:
    """Start ``count`` helpers now (instead of on first large job); returns how many run."""
    helpers = acquire(count)
    release(helpers)
    return len(helpers)


def run_split(
    n_rows: int,
    helpers: Sequence[_Helper],
    make_request: Callable[[int, int], tuple[int, list[bytes]]],
    decode: Callable[[bytes], Any],
    compute: Callable[[int, int], Any],
) -> list[Any]:
    """Split rows between this process (first range) and the helpers; partial results in row order.

    ``make_request(lo, hi)`` builds a helper request, ``decode`` parses its
    answer, ``compute(lo, hi)`` does the same work here. A helper that fails
    has its share recomputed locally.
    """
    from engine.crypto import _paillier_kernels as kernels

    ranges = kernels.spans(n_rows, len(helpers) + 1)
    sent = []
    failed = False
    try:
        for helper, (lo, hi) in zip(helpers, ranges[1:]):
            try:
                helper.send(*make_request(lo, hi))
                sent.append((helper, lo, hi))
            except HelperError:
                failed = True
                sent.append((None, lo, hi))
        # The helpers use the other cores: compute our share on this thread only.
        results = [kernels.run_inline(compute, ranges[0][0], ranges[0][1])]
        for helper, lo, hi in sent:
            answer = None
            if helper is not None:
                try:
                    answer = decode(helper.receive())
                except (HelperError, ValueError):
                    failed = True
            results.append(answer if answer is not None else compute(lo, hi))
    except BaseException:
        # An unread answer would be taken for the next job's: retire the helpers.
        failed = True
        raise
    finally:
        release(helpers, failed=failed)
    return results


@atexit.register
def _shutdown() -> None:
    with _lock:
        for helper in _helpers:
            helper.close()
        _helpers.clear()


def _forget_after_fork() -> None:
    # The child of a fork must not talk to its parent's helpers.
    global _helpers, _lock
    _helpers = []
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


if __name__ == "__main__":
    serve()
