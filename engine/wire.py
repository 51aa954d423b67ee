"""The wire format: how every value that crosses between parties is encoded.

Federated messages leave one organisation and are parsed by another, so the
format is explicit, typed and versioned, and the decoder treats its input as
hostile: it never evaluates, never unpickles, never allocates more than the
message itself justifies, and raises only :class:`~engine.errors.WireError`
on malformed input, whatever the bytes.

Layout
======

A message is ``MAGIC (b"FWW") | VERSION (1 byte, currently 1) | value``.
A value is a one-byte tag followed by its body. ``uvarint`` is an unsigned
LEB128 integer (7 bits per byte, least significant group first, at most 10
bytes, no redundant trailing zero groups).

====  ===========  ==========================================================
tag   type         body
====  ===========  ==========================================================
0x00  None         (empty)
0x01  False        (empty)
0x02  True         (empty)
0x03  int          uvarint n (n >= 1), then n bytes, two's complement, big-endian
0x04  float        8 bytes IEEE 754 binary64, little-endian
0x05  str          uvarint n, then n bytes of UTF-8 (strict)
0x06  bytes        uvarint n, then n bytes
0x07  list         uvarint count, then count values
0x08  dict         uvarint count, then count pairs: key (uvarint n + n UTF-8
                   bytes, no tag: keys are always str), value. Keys are unique.
0x09  ndarray      dtype code (1 byte), ndim (1 byte), ndim uvarint dims, then
                   prod(dims) * itemsize bytes, C order, little-endian
0x0A  BigIntArray  ndim (1 byte), ndim uvarint dims, uvarint width, then
                   prod(dims) * width bytes: each value unsigned big-endian,
                   zero-padded to ``width`` (width >= 1 when there are values)
====  ===========  ==========================================================

ndarray dtype codes: 1 bool, 2 int8, 3 int16, 4 int32, 5 int64, 6 uint8,
7 uint16, 8 uint32, 9 uint64, 10 float32, 11 float64. Bool array bytes must be
0 or 1. No other dtype (object, strings, structured, complex) is accepted.

Python mapping
==============

Encoding accepts exactly: ``None``, ``bool``, ``int`` (and other integrals such
as ``numpy.int64`` or ``gmpy2.mpz``, sent as int), ``float`` (and numpy
floating scalars, sent as float64), ``str``, ``bytes`` (and ``bytearray`` /
``memoryview``, sent as bytes), ``list``, ``dict`` with ``str`` keys,
``numpy.ndarray`` with an allowed dtype, and :class:`BigIntArray`. Tuples,
sets and anything else are refused with :class:`WireError` rather than
silently converted: say what you mean with a list.

Decoding yields ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``list``, ``dict``, writable ``numpy.ndarray`` (native little-endian dtype) and
:class:`BigIntArray` (values as Python ``int``).

Limits (:class:`Limits`) bound nesting depth, element counts, byte lengths and
integer sizes, on both encode and decode.
"""

from __future__ import annotations

import math
import numbers
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import WireError

__all__ = [
    "MAGIC",
    "VERSION",
    "BigIntArray",
    "Limits",
    "DEFAULT_LIMITS",
    "encode",
    "decode",
]

MAGIC = b"FWW"
VERSION = 1

_T_NONE = 0x00
_T_FALSE = 0x01
_T_TRUE = 0x02
_T_INT = 0x03
_T_FLOAT = 0x04
_T_STR = 0x05
_T_BYTES = 0x06
_T_LIST = 0x07
_T_DICT = 0x08
_T_NDARRAY = 0x09
_T_BIGINTS = 0x0A

# Allow-list of array dtypes. Codes are part of the format: never renumber.
_DTYPE_TO_CODE: dict[np.dtype, int] = {
    np.dtype("bool"): 1,
    np.dtype("<i1"): 2,
    np.dtype("<i2"): 3,
    np.dtype("<i4"): 4,
    np.dtype("<i8"): 5,
    np.dtype("<u1"): 6,
    np.dtype("<u2"): 7,
    np.dtype("<u4"): 8,
    np.dtype("<u8"): 9,
    np.dtype("<f4"): 10,
    np.dtype("<f8"): 11,
}
_CODE_TO_DTYPE: dict[int, np.dtype] = {code: dt for dt, code in _DTYPE_TO_CODE.items()}

_FLOAT = struct.Struct("<d")


