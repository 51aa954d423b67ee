"""What the engine's additive homomorphic schemes share: errors, keys' common part, arrays, packing.

Two schemes sit behind one interface: Paillier (:mod:`engine.crypto.paillier`,
ciphertexts modulo ``n**2``) and Okamoto-Uchiyama (:mod:`engine.crypto.ou`,
ciphertexts modulo ``n = p**2 * q``). Both are groups in which multiplying
ciphertexts adds plaintexts, so everything above the key - shapes,
broadcasting, fixed-point scales, overflow tracking, sums, bucket sums,
``X.T @ [[d]]``, packing - is written once here, against the small
:class:`HEPublicKey` contract, and a component holds an :class:`EncryptedArray`
without caring which scheme made it. :func:`scheme` maps a component's
``he_scheme`` parameter (``"paillier"`` or ``"ou"``) to the scheme's module,
each of which offers the same names: ``generate_keypair``, ``PublicKey``,
``PrivateKey``, ``DEFAULT_KEY_BITS``, ``MIN_SECURE_KEY_BITS``,
``EncryptedArray``, ``SlotPacker``, ``bucket_sum``, ``concatenate``, the
error classes, ``thread_count``, ``warm_up``.

What a scheme's public key provides (:class:`HEPublicKey`)
==========================================================
* ``ciphertext_modulus`` (the group's modulus), ``ciphertext_bytes`` (the
  fixed width of one serialised ciphertext), ``n`` (the factored modulus, for
  coprimality checks), ``modulus_text`` (for messages), ``bits``,
  ``max_int`` (the largest ``|k|`` an encrypted integer may reach: overflow
  checks use it, so it must hold for every key of that size, not only this
  one), ``fingerprint``;
* ``_encrypt_integers(ks)``: fresh ciphertexts of signed integers already
  checked against ``max_int``;
* ``_plaintext_factors(ks)``: a ciphertext of each ``k`` without randomness
  (multiplying it in adds ``k``);
* ``_uniform_zeros(count)``: encryptions of 0 with uniform randomness (for
  :meth:`EncryptedArray.rerandomize`).

The private key's part is :meth:`HEPrivateKey._plaintexts`: signed integers,
each checked against the array's tracked bound (:func:`centred`).

The errors (:class:`HomomorphicError` and its four subclasses) are the same
classes for both schemes: code that catches ``paillier.PlaintextOverflowError``
catches an Okamoto-Uchiyama overflow too.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gmpy2
import numpy as np
from gmpy2 import mpz

from engine.crypto import _paillier_kernels as kernels
from engine.crypto._paillier_encoding import as_array, decode_fixed, encode_fixed, multiplier_frac_bits
from engine.errors import CryptoError

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_MATVEC_BITS",
    "DEFAULT_MUL_BITS",
    "SCHEMES",
    "SCHEME_API",
    "EncryptedArray",
    "HEPrivateKey",
    "HEPublicKey",
    "HomomorphicError",
    "InvalidCiphertextError",
    "KeyMismatchError",
    "KeySizeError",
    "PlaintextOverflowError",
    "SlotPacker",
    "bucket_sum",
    "concatenate",
    "scheme",
]

DEFAULT_FRAC_BITS = 53
DEFAULT_MUL_BITS = 53
DEFAULT_MATVEC_BITS = 24

SCHEME_API = (
    "DEFAULT_FRAC_BITS",
    "DEFAULT_KEY_BITS",
    "DEFAULT_MATVEC_BITS",
    "DEFAULT_MUL_BITS",
    "MIN_SECURE_KEY_BITS",
    "EncryptedArray",
    "HomomorphicError",
    "InvalidCiphertextError",
    "KeyMismatchError",
    "KeySizeError",
    "PlaintextOverflowError",
    "PrivateKey",
    "PublicKey",
    "SlotPacker",
    "bucket_sum",
    "concatenate",
    "generate_keypair",
    "set_thread_count",
    "thread_count",
    "warm_up",
)
"""The names every scheme module (``paillier``, ``ou``) exports, so a component can use either."""

SCHEMES = ("paillier", "ou")


def scheme(name: str) -> ModuleType:
    """The module of the scheme called ``name`` (``"paillier"`` or ``"ou"``)."""
    if name not in SCHEMES:
        raise ValueError(f"unknown homomorphic scheme {name!r}: choose one of {', '.join(SCHEMES)}")
    return importlib.import_module(f"engine.crypto.{name}")


# ------------------------------------------------------------------ errors


class HomomorphicError(CryptoError):
    """Base class of the errors raised by the additive schemes (``paillier.PaillierError`` is this class)."""


class KeySizeError(HomomorphicError, ValueError):
    """A key is too small (or malformed) for the requested use."""


class KeyMismatchError(HomomorphicError, ValueError):
    """Ciphertexts and key (or two operands) belong to different keys."""


class InvalidCiphertextError(HomomorphicError, ValueError):
    """Imported ciphertext data is malformed or out of range for the key."""


class PlaintextOverflowError(HomomorphicError, OverflowError):
    """A plaintext could leave (or has left) the range the key can represent."""


def overflow_error() -> PlaintextOverflowError:
    return PlaintextOverflowError(
        "a decrypted value lies outside the range its array can hold: the computation "
        "overflowed, a ciphertext was tampered with, or it was encrypted under another key"
    )


# ------------------------------------------------------------ key helpers


def security_bits(factoring_bits: int) -> int:
    """NIST SP 800-57 strength of a modulus as hard to factor as a ``factoring_bits``-bit RSA modulus."""
    if factoring_bits >= 3072:
        return 128
    if factoring_bits >= 2048:
        return 112
    return 80


def check_key_bits(bits: int, minimum: int, test_minimum: int, insecure_allow_small_keys: bool, name: str) -> None:
    """Refuse a modulus below ``minimum`` bits (below ``test_minimum`` even with the insecure flag)."""
    if bits < minimum and not insecure_allow_small_keys:
        raise KeySizeError(
            f"a {bits}-bit {name} modulus is too small: use at least {minimum} bits "
            "(pass insecure_allow_small_keys=True only in tests)"
        )
    if bits < test_minimum:
        raise KeySizeError(f"a {bits}-bit {name} modulus is too small even for tests (minimum {test_minimum})")


SMALL_PRIMES_PRODUCT = gmpy2.primorial(10_000)


def random_prime(bits: int) -> mpz:
    """A random probable prime of exactly ``bits`` bits with the top two bits set."""
    while True:
        candidate = mpz.from_bytes(os.urandom((bits + 7) // 8), "big") & ((mpz(1) << bits) - 1)
        # Top two bits set, so that a product of such primes has a predictable size.
        candidate |= (mpz(3) << (bits - 2)) | 1
        prime = gmpy2.next_prime(candidate)
        if prime.bit_length() == bits:
            return prime


def random_unit(n: mpz, extra_bytes: int = 16) -> mpz:
    """A uniform element of ``[2, n)`` coprime to ``n`` (``extra_bytes`` of slack make the bias negligible)."""
    while True:
        y = mpz.from_bytes(os.urandom((n.bit_length() + 7) // 8 + extra_bytes), "big") % n
        if y > 1 and gmpy2.gcd(y, n) == 1:
            return y


def centred(residues: Iterable[mpz], modulus: mpz, bound: int) -> list[int]:
    """Signed values of residues modulo ``modulus`` that must lie within ``bound`` of 0, else overflow."""
    upper = modulus - bound
    out = []
    for a in residues:
        if a <= bound:
            out.append(int(a))
        elif a >= upper:
            out.append(int(a - modulus))
        else:
            raise overflow_error()
    return out


class HEPublicKey:
    """The part of a public key every scheme shares: identity, size and the encrypt methods.

    A subclass sets ``n``, ``bits``, ``max_int``, ``ciphertext_modulus`` and
    ``modulus_text`` and implements :meth:`to_bytes`, :meth:`_encrypt_integers`,
    :meth:`_plaintext_factors` and :meth:`_uniform_zeros`
    (see the module docstring).
    """

    scheme_name = ""
    n: mpz
    bits: int
    max_int: int
    ciphertext_modulus: mpz
    modulus_text: str

    @property
    def key_bytes(self) -> int:
        """Bytes of ``n``."""
        return (self.bits + 7) // 8

    @property
    def ciphertext_bytes(self) -> int:
        """Fixed width of one serialised ciphertext."""
        return (self.ciphertext_modulus.bit_length() + 7) // 8

    @property
    def fingerprint(self) -> str:
        """Short hex digest of the exported key, for logs and error messages."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    def to_bytes(self) -> bytes:
        raise NotImplementedError

    def _identity(self) -> tuple:
        """What makes two keys the same key (their public numbers)."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._identity() == self._identity()

    def __hash__(self) -> int:
        return hash((self.scheme_name, *(int(v) for v in self._identity())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.scheme_name}, {self.bits}-bit, {self.fingerprint})"

    def _encrypt_integers(self, integers: Sequence[int]) -> list[mpz]:
        raise NotImplementedError

    def _plaintext_factors(self, integers: Sequence[int]) -> list[mpz]:
        raise NotImplementedError

    def _uniform_zeros(self, count: int) -> list[mpz]:
        raise NotImplementedError

    def encrypt(self, values: Any, *, frac_bits: int = DEFAULT_FRAC_BITS) -> EncryptedArray:
        """Encrypt a scalar or an array of reals as ``round(x * 2**frac_bits)``."""
        array = as_array(values)
        return self._encrypt_flat(encode_fixed(array, frac_bits), array.shape, frac_bits)

    def encrypt_int(self, integers: Any, *, shape: tuple[int, ...] | None = None, frac_bits: int = 0) -> EncryptedArray:
        """Encrypt integers that are already encoded (e.g. by :class:`SlotPacker`).

        ``frac_bits`` records how to decode them (0: plain integers).
        """
        array = integers if isinstance(integers, np.ndarray) else np.asarray(integers, dtype=object)
        if array.dtype.kind not in "biuO" or (
            array.dtype == object and not all(isinstance(k, (int, np.integer)) for k in array.flat)
        ):
            raise TypeError("encrypt_int takes integers; use encrypt() for reals")
        flat = [int(k) for k in array.ravel().tolist()]
        shape = array.shape if shape is None else tuple(shape)
        if math.prod(shape) != len(flat):
            raise ValueError(f"{len(flat)} integers do not fill shape {shape}")
        return self._encrypt_flat(flat, shape, frac_bits)

    def _encrypt_flat(self, flat: list[int], shape: tuple[int, ...], frac_bits: int) -> EncryptedArray:
        bound = max((abs(k) for k in flat), default=0)
        if bound > self.max_int:
            raise PlaintextOverflowError(
                f"a value needs {bound.bit_length()} bits; this {self.bits}-bit key holds at most "
                f"{self.max_int.bit_length() - 1} bits"
            )
        return EncryptedArray(self, self._encrypt_integers(flat), tuple(shape), frac_bits, bound)

    def encrypt_zeros(self, shape: int | tuple[int, ...], *, frac_bits: int = DEFAULT_FRAC_BITS) -> EncryptedArray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return EncryptedArray(self, self._encrypt_integers([0] * math.prod(shape)), shape, frac_bits, 0)


class HEPrivateKey:
    """The part of a private key every scheme shares: checks and decoding around ``_plaintexts``."""

    public_key: HEPublicKey

    def __repr__(self) -> str:
        return f"{type(self).__name__}(for {self.public_key!r})"

    def _checked(self, encrypted: EncryptedArray) -> tuple[list[mpz], int]:
        """The array's ciphertexts and the bound its plaintexts must respect, after the key check."""
        if not isinstance(encrypted, EncryptedArray):
            raise TypeError(f"expected an EncryptedArray, got {type(encrypted).__name__}")
        if encrypted.public_key != self.public_key:
            raise KeyMismatchError(
                f"these ciphertexts are under key {encrypted.public_key.fingerprint}, "
                f"this private key is for {self.public_key.fingerprint}"
            )
        return encrypted._cts, min(encrypted.bound, self.public_key.max_int)

    def _plaintexts(self, encrypted: EncryptedArray) -> list[int]:
        raise NotImplementedError

    def decrypt(self, encrypted: EncryptedArray) -> np.ndarray:
        """Float64 array of the encrypted reals (``k / 2**frac_bits``, correctly rounded)."""
        return decode_fixed(self._plaintexts(encrypted), encrypted.frac_bits, encrypted.shape)

    def decrypt_int(self, encrypted: EncryptedArray) -> np.ndarray:
        """Object array of the exact signed integers (not divided by ``2**frac_bits``)."""
        out = np.empty(encrypted.size, dtype=object)
        out[:] = self._plaintexts(encrypted)
        return out.reshape(encrypted.shape)


