"""ristretto255 group helpers (RFC 9496) over libsodium, via rbcl.

ristretto255 is a prime-order group built on Curve25519: every 32-byte
encoding that decodes is a group element of prime order
``L = 2**252 + 27742317777372353535851937790883648493``, so there are no
cofactor or small-subgroup pitfalls for protocols such as ECDH-PSI.

What this module provides:

* :func:`hash_to_group` -- the RFC 9380 ``hash_to_ristretto255`` encoding:
  ``expand_message_xmd`` with SHA-512 to 64 uniform bytes, then libsodium's
  ``crypto_core_ristretto255_from_hash`` (the RFC 9496 one-way map).
  This is the same hash-to-group as the RFC 9497 ``ristretto255-SHA512``
  OPRF suite, and the tests check it against that RFC's vectors.
* :func:`random_scalar`, :func:`scalar_mult`, :func:`is_valid_element`.
* Batch versions for large sets: :func:`hash_to_group_many` (optionally
  multiplying each hash by a scalar in the same pass) and
  :func:`scalar_mult_many`. They take and return ``numpy`` ``(n, 32)`` uint8
  arrays and run on several threads.

Why threads and not processes: rbcl calls libsodium through ``ctypes``, which
releases the GIL for the duration of each foreign call. A scalar
multiplication takes ~57 us in C against ~1 us of Python around it, so two
threads give ~1.95x on two cores (measured: 17.3k -> 34.3k mults/s), with no
pickling, no process start-up, and no extra copy of rbcl's embedded libsodium
(rbcl writes its shared library to a fresh temporary file in every process
that imports it). The batch functions call the libsodium symbols directly
with pointer arithmetic into numpy buffers, so there is no per-element
allocation on the hot path.

Thread count: ``threads=None`` means the ``FEDWEB_CRYPTO_THREADS`` environment
variable if set, else the number of CPUs this process may run on.

The same group through the X25519 ladder
========================================

libsodium's ``crypto_scalarmult_ristretto255`` is generic C (~57 us per
multiplication here); its X25519 (``crypto_scalarmult_curve25519``) is an
optimised Montgomery ladder (~35 us). Both can compute in the ristretto255
group:

* a ristretto255 element with canonical encoding ``s`` decodes to an Edwards
  point ``P = P_L + T`` (``P_L`` in the prime-order subgroup, ``T`` 4-torsion)
  whose Montgomery u-coordinate is ``1 / s**2 mod p`` (from RFC 9496's
  decoding, ``y = (1 - s**2) / (1 + s**2)`` and ``u = (1 + y) / (1 - y)``);
* X25519 clamps its scalar ``k`` to a multiple of 8, so
  ``X25519(k, u(P)) = u(k * P_L)``: the torsion part vanishes and the result
  is the u-coordinate of ``(k mod L) * element``, in the prime-order subgroup;
* so ``x25519_many(b, hash_to_montgomery_many(X, a))`` is the u-coordinate of
  ``(a*b) * H(x)`` -- commutative, and equal exactly when the group elements are
  equal up to sign (``u(Q) = u(-Q)``; a collision ``H(x) = -H(y)`` is as unlikely
  as ``H(x) = H(y)``).

The hash is unchanged (RFC 9380 ``hash_to_ristretto255``), the group is the
same prime-order group, only the representation of intermediate values (an
x-coordinate instead of a ristretto encoding) and the multiplication routine
differ. The tests check this path against ``crypto_scalarmult_ristretto255``.
What is lost is validation: X25519 accepts any 32 bytes (bit 255 is ignored,
values >= p are reduced), so a dishonest peer can send u-coordinates that are
not in the group. What each such input gets back, and why it is harmless:

* a low-order point (u = 0, 1, p - 1, and the two u of order 8): the
  result is zero, libsodium says so, and the party refuses the whole message
  (:class:`CryptoError`);
* a curve point with a torsion component, ``u(P + T)``: the clamped scalar is
  a multiple of 8, so the reply is the reply to ``u(P)`` -- the secret modulo
  8 is never exposed, which is the small-subgroup attack that ristretto's
  validation exists to stop;
* a point on the quadratic twist (order ``4 * q``, ``q`` a 253-bit prime): the
  reply is a twist point, which can equal no doubly blinded id of an honest
  party, and getting the secret from it is a discrete logarithm modulo ``q``
  (Curve25519's twist security, the reason X25519 needs no point check).

So a peer learns nothing from crafted inputs that it could not learn by
sending valid group elements, which both arithmetics answer alike. Secrets are
fresh for every run. The tests exercise all three cases.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import gmpy2
import numpy as np
import rbcl
from rbcl.rbcl import _sodium as _rbcl_library

from engine.errors import CryptoError

__all__ = [
    "ELEMENT_BYTES",
    "SCALAR_BYTES",
    "ORDER",
    "random_scalar",
    "expand_message_xmd_sha512",
    "hash_to_group",
    "hash_to_group_many",
    "scalar_mult",
    "scalar_mult_many",
    "is_valid_element",
    "default_threads",
    "FIELD_PRIME",
    "random_x25519_scalar",
    "ristretto_to_montgomery",
    "x25519",
    "hash_to_montgomery_many",
    "x25519_many",
]

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
ORDER = 2**252 + 27742317777372353535851937790883648493
"""The prime order L of the ristretto255 group."""
FIELD_PRIME = 2**255 - 19
"""The prime p of Curve25519's base field."""

