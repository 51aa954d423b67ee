"""Paillier encryption for the federated engine: vectorised, fixed-point, fast.

This is the engine's own implementation on gmpy2 (``phe`` is used only as an
independent reference in the tests and benchmarks). Design notes with the
measured figures are in ``docs/paillier.md``.

Quick tour::

    from engine.crypto.paillier import generate_keypair

    public, private = generate_keypair()          # 2048-bit n
    d = public.encrypt(gradients)                 # EncryptedArray, shape (n,)
    g = X.T @ d                                   # m ciphertexts: sum_i X[i, j] * d_i
    h = d.bucket_sum(bins, n_buckets=32)          # (features, 32) histogram sums
    private.decrypt(g)                            # float64 ndarray

What is encrypted: fixed-point numbers
======================================
A real ``x`` is encrypted as the integer ``round(x * 2**f)``; ``f`` (the
array's ``frac_bits``, default :data:`DEFAULT_FRAC_BITS` = 53) is the same
for every element of an :class:`EncryptedArray`. Unlike ``phe``, whose
exponent varies per number and must be equalised (one exponentiation) before
two ciphertexts can be added, sums here never rescale. With ``f = 53`` a
float64 with ``|x| >= 0.5`` is encoded exactly and smaller ones to within
``2**-54`` absolutely. Negative integers are carried as ``n - |k|``.

Multiplying by plaintext (``enc * a``, ``X.T @ enc``) multiplies the scales:
the plaintext is encoded with its own ``f2`` fractional bits and the result
has ``f + f2``; ``decrypt`` divides by ``2**(f + f2)``. A float plaintext
multiplier is encoded in *block floating point*: one exponent for the whole
operand, chosen so its largest magnitude has ``significant_bits`` bits
(53 for ``*``, :data:`DEFAULT_MATVEC_BITS` = 24 for ``@``/``dot``), because
the cost of ``c ** k`` grows with the bit length of ``k``. Integer
multipliers are exact. Trailing zero bits common to the whole operand are
dropped (``enc * 0.25`` is one exponentiation by 1, not by ``2**52``).

Overflow is detected, never silent
==================================
Every :class:`EncryptedArray` carries ``bound``: an exact upper bound on the
absolute value of every integer it encrypts, kept up to date by every
operation (``a + b`` adds bounds, ``a * k`` multiplies by ``max |k|``, a sum
of ``L`` elements multiplies by ``L``...). An operation whose result bound
could exceed ``max_int = n // 3`` raises :class:`PlaintextOverflowError`
*before* computing anything. ``decrypt`` accepts a plaintext only if it lies
within ``bound`` of zero modulo ``n``; anything else - arithmetic that
wrapped, a tampered ciphertext, a ciphertext from another key - raises
:class:`PlaintextOverflowError` instead of returning garbage. Garbage is a
near-uniform value modulo ``n``, so it lands within ``bound`` with
probability ``2 * bound / n`` (below ``2**-1800`` for typical arrays).

Speed tricks (each one is measured in ``benchmarks/bench_paillier.py``)
=====================================================================
* **Encryption, g = n + 1.** ``g**m = 1 + m*n (mod n**2)``: no exponentiation
  for the message.
* **Encryption randomness, Damgard-Jurik-Nielsen short exponent.** Instead
  of ``r**n`` for a random ``r`` (a 2048-bit exponent), each public key draws
  ``hs = (-y**2)**n mod n**2`` once and uses ``hs**alpha`` with ``alpha``
  uniform over ``4*kappa`` bits (448 for 2048-bit keys, 512 for 3072;
  ``kappa`` = 112/128-bit security). Generic attacks on a short exponent
  (Pollard's kangaroo) cost ``2**(bits/2)``, so ``2*kappa`` bits would do;
  ``4*kappa`` leaves a margin because the DJN short-exponent assumption is
  heuristic, all the more without safe primes.
* **Fixed-base table.** ``hs`` never changes, so the key precomputes
  ``hs**(j * 256**i)`` for every byte position ``i`` and byte value ``j``
  (56 x 255 entries, 7 MB, ~0.1 s once per key). The random bytes *are*
  ``alpha``'s base-256 digits, so ``hs**alpha`` is 55 multiplications and
  no squaring.
* **Decryption with CRT.** ``m mod p`` from ``c**(p-1) mod p**2`` and
  ``m mod q`` likewise, recombined by CRT: two exponentiations with
  1024-bit exponents modulo 2048-bit numbers, together about a quarter of
  the direct cost. The ``p`` and ``q`` halves run on different threads.
  When the array's tracked bound is below ``p / 2**128`` (every unpacked
  value: fixed-point numbers are a few hundred bits at most), ``m mod p``
  alone fixes the signed plaintext and the ``q`` half is skipped, halving
  the work; tampering is still caught with probability ``1 - 2**-127``.
* **Addition** is one multiplication modulo ``n**2`` on lists of ``mpz``.
* **X.T @ [[d]] by bit-plane bucketing** (see
  :func:`engine.crypto._paillier_kernels.weighted_column_sums`): instead of
  one exponentiation per matrix entry, rows are filed into buckets by the
  pattern of ``k ~ log2(rows)`` weight bits at a time (one multiplication
  per row per pass) and the bucket products are combined into per-bit
  products (~2 multiplications per bucket), then per column by Horner's rule.
  A 16-bit entry costs ~1.3 multiplications instead of a 16-bit
  exponentiation (~20). Negative weights use an *offset*: each column is
  shifted by its minimum ``o_j`` so all weights are small non-negative
  integers, and ``o_j * sum_i [[d_i]]`` is added back once (the sum comes
  free as one more all-ones bit plane). Shifting by the minimum also
  shrinks columns whose values sit far from zero.
* **bucket_sum** (SecureBoost histograms) files rows by the *joint* bucket
  of several features at once when the joint table stays small, then reads
  each feature's sums off that table, so ``k`` features cost about one
  multiplication per row instead of ``k``.
* **Both cores.** gmpy2 releases the GIL around GMP calls when asked
  (``allow_release_gil``), so encryption, decryption and elementwise loops
  run on a thread pool (:mod:`engine.crypto._paillier_kernels`, ~1.9x on
  two cores). The bucket loops behind ``X.T @ [[d]]`` and ``bucket_sum``
  hand the GIL over on every multiplication and reach only ~1.4x on
  threads, so large jobs split their rows with helper processes instead
  (:mod:`engine.crypto._paillier_worker`: a plain subprocess fed
  fixed-width bytes, no pickle; ~1.97x). :func:`set_thread_count` or
  ``FEDWEB_CRYPTO_THREADS`` bound both; ``FEDWEB_PAILLIER_HELPERS=0``
  turns the helper processes off.

Security notes
==============
* Key sizes: 2048 bits by default, 3072 (or more) allowed; smaller keys only
  with ``insecure_allow_small_keys=True`` (tests).
* Results of homomorphic operations are *not* re-randomised: their
  randomness is a deterministic function of the inputs'. Before sending a
  result to the key owner, call :meth:`EncryptedArray.rerandomize`. Its
  default multiplies by ``r**n`` with ``r`` uniform, which hides how the
  result was computed even from the key owner (who knows the factorisation
  and so is not bound by the short-exponent assumption); it costs one
  2048-bit exponentiation per element. ``rerandomize(circuit_private=False)``
  uses the cheap short-exponent randomness, enough against anyone else.
* Empty sums (an empty bucket, an all-zero column) are returned as fresh
  encryptions of zero, never as the recognisable trivial ciphertext ``1``.
* Imported ciphertexts are checked to lie in ``[1, n**2)``; imported public
  keys must be odd, of an allowed size, not a square and free of small
  factors. Nothing here is pickled or evaluated.
* This module is not constant-time; Python big integers cannot be. Only the
  key owner's own machine sees secret-dependent timing.
"""

