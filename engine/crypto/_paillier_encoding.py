"""Fixed-point encoding of real numbers as the integers Paillier encrypts.

Internal helper of :mod:`engine.crypto.paillier`; see that module for the
design. In short, a real ``x`` is carried as the integer ``round(x * 2**f)``
where ``f`` ("fractional bits") is shared by a whole array, so adding two
encodings never needs rescaling, and a product of an encoding with ``f1``
fractional bits by one with ``f2`` has ``f1 + f2``.

All conversions are exact: float -> integer rounds half to even exactly as
:func:`numpy.rint` would on an infinitely precise ``x * 2**f``, and integer ->
float is the correctly rounded quotient (Python's ``int / int``). No step
goes through a float wider than the value it holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

# Scaled magnitudes below 2**62 are exact integers after numpy.rint and fit in
# int64, so the common case stays vectorised; below 2**1020 the scaled floats
# are still finite and exact, only the int64 cast must be skipped.
_INT64_SAFE_BITS = 62
_FLOAT_SAFE_BITS = 1020


def _scaled_bits(peak: float, frac_bits: int) -> int:
    """An exponent ``e`` with ``peak * 2**frac_bits < 2**e`` (no float overflow)."""
    return -(10**9) if peak == 0.0 else math.frexp(peak)[1] + frac_bits


def as_array(values: Any) -> np.ndarray:
    """``values`` as a numeric (or object-of-ints) numpy array, or a TypeError."""
    array = np.asarray(values)
    if array.dtype == object:
        for item in array.flat:
            if not isinstance(item, (int, float, np.integer, np.floating)):
                raise TypeError(f"cannot encode a {type(item).__name__} as a fixed-point number")
        return array
    if array.dtype.kind not in "biuf":
        raise TypeError(f"cannot encode an array of dtype {array.dtype} as fixed-point numbers")
    return array


def _round_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        quotient += 1
    return quotient


def _exact_float(value: float, frac_bits: int) -> int:
    if not math.isfinite(value):
        raise ValueError("cannot encode NaN or infinity")
    numerator, denominator = float(value).as_integer_ratio()
    return _round_half_even(numerator << frac_bits, denominator)


def encode_fixed(values: Any, frac_bits: int) -> list[int]:
    """Flattened (C order) ``round(x * 2**frac_bits)`` of every element, as Python ints."""
    if frac_bits < 0:
        raise ValueError("frac_bits must be >= 0")
    array = as_array(values)
    if array.dtype.kind in "biu":
        scale = 1 << frac_bits
        return [int(v) * scale for v in array.ravel().tolist()]
    if array.dtype.kind == "f":
        flat = array.ravel().astype(np.float64, copy=False)
        if flat.size and not np.isfinite(flat).all():
            raise ValueError("cannot encode NaN or infinity")
        peak = float(np.max(np.abs(flat))) if flat.size else 0.0
        if _scaled_bits(peak, frac_bits) <= _INT64_SAFE_BITS:
            return np.rint(np.ldexp(flat, frac_bits)).astype(np.int64).tolist()
        if _scaled_bits(peak, frac_bits) <= _FLOAT_SAFE_BITS:
            return [int(v) for v in np.rint(np.ldexp(flat, frac_bits)).tolist()]
        return [_exact_float(v, frac_bits) for v in flat.tolist()]
    out = []
    for item in array.ravel().tolist():
        if isinstance(item, (float, np.floating)):
            out.append(_exact_float(item, frac_bits))
        else:
            out.append(int(item) << frac_bits)
    return out


def multiplier_frac_bits(values: Any, significant_bits: int) -> int:
    """Fractional bits giving the largest ``|x|`` about ``significant_bits`` bits.

    Integer arrays are used as they are (0 fractional bits, exact). For
    floats this is block floating point: one exponent for the whole operand,
    chosen from its largest magnitude, so the encoded integers have at most
    ``significant_bits`` bits whatever the scale of the data. That matters
    because the cost of multiplying a ciphertext by ``k`` grows with the bit
    length of ``k``.
    """
    array = as_array(values)
    if array.dtype.kind in "biu":
        return 0
    if array.dtype == object and not any(isinstance(v, (float, np.floating)) for v in array.flat):
        return 0
    flat = np.asarray(array, dtype=np.float64).ravel()
    if flat.size and not np.isfinite(flat).all():
        raise ValueError("cannot encode NaN or infinity")
    peak = float(np.max(np.abs(flat))) if flat.size else 0.0
    if peak == 0.0:
        return 0
    _, exponent = math.frexp(peak)  # peak = m * 2**exponent, 0.5 <= m < 1
    return max(0, significant_bits - exponent)


def decode_fixed(integers: Iterable[int], frac_bits: int, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 array of ``k / 2**frac_bits``, correctly rounded."""
    divisor = 1 << frac_bits
    values = [k / divisor for k in integers]
    return np.array(values, dtype=np.float64).reshape(shape)