# A second handle on the library rbcl already loaded (dlopen returns the same
# one), so that setting argtypes here for pointer arithmetic does not change
# how rbcl's own wrappers call these symbols.
_lib = ctypes.CDLL(_rbcl_library._name)
_c_scalarmult = _lib.crypto_scalarmult_ristretto255
_c_scalarmult.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_c_scalarmult.restype = ctypes.c_int
_c_from_hash = _lib.crypto_core_ristretto255_from_hash
_c_from_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_c_from_hash.restype = ctypes.c_int
_c_x25519 = _lib.crypto_scalarmult_curve25519
_c_x25519.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_c_x25519.restype = ctypes.c_int

# rbcl writes its embedded libsodium to a new temporary file in every process
# that imports it and never deletes it (2.7 MB per process: a runner, a job,
# a benchmark party...). Once loaded, the mapping stays valid without the
# file, so remove it; the handle above was opened first, as it needs the path.
try:
    os.unlink(_rbcl_library._name)
except OSError:
    pass  # already gone, or a platform that cannot delete a loaded library

# Below this many elements, thread start-up costs more than it saves.
_MIN_PARALLEL = 512
# Work is handed to threads in slices of this many elements, so a thread that
# is descheduled (e.g. the other party's process wants the core) delays only
# a small slice, not a whole half of the batch.
_SLICE = 2048