from __future__ import annotations

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

__all__ = [*SCHEME_API, "PaillierError"]

DEFAULT_KEY_BITS = 2048
MIN_SECURE_KEY_BITS = 2048
# Even with insecure_allow_small_keys: below this the encodings stop fitting.
_MIN_TEST_KEY_BITS = 512

# The errors are shared by every scheme (engine.crypto.he); this name is kept for
# the callers that catch Paillier's errors.
PaillierError = HomomorphicError

set_thread_count = kernels.set_thread_count
thread_count = kernels.thread_count


def warm_up() -> int:
    """Start the helper processes used by large ``X.T @ enc`` and bucket sums now.

    They otherwise start on the first large job (~0.3 s). Returns how many
    run (0 when disabled, single-core, or unavailable).
    """
    return kernels.warm_up_helpers()


# ------------------------------------------------------------------- keys


def _check_key_bits(bits: int, insecure_allow_small_keys: bool) -> None:
    check_key_bits(bits, MIN_SECURE_KEY_BITS, _MIN_TEST_KEY_BITS, insecure_allow_small_keys, "Paillier")


class PublicKey(HEPublicKey):
    """A Paillier public key ``n`` (generator ``g = n + 1``).

    Export with :meth:`to_bytes` / :attr:`n`, import with :meth:`from_bytes`
    or ``PublicKey(n)``. Each ``PublicKey`` object draws its own encryption
    randomness base on first use, so nothing secret or random is exported.
    """

    scheme_name = "paillier"
    modulus_text = "n^2"

    def __init__(self, n: int, *, insecure_allow_small_keys: bool = False):
        n = mpz(n)
        bits = n.bit_length()
        _check_key_bits(bits, insecure_allow_small_keys)
        if n % 2 == 0 or gmpy2.is_square(n) or gmpy2.gcd(n, SMALL_PRIMES_PRODUCT) != 1:
            raise KeySizeError("not a valid Paillier modulus (even, a square, or has a small factor)")
        self.n: mpz = n
        self.nsquare: mpz = n * n
        self.ciphertext_modulus: mpz = self.nsquare
        self.bits: int = bits
        self.max_int: int = int(n // 3)
        self._table: list[list[mpz]] | None = None
        self._table_lock = threading.Lock()

    # -- identity and export

    @property
    def ciphertext_bytes(self) -> int:
        """Fixed width of one serialised ciphertext (``2 * key_bytes``)."""
        return 2 * self.key_bytes

    def to_bytes(self) -> bytes:
        """``n`` as big-endian bytes (``key_bytes`` long)."""
        return self.n.to_bytes(self.key_bytes, "big")

    @classmethod
    def from_bytes(cls, data: bytes, *, insecure_allow_small_keys: bool = False) -> PublicKey:
        return cls(int.from_bytes(data, "big"), insecure_allow_small_keys=insecure_allow_small_keys)

    def _identity(self) -> tuple:
        return (self.n,)

    def __repr__(self) -> str:
        return f"PublicKey({self.bits}-bit, {self.fingerprint})"

    # -- encryption

    @property
    def short_exponent_bits(self) -> int:
        """Bit length of the DJN randomness exponent (4 x security level)."""
        return 4 * security_bits(self.bits)

    def _randomness_table(self) -> list[list[mpz]]:
        with self._table_lock:
            if self._table is None:
                y = random_unit(self.n)
                h = (-(y * y)) % self.n
                hs = gmpy2.powmod(h, self.n, self.nsquare)
                self._table = kernels.fixed_base_table(hs, self.short_exponent_bits // 8, self.nsquare)
            return self._table

    def _encrypt_integers(self, integers: Sequence[int]) -> list[mpz]:
        """Ciphertexts of signed integers already checked against ``max_int``."""
        n = self.n
        plaintexts = [mpz(k) % n for k in integers]
        table = self._randomness_table()
        return kernels.map_chunks(kernels.encrypt_chunk, plaintexts, n, self.nsquare, table, min_chunk=8)

    def _plaintext_factors(self, integers: Sequence[int]) -> list[mpz]:
        # g**k = 1 + k*n (mod n**2): adding a plaintext is one multiplication.
        n = self.n
        return [(mpz(k) % n) * n + 1 for k in integers]

    def _uniform_zeros(self, count: int) -> list[mpz]:
        # r**n for uniform r: one 2048-bit exponentiation modulo n**2 each.
        ranges = kernels.spans(count, kernels.chunk_count(count, 2))
        parts = kernels.run_tasks(kernels.full_randomizers, [(hi - lo, self.n, self.nsquare) for lo, hi in ranges])
        return [x for part in parts for x in part]


def generate_keypair(
    bits: int = DEFAULT_KEY_BITS, *, insecure_allow_small_keys: bool = False
) -> tuple[PublicKey, PrivateKey]:
    """A fresh key pair: ``n = p*q`` of exactly ``bits`` bits, ``p`` and ``q`` of ``bits/2`` each.

    Safe primes are not required (DJN randomness does not rely on them, see
    the module docstring). ``p`` and ``q`` are random probable primes
    (``gmpy2.next_prime``: Baillie-PSW plus Miller-Rabin rounds) that differ
    in their top 100 bits, which rules out Fermat factoring.
    """
    if bits % 2:
        raise KeySizeError("the modulus size must be even (p and q have the same length)")
    _check_key_bits(bits, insecure_allow_small_keys)
    half = bits // 2
    while True:
        p, q = random_prime(half), random_prime(half)
        n = p * q
        if p == q or n.bit_length() != bits or abs(p - q).bit_length() <= half - 100:
            continue
        if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
            continue
        break
    public = PublicKey(n, insecure_allow_small_keys=insecure_allow_small_keys)
    return public, PrivateKey(public, p, q)


SINGLE_PRIME_MARGIN_BITS = 128
"""Decrypt modulo ``p`` alone when the array's bound is below ``p / 2**128`` (see
:meth:`PrivateKey._small_plaintexts`)."""


class PrivateKey(HEPrivateKey):
    """The factorisation ``p, q`` of a :class:`PublicKey`, with CRT constants."""

    def __init__(self, public_key: PublicKey, p: int, q: int):
        p, q = mpz(p), mpz(q)
        if p * q != public_key.n or p == q:
            raise KeyMismatchError("p * q does not equal the public modulus")
        self.public_key = public_key
        self.p, self.q = p, q
        self._p2, self._q2 = p * p, q * q
        g = public_key.n + 1
        self._hp = gmpy2.invert((gmpy2.powmod(g, p - 1, self._p2) - 1) // p, p)
        self._hq = gmpy2.invert((gmpy2.powmod(g, q - 1, self._q2) - 1) // q, q)
        self._p_inverse_mod_q = gmpy2.invert(p, q)

    def _plaintexts(self, encrypted: EncryptedArray) -> list[int]:
        """Signed plaintext integers, each checked against the array's bound."""
        cts, bound = self._checked(encrypted)
        ranges = kernels.spans(len(cts), kernels.chunk_count(len(cts), 4))
        if bound <= self.p >> SINGLE_PRIME_MARGIN_BITS:
            return self._small_plaintexts(cts, ranges, bound)
        tasks = [(cts[lo:hi], self.p, self._p2, self._hp) for lo, hi in ranges]
        tasks += [(cts[lo:hi], self.q, self._q2, self._hq) for lo, hi in ranges]
        halves = kernels.run_tasks(kernels.crt_half, tasks)
        mod_p = [x for part in halves[: len(ranges)] for x in part]
        mod_q = [x for part in halves[len(ranges) :] for x in part]
        p, q, p_inv = self.p, self.q, self._p_inverse_mod_q
        return centred((a + p * ((b - a) * p_inv % q) for a, b in zip(mod_p, mod_q)), self.public_key.n, bound)

    def _small_plaintexts(self, cts: list[mpz], ranges: list[tuple[int, int]], bound: int) -> list[int]:
        """Plaintexts known to be far smaller than ``p``, from their residue modulo ``p`` alone.

        A signed plaintext ``v`` with ``|v| <= bound < p / 2`` is fixed by
        ``v mod p`` (``n - |v|`` is ``p - |v|`` modulo ``p``), so the ``q`` half
        of CRT decryption is not needed: half the exponentiations. Detection of
        overflow and tampering is kept: a wrong ciphertext gives a residue that
        is uniform modulo ``p`` to anyone without the key, which lands within
        ``bound`` of 0 or ``p`` with probability at most
        ``2**-(SINGLE_PRIME_MARGIN_BITS - 1)``.
        """
        parts = kernels.run_tasks(kernels.crt_half, [(cts[lo:hi], self.p, self._p2, self._hp) for lo, hi in ranges])
        return centred((a for part in parts for a in part), self.p, bound)