@dataclass(frozen=True)
class Limits:
    """Bounds enforced by :func:`encode` and :func:`decode`.

    The defaults allow anything a federated job legitimately sends (arrays of a
    few GB, ciphertexts of 8192 bits) while stopping pathological inputs
    (deep nesting, absurd lengths) before they cost memory or stack.
    """

    max_depth: int = 64
    """Maximum nesting of lists/dicts (a scalar at top level has depth 0)."""
    max_length: int = 1 << 32
    """Maximum elements in a list/dict/array and bytes in a str/bytes value."""
    max_int_bytes: int = 1 << 16
    """Maximum size in bytes of one int, or of one BigIntArray element."""
    max_ndim: int = 32
    """Maximum number of array dimensions."""


DEFAULT_LIMITS = Limits()


class BigIntArray:
    """An array of arbitrarily large non-negative integers (e.g. ciphertexts).

    On the wire every element takes the same number of bytes (the largest
    element's byte length, recorded once), so a million 4096-bit Paillier
    ciphertexts cost 512 MB and no per-element framing.

    ``values`` is a flat sequence in C order; ``shape`` defaults to
    ``(len(values),)``. Elements may be ``int`` or ``gmpy2.mpz``; decoded
    arrays hold ``int`` (convert with :meth:`to_mpz` when you need gmpy2 speed).
    """

    __slots__ = ("values", "shape")

    def __init__(self, values: Sequence[Any], shape: Iterable[int] | None = None):
        self.values = values if isinstance(values, list) else list(values)
        if shape is None:
            shape = (len(self.values),)
        self.shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in self.shape):
            raise WireError(f"BigIntArray shape {self.shape} has a negative dimension")
        if math.prod(self.shape) != len(self.values):
            raise WireError(
                f"BigIntArray has {len(self.values)} values but shape {self.shape} "
                f"needs {math.prod(self.shape)}"
            )

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __getitem__(self, index: int) -> Any:
        return self.values[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BigIntArray):
            return NotImplemented
        return self.shape == other.shape and all(
            int(a) == int(b) for a, b in zip(self.values, other.values, strict=True)
        )

    __hash__ = None  # mutable container semantics, like list

    def __repr__(self) -> str:
        head = ", ".join(str(v) for v in self.values[:3])
        more = ", ..." if len(self.values) > 3 else ""
        return f"BigIntArray([{head}{more}], shape={self.shape})"

    def to_mpz(self) -> list[Any]:
        """The values as ``gmpy2.mpz`` (imports gmpy2 on first use)."""
        import gmpy2

        return [gmpy2.mpz(v) for v in self.values]


# =============================================================================
# Encoding
# =============================================================================