# -------------------------------------------------------- encrypted arrays


def _broadcast(shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> tuple[tuple[int, ...], list[int], list[int]]:
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    ia = np.broadcast_to(np.arange(math.prod(shape_a)).reshape(shape_a), out_shape).ravel().tolist()
    ib = np.broadcast_to(np.arange(math.prod(shape_b)).reshape(shape_b), out_shape).ravel().tolist()
    return out_shape, ia, ib


def _gather(items: Sequence, index: list[int]) -> list:
    return [items[i] for i in index]


def _strip_common_twos(integers: list[int], frac_bits: int) -> tuple[list[int], int]:
    """Divide out powers of two shared by every integer, lowering ``frac_bits`` to match."""
    if frac_bits == 0:
        return integers, 0
    common = frac_bits
    for k in integers:
        if k:
            common = min(common, (k & -k).bit_length() - 1)
            if common == 0:
                return integers, frac_bits
    if common == frac_bits and not any(integers):
        return integers, 0
    return [k >> common for k in integers], frac_bits - common


class EncryptedArray:
    """An n-dimensional array of ciphertexts of one additive scheme, sharing one fixed-point scale.

    Attributes: ``public_key``, ``shape``, ``frac_bits`` (values are
    ``k / 2**frac_bits``), ``bound`` (exact upper bound on every ``|k|``),
    and :attr:`ciphertexts` (a list of ``gmpy2.mpz`` in C order).

    Supports ``+``/``-`` with another EncryptedArray or plaintext (numpy
    broadcasting), ``*`` and ``/`` by plaintext, unary ``-``, ``@``/``dot``
    with a plaintext matrix, ``sum``, ``cumsum``, :meth:`bucket_sum`,
    indexing, ``reshape``/``ravel``/``T``. Arrays are immutable: every
    operation returns a new one.
    """

    # numpy must hand ``ndarray @ enc``, ``ndarray + enc``... to our reflected operators.
    __array_ufunc__ = None
    __slots__ = ("_cts", "bound", "frac_bits", "public_key", "shape")

    def __init__(
        self, public_key: HEPublicKey, ciphertexts: list[mpz], shape: tuple[int, ...], frac_bits: int, bound: int
    ):
        """Internal: trusts its arguments. Use :meth:`from_ciphertexts` for outside data."""
        self.public_key = public_key
        self._cts = ciphertexts
        self.shape = tuple(shape)
        self.frac_bits = frac_bits
        self.bound = bound

    # -- import / export

    @classmethod
    def from_ciphertexts(
        cls,
        public_key: HEPublicKey,
        ciphertexts: Iterable[int],
        shape: tuple[int, ...] | None = None,
        *,
        frac_bits: int,
        bound: int | None = None,
        check_coprime: bool = False,
    ) -> EncryptedArray:
        """Validate and wrap ciphertexts received from elsewhere.

        Every ciphertext must lie in ``[1, M)`` (``M`` the key's
        :attr:`~HEPublicKey.ciphertext_modulus`: ``n**2`` for Paillier, ``n``
        for Okamoto-Uchiyama); with ``check_coprime``
        also ``gcd(c, n) == 1`` (~3 us each). ``bound`` is the sender's
        declared bound on the plaintexts (default ``max_int``, i.e. no
        promise); it sizes overflow checks and the range ``decrypt`` accepts.
        """
        values = [mpz(c) for c in ciphertexts]
        modulus, n = public_key.ciphertext_modulus, public_key.n
        for c in values:
            if not 0 < c < modulus:
                raise InvalidCiphertextError(
                    f"a ciphertext is outside [1, {public_key.modulus_text}) for key {public_key.fingerprint}: "
                    "it was made under a different key or corrupted"
                )
        if check_coprime and any(gmpy2.gcd(c, n) != 1 for c in values):
            raise InvalidCiphertextError("a ciphertext shares a factor with n: not a valid ciphertext")
        shape = (len(values),) if shape is None else tuple(int(s) for s in shape)
        if math.prod(shape) != len(values):
            raise InvalidCiphertextError(f"{len(values)} ciphertexts do not fill shape {shape}")
        if not isinstance(frac_bits, int) or frac_bits < 0:
            raise ValueError("frac_bits must be a non-negative int")
        bound = public_key.max_int if bound is None else int(bound)
        if not 0 <= bound <= public_key.max_int:
            raise InvalidCiphertextError("declared bound is outside [0, max_int] for this key")
        return cls(public_key, values, shape, frac_bits, bound)

    @classmethod
    def from_bytes_list(
        cls,
        public_key: HEPublicKey,
        blobs: Sequence[bytes],
        shape: tuple[int, ...] | None = None,
        *,
        frac_bits: int,
        bound: int | None = None,
        check_coprime: bool = False,
    ) -> EncryptedArray:
        """Inverse of :meth:`to_bytes_list` (each blob ``ciphertext_bytes`` long, big-endian)."""
        width = public_key.ciphertext_bytes
        for blob in blobs:
            if len(blob) != width:
                raise InvalidCiphertextError(
                    f"a ciphertext has {len(blob)} bytes, key {public_key.fingerprint} uses {width}: "
                    "wrong key size or corrupted data"
                )
        values = [mpz.from_bytes(blob, "big") for blob in blobs]
        return cls.from_ciphertexts(
            public_key, values, shape, frac_bits=frac_bits, bound=bound, check_coprime=check_coprime
        )

    @classmethod
    def from_bytes(
        cls,
        public_key: HEPublicKey,
        data: bytes,
        shape: tuple[int, ...] | None = None,
        *,
        frac_bits: int,
        bound: int | None = None,
        check_coprime: bool = False,
    ) -> EncryptedArray:
        """Inverse of :meth:`to_bytes`: concatenated fixed-width ciphertexts."""
        width = public_key.ciphertext_bytes
        if len(data) % width:
            raise InvalidCiphertextError(
                f"{len(data)} bytes is not a whole number of {width}-byte ciphertexts for key {public_key.fingerprint}"
            )
        blobs = [data[i : i + width] for i in range(0, len(data), width)]
        return cls.from_bytes_list(
            public_key, blobs, shape, frac_bits=frac_bits, bound=bound, check_coprime=check_coprime
        )

    def to_bytes_list(self) -> list[bytes]:
        """Each ciphertext as ``ciphertext_bytes`` big-endian bytes (C order)."""
        width = self.public_key.ciphertext_bytes
        return [c.to_bytes(width, "big") for c in self._cts]

    def to_bytes(self) -> bytes:
        """All ciphertexts concatenated; ship ``shape``, ``frac_bits`` and ``bound`` alongside."""
        return b"".join(self.to_bytes_list())

    # -- basic properties

    @property
    def ciphertexts(self) -> list[mpz]:
        """The ciphertexts in C order (a new list; the array itself is immutable)."""
        return list(self._cts)

    @property
    def size(self) -> int:
        return len(self._cts)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def scale(self) -> float:
        """Value of one unit of the encrypted integers (``2**-frac_bits``)."""
        return 2.0**-self.frac_bits

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d EncryptedArray")
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"EncryptedArray(shape={self.shape}, frac_bits={self.frac_bits}, "
            f"bound~2^{self.bound.bit_length()}, key={self.public_key.fingerprint})"
        )

    def _like(self, cts: list[mpz], shape: tuple[int, ...], frac_bits: int | None = None, bound: int | None = None):
        return EncryptedArray(
            self.public_key,
            cts,
            shape,
            self.frac_bits if frac_bits is None else frac_bits,
            self.bound if bound is None else bound,
        )

    def _index_grid(self) -> np.ndarray:
        return np.arange(self.size).reshape(self.shape)

    def _take(self, index: np.ndarray) -> EncryptedArray:
        index = np.asarray(index)
        return self._like([self._cts[i] for i in index.ravel().tolist()], index.shape)

    def __getitem__(self, key: Any) -> EncryptedArray:
        return self._take(self._index_grid()[key])

    def reshape(self, *shape: Any) -> EncryptedArray:
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        new_shape = self._index_grid().reshape(shape).shape
        return self._like(self._cts, new_shape)

    def ravel(self) -> EncryptedArray:
        return self._like(self._cts, (self.size,))

    def transpose(self, *axes: int) -> EncryptedArray:
        return self._take(self._index_grid().transpose(*axes))

    @property
    def T(self) -> EncryptedArray:
        return self.transpose()

    def copy(self) -> EncryptedArray:
        return self._like(list(self._cts), self.shape)

    # -- helpers for arithmetic

    def _check_bound(self, bound: int, what: str) -> int:
        if bound > self.public_key.max_int:
            raise PlaintextOverflowError(
                f"{what} could overflow: results need up to {bound.bit_length()} bits, this "
                f"{self.public_key.bits}-bit key holds {self.public_key.max_int.bit_length() - 1}"
            )
        return bound

    def _same_key(self, other: EncryptedArray) -> None:
        if other.public_key != self.public_key:
            raise KeyMismatchError(
                f"cannot combine ciphertexts under key {self.public_key.fingerprint} "
                f"with ciphertexts under key {other.public_key.fingerprint}"
            )

    def _fresh_zeros(self, cts: list[mpz | None]) -> list[mpz]:
        """Replace empty products (``None``) and trivial ``1``s by fresh encryptions of 0."""
        holes = [i for i, c in enumerate(cts) if c is None or c == 1]
        if holes:
            zeros = self.public_key._encrypt_integers([0] * len(holes))
            cts = list(cts)
            for i, z in zip(holes, zeros):
                cts[i] = z
        return cts  # type: ignore[return-value]

    def _rescaled(self, frac_bits: int) -> EncryptedArray:
        """Same values with more fractional bits (multiplies the integers by a power of two)."""
        shift = frac_bits - self.frac_bits
        if shift == 0:
            return self
        bound = self._check_bound(self.bound << shift, "rescaling to a common scale")
        cts = kernels.map_chunks(kernels.powmod_scalar, self._cts, 1 << shift, self.public_key.ciphertext_modulus)
        return self._like(cts, self.shape, frac_bits, bound)

    # -- addition

    def __add__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            self._same_key(other)
            frac_bits = max(self.frac_bits, other.frac_bits)
            a, b = self._rescaled(frac_bits), other._rescaled(frac_bits)
            bound = self._check_bound(a.bound + b.bound, "this addition")
            shape, ia, ib = _broadcast(a.shape, b.shape)
            cts = kernels.parallel_mulmod_pairs(_gather(a._cts, ia), _gather(b._cts, ib), self.public_key.ciphertext_modulus)
            return EncryptedArray(self.public_key, cts, shape, frac_bits, bound)
        return self._add_plain(other)

    __radd__ = __add__

    def _add_plain(self, other: Any, *, negate: bool = False) -> EncryptedArray:
        array = as_array(other)
        integers = encode_fixed(array, self.frac_bits)
        if negate:
            integers = [-k for k in integers]
        bound = self._check_bound(self.bound + max((abs(k) for k in integers), default=0), "this addition")
        # Each scheme has a cheap randomness-free ciphertext of k (Paillier: 1 + k*n).
        factors = self.public_key._plaintext_factors(integers)
        shape, ia, ib = _broadcast(self.shape, array.shape)
        cts = kernels.parallel_mulmod_pairs(_gather(self._cts, ia), _gather(factors, ib), self.public_key.ciphertext_modulus)
        return self._like(cts, shape, bound=bound)

    def _inverted(self, cts: list[mpz]) -> list[mpz]:
        """Ciphertexts of the negated plaintexts: modular inverses."""
        try:
            return kernels.map_chunks(kernels.batch_invert, cts, self.public_key.ciphertext_modulus)
        except ZeroDivisionError:
            # Only a crafted value can share a factor with n.
            raise InvalidCiphertextError(
                f"a ciphertext is not invertible modulo {self.public_key.modulus_text}: not a valid ciphertext"
            ) from None

    def __neg__(self) -> EncryptedArray:
        return self._like(self._inverted(self._cts), self.shape)

    def __sub__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            return self + (-other)
        return self._add_plain(other, negate=True)

    def __rsub__(self, other: Any) -> EncryptedArray:
        return (-self)._add_plain(other)

    # -- multiplication by plaintext

    def __mul__(self, other: Any) -> EncryptedArray:
        return self.mul(other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            raise TypeError("additive homomorphic encryption cannot divide by a ciphertext")
        return self.mul(1.0 / np.asarray(other, dtype=np.float64))

    def mul(self, other: Any, *, significant_bits: int = DEFAULT_MUL_BITS) -> EncryptedArray:
        """Elementwise product with a plaintext scalar or array (numpy broadcasting).

        A float multiplier is encoded in block floating point with
        ``significant_bits`` bits for its largest magnitude; the result's
        ``frac_bits`` is the sum of both scales.
        """
        if isinstance(other, EncryptedArray):
            raise TypeError("additive homomorphic encryption cannot multiply two ciphertexts")
        array = as_array(other)
        frac = multiplier_frac_bits(array, significant_bits)
        integers, frac = _strip_common_twos(encode_fixed(array, frac), frac)
        peak = max((abs(k) for k in integers), default=0)
        bound = self._check_bound(self.bound * peak, "this multiplication")
        modulus = self.public_key.ciphertext_modulus
        shape, ia, ib = _broadcast(self.shape, array.shape)
        bases = _gather(self._cts, ia)
        if len(integers) == 1:
            k = integers[0]
            cts = kernels.map_chunks(kernels.powmod_scalar, bases, abs(k), modulus)
            if k < 0:
                cts = self._inverted(cts)
        else:
            exponents = _gather(integers, ib)
            pairs = kernels.map_chunks(_powmod_pairs, list(zip(bases, exponents)), modulus, min_chunk=4)
            negative = [i for i, k in enumerate(exponents) if k < 0]
            if negative:
                inverted = self._inverted([pairs[i] for i in negative])
                for i, c in zip(negative, inverted):
                    pairs[i] = c
            cts = pairs
        if any(k == 0 for k in integers):
            cts = self._fresh_zeros(cts)
        return EncryptedArray(self.public_key, cts, shape, self.frac_bits + frac, bound)

    # -- matrix products

    def dot(self, matrix: Any, *, significant_bits: int = DEFAULT_MATVEC_BITS) -> EncryptedArray:
        """``self @ matrix`` for a 1-D array ``d`` (n,) and a plaintext ``X`` (n,) or (n, m).

        Returns the ``m`` ciphertexts ``sum_i X[i, j] * d_i`` (shape ``(m,)``,
        or ``()`` for a 1-D ``X``). Float ``X`` is encoded with
        ``significant_bits`` bits for its largest magnitude (block floating
        point; absolute error per entry <= ``max|X| * 2**-significant_bits``).
        """
        if self.ndim != 1:
            raise ValueError(f"dot needs a 1-D EncryptedArray, got shape {self.shape}")
        matrix = as_array(matrix)
        if matrix.ndim == 1:
            return self.dot(matrix.reshape(-1, 1), significant_bits=significant_bits).reshape(())
        if matrix.ndim != 2 or matrix.shape[0] != self.shape[0]:
            raise ValueError(f"shapes {self.shape} and {matrix.shape} are not aligned for d @ X")
        return self._weighted_column_sums(matrix, significant_bits)

    def __matmul__(self, other: Any) -> EncryptedArray:
        return self.dot(other)

    def __rmatmul__(self, other: Any) -> EncryptedArray:
        # A @ d == d @ A.T
        matrix = as_array(other)
        if matrix.ndim == 1:
            return self.dot(matrix)
        if matrix.ndim != 2:
            raise ValueError(f"cannot multiply a {matrix.ndim}-D array by an EncryptedArray")
        return self.dot(matrix.T)

    def _weighted_column_sums(self, matrix: np.ndarray, significant_bits: int) -> EncryptedArray:
        n_rows, n_cols = matrix.shape
        frac = multiplier_frac_bits(matrix, significant_bits)
        weights = _as_int64_matrix(matrix, frac)
        if weights is None:
            return self._weighted_column_sums_slow(matrix, frac)
        if frac:
            weights, frac = _strip_twos_int64(weights, frac)
        # In Python ints: numpy's abs() of the most negative int64 overflows.
        peak = max(abs(int(weights.min())), abs(int(weights.max()))) if weights.size else 0
        bound = self._check_bound(self.bound * peak * n_rows, "this matrix product")
        modulus = self.public_key.ciphertext_modulus
        if n_rows == 0:
            return self._like(self._fresh_zeros([None] * n_cols), (n_cols,), self.frac_bits + frac, 0)
        lows = weights.min(axis=0)
        highs = weights.max(axis=0)
        offsets = []
        for low, high in zip(lows.tolist(), highs.tolist()):
            # Shift by the column minimum when it makes every weight non-negative or narrower.
            shifted = low < 0 or (low > 0 and (high - low).bit_length() < high.bit_length())
            offsets.append(low if shifted else 0)
        offset_array = np.array(offsets, dtype=np.int64)
        unsigned = weights.astype(np.uint64) - offset_array.astype(np.uint64)  # wraps to the exact difference
        columns, total = kernels.parallel_column_sums(self._cts, unsigned, any(offsets), modulus)
        out: list[mpz | None] = []
        for column, offset in zip(columns, offsets):
            if offset and total is not None:
                # Undo the shift: column j got sum_i (X_ij - o_j) d_i, add o_j * sum_i d_i back.
                correction = gmpy2.powmod(total, abs(offset), modulus)
                if offset < 0:
                    correction = self._inverted([correction])[0]
                column = correction if column is None else column * correction % modulus
            out.append(column)
        return self._like(self._fresh_zeros(out), (n_cols,), self.frac_bits + frac, bound)

    def _weighted_column_sums_slow(self, matrix: np.ndarray, frac: int) -> EncryptedArray:
        # Weights beyond int64 (object arrays of big ints): one exponentiation per entry.
        n_rows, n_cols = matrix.shape
        integers = encode_fixed(matrix, frac)
        peak = max((abs(k) for k in integers), default=0)
        bound = self._check_bound(self.bound * peak * n_rows, "this matrix product")
        modulus = self.public_key.ciphertext_modulus
        column_tasks = [([integers[i * n_cols + j] for i in range(n_rows)],) for j in range(n_cols)]

        def signed_part(weights: list[int], sign: int) -> mpz | None:
            chosen = [(c, sign * k) for c, k in zip(self._cts, weights) if sign * k > 0]
            powers = kernels.powmod_each([c for c, _ in chosen], [k for _, k in chosen], modulus)
            return kernels.product(powers, modulus)

        def column(weights: list[int]) -> mpz | None:
            positive, negative = signed_part(weights, 1), signed_part(weights, -1)
            if negative is None:
                return positive
            inverse = kernels.batch_invert([negative], modulus)[0]
            return inverse if positive is None else positive * inverse % modulus

        out = kernels.run_tasks(column, column_tasks)
        return self._like(self._fresh_zeros(out), (n_cols,), self.frac_bits + frac, bound)

    # -- reductions

    def _group_products(self, groups: np.ndarray) -> list[mpz | None]:
        """Product of the ciphertexts in each row of an index matrix ``(G, L)``."""
        cts, modulus = self._cts, self.public_key.ciphertext_modulus
        n_groups, length = groups.shape
        pieces = 1 if n_groups >= kernels.thread_count() else max(1, min(kernels.thread_count(), length // 64))
        group_ranges = kernels.spans(n_groups, kernels.chunk_count(n_groups, 1)) if pieces == 1 else [(0, n_groups)]
        piece_ranges = kernels.spans(length, pieces)

        def task(g_lo: int, g_hi: int, lo: int, hi: int) -> list[mpz | None]:
            return [kernels.product([cts[i] for i in row], modulus) for row in groups[g_lo:g_hi, lo:hi].tolist()]

        tasks = [(g_lo, g_hi, lo, hi) for g_lo, g_hi in group_ranges for lo, hi in piece_ranges]
        results = kernels.run_tasks(task, tasks)
        if pieces == 1:
            return [x for part in results for x in part]
        return [kernels.product([part[g] for part in results], modulus) for g in range(n_groups)]

    def index_sums(self, index_lists: Sequence[Any]) -> EncryptedArray:
        """Sums of a 1-D array over lists of positions: entry ``g`` is the sum of ``self[i]`` for ``i`` in list ``g``.

        The lists may differ in length, overlap or be empty (a fresh
        encryption of 0), e.g. the rows of each tree node, or each bucket's
        rows when buckets are given as row lists rather than as ids per row
        (then see :func:`bucket_sum`). Returns shape ``(len(index_lists),)``.
        """
        if self.ndim != 1:
            raise ValueError(f"index_sums needs a 1-D EncryptedArray, got shape {self.shape}")
        lists = []
        for ix in index_lists:
            array = np.asarray(ix)
            if array.size == 0:
                array = array.astype(np.int64)
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise ValueError("each index list must be a 1-D list of integer positions")
            if array.size and (array.min() < 0 or array.max() >= self.size):
                raise ValueError(f"positions must lie in [0, {self.size})")
            lists.append(array.tolist())
        longest = max((len(ix) for ix in lists), default=0)
        bound = self._check_bound(self.bound * longest, "these sums")
        cts, modulus = self._cts, self.public_key.ciphertext_modulus

        def task(chunk: list[list[int]]) -> list[mpz | None]:
            return [kernels.product([cts[i] for i in ix], modulus) for ix in chunk]

        ranges = kernels.spans(len(lists), kernels.chunk_count(len(lists), 1))
        parts = kernels.run_tasks(task, [(lists[lo:hi],) for lo, hi in ranges])
        return self._like(self._fresh_zeros([x for part in parts for x in part]), (len(lists),), bound=bound)

    def sum(self, axis: int | None = None) -> EncryptedArray:
        """Sum of all elements (``axis=None``, a 0-d array) or along one axis."""
        grid = self._index_grid()
        if axis is None:
            groups, out_shape = grid.reshape(1, -1), ()
        else:
            axis = axis % max(self.ndim, 1)
            moved = np.moveaxis(grid, axis, -1)
            out_shape = moved.shape[:-1]
            groups = moved.reshape(math.prod(out_shape), self.shape[axis])
        length = groups.shape[1]
        bound = self._check_bound(self.bound * length, "this sum")
        cts = self._fresh_zeros(self._group_products(groups))
        return self._like(cts, out_shape, bound=bound)

    def cumsum(self, axis: int = -1) -> EncryptedArray:
        """Running sums along ``axis`` (e.g. cumulative histograms)."""
        grid = np.moveaxis(self._index_grid(), axis, -1)
        length = grid.shape[-1] if grid.ndim else 1
        bound = self._check_bound(self.bound * length, "this cumulative sum")
        rows = grid.reshape(-1, length).tolist()
        cts, modulus = self._cts, self.public_key.ciphertext_modulus

        def running(block: list[list[int]]) -> list[list[mpz]]:
            out = []
            for row in block:
                acc = None
                sums = []
                for i in row:
                    acc = cts[i] if acc is None else acc * cts[i] % modulus
                    sums.append(acc)
                out.append(sums)
            return out

        ranges = kernels.spans(len(rows), kernels.chunk_count(len(rows), 1))
        blocks = kernels.run_tasks(running, [(rows[lo:hi],) for lo, hi in ranges])
        flat_positions = grid.reshape(-1, length)
        result: list[mpz] = [None] * self.size  # type: ignore[list-item]
        for positions, sums in zip(flat_positions.tolist(), (s for block in blocks for s in block)):
            for position, c in zip(positions, sums):
                result[position] = c
        return self._like(result, self.shape, bound=bound)

    def bucket_sum(self, bucket_ids: Any, n_buckets: int) -> EncryptedArray:
        """See :func:`bucket_sum`."""
        return bucket_sum(self, bucket_ids, n_buckets)

    # -- randomness

    def rerandomize(self, *, circuit_private: bool = True) -> EncryptedArray:
        """Same plaintexts under fresh randomness.

        ``circuit_private=True`` multiplies by an encryption of 0 with
        *uniform* randomness (Paillier: ``r**n`` for uniform ``r``): the
        result is distributed like a fresh encryption even for the key owner,
        who knows the factorisation and so is not bound by the short-exponent
        assumption, hiding how it was computed. ``False`` uses the cheap
        short-exponent randomness of :meth:`HEPublicKey.encrypt` (hides the
        link to the inputs from everyone but the key owner).
        """
        modulus = self.public_key.ciphertext_modulus
        count = self.size
        if circuit_private:
            masks = self.public_key._uniform_zeros(count)
        else:
            masks = self.public_key._encrypt_integers([0] * count)
        return self._like(kernels.parallel_mulmod_pairs(self._cts, masks, modulus), self.shape)


def _powmod_pairs(pairs: Sequence[tuple[mpz, int]], modulus: mpz) -> list[mpz]:
    return kernels.powmod_each([c for c, _ in pairs], [abs(k) for _, k in pairs], modulus)


def _as_int64_matrix(matrix: np.ndarray, frac_bits: int) -> np.ndarray | None:
    """The encoded matrix as int64, or ``None`` if some entry does not fit."""
    if matrix.dtype.kind == "f":
        if matrix.size and not np.isfinite(matrix).all():
            raise ValueError("cannot encode NaN or infinity")
        scaled = np.rint(np.ldexp(matrix.astype(np.float64, copy=False), frac_bits))
        if scaled.size and np.max(np.abs(scaled)) >= 2.0**62:
            return None
        return scaled.astype(np.int64)
    if matrix.dtype.kind in "bi" or (matrix.dtype.kind == "u" and matrix.dtype.itemsize < 8):
        return matrix.astype(np.int64)
    integers = encode_fixed(matrix, frac_bits)
    if any(not -(1 << 62) <= k < (1 << 62) for k in integers):
        return None
    return np.array(integers, dtype=np.int64).reshape(matrix.shape)


def _strip_twos_int64(weights: np.ndarray, frac_bits: int) -> tuple[np.ndarray, int]:
    nonzero = weights[weights != 0]
    if nonzero.size == 0:
        return weights, 0
    lowest = np.bitwise_and(nonzero, -nonzero)  # lowest set bit of each entry
    common = min(frac_bits, int(np.log2(lowest.min())))
    return weights >> common, frac_bits - common


def bucket_sum(encrypted: EncryptedArray, bucket_ids: Any, n_buckets: int) -> EncryptedArray:
    """Sums of ciphertexts grouped by bucket, for one or many features at once.

    ``encrypted`` has shape ``(n,)``; ``bucket_ids`` is ``(n,)`` or
    ``(n, m)`` integers in ``[0, n_buckets)``. Returns shape
    ``(n_buckets,)`` or ``(m, n_buckets)``: entry ``[j, b]`` is the sum of
    ``encrypted[i]`` over rows with ``bucket_ids[i, j] == b`` (a fresh
    encryption of 0 for an empty bucket). This is the SecureBoost histogram.

    When ``n_buckets**k`` is small next to ``n``, ``k`` features are bucketed
    jointly (one multiplication per row for all ``k``) and each feature's
    sums are read off the joint table.
    """
    if not isinstance(encrypted, EncryptedArray) or encrypted.ndim != 1:
        raise ValueError("bucket_sum needs a 1-D EncryptedArray")
    ids = np.asarray(bucket_ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"bucket ids must be integers, got dtype {ids.dtype}")
    single = ids.ndim == 1
    if single:
        ids = ids.reshape(-1, 1)
    if ids.ndim != 2 or ids.shape[0] != encrypted.shape[0]:
        raise ValueError(f"bucket ids of shape {np.shape(bucket_ids)} do not match {encrypted.shape[0]} rows")
    n_buckets = int(n_buckets)
    if n_buckets < 1:
        raise ValueError("n_buckets must be >= 1")
    if ids.size and (ids.min() < 0 or ids.max() >= n_buckets):
        raise ValueError(f"bucket ids must lie in [0, {n_buckets})")
    n_features = ids.shape[1]
    ids = ids.astype(np.int64, copy=False)
    max_count = max((int(np.bincount(ids[:, j], minlength=1).max()) for j in range(n_features)), default=0)
    bound = encrypted._check_bound(encrypted.bound * max_count, "this bucket sum")
    cts = kernels.parallel_bucket_tables(encrypted._cts, ids, n_buckets, encrypted.public_key.ciphertext_modulus)
    shape = (n_buckets,) if single else (n_features, n_buckets)
    return encrypted._like(encrypted._fresh_zeros(cts), shape, bound=bound)


def concatenate(arrays: Sequence[EncryptedArray], axis: int = 0) -> EncryptedArray:
    """Join arrays under the same key along an existing axis (scales are aligned up)."""
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    first = arrays[0]
    for other in arrays[1:]:
        first._same_key(other)
    frac_bits = max(a.frac_bits for a in arrays)
    aligned = [a._rescaled(frac_bits) for a in arrays]
    pool: list[mpz] = []
    grids = []
    for a in aligned:
        grids.append(a._index_grid() + len(pool))
        pool.extend(a._cts)
    index = np.concatenate(grids, axis=axis)
    bound = max(a.bound for a in aligned)
    return EncryptedArray(first.public_key, [pool[i] for i in index.ravel().tolist()], index.shape, frac_bits, bound)


# ----------------------------------------------------------------- packing


@dataclass(frozen=True)
class SlotPacker:
    """Pack several small non-negative integers into one plaintext, and back.

    Slot ``t`` of a packed value occupies bits ``[t*slot_bits, (t+1)*slot_bits)``.
    Adding packed plaintexts adds every slot at once, *provided no slot
    carries into the next one*. :meth:`for_sums` sizes the slots so that
    the sum of up to ``max_terms`` values, each at most ``max_value``,
    always fits: ``slot_bits = bit_length(max_value * max_terms)``.
    :meth:`pack` refuses values above ``max_value``; the caller must not
    add more than ``max_terms`` packed values before unpacking (a bucket
    sum over ``n`` rows adds at most ``n``).

    SecureBoost example: gradients ``g`` in ``[-1, 1]`` and hessians ``h``
    in ``[0, 1]`` with 24 fractional bits for ``n`` rows::

        packer = SlotPacker.for_sums(max_value=2 << 24, max_terms=n, n_slots=2)
        packer.check_key(public_key)
        g_int = np.rint((g + 1) * 2**24).astype(np.int64)   # shift to >= 0
        h_int = np.rint(h * 2**24).astype(np.int64)
        enc = public_key.encrypt_int(packer.pack(np.stack([g_int, h_int], axis=1)))
        hist = enc.bucket_sum(bins, 32)
        sums = packer.unpack(private_key.decrypt_int(hist).ravel())
        # g sums: (sums[:, 0] - count * 2**24) / 2**24 ; h sums: sums[:, 1] / 2**24
    """

    slot_bits: int
    n_slots: int
    max_value: int

    @classmethod
    def for_sums(cls, max_value: int, max_terms: int, n_slots: int) -> SlotPacker:
        if max_value < 0 or max_terms < 1 or n_slots < 1:
            raise ValueError("need max_value >= 0, max_terms >= 1 and n_slots >= 1")
        return cls(slot_bits=max(1, (max_value * max_terms).bit_length()), n_slots=n_slots, max_value=max_value)

    @property
    def total_bits(self) -> int:
        return self.slot_bits * self.n_slots

    @staticmethod
    def capacity(public_key: HEPublicKey, slot_bits: int) -> int:
        """How many ``slot_bits``-bit slots fit below the key's ``max_int``."""
        return (public_key.max_int.bit_length() - 1) // slot_bits

    def check_key(self, public_key: HEPublicKey) -> None:
        """Raise PlaintextOverflowError if packed sums could exceed the key's range."""
        if self.total_bits > public_key.max_int.bit_length() - 1:
            raise PlaintextOverflowError(
                f"{self.n_slots} slots of {self.slot_bits} bits need {self.total_bits} bits; "
                f"a {public_key.bits}-bit key holds {public_key.max_int.bit_length() - 1}"
            )

    def pack(self, values: Any) -> list[int]:
        """Rows of ``n_slots`` integers in ``[0, max_value]`` -> one integer per row."""
        array = np.asarray(values)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.n_slots:
            raise ValueError(f"expected rows of {self.n_slots} slots, got shape {np.shape(values)}")
        if array.dtype.kind not in "iuO" or (array.dtype == object and not all(isinstance(v, int) for v in array.flat)):
            raise ValueError("packed slots must be integers")
        rows = array.tolist()
        packed = []
        for row in rows:
            word = 0
            for t, value in enumerate(row):
                value = int(value)
                if not 0 <= value <= self.max_value:
                    raise PlaintextOverflowError(f"slot values must lie in [0, {self.max_value}]")
                word |= value << (t * self.slot_bits)
            packed.append(word)
        return packed

    def unpack(self, packed: Iterable[int]) -> np.ndarray:
        """Packed (possibly summed) integers -> array ``(rows, n_slots)`` of Python ints."""
        mask = (1 << self.slot_bits) - 1
        rows = []
        for word in packed:
            word = int(word)
            if word < 0 or word.bit_length() > self.total_bits:
                raise PlaintextOverflowError("a packed value is negative or wider than its slots")
            rows.append([(word >> (t * self.slot_bits)) & mask for t in range(self.n_slots)])
        out = np.empty((len(rows), self.n_slots), dtype=object)
        for i, row in enumerate(rows):
            out[i, :] = row
        return out
