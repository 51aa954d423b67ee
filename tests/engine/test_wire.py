"""engine.wire: typed round trips, refusals, limits, and a decoder fuzz."""

from __future__ import annotations

import math

import gmpy2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import wire
from engine.errors import EngineError, WireError
from engine.wire import BigIntArray, Limits, decode, encode


def same(a, b) -> bool:
    """Structural equality that also compares arrays, NaNs and exact types."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


SCALARS = [
    None, True, False, 0, 1, -1, 255, -256, 2**63, -(2**63) - 1, 7**400, -(7**400),
    0.0, -0.0, 1.5, float("inf"), float("-inf"), float("nan"),
    "", "0012345", "a ", "héllo wörld", "日本語", "emoji 🎉", b"", b"\x00\xff" * 10,
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars_round_trip_with_their_exact_type(value):
    assert same(decode(encode(value)), value)


def test_containers_round_trip_preserving_order_and_nesting():
    value = {"b": [1, "x", None, {"z": [b"raw", 2.5]}], "a": {}, "": [[], [[]]]}
    assert same(decode(encode(value)), value)


@pytest.mark.parametrize(
    "dtype",
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"],
)
def test_arrays_of_every_allowed_dtype_round_trip(dtype):
    rng = np.random.default_rng(0)
    arr = (rng.random((3, 4, 2)) * 100).astype(dtype)
    out = decode(encode(arr))
    assert same(out, arr)
    assert out.flags.writeable


def test_arrays_keep_zero_dimensional_empty_and_non_contiguous_shapes():
    for arr in [np.array(3.5), np.zeros((0, 32), np.uint8), np.arange(12).reshape(3, 4).T, np.arange(10)[::3]]:
        assert same(decode(encode(arr)), np.array(arr, order="C"))


def test_big_endian_arrays_arrive_as_native_little_endian_with_the_same_values():
    arr = np.arange(5, dtype=">i4")
    out = decode(encode(arr))
    assert out.dtype == np.dtype("<i4") and out.tolist() == [0, 1, 2, 3, 4]


def test_bigint_arrays_use_one_fixed_width_and_accept_gmpy2_values():
    values = [0, 1, 2**2048 + 12345, gmpy2.mpz(3) ** 1000]
    message = encode(BigIntArray(values, shape=(2, 2)))
    width = (max(int(v).bit_length() for v in values) + 7) // 8
    assert len(message) < 4 * width + 32  # no per-element framing
    out = decode(message)
    assert out == BigIntArray([int(v) for v in values], (2, 2))
    assert out.shape == (2, 2) and all(type(v) is int for v in out.values)
    assert out.to_mpz()[3] == gmpy2.mpz(3) ** 1000


def test_empty_and_all_zero_bigint_arrays_round_trip():
    assert decode(encode(BigIntArray([]))) == BigIntArray([])
    assert decode(encode(BigIntArray([0, 0, 0]))) == BigIntArray([0, 0, 0])


def test_numpy_and_gmpy2_scalars_are_sent_as_plain_numbers():
    out = decode(encode([np.int64(-3), np.float32(0.5), np.bool_(True), gmpy2.mpz(10) ** 30]))
    assert same(out, [-3, 0.5, True, 10**30])


@pytest.mark.parametrize(
    "value, mentions",
    [
        ((1, 2), "tuple"),
        ({1, 2}, "set"),
        (object(), "object"),
        (np.array(["a", "b"]), "dtype"),
        (np.array([1, "a"], dtype=object), "dtype"),
        (np.zeros(2, dtype=complex), "dtype"),
        ({1: "x"}, "keys must be str"),
        ("\ud800", "Unicode"),
        (BigIntArray([-1]), "non-negative"),
        (BigIntArray([1.5]), "integers"),
    ],
    ids=["tuple", "set", "object", "str-array", "object-array", "complex-array", "int-key",
         "surrogate", "negative-bigint", "float-bigint"],
)
def test_values_outside_the_format_are_refused_with_a_wire_error(value, mentions):
    with pytest.raises(WireError, match=mentions):
        encode(value)


def test_wire_errors_are_engine_errors():
    assert issubclass(WireError, EngineError)


def test_reference_cycles_and_deep_nesting_hit_the_depth_limit():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(WireError, match="nesting"):
        encode(cycle)
    deep = 0
    for _ in range(10):
        deep = [deep]
    with pytest.raises(WireError, match="nesting"):
        encode(deep, limits=Limits(max_depth=5))
    message = encode(deep)
    with pytest.raises(WireError, match="nesting"):
        decode(message, limits=Limits(max_depth=5))


def test_lengths_and_integer_sizes_beyond_the_limits_are_refused_both_ways():
    small = Limits(max_length=4, max_int_bytes=8)
    for value in ["hello", b"12345", [0] * 5, np.zeros(5), 2**80]:
        with pytest.raises(WireError, match="limit"):
            encode(value, limits=small)
        with pytest.raises(WireError, match="limit"):
            decode(encode(value), limits=small)


def test_decoder_rejects_bad_magic_unknown_version_trailing_bytes_and_non_bytes():
    good = encode([1, 2])
    with pytest.raises(WireError, match="magic"):
        decode(b"XYZ" + good[3:])
    with pytest.raises(WireError, match="version"):
        decode(wire.MAGIC + bytes([99]) + good[4:])
    with pytest.raises(WireError, match="trailing"):
        decode(good + b"\x00")
    with pytest.raises(WireError):
        decode("not bytes")  # type: ignore[arg-type]


def test_decoder_rejects_a_bool_array_holding_other_bytes():
    message = bytearray(encode(np.array([True, False])))
    message[-1] = 2
    with pytest.raises(WireError, match="bool"):
        decode(bytes(message))


def test_decoder_rejects_a_huge_announced_length_without_allocating_it():
    # A list claiming 2**30 elements (within the length limit) in a 10-byte message.
    message = wire.MAGIC + bytes([wire.VERSION, 0x07]) + b"\x80\x80\x80\x80\x04"
    with pytest.raises(WireError, match="truncated"):
        decode(message)
    # An array of 2**15 x 2**15 float64 (8 GiB) announced in a handful of bytes.
    message = wire.MAGIC + bytes([wire.VERSION, 0x09, 11, 2]) + b"\x80\x80\x02" * 2
    with pytest.raises(WireError, match="truncated"):
        decode(message)
    # No elements at all, but dimensions numpy could not even represent: (0, 2**31, 2**31).
    message = wire.MAGIC + bytes([wire.VERSION, 0x09, 11, 3, 0]) + b"\x80\x80\x80\x80\x08" * 2
    with pytest.raises(WireError, match="exceeds the limit"):
        decode(message)


# ---------------------------------------------------------------------- fuzz

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
arrays = st.builds(
    lambda dtype, shape, seed: np.asarray(np.random.default_rng(seed).random(shape) * 50).astype(dtype),
    st.sampled_from(["bool", "int8", "int64", "uint16", "uint64", "float32", "float64"]),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.integers(0, 2**32 - 1),
)
bigints = st.lists(st.integers(min_value=0, max_value=2**600), max_size=5).map(BigIntArray)
values = st.one_of(json_like, arrays, bigints, st.lists(st.one_of(arrays, bigints, json_like), max_size=3))


def assert_decodes_to_a_wire_value_or_raises_wire_error(data: bytes) -> None:
    try:
        value = decode(data)
    except WireError as exc:
        # The decoder's last-resort net turns stray exceptions into "malformed
        # message"; the explicit checks are meant to catch everything first.
        assert not str(exc).startswith("malformed message"), exc
        return
    # Whatever came out must be a value of the format: it re-encodes and round-trips.
    assert same(decode(encode(value)), value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_encodable_value_round_trips(value):
    assert same(decode(encode(value)), value)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_only_to_a_value_or_a_wire_error(data):
    assert_decodes_to_a_wire_value_or_raises_wire_error(data)
    assert_decodes_to_a_wire_value_or_raises_wire_error(wire.MAGIC + bytes([wire.VERSION]) + data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.data())
def test_truncated_flipped_and_spliced_encodings_decode_only_to_a_value_or_a_wire_error(value, data):
    message = encode(value)
    cut = data.draw(st.integers(0, len(message)), label="cut")
    assert_decodes_to_a_wire_value_or_raises_wire_error(message[:cut])

    flipped = bytearray(message)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        position = data.draw(st.integers(0, len(flipped) - 1), label="position")
        flipped[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    assert_decodes_to_a_wire_value_or_raises_wire_error(bytes(flipped))

    junk = data.draw(st.binary(min_size=1, max_size=8), label="junk")
    at = data.draw(st.integers(4, len(message)), label="at")
    assert_decodes_to_a_wire_value_or_raises_wire_error(message[:at] + junk + message[at:])
