"""Pieces of the SecureBoost protocol shared by both roles: encodings, packing, checks.

Everything here is a pure function or a small value class; the message flow is
in :mod:`engine.components.secureboost.guest` and ``.host``, and the message
table with the security statement in the package docstring
(:mod:`engine.components.secureboost`).

Gradient encoding (one plaintext per sample)
============================================
With ``F = precision_bits`` the guest has integers ``Gq = rint(g * 2**F)`` in
``[-2**F, 2**F]`` and ``Hq = rint(h * 2**F)`` in ``[0, 2**(F-2)]`` (``h <= 1/4``).
Sample ``i`` is encrypted as the single signed plaintext::

    P_i = Gq_i * 2**S + Hq_i        with S = bit_length(n * 2**(F-2))

so that for any set of at most ``n`` rows the sum ``P = G * 2**S + H`` has
``0 <= H < 2**S`` and decodes exactly: ``H = P mod 2**S``,
``G = (P - H) / 2**S``. No offset is needed for the signed ``G`` (both
schemes carry negatives as ``M - |k|`` modulo their plaintext space), so the
guest never needs per-bin counts to undo one. ``|P_i| <= 2**(F+S) + 2**(F-2)`` (:attr:`Layout.sample_bound`).

Histogram packing (several (G, H) pairs per ciphertext)
=======================================================
A cumulative histogram entry of a node with ``r`` rows satisfies
``|P| <= r * sample_bound < 2**(W-1)`` with ``W = bit_length(r * sample_bound) + 1``
(:meth:`Layout.pair_width`). ``k = (bit_length(max_int) - 1) // W`` entries go
into one plaintext as ``sum_t P_t * 2**(t*W)`` (:func:`pack`), computed by the
host under encryption by Horner's rule (``k - 1`` multiplications of a
ciphertext by ``2**W``, i.e. ``W`` squarings, per entry). The guest decodes
the digits as *centred* base-``2**W`` digits (:func:`unpack_pairs`), which is
exact because every ``|P_t| < 2**(W-1)``, and the packed total stays below
``2**(k*W) <= max_int``. With 2048-bit keys, ``F = 20`` and 100,000 rows,
``S = 35`` and ``W = 74`` at the root: 27 pairs per Paillier ciphertext
(``max_int`` of 2047 bits), so a node with 640 split candidates costs 24
decryptions instead of 1,280; 9 per Okamoto-Uchiyama ciphertext (681 bits),
so 72 decryptions, each about 9 times cheaper.

The scheme (``he_scheme``)
==========================
The guest's ``hello`` names the scheme and carries the exported public key
(``PublicKey.to_bytes()`` of :mod:`engine.crypto.paillier` or
:mod:`engine.crypto.ou`); the host refuses a scheme other than the one its
own job settings name and imports the key with that scheme's own checks
(:func:`read_public_key`). Nothing else in the protocol depends on the
scheme: :func:`slots_per_ciphertext` reads the key's ``max_int``, and
ciphertexts travel as :class:`~engine.wire.BigIntArray` whatever their width.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from engine.crypto import he
from engine.crypto.he import EncryptedArray, HEPublicKey, concatenate
from engine.crypto.paillier import thread_count
from engine.errors import InvalidInput, InvalidParameters, ProtocolError

__all__ = [
    "PROTOCOL",
    "Layout",
    "check_same_scheme",
    "ids_digest",
    "new_opaque_ids",
    "pack",
    "pack_mask",
    "public_key_fields",
    "read_public_key",
    "secure_permutation",
    "slots_per_ciphertext",
    "unpack_mask",
    "unpack_pairs",
]

# v2: the hello names the scheme and carries the exported key (v1 sent Paillier's n as an integer).
PROTOCOL = "fedweb-secureboost-v2"
_PARALLEL_GROUPS = 64  # from here on the HE kernels split each step over threads themselves
PREDICT_PROTOCOL = "fedweb-secureboost-predict-v1"

SCHEME_NAMES = {"paillier": "Paillier", "ou": "Okamoto-Uchiyama"}
MAX_KEY_BITS = 8192
"""The largest modulus a job may ask for (``key_bits``): a longer announced key is refused unread."""


@dataclass(frozen=True)
class Layout:
    """How ``(Gq, Hq)`` pairs are laid out in plaintexts (see the module docstring)."""

    frac_bits: int
    h_bits: int

    @classmethod
    def for_rows(cls, frac_bits: int, n_rows: int) -> Layout:
        return cls(frac_bits, max(1, (max(n_rows, 1) << (frac_bits - 2)).bit_length()))

    @property
    def sample_bound(self) -> int:
        """Upper bound on ``|P_i|`` for one sample."""
        return (1 << (self.frac_bits + self.h_bits)) + (1 << (self.frac_bits - 2))

    def encode(self, gq: np.ndarray, hq: np.ndarray) -> list[int]:
        """``Gq * 2**S + Hq`` per sample, as Python ints (may exceed int64)."""
        if gq.size and (np.abs(gq).max() > 1 << self.frac_bits or hq.min() < 0
                        or hq.max() > 1 << (self.frac_bits - 2)):
            raise ValueError("quantised gradients are out of the layout's range")
        shift = self.h_bits
        if self.frac_bits + shift < 62:
            return ((gq.astype(np.int64) << shift) + hq.astype(np.int64)).tolist()
        return [(int(g) << shift) + int(h) for g, h in zip(gq.tolist(), hq.tolist())]

    def decode(self, value: int) -> tuple[int, int]:
        """``(G, H)`` from a decrypted sum ``G * 2**S + H``."""
        h = value & ((1 << self.h_bits) - 1)  # Python's & on negatives is two's complement: h >= 0
        return (value - h) >> self.h_bits, h

    def pair_width(self, rows: int) -> int:
        """Bits per packed entry for sums over at most ``rows`` rows (sign included)."""
        return (max(rows, 1) * self.sample_bound).bit_length() + 1


def slots_per_ciphertext(public_key: HEPublicKey, width: int) -> int:
    """How many ``width``-bit entries fit below the key's ``max_int``."""
    slots = (public_key.max_int.bit_length() - 1) // width
    if slots < 1:
        raise ProtocolError(f"a {public_key.bits}-bit key cannot hold one {width}-bit histogram entry")
    return slots


