"""Owner-side encryption (Paillier and Okamoto-Uchiyama): the arithmetic, and a worker process that runs it.

Imported as a module by :mod:`engine.crypto.owner` (the
in-process path), and run as a script (``python <this file>``) for the
worker processes, which is why it imports nothing but gmpy2 and the
standard library: a worker starts in ~0.1 s and never loads the engine.

Why processes: one encryption is ~82 multiplications modulo ``p**2`` /
``q**2`` of ~2.3 us each. Threads would have to hand the GIL over around
every one of them; measured with both parties of a job in one process, four
such threads spent more time in the kernel (GIL hand-offs) than computing.
Worker processes share nothing and use every core.

Pipe protocol (the worker only ever talks to the process that started it):
a request is ``op (1 byte) | length (8 bytes, big-endian) | payload``.

* ``op 1`` setup: ``len(p) (4) | p | len(q) (4) | q | exponent_bits (4) |
  window_bits (4)``, big-endian. The worker builds its own tables (with its
  own random ``y``) and answers ``b"ok"``.
* ``op 2`` encrypt: ``count (4) | width (4) | count plaintexts of width
  bytes`` (``m mod n``, big-endian); the answer is ``count`` ciphertexts of
  ``2 * key_bytes`` bytes each.
* ``op 3`` Okamoto-Uchiyama setup: ``p``, ``q``, ``G``, ``H`` (each ``len (4) |
  bytes``), then ``exponent_bits (4) | window_bits (4) | plaintext_bits (4)``.
  The worker tabulates ``H``, ``G`` and ``G**-1`` modulo ``p**2`` and ``q`` and
  answers ``b"ok"``; from then on ``op 2`` takes *signed* plaintexts, each
  ``width`` bytes: a sign byte (1: negative) and ``|m|``, and answers
  ciphertexts of ``key_bytes`` bytes (``G**m H**r mod n``).

Every answer is ``length (8 bytes) | payload``. End of input ends the worker.
The factors of ``n`` cross this pipe: it connects two processes of the same
party on the same machine, never the network.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import gmpy2
from gmpy2 import mpz

OP_SETUP = 1
OP_ENCRYPT = 2
OP_SETUP_OU = 3


@dataclass
class State:
    """The tables one encryptor needs: ``hs**(d * 2**(w i))`` modulo ``p**2`` and ``q**2``."""

    n: mpz
    p2: mpz
    q2: mpz
    p2_inverse: mpz
    exponent_bits: int
    window_bits: int
    table_p: list[list[mpz]]
    table_q: list[list[mpz]]

    @property
    def ciphertext_bytes(self) -> int:
        return 2 * ((self.n.bit_length() + 7) // 8)


def _row(base: mpz, modulus: mpz, size: int) -> list[mpz]:
    out = [mpz(1), base]
    acc = base
    for _ in range(size - 2):
        acc = acc * base % modulus
        out.append(acc)
    return out


def build_state(p: int, q: int, exponent_bits: int, window_bits: int) -> State:
    """Draw ``hs = (-y**2)**n mod n**2`` for a fresh secret ``y`` and tabulate its powers mod ``p**2``, ``q**2``."""
    p, q = mpz(p), mpz(q)
    n = p * q
    p2, q2 = p * p, q * q
    key_bytes = (n.bit_length() + 7) // 8
    while True:
        y = mpz.from_bytes(os.urandom(key_bytes + 16), "big") % n
        if y > 1 and gmpy2.gcd(y, n) == 1:
            break
    h = (-(y * y)) % n
    size = 1 << window_bits
    windows = -(-exponent_bits // window_bits)
    tables = []
    for modulus in (p2, q2):
        base = gmpy2.powmod(h, n, modulus)  # hs mod p^2 (resp. q^2)
        rows = []
        for _ in range(windows):
            rows.append(_row(base, modulus, size))
            base = gmpy2.powmod(base, size, modulus)
        tables.append(rows)
    return State(n, p2, q2, gmpy2.invert(p2, q2), exponent_bits, window_bits, tables[0], tables[1])


def encrypt(state: State, plaintexts: Sequence[int]) -> list[mpz]:
    """Ciphertexts ``(1 + m n) * hs**alpha mod n**2``, ``alpha`` uniform over ``exponent_bits`` bits, by CRT."""
    n, p2, q2, p2_inverse = state.n, state.p2, state.q2, state.p2_inverse
    w, mask = state.window_bits, (1 << state.window_bits) - 1
    nbytes = state.exponent_bits // 8
    randomness = os.urandom(nbytes * len(plaintexts))
    out = []
    for index, m in enumerate(plaintexts):
        alpha = int.from_bytes(randomness[index * nbytes : (index + 1) * nbytes], "little")
        gm = mpz(m) % n * n + 1  # g**m = 1 + m n (mod n^2)
        rp = gm % p2
        rq = gm % q2
        for row_p, row_q in zip(state.table_p, state.table_q):
            digit = alpha & mask
            alpha >>= w
            if digit:
                rp = rp * row_p[digit] % p2
                rq = rq * row_q[digit] % q2
        # CRT: the c with c = rp (mod p^2) and c = rq (mod q^2), in [0, n^2).
        out.append(rp + p2 * ((rq - rp) * p2_inverse % q2))
    return out


# ------------------------------------------------------------ Okamoto-Uchiyama


@dataclass
class OUState:
    """Window tables of ``H``, ``G`` and ``G**-1`` modulo ``p**2`` and ``q``, for ``G**m H**r mod n``.

    ``r`` is uniform over ``exponent_bits`` bits, as in the public key's own
    encryption (:meth:`engine.crypto.ou.PublicKey.encrypt`), so the
    ciphertexts have the same distribution; ``|m|`` may have up to
    ``plaintext_bits`` bits.
    """

    n: mpz
    p2: mpz
    q: mpz
    p2_inverse: mpz
    exponent_bits: int
    window_bits: int
    plaintext_bits: int
    h: tuple[list[list[mpz]], list[list[mpz]]]
    g: tuple[list[list[mpz]], list[list[mpz]]]
    g_inverse: tuple[list[list[mpz]], list[list[mpz]]]

    @property
    def ciphertext_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8


def _windows(base: mpz, modulus: mpz, bits: int, window_bits: int) -> list[list[mpz]]:
    """Rows ``i``: ``base ** (d * 2**(window_bits * i))`` for every digit ``d``, enough rows for ``bits`` bits."""
    size = 1 << window_bits
    rows = []
    for _ in range(-(-bits // window_bits)):
        rows.append(_row(base, modulus, size))
        base = gmpy2.powmod(base, size, modulus)
    return rows


def build_ou_state(p: int, q: int, g: int, h: int, exponent_bits: int, window_bits: int,
                   plaintext_bits: int) -> OUState:
    p, q, g, h = mpz(p), mpz(q), mpz(g), mpz(h)
    p2 = p * p
    n = p2 * q
    g_inverse = gmpy2.invert(g, n)

    def tables(base: mpz, bits: int) -> tuple[list[list[mpz]], list[list[mpz]]]:
        return _windows(base % p2, p2, bits, window_bits), _windows(base % q, q, bits, window_bits)

    return OUState(n, p2, q, gmpy2.invert(p2, q), exponent_bits, window_bits, plaintext_bits,
                   tables(h, exponent_bits), tables(g, plaintext_bits), tables(g_inverse, plaintext_bits))


def encrypt_ou(state: OUState, plaintexts: Sequence[int]) -> list[mpz]:
    """``G**m H**r mod n`` for signed ``m`` (``|m| < 2**plaintext_bits``), by CRT over ``p**2`` and ``q``."""
    p2, q, p2_inverse = state.p2, state.q, state.p2_inverse
    w, mask = state.window_bits, (1 << state.window_bits) - 1
    nbytes = state.exponent_bits // 8
    randomness = os.urandom(nbytes * len(plaintexts))
    h_p, h_q = state.h
    out = []
    for index, m in enumerate(plaintexts):
        r = int.from_bytes(randomness[index * nbytes : (index + 1) * nbytes], "little")
        cp, cq = mpz(1), mpz(1)
        for row_p, row_q in zip(h_p, h_q):
            digit = r & mask
            r >>= w
            if digit:
                cp = cp * row_p[digit] % p2
                cq = cq * row_q[digit] % q
        g_p, g_q = state.g if m >= 0 else state.g_inverse
        magnitude = abs(int(m))
        for row_p, row_q in zip(g_p, g_q):
            if not magnitude:
                break
            digit = magnitude & mask
            magnitude >>= w
            if digit:
                cp = cp * row_p[digit] % p2
                cq = cq * row_q[digit] % q
        # CRT: the c with c = cp (mod p^2) and c = cq (mod q), in [0, n).
        out.append(cp + p2 * ((cq - cp) * p2_inverse % q))
    return out


def _fields(payload: bytes, count: int) -> tuple[list[int], int]:
    """``count`` length-prefixed big-endian integers from the start of ``payload``, and where they end."""
    at, fields = 0, []
    for _ in range(count):
        size = int.from_bytes(payload[at : at + 4], "big")
        fields.append(int.from_bytes(payload[at + 4 : at + 4 + size], "big"))
        at += 4 + size
    return fields, at


# ------------------------------------------------------------------- the worker


def _read_exact(stream, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _answer(stream, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(8, "big"))
    stream.write(payload)
    stream.flush()


def serve() -> None:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    state: State | OUState | None = None
    while True:
        header = _read_exact(source, 9)
        if header is None:
            return
        op, length = header[0], int.from_bytes(header[1:], "big")
        payload = _read_exact(source, length)
        if payload is None:
            return
        if op == OP_SETUP:
            fields, at = _fields(payload, 2)
            exponent_bits = int.from_bytes(payload[at : at + 4], "big")
            window_bits = int.from_bytes(payload[at + 4 : at + 8], "big")
            state = build_state(fields[0], fields[1], exponent_bits, window_bits)
            _answer(sink, b"ok")
        elif op == OP_SETUP_OU:
            fields, at = _fields(payload, 4)
            exponent_bits, window_bits, plaintext_bits = (
                int.from_bytes(payload[at + 4 * k : at + 4 * k + 4], "big") for k in range(3))
            state = build_ou_state(*fields, exponent_bits, window_bits, plaintext_bits)
            _answer(sink, b"ok")
        elif op == OP_ENCRYPT and state is not None:
            count = int.from_bytes(payload[:4], "big")
            width = int.from_bytes(payload[4:8], "big")
            body = memoryview(payload)[8:]
            size = state.ciphertext_bytes
            if isinstance(state, OUState):
                signed = []
                for i in range(count):
                    item = body[i * width : (i + 1) * width]
                    magnitude = int.from_bytes(item[1:], "big")
                    signed.append(-magnitude if item[0] else magnitude)
                ciphertexts = encrypt_ou(state, signed)
            else:
                ciphertexts = encrypt(state, [int.from_bytes(body[i * width : (i + 1) * width], "big")
                                              for i in range(count)])
            _answer(sink, b"".join(c.to_bytes(size, "big") for c in ciphertexts))
        else:
            return  # unknown request: stop; the parent falls back to encrypting itself


if __name__ == "__main__":
    serve()