def default_threads() -> int:
    """Threads the batch functions use when not told: env override or usable CPUs."""
    configured = os.environ.get("FEDWEB_CRYPTO_THREADS")
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise CryptoError(
                f"FEDWEB_CRYPTO_THREADS must be a positive integer, got {configured!r}"
            ) from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- single values


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar mod L (32 bytes, little-endian)."""
    while True:
        s = rbcl.crypto_core_ristretto255_scalar_random()
        if any(s):
            return s


def expand_message_xmd_sha512(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 ``expand_message_xmd`` instantiated with SHA-512."""
    if not 1 <= len(dst) <= 255:
        raise CryptoError("domain separation tag must be 1 to 255 bytes")
    ell = -(-len_in_bytes // 64)
    if not 1 <= len_in_bytes <= 65535 or ell > 255:
        raise CryptoError(f"cannot expand to {len_in_bytes} bytes")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(128) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha512(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:len_in_bytes]


def hash_to_group(msg: bytes, dst: bytes) -> bytes:
    """RFC 9380 ``hash_to_ristretto255(msg)`` with domain separation tag ``dst``."""
    return rbcl.crypto_core_ristretto255_from_hash(expand_message_xmd_sha512(msg, dst, 64))


def is_valid_element(element: bytes) -> bool:
    """Whether ``element`` is the canonical encoding of a ristretto255 element."""
    return (
        isinstance(element, bytes)
        and len(element) == ELEMENT_BYTES
        and bool(rbcl.crypto_core_ristretto255_is_valid_point(element))
    )


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; raises :class:`CryptoError` for an invalid element."""
    _check_scalar(scalar)
    if not isinstance(element, bytes) or len(element) != ELEMENT_BYTES:
        raise CryptoError(f"a group element is {ELEMENT_BYTES} bytes")
    out = ctypes.create_string_buffer(ELEMENT_BYTES)
    if _c_scalarmult(ctypes.addressof(out), scalar, element) != 0:
        raise CryptoError("not a valid ristretto255 element (or the product is the identity)")
    return out.raw


# ---------------------------------------------------------------------- batches


def hash_to_group_many(
    messages: Sequence[bytes],
    dst: bytes,
    *,
    scalar: bytes | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Hash every message to the group, optionally multiplying by ``scalar``.

    Returns an ``(len(messages), 32)`` uint8 array whose row ``i`` is
    ``hash_to_group(messages[i], dst)`` (times ``scalar`` when given).
    Doing both in one pass saves a round trip through memory and Python.
    """
    if not 1 <= len(dst) <= 255:
        raise CryptoError("domain separation tag must be 1 to 255 bytes")
    if scalar is not None:
        _check_scalar(scalar)
    n = len(messages)
    out = np.empty((n, ELEMENT_BYTES), dtype=np.uint8)
    if n == 0:
        return out
    out_addr = out.ctypes.data

    # expand_message_xmd for a 64-byte output is two SHA-512 calls; the
    # constant prefix (128 zero bytes) and suffixes are prepared once.
    dst_prime = dst + bytes([len(dst)])
    prefix_state = hashlib.sha512(bytes(128))
    tail0 = (64).to_bytes(2, "big") + b"\x00" + dst_prime
    tail1 = b"\x01" + dst_prime
    sha512 = hashlib.sha512

    def work(start: int, stop: int) -> int:
        failures = 0
        tmp = ctypes.create_string_buffer(ELEMENT_BYTES)
        tmp_addr = ctypes.addressof(tmp)
        base = prefix_state.copy()  # one per slice: never share a hash object across threads
        for i in range(start, stop):
            h = base.copy()
            h.update(messages[i])
            h.update(tail0)
            uniform = sha512(h.digest() + tail1).digest()
            if scalar is None:
                _c_from_hash(out_addr + ELEMENT_BYTES * i, uniform)
            else:
                _c_from_hash(tmp_addr, uniform)
                if _c_scalarmult(out_addr + ELEMENT_BYTES * i, scalar, tmp_addr) != 0:
                    failures += 1
        return failures

    if _run_sliced(n, work, threads):
        # Only possible if a hash lands on the identity (probability ~2**-252).
        raise CryptoError("hash_to_group produced the identity element")
    return out


def scalar_mult_many(
    scalar: bytes, elements: np.ndarray, *, threads: int | None = None
) -> np.ndarray:
    """Multiply every row of an ``(n, 32)`` uint8 array of elements by ``scalar``.

    Elements usually come from another party, so each is validated (libsodium
    rejects non-canonical encodings and the identity); a :class:`CryptoError`
    reports how many were invalid.
    """
    _check_scalar(scalar)
    elements = np.ascontiguousarray(elements, dtype=np.uint8)
    if elements.ndim != 2 or elements.shape[1] != ELEMENT_BYTES:
        raise CryptoError(
            f"expected an (n, {ELEMENT_BYTES}) uint8 array of elements, got shape {elements.shape}"
        )
    n = elements.shape[0]
    out = np.empty_like(elements)
    if n == 0:
        return out
    in_addr = elements.ctypes.data
    out_addr = out.ctypes.data

    def work(start: int, stop: int) -> int:
        failures = 0
        mult = _c_scalarmult
        for offset in range(ELEMENT_BYTES * start, ELEMENT_BYTES * stop, ELEMENT_BYTES):
            if mult(out_addr + offset, scalar, in_addr + offset) != 0:
                failures += 1
        return failures

    failures = _run_sliced(n, work, threads)
    if failures:
        raise CryptoError(f"{failures} of {n} values are not valid ristretto255 elements")
    return out


# ------------------------------------------------- the X25519 representation


def random_x25519_scalar() -> bytes:
    """A random X25519 secret (32 bytes; libsodium clamps it on use)."""
    return os.urandom(SCALAR_BYTES)


def ristretto_to_montgomery(element: bytes) -> bytes:
    """The Montgomery u-coordinate ``1/s**2 mod p`` of a ristretto255 element's encoding ``s``.

    Feeding it to :func:`x25519` multiplies the element (see module docs).
    """
    if not is_valid_element(element):
        raise CryptoError("not a valid ristretto255 element")
    s = gmpy2.mpz(int.from_bytes(element, "little"))
    if not s:
        raise CryptoError("the identity has no Montgomery u-coordinate")
    return gmpy2.invert(s * s, FIELD_PRIME).to_bytes(ELEMENT_BYTES, "little")


def x25519(scalar: bytes, u: bytes) -> bytes:
    """``X25519(scalar, u)``: raises :class:`CryptoError` for a low-order ``u``."""
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES:
        raise CryptoError(f"a scalar is {SCALAR_BYTES} bytes")
    if not isinstance(u, bytes) or len(u) != ELEMENT_BYTES:
        raise CryptoError(f"a u-coordinate is {ELEMENT_BYTES} bytes")
    out = ctypes.create_string_buffer(ELEMENT_BYTES)
    if _c_x25519(ctypes.addressof(out), scalar, u) != 0:
        raise CryptoError("low-order point (the X25519 result is zero)")
    return out.raw


def hash_to_montgomery_many(
    messages: Sequence[bytes],
    dst: bytes,
    scalar: bytes,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """``X25519(scalar, u(hash_to_group(m, dst)))`` for every message.

    Row ``i`` is the u-coordinate of ``(clamp(scalar) mod L) * H(messages[i])``.
    """
    if not 1 <= len(dst) <= 255:
        raise CryptoError("domain separation tag must be 1 to 255 bytes")
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES:
        raise CryptoError(f"a scalar is {SCALAR_BYTES} bytes")
    n = len(messages)
    out = np.empty((n, ELEMENT_BYTES), dtype=np.uint8)
    if n == 0:
        return out
    out_addr = out.ctypes.data
    dst_prime = dst + bytes([len(dst)])
    prefix_state = hashlib.sha512(bytes(128))
    tail0 = (64).to_bytes(2, "big") + b"\x00" + dst_prime
    tail1 = b"\x01" + dst_prime
    sha512 = hashlib.sha512
    mpz, invert, p = gmpy2.mpz, gmpy2.invert, FIELD_PRIME

    def work(start: int, stop: int) -> int:
        failures = 0
        point = ctypes.create_string_buffer(ELEMENT_BYTES)
        point_addr = ctypes.addressof(point)
        base = prefix_state.copy()
        for i in range(start, stop):
            h = base.copy()
            h.update(messages[i])
            h.update(tail0)
            _c_from_hash(point_addr, sha512(h.digest() + tail1).digest())
            s = mpz(int.from_bytes(point.raw, "little"))
            if not s:
                failures += 1
                continue
            u = invert(s * s, p).to_bytes(ELEMENT_BYTES, "little")
            if _c_x25519(out_addr + ELEMENT_BYTES * i, scalar, u) != 0:
                failures += 1
        return failures

    if _run_sliced(n, work, threads):
        raise CryptoError("hash_to_group produced the identity element")
    return out


def x25519_many(scalar: bytes, us: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """``X25519(scalar, u)`` for every row of an ``(n, 32)`` uint8 array.

    Raises :class:`CryptoError` counting the low-order inputs, if any.
    """
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES:
        raise CryptoError(f"a scalar is {SCALAR_BYTES} bytes")
    us = np.ascontiguousarray(us, dtype=np.uint8)
    if us.ndim != 2 or us.shape[1] != ELEMENT_BYTES:
        raise CryptoError(f"expected an (n, {ELEMENT_BYTES}) uint8 array, got shape {us.shape}")
    n = us.shape[0]
    out = np.empty_like(us)
    if n == 0:
        return out
    in_addr, out_addr = us.ctypes.data, out.ctypes.data

    def work(start: int, stop: int) -> int:
        failures = 0
        mult = _c_x25519
        for offset in range(ELEMENT_BYTES * start, ELEMENT_BYTES * stop, ELEMENT_BYTES):
            if mult(out_addr + offset, scalar, in_addr + offset) != 0:
                failures += 1
        return failures

    failures = _run_sliced(n, work, threads)
    if failures:
        raise CryptoError(f"{failures} of {n} values are low-order points")
    return out


# ---------------------------------------------------------------------- helpers


def _check_scalar(scalar: bytes) -> None:
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_BYTES:
        raise CryptoError(f"a scalar is {SCALAR_BYTES} bytes")
    if int.from_bytes(scalar, "little") >= ORDER or not any(scalar):
        raise CryptoError("scalar must be reduced mod the group order and non-zero")


def _run_sliced(n: int, work: Callable[[int, int], int], threads: int | None) -> int:
    """Run ``work(start, stop)`` over ``range(n)`` in slices; sum the results."""
    threads = default_threads() if threads is None else max(1, threads)
    if threads == 1 or n < _MIN_PARALLEL:
        return work(0, n)
    slice_len = max(64, min(_SLICE, -(-n // threads)))
    bounds = [(start, min(n, start + slice_len)) for start in range(0, n, slice_len)]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ecc") as pool:
        return sum(pool.map(lambda b: work(*b), bounds))