def pack(values: EncryptedArray, entry_bound: int, width: int, slots: int) -> EncryptedArray:
    """Pack encrypted entries ``slots`` per ciphertext: ``sum_t P_t * 2**(t*width)``.

    ``entry_bound`` is the true bound on every ``|P_t|`` (the protocol knows it
    from row counts; the array's own tracked bound only grows with each
    homomorphic step and would overstate it). Entry ``i`` lands in ciphertext
    ``i // slots``, digit ``i % slots``. Horner's rule from the top digit: each
    step multiplies by ``2**width`` (``width`` squarings) and adds the next digit.
    """
    if entry_bound >= 1 << (width - 1):
        raise ValueError("entries do not fit the packing width")
    count = values.size
    exact = EncryptedArray.from_ciphertexts(
        values.public_key, values.ciphertexts, (count,), frac_bits=0, bound=entry_bound
    )
    groups = max(1, math.ceil(count / slots))
    padding = groups * slots - count
    if padding:
        exact = concatenate([exact, values.public_key.encrypt_zeros(padding, frac_bits=0)])
    grid = exact.reshape(groups, slots)
    shift = 1 << width

    def horner(lo: int, hi: int) -> EncryptedArray:
        part = grid[lo:hi]
        packed = part[:, slots - 1]
        for t in range(slots - 2, -1, -1):
            packed = packed.mul(shift) + part[:, t]
        return packed

    threads = thread_count()
    if threads < 2 or groups < 2 or groups >= _PARALLEL_GROUPS:
        # Large levels: every step is already spread over the threads by the HE kernels.
        return horner(0, groups)
    # Small levels (the root has ~25 packed ciphertexts): each step would be too small for
    # the kernels to split, so run whole Horner chains side by side instead.
    bounds = [groups * k // threads for k in range(threads + 1)]
    spans = [(lo, hi) for lo, hi in pairwise(bounds) if hi > lo]
    with ThreadPoolExecutor(max_workers=len(spans)) as pool:
        parts = list(pool.map(lambda span: horner(*span), spans))
    return concatenate(parts)


def packed_bound(entry_bound: int, width: int, slots: int) -> int:
    """Bound on a packed plaintext (what the guest accepts when decrypting)."""
    return sum(entry_bound << (t * width) for t in range(slots))


def unpack_pairs(packed: Iterable[int], width: int, slots: int, count: int) -> list[int]:
    """The first ``count`` centred base-``2**width`` digits of the packed values, in order."""
    half = 1 << (width - 1)
    mask = (1 << width) - 1
    out: list[int] = []
    for value in packed:
        value = int(value)
        for _ in range(slots):
            digit = ((value + half) & mask) - half
            out.append(digit)
            value = (value - digit) >> width
        if value != 0:
            raise ProtocolError("a packed histogram has more digits than announced")
    if len(out) < count:
        raise ProtocolError("a packed histogram holds fewer entries than announced")
    return out[:count]


# ------------------------------------------------------------ the public key


def scheme_text(name: Any) -> str:
    """How messages name a scheme: ``Okamoto-Uchiyama (he_scheme='ou')``."""
    return f"{SCHEME_NAMES.get(name, 'an unknown scheme')} (he_scheme={name!r})"


def public_key_fields(public_key: HEPublicKey) -> dict[str, Any]:
    """What the guest's ``hello`` says about its key: the scheme's name and the exported key."""
    return {"he_scheme": public_key.scheme_name, "public_key": public_key.to_bytes()}


def check_same_scheme(announced: Any, expected: str, peer: str) -> None:
    """Refuse a peer whose ``hello`` names another scheme than this party's ``he_scheme``, naming both."""
    expect(isinstance(announced, str) and announced in he.SCHEMES,
           f"hello: the {peer} announces an unknown encryption scheme {announced!r}")
    if announced != expected:
        raise InvalidParameters(
            f"the {peer} is set to {scheme_text(announced)} and this party to {scheme_text(expected)}: "
            "both parties must train with the same he_scheme", param="he_scheme")


def max_public_key_bytes(name: str) -> int:
    """Length of the largest key a job may use, exported (Paillier: ``n``; OU: a header, ``n``, ``G``, ``H``)."""
    width = MAX_KEY_BITS // 8
    return width if name == "paillier" else 3 + 3 * width


def read_public_key(hello: dict[str, Any], expected: str, *, min_bits: int,
                    insecure_allow_small_keys: bool) -> HEPublicKey:
    """The guest's public key from its ``hello``, after checking it is of this party's scheme and size.

    ``expected`` is this party's own ``he_scheme``: both parties run the same
    job spec, so another announcement means the settings differ (or the peer
    is not who it should be), and training does not start. The key's length
    is checked before it is read; it is imported by its scheme's own
    ``PublicKey.from_bytes`` (form and size checks) and must have at least
    ``min_bits`` bits (this party's ``key_bits``).
    """
    announced = hello.get("he_scheme")
    check_same_scheme(announced, expected, "guest")
    name = SCHEME_NAMES[announced]
    data = hello.get("public_key")
    expect(isinstance(data, bytes) and 0 < len(data) <= max_public_key_bytes(announced),
           f"hello: the public key must be an exported {name} key of at most {MAX_KEY_BITS} bits")
    try:
        public_key = he.scheme(announced).PublicKey.from_bytes(
            data, insecure_allow_small_keys=insecure_allow_small_keys)
    except he.HomomorphicError as exc:
        raise ProtocolError(f"hello: the guest's {name} public key is not acceptable: {exc}") from None
    if public_key.bits < min_bits:
        # The host applies its own key-size policy to the guest's key.
        raise InvalidInput(f"the guest's {name} key has {public_key.bits} bits; this party requires {min_bits}",
                           input="data")
    return public_key


# ----------------------------------------------------------------- helpers


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A boolean row mask as bits (uint8), 8 rows per byte."""
    return np.packbits(np.asarray(mask, dtype=bool))


def unpack_mask(bits: Any, rows: int, what: str) -> np.ndarray:
    """Inverse of :func:`pack_mask`; checks the size (a peer's message is untrusted)."""
    if not isinstance(bits, np.ndarray) or bits.dtype != np.uint8 or bits.ndim != 1:
        raise ProtocolError(f"{what}: expected a uint8 bit array")
    if bits.size != (rows + 7) // 8:
        raise ProtocolError(f"{what}: {bits.size} bytes cannot describe {rows} rows")
    return np.unpackbits(bits, count=rows).astype(bool)


def ids_digest(salt: bytes, ids: Sequence[str]) -> bytes:
    """SHA-256 over the salted, length-prefixed ids in order: equal iff rows are aligned."""
    digest = hashlib.sha256(b"fedweb-secureboost-ids\x00" + salt)
    for text in ids:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def secure_permutation(count: int) -> np.ndarray:
    """A uniformly random permutation from the OS's CSPRNG."""
    order = list(range(count))
    secrets.SystemRandom().shuffle(order)
    return np.array(order, dtype=np.int64)


def new_opaque_ids(count: int, taken: set[int] | None = None) -> np.ndarray:
    """``count`` distinct random 63-bit ids (nothing about a candidate can be read from its id)."""
    taken = set() if taken is None else taken
    out = []
    while len(out) < count:
        value = secrets.randbits(63)
        if value not in taken:
            taken.add(value)
            out.append(value)
    return np.array(out, dtype=np.int64)


def split_id_text(value: int) -> str:
    """The printable form of an opaque split id (what models store)."""
    return f"{int(value):016x}"


def expect(condition: bool, message: str) -> None:
    """Raise :class:`ProtocolError` unless ``condition`` (checks on a peer's messages)."""
    if not condition:
        raise ProtocolError(message)


def int_list(value: Any, what: str) -> list[int]:
    """A list of ints from a peer (a list or an integer array), or a ProtocolError."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim == 1:
        return [int(v) for v in value.tolist()]
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise ProtocolError(f"{what}: expected a list of integers")
