"""Okamoto-Uchiyama encryption for the federated engine: the second additive scheme.

Same interface as :mod:`engine.crypto.paillier` (keys here, arrays, packing
and errors shared in :mod:`engine.crypto.he`), on a smaller group: ciphertexts
live modulo ``n = p**2 * q`` instead of ``n**2``, so every homomorphic
operation multiplies half-size numbers and a ciphertext takes half the bytes
on the wire. The price is a plaintext space of ``p`` (a third of ``n``'s
bits) instead of ``n``. Design, key size and measured figures:
``docs/paillier.md`` (section "Okamoto-Uchiyama").

Quick tour::

    from engine.crypto import ou

    public, private = ou.generate_keypair()       # 2048-bit n = p**2 * q
    d = public.encrypt(gradients)                 # EncryptedArray, as with Paillier
    hist = d.bucket_sum(bins, n_buckets=32)
    private.decrypt(hist.rerandomize())

The scheme (with the acceleration of Coron, Naccache and Paillier, as HEU)
==========================================================================
* Keys: primes ``p`` and ``q`` of about ``bits / 3`` bits each, ``n = p**2 q``,
  ``p - 1 = t * u`` with ``t`` a prime of ``2 * kappa`` bits (224 for 2048-bit
  keys, 256 for 3072; ``kappa`` the security level). Public: ``n``,
  ``G = g**u mod n`` with ``g**(p-1)`` of order ``p`` modulo ``p**2``, and
  ``H = g'**(n*u) mod n``. Secret: ``p``, ``q``, ``t``.
* Encryption of a signed integer ``m``: ``c = G**m * H**r mod n``, ``G**m``
  read off fixed-base tables for ``G`` and ``G**-1`` (one multiplication per
  byte of ``|m|``, rows added as wider plaintexts appear) and ``H**r`` off a
  table for ``H`` with ``r`` uniform over ``4 * kappa`` bits (448 for 2048-bit
  keys; the random bytes *are* ``r``'s digits, as for Paillier's ``hs**alpha``).
* Decryption: ``c**t mod p**2`` removes ``H**r`` (``H`` has order ``t``
  modulo ``p**2``) and leaves ``(G**t)**m``, where ``G**t = g**(p-1)`` has
  order ``p``: ``m = L(c**t mod p**2) / L(G**t mod p**2) mod p`` with
  ``L(x) = (x - 1) / p``. One exponentiation by the 224-bit ``t`` modulo the
  1366-bit ``p**2``.
* The plaintext space is ``p``, which is secret; ``max_int`` (the bound every
  overflow check uses) is ``2**(k-1) // 3`` where ``k = ceil(bits / 3)`` is
  ``p``'s public bit length and ``p > 2**(k-1)``: about 680 bits for a 2048-bit
  key, against 2046 for Paillier. ``decrypt`` accepts a residue only within the
  array's tracked bound of 0 modulo ``p``, exactly like Paillier's
  single-prime path; that check is also what keeps the factorisation safe
  (see the security notes).

Security notes (details in docs/paillier.md)
============================================
* Key size: 2048 bits by default and at least (``insecure_allow_small_keys``
  for tests), for the same 112-bit security as 2048-bit Paillier: the number
  field sieve does not exploit ``p**2 q``, and its 683-bit factors are out of
  reach of ECM and of the lattice methods for ``p**r q`` (which need large
  ``r``). 3072 bits give 128.
* A chosen-ciphertext attack is a total break of OU: the decryption of
  ``G**M`` for ``M > p`` is ``M mod p``, and ``gcd(M - (M mod p), n)`` is
  ``p``. The engine never returns such a residue: ``decrypt`` raises unless the
  residue lies within the array's bound, which a party without ``p`` hits with
  probability ``2 * bound / p``. Never decrypt a partner's ciphertext and
  hand back the raw residue.
* Results of homomorphic operations are not re-randomised: call
  :meth:`EncryptedArray.rerandomize` before sending a result to the key
  owner (the default uses ``H**r`` with ``r`` uniform over 128 bits more than
  a public bound on ``H``'s order, ~1,040 bits for 2048-bit keys, read off the
  fixed-base table for ``H``: see ``uniform_exponent_bits``).
* Imported public keys must have an odd ``n`` of an allowed size, not a
  perfect power, free of factors below 10,000, and ``G``, ``H`` units modulo
  ``n``; imported ciphertexts must lie in ``[1, n)``. Nothing is pickled.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import gmpy2
from gmpy2 import mpz

from engine.crypto import _paillier_kernels as kernels
from engine.crypto.he import (
    DEFAULT_FRAC_BITS,
    DEFAULT_MATVEC_BITS,
    DEFAULT_MUL_BITS,
    SCHEME_API,
    SMALL_PRIMES_PRODUCT,
    EncryptedArray,
    HEPrivateKey,
    HEPublicKey,
    HomomorphicError,
    InvalidCiphertextError,
    KeyMismatchError,
    KeySizeError,
    PlaintextOverflowError,
    SlotPacker,
    bucket_sum,
    centred,
    check_key_bits,
    concatenate,
    random_prime,
    random_unit,
    security_bits,
)

__all__ = [*SCHEME_API]

DEFAULT_KEY_BITS = 2048
MIN_SECURE_KEY_BITS = 2048
# Even with insecure_allow_small_keys: below this the order-t subgroup and the
# plaintext space stop leaving room for the encodings.
_MIN_TEST_KEY_BITS = 768
_MAGIC = b"OU1"

set_thread_count = kernels.set_thread_count
thread_count = kernels.thread_count


def warm_up() -> int:
    """Start the helper processes used by large bucket sums and ``X.T @ enc`` now (see paillier.warm_up)."""
    return kernels.warm_up_helpers()


def prime_bits(bits: int) -> int:
    """Bit length of ``p`` (and, within a bit, ``q``) for a ``bits``-bit modulus: ``ceil(bits / 3)``."""
    return (bits + 2) // 3


def subgroup_bits(bits: int) -> int:
    """Bit length of the prime ``t`` dividing ``p - 1``: twice the security level."""
    return 2 * security_bits(bits)


def _check_key_bits(bits: int, insecure_allow_small_keys: bool) -> None:
    check_key_bits(bits, MIN_SECURE_KEY_BITS, _MIN_TEST_KEY_BITS, insecure_allow_small_keys, "Okamoto-Uchiyama")


class _FixedBase:
    """Fixed-base table rows ``base**(j * 256**i)``, grown on demand (rows are ~64 KB each for 2048 bits)."""

    def __init__(self, base: mpz, modulus: mpz):
        self.base, self.modulus = base, modulus
        self.rows: list[list[mpz]] = []
        self._lock = threading.Lock()

    def at_least(self, count: int) -> list[list[mpz]]:
        if len(self.rows) >= count:
            return self.rows
        with self._lock:
            if len(self.rows) < count:
                start = self.rows[-1][1] if self.rows else None
                # The next row's base is the last row's base to the 256th power.
                base = self.base if start is None else gmpy2.powmod(start, 256, self.modulus)
                extra = kernels.fixed_base_table(base, count - len(self.rows), self.modulus)
                self.rows = self.rows + extra
            return self.rows


def _encrypt_chunk(
    integers: Sequence[int], n: mpz, g: list[list[mpz]], g_inv: list[list[mpz]], h: list[list[mpz]] | None
) -> list[mpz]:
    """``G**m * H**r mod n`` for signed ``m`` (``h=None``: no randomness, ``G**m`` alone)."""
    rows = len(h) if h is not None else 0
    randomness = os.urandom(rows * len(integers))
    out = []
    for i, m in enumerate(integers):
        magnitude = abs(int(m))
        table = g if m >= 0 else g_inv
        acc = kernels.table_product(table, magnitude.to_bytes(len(table), "little"), n) if magnitude else None
        if h is not None:
            mask = kernels.table_product(h, randomness[i * rows : (i + 1) * rows], n)
            if mask is not None:
                acc = mask if acc is None else acc * mask % n
        out.append(kernels.ONE if acc is None else acc)
    return out


class PublicKey(HEPublicKey):
    """An Okamoto-Uchiyama public key ``(n, G, H)``.

    Export with :meth:`to_bytes`, import with :meth:`from_bytes` (both
    fixed-width, no pickle). The fixed-base tables are built by each object
    on first use; nothing random is exported.
    """

    scheme_name = "ou"
    modulus_text = "n"

    def __init__(self, n: int, g: int, h: int, *, insecure_allow_small_keys: bool = False):
        n, g, h = mpz(n), mpz(g), mpz(h)
        bits = n.bit_length()
        _check_key_bits(bits, insecure_allow_small_keys)
        if n % 2 == 0 or gmpy2.is_power(n) or gmpy2.gcd(n, SMALL_PRIMES_PRODUCT) != 1:
            raise KeySizeError("not a valid Okamoto-Uchiyama modulus (even, a perfect power, or has a small factor)")
        for name, value in (("G", g), ("H", h)):
            if not 1 < value < n or gmpy2.gcd(value, n) != 1:
                raise KeySizeError(f"not a valid Okamoto-Uchiyama key: {name} is not a unit modulo n")
        self.n: mpz = n
        self.g: mpz = g
        self.h: mpz = h
        self.ciphertext_modulus: mpz = n
        self.bits: int = bits
        # p > 2**(k-1) for every key this module generates; a third of that, as Paillier's n // 3.
        self.max_int: int = (1 << (prime_bits(bits) - 1)) // 3
        self._g_table = _FixedBase(g, n)
        self._g_inv_table: _FixedBase | None = None
        self._h_table = _FixedBase(h, n)

    # -- identity and export

    def _identity(self) -> tuple:
        return (self.n, self.g, self.h)

    def to_bytes(self) -> bytes:
        """``b"OU1"`` then ``n``, ``G`` and ``H``, each ``key_bytes`` big-endian bytes."""
        width = self.key_bytes
        return _MAGIC + b"".join(v.to_bytes(width, "big") for v in (self.n, self.g, self.h))

    @classmethod
    def from_bytes(cls, data: bytes, *, insecure_allow_small_keys: bool = False) -> PublicKey:
        body = bytes(data)
        if not body.startswith(_MAGIC) or (len(body) - len(_MAGIC)) % 3 or len(body) == len(_MAGIC):
            raise KeySizeError("not an exported Okamoto-Uchiyama public key (wrong header or length)")
        body = body[len(_MAGIC) :]
        width = len(body) // 3
        n, g, h = (int.from_bytes(body[i * width : (i + 1) * width], "big") for i in range(3))
        if (n.bit_length() + 7) // 8 != width:
            raise KeySizeError("an exported Okamoto-Uchiyama key's fields do not match its modulus width")
        return cls(n, g, h, insecure_allow_small_keys=insecure_allow_small_keys)

    # -- encryption

    @property
    def short_exponent_bits(self) -> int:
        """Bit length of the randomness exponent ``r`` (4 x security level, as Paillier's)."""
        return 4 * security_bits(self.bits)

    def _tables(self, integers: Sequence[int]) -> tuple[list[list[mpz]], list[list[mpz]]]:
        """Tables for ``G`` and ``G**-1`` wide enough for every ``|m|`` here."""
        widest = max((abs(int(k)).bit_length() for k in integers), default=0)
        rows = max(1, (widest + 7) // 8)
        if self._g_inv_table is None:
            self._g_inv_table = _FixedBase(gmpy2.invert(self.g, self.n), self.n)
        return self._g_table.at_least(rows), self._g_inv_table.at_least(rows)

    def _encrypt_integers(self, integers: Sequence[int]) -> list[mpz]:
        """Ciphertexts of signed integers already checked against ``max_int``."""
        g, g_inv = self._tables(integers)
        h = self._h_table.at_least(self.short_exponent_bits // 8)
        return kernels.map_chunks(_encrypt_chunk, list(integers), self.n, g, g_inv, h, min_chunk=8)

    def _plaintext_factors(self, integers: Sequence[int]) -> list[mpz]:
        # G**k without randomness: one multiplication per byte of |k|.
        g, g_inv = self._tables(integers)
        return kernels.map_chunks(_encrypt_chunk, list(integers), self.n, g, g_inv, None, min_chunk=8)

    @property
    def uniform_exponent_bits(self) -> int:
        """Bits of the exponent that makes ``H**r`` statistically uniform in ``<H>`` (2**-128 away).

        ``H`` has order ``t`` modulo ``p**2`` and an order dividing ``q - 1`` modulo ``q``, so
        ``ord(H) < 2**(2 kappa) * q``, and ``q < n / p**2 < 2**(bits - 2 (k - 1))`` with ``k`` the
        public bit length of ``p``. An exponent uniform over 128 more bits than that bound is
        within ``2**-128`` of uniform modulo ``ord(H)``: about 1,040 bits for a 2048-bit key,
        instead of the ``bits + 128`` a bound on ``n`` alone would ask.
        """
        q_bits = self.bits - 2 * (prime_bits(self.bits) - 1)
        return subgroup_bits(self.bits) + q_bits + 128

    def _uniform_zeros(self, count: int) -> list[mpz]:
        # H**r off the fixed-base table for H, with r uniform over uniform_exponent_bits: the
        # same kernel as encryption, with a longer exponent (the random bytes are r's digits).
        h = self._h_table.at_least((self.uniform_exponent_bits + 7) // 8)
        g, g_inv = self._tables([0])
        return kernels.map_chunks(_encrypt_chunk, [0] * count, self.n, g, g_inv, h, min_chunk=8)


def _subgroup_prime(bits: int, t_bits: int) -> tuple[mpz, mpz, mpz]:
    """``(p, t, u)``: a ``bits``-bit prime ``p = t*u + 1`` with ``t`` a ``t_bits``-bit prime."""
    t = random_prime(t_bits)
    u_bits = bits - t_bits
    while True:
        top = mpz(1) << (u_bits - 1)
        u = mpz.from_bytes(os.urandom((u_bits + 7) // 8), "big") % top | top
        u -= u % 2  # t odd, u even: p odd
        p = t * u + 1
        if p.bit_length() == bits and gmpy2.is_prime(p, 40):
            return p, t, u


def _random_prime_in(low: mpz, high: mpz) -> mpz:
    """A random probable prime in ``[low, high]``."""
    span = high - low
    while True:
        x = low + mpz.from_bytes(os.urandom((span.bit_length() + 7) // 8 + 16), "big") % span
        prime = gmpy2.next_prime(x)
        if prime <= high:
            return prime


def generate_keypair(
    bits: int = DEFAULT_KEY_BITS, *, insecure_allow_small_keys: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """A fresh key pair: ``n = p**2 * q`` of exactly ``bits`` bits.

    ``p`` has ``ceil(bits/3)`` bits and ``p - 1`` a prime factor ``t`` of
    ``2 * kappa`` bits; ``q`` is drawn so that ``n`` has exactly ``bits`` bits,
    which gives it ``p``'s size within a bit or two. ``p`` and ``q`` differ in
    their top 100 bits (if they were close, ``n``'s cube root would reveal
    them).
    """
    _check_key_bits(bits, insecure_allow_small_keys)
    k = prime_bits(bits)
    while True:
        p, t, u = _subgroup_prime(k, subgroup_bits(bits))
        p2 = p * p
        low, high = ((mpz(1) << (bits - 1)) + p2 - 1) // p2, ((mpz(1) << bits) - 1) // p2
        q = _random_prime_in(low, high)
        n = p2 * q
        if q == p or n.bit_length() != bits or abs(p - q).bit_length() <= k - 100 or (q - 1) % p == 0:
            continue
        break
    while True:
        g = random_unit(n)
        gp = gmpy2.powmod(g % p2, p - 1, p2)
        if gp != 1:  # g**(p-1) always has order 1 or p modulo p**2
            break
    big_g = gmpy2.powmod(g, u, n)
    big_h = gmpy2.powmod(random_unit(n), n * u, n)
    public = PublicKey(n, big_g, big_h, insecure_allow_small_keys=insecure_allow_small_keys)
    return public, PrivateKey(public, p, q, t)


class PrivateKey(HEPrivateKey):
    """The secret ``p``, ``q`` and ``t`` of a :class:`PublicKey`."""

    def __init__(self, public_key: PublicKey, p: int, q: int, t: int):
        p, q, t = mpz(p), mpz(q), mpz(t)
        if p * p * q != public_key.n or p == q:
            raise KeyMismatchError("p**2 * q does not equal the public modulus")
        if (p - 1) % t or p.bit_length() < prime_bits(public_key.bits):
            raise KeyMismatchError("t does not divide p - 1, or p is shorter than the key's plaintext space")
        self.public_key = public_key
        self.p, self.q, self.t = p, q, t
        self._p2 = p * p
        gt = gmpy2.powmod(public_key.g % self._p2, t, self._p2)
        if gt == 1 or gmpy2.powmod(public_key.h % self._p2, t, self._p2) != 1:
            raise KeyMismatchError("G and H do not have the orders this private key needs")
        self._g_inverse = gmpy2.invert((gt - 1) // p, p)

    def _plaintexts(self, encrypted: EncryptedArray) -> list[int]:
        """Signed plaintext integers from their residues modulo ``p``, each checked against the bound."""
        cts, bound = self._checked(encrypted)
        ranges = kernels.spans(len(cts), kernels.chunk_count(len(cts), 4))
        tasks = [(cts[lo:hi], self.p, self._p2, self._g_inverse, self.t) for lo, hi in ranges]
        parts = kernels.run_tasks(kernels.crt_half, tasks)
        return centred((a for part in parts for a in part), self.p, bound)