def encode(value: Any, *, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Encode ``value`` into a wire message.

    Raises :class:`WireError` for types outside the format, non-str dict keys,
    disallowed array dtypes, negative BigIntArray values, values beyond
    ``limits`` (including reference cycles, which exceed ``max_depth``) and
    strings that are not valid Unicode (lone surrogates).
    """
    out: list[bytes] = [MAGIC, bytes([VERSION])]
    _encode_value(value, out, 0, limits)
    return b"".join(out)


def _uvarint(n: int) -> bytes:
    parts = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            parts.append(low | 0x80)
        else:
            parts.append(low)
            return bytes(parts)


def _check_length(n: int, what: str, limits: Limits) -> None:
    if n > limits.max_length:
        raise WireError(f"{what} of length {n} exceeds the limit of {limits.max_length}")


def _encode_value(value: Any, out: list[bytes], depth: int, limits: Limits) -> None:
    # bool before int: bool is a subclass of int.
    if value is None:
        out.append(b"\x00")
    elif value is True or value is False or isinstance(value, np.bool_):
        out.append(b"\x02" if value else b"\x01")
    elif type(value) is int or isinstance(value, numbers.Integral):
        _encode_int(int(value), out, limits)
    elif isinstance(value, (float, np.floating)):
        out.append(bytes([_T_FLOAT]) + _FLOAT.pack(float(value)))
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise WireError(f"string is not valid Unicode: {exc.reason}") from None
        _check_length(len(raw), "str", limits)
        out.append(bytes([_T_STR]) + _uvarint(len(raw)))
        out.append(raw)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        _check_length(len(raw), "bytes", limits)
        out.append(bytes([_T_BYTES]) + _uvarint(len(raw)))
        out.append(raw)
    elif isinstance(value, list):
        if depth >= limits.max_depth:
            raise WireError(f"nesting deeper than {limits.max_depth} (or a reference cycle)")
        _check_length(len(value), "list", limits)
        out.append(bytes([_T_LIST]) + _uvarint(len(value)))
        for item in value:
            _encode_value(item, out, depth + 1, limits)
    elif isinstance(value, dict):
        if depth >= limits.max_depth:
            raise WireError(f"nesting deeper than {limits.max_depth} (or a reference cycle)")
        _check_length(len(value), "dict", limits)
        out.append(bytes([_T_DICT]) + _uvarint(len(value)))
        for key, item in value.items():
            if not isinstance(key, str):
                raise WireError(f"dict keys must be str, got {type(key).__name__}")
            try:
                raw_key = key.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise WireError(f"dict key is not valid Unicode: {exc.reason}") from None
            _check_length(len(raw_key), "dict key", limits)
            out.append(_uvarint(len(raw_key)))
            out.append(raw_key)
            _encode_value(item, out, depth + 1, limits)
    elif isinstance(value, np.ndarray):
        _encode_ndarray(value, out, limits)
    elif isinstance(value, BigIntArray):
        _encode_bigints(value, out, limits)
    else:
        raise WireError(
            f"type {type(value).__module__}.{type(value).__qualname__} cannot be sent "
            "(allowed: None, bool, int, float, str, bytes, list, dict[str, ...], "
            "numpy.ndarray, BigIntArray)"
        )


def _encode_int(n: int, out: list[bytes], limits: Limits) -> None:
    # Enough bytes for the magnitude plus a sign bit.
    size = n.bit_length() // 8 + 1
    if size > limits.max_int_bytes:
        raise WireError(f"int of {size} bytes exceeds the limit of {limits.max_int_bytes}")
    out.append(bytes([_T_INT]) + _uvarint(size))
    out.append(n.to_bytes(size, "big", signed=True))


def _encode_shape(shape: tuple[int, ...], limits: Limits) -> bytes:
    if len(shape) > limits.max_ndim:
        raise WireError(f"array with {len(shape)} dimensions exceeds the limit of {limits.max_ndim}")
    for dim in shape:
        _check_length(dim, "array dimension", limits)
    _check_length(math.prod(d or 1 for d in shape), "array", limits)
    return bytes([len(shape)]) + b"".join(_uvarint(d) for d in shape)


def _encode_ndarray(arr: np.ndarray, out: list[bytes], limits: Limits) -> None:
    wire_dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    code = _DTYPE_TO_CODE.get(wire_dtype)
    if code is None:
        raise WireError(
            f"numpy dtype {arr.dtype} cannot be sent (allowed: bool, int8..int64, "
            "uint8..uint64, float32, float64)"
        )
    header = bytes([_T_NDARRAY, code]) + _encode_shape(arr.shape, limits)
    data = np.ascontiguousarray(arr, dtype=wire_dtype)
    out.append(header)
    out.append(data.tobytes())


def _encode_bigints(arr: BigIntArray, out: list[bytes], limits: Limits) -> None:
    values = arr.values
    width = 0
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise WireError(f"BigIntArray values must be integers, got {type(v).__name__}")
        if v < 0:
            raise WireError("BigIntArray values must be non-negative")
        width = max(width, v.bit_length())
    width = (width + 7) // 8
    if values and width == 0:
        width = 1  # all zeros: still one byte each, so the count is recoverable
    if width > limits.max_int_bytes:
        raise WireError(
            f"BigIntArray element of {width} bytes exceeds the limit of {limits.max_int_bytes}"
        )
    out.append(bytes([_T_BIGINTS]) + _encode_shape(arr.shape, limits) + _uvarint(width))
    # int and gmpy2.mpz both provide to_bytes(length, byteorder).
    out.append(b"".join(v.to_bytes(width, "big") for v in values))


# =============================================================================
# Decoding
# =============================================================================


def decode(data: bytes | bytearray | memoryview, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one wire message (the whole buffer; trailing bytes are an error).

    Raises only :class:`WireError`, for any malformed, truncated, oversized or
    unsupported input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"can only decode bytes, got {type(data).__name__}")
    try:
        reader = _Reader(memoryview(data).cast("B"), limits)
        reader.expect_header()
        value = reader.value(0)
        if reader.pos != len(reader.buf):
            raise WireError(f"{len(reader.buf) - reader.pos} trailing bytes after the value")
        return value
    except WireError:
        raise
    except (ValueError, TypeError, OverflowError, IndexError, struct.error) as exc:
        # Safety net: every malformed case is meant to be caught explicitly
        # above; this keeps the "only WireError" contract if one slips through.
        raise WireError(f"malformed message: {exc}") from None


class _Reader:
    """A cursor over a message buffer; every read checks the bytes exist."""

    def __init__(self, buf: memoryview, limits: Limits):
        self.buf = buf
        self.pos = 0
        self.limits = limits

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise WireError(
                f"truncated message: need {n} bytes at offset {self.pos}, "
                f"{len(self.buf) - self.pos} left"
            )
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise WireError(f"truncated message at offset {self.pos}")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def uvarint(self) -> int:
        result = 0
        for i in range(10):
            b = self.byte()
            result |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if b == 0 and i > 0:
                    raise WireError("non-canonical varint (redundant zero group)")
                return result
        raise WireError("varint longer than 10 bytes")

    def length(self, what: str, min_bytes_each: int = 1) -> int:
        """Read a count and check it is plausible before anything is allocated."""
        n = self.uvarint()
        if n > self.limits.max_length:
            raise WireError(f"{what} of length {n} exceeds the limit of {self.limits.max_length}")
        if n * min_bytes_each > self.remaining():
            raise WireError(
                f"truncated message: {what} announces {n} items but only "
                f"{self.remaining()} bytes remain"
            )
        return n

    def expect_header(self) -> None:
        if bytes(self.take(len(MAGIC))) != MAGIC:
            raise WireError("not a wire message (bad magic)")
        version = self.byte()
        if version != VERSION:
            raise WireError(f"unsupported wire version {version} (this engine reads {VERSION})")

    def text(self, what: str) -> str:
        n = self.length(what)
        raw = self.take(n)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise WireError(f"{what} is not valid UTF-8") from None

    def shape(self) -> tuple[int, ...]:
        ndim = self.byte()
        if ndim > self.limits.max_ndim:
            raise WireError(f"array with {ndim} dimensions exceeds the limit of {self.limits.max_ndim}")
        dims = []
        for _ in range(ndim):
            d = self.uvarint()
            if d > self.limits.max_length:
                raise WireError(f"array dimension {d} exceeds the limit of {self.limits.max_length}")
            dims.append(d)
        # Zero-length dimensions included: numpy refuses shapes like (0, 2**32, 2**32)
        # whose other dimensions overflow, even though they hold no element.
        count = math.prod(d or 1 for d in dims)
        if count > self.limits.max_length:
            raise WireError(f"array of {count} elements exceeds the limit of {self.limits.max_length}")
        return tuple(dims)

    def value(self, depth: int) -> Any:
        tag = self.byte()
        if tag == _T_NONE:
            return None
        if tag == _T_FALSE:
            return False
        if tag == _T_TRUE:
            return True
        if tag == _T_INT:
            n = self.uvarint()
            if n == 0:
                raise WireError("int with zero length")
            if n > self.limits.max_int_bytes:
                raise WireError(f"int of {n} bytes exceeds the limit of {self.limits.max_int_bytes}")
            return int.from_bytes(self.take(n), "big", signed=True)
        if tag == _T_FLOAT:
            return _FLOAT.unpack(self.take(8))[0]
        if tag == _T_STR:
            return self.text("str")
        if tag == _T_BYTES:
            return bytes(self.take(self.length("bytes")))
        if tag == _T_LIST:
            if depth >= self.limits.max_depth:
                raise WireError(f"nesting deeper than {self.limits.max_depth}")
            n = self.length("list")
            return [self.value(depth + 1) for _ in range(n)]
        if tag == _T_DICT:
            if depth >= self.limits.max_depth:
                raise WireError(f"nesting deeper than {self.limits.max_depth}")
            n = self.length("dict", min_bytes_each=2)
            result: dict[str, Any] = {}
            for _ in range(n):
                key = self.text("dict key")
                if key in result:
                    raise WireError(f"duplicate dict key {key!r}")
                result[key] = self.value(depth + 1)
            return result
        if tag == _T_NDARRAY:
            return self.ndarray()
        if tag == _T_BIGINTS:
            return self.bigints()
        raise WireError(f"unknown tag 0x{tag:02x} at offset {self.pos - 1}")

    def ndarray(self) -> np.ndarray:
        code = self.byte()
        dtype = _CODE_TO_DTYPE.get(code)
        if dtype is None:
            raise WireError(f"unknown array dtype code {code}")
        shape = self.shape()
        count = math.prod(shape)
        raw = self.take(count * dtype.itemsize)
        if count == 0:
            return np.zeros(shape, dtype=dtype)
        # numpy would happily build bools out of any byte; only 0 and 1 are bools.
        if dtype == np.bool_ and bytes(raw).translate(None, b"\x00\x01"):
            raise WireError("bool array holds bytes other than 0 and 1")
        # Copy so the result is writable and does not pin the message buffer.
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def bigints(self) -> BigIntArray:
        shape = self.shape()
        count = math.prod(shape)
        width = self.uvarint()
        if width > self.limits.max_int_bytes:
            raise WireError(
                f"BigIntArray element of {width} bytes exceeds the limit of {self.limits.max_int_bytes}"
            )
        if count and not width:
            raise WireError("BigIntArray with values but zero width")
        raw = self.take(count * width)
        if count == 0:
            return BigIntArray([], shape)
        from_bytes = int.from_bytes
        values = [from_bytes(raw[i : i + width], "big") for i in range(0, count * width, width)]
        return BigIntArray(values, shape)
