"""Tests of engine.crypto.paillier: properties, phe as an independent reference, failure modes.

Most tests use 1024-bit keys (with the insecure flag) so the file runs in
well under a minute; one test round-trips a default 2048-bit key.
"""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phe import paillier as phe

from engine.crypto import paillier
from engine.crypto.paillier import (
    EncryptedArray,
    InvalidCiphertextError,
    KeyMismatchError,
    KeySizeError,
    PlaintextOverflowError,
    PublicKey,
    SlotPacker,
    bucket_sum,
    concatenate,
    generate_keypair,
)

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
small_ints = st.integers(min_value=-(2**15), max_value=2**15 - 1)


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(1024, insecure_allow_small_keys=True)


@pytest.fixture(scope="module")
def other_keys():
    return generate_keypair(1024, insecure_allow_small_keys=True)


@pytest.fixture(scope="module")
def phe_keys():
    return phe.generate_paillier_keypair(n_length=1024)


def fixed(x, frac_bits=paillier.DEFAULT_FRAC_BITS):
    """What a float becomes after encoding: round(x * 2**f) / 2**f, computed exactly."""
    return np.array([float(np.rint(np.ldexp(v, frac_bits))) / 2.0**frac_bits for v in np.ravel(x)]).reshape(np.shape(x))


# ----------------------------------------------------------------- keys


def test_it_refuses_keys_smaller_than_2048_bits_without_the_insecure_flag(keys):
    with pytest.raises(ValueError, match="insecure_allow_small_keys"):
        generate_keypair(1024)
    with pytest.raises(KeySizeError):
        PublicKey(int(keys[0].n))
    assert PublicKey(int(keys[0].n), insecure_allow_small_keys=True) == keys[0]


def test_it_refuses_moduli_that_cannot_be_paillier_keys():
    with pytest.raises(ValueError):
        PublicKey(2**2048, insecure_allow_small_keys=True)  # even
    with pytest.raises(ValueError):
        PublicKey(int(gmpy2.next_prime(3 << 1022)) ** 2)  # a 2048-bit square
    with pytest.raises(ValueError):
        PublicKey(3 * int(gmpy2.next_prime(2**2046)))  # a 2048-bit number with a small factor


def test_a_default_key_has_a_2048_bit_modulus_and_round_trips():
    public, private = generate_keypair()
    assert public.bits == 2048 and public.n.bit_length() == 2048
    assert private.p.bit_length() == private.q.bit_length() == 1024
    assert public.short_exponent_bits == 448
    values = np.array([0.0, -1.5, 3.25, 1e-9, -123456.789])
    np.testing.assert_array_equal(private.decrypt(public.encrypt(values)), fixed(values))


def test_generated_keys_have_exact_bit_length_and_distinct_primes(keys):
    public, private = keys
    assert public.bits == 1024
    assert private.p != private.q
    assert private.p * private.q == public.n
    assert gmpy2.is_prime(private.p) and gmpy2.is_prime(private.q)


def test_a_public_key_survives_export_and_import(keys):
    public, _ = keys
    again = PublicKey.from_bytes(public.to_bytes(), insecure_allow_small_keys=True)
    assert again == public and hash(again) == hash(public)
    assert len(public.to_bytes()) == public.key_bytes == 128


# ------------------------------------------------------- round trips


@PROPERTY
@given(st.lists(finite, min_size=1, max_size=12))
def test_floats_round_trip_to_the_fixed_point_value(keys, values):
    public, private = keys
    x = np.array(values)
    np.testing.assert_array_equal(private.decrypt(public.encrypt(x)), fixed(x))


@PROPERTY
@given(st.lists(st.integers(min_value=-(2**900), max_value=2**900), min_size=1, max_size=8))
def test_integers_round_trip_exactly(keys, values):
    public, private = keys
    assert list(private.decrypt_int(public.encrypt_int(values))) == values


def test_zeros_and_an_empty_array_round_trip(keys):
    public, private = keys
    assert private.decrypt(public.encrypt(np.zeros(5))).tolist() == [0.0] * 5
    assert private.decrypt(public.encrypt_zeros((2, 3))).shape == (2, 3)
    empty = public.encrypt(np.array([]))
    assert empty.shape == (0,) and private.decrypt(empty).shape == (0,)


def test_values_at_the_bound_round_trip_and_beyond_it_are_refused(keys):
    public, private = keys
    edge = [public.max_int, -public.max_int, public.max_int - 1, 0]
    assert list(private.decrypt_int(public.encrypt_int(edge))) == edge
    with pytest.raises(OverflowError):
        public.encrypt_int([public.max_int + 1])
    with pytest.raises(OverflowError):
        public.encrypt(np.array([2.0**1000]))  # 1000 + 53 bits do not fit a 1024-bit key


def test_our_ciphertexts_decrypt_with_phe_and_phe_ciphertexts_decrypt_with_ours(keys):
    public, private = keys
    phe_public = phe.PaillierPublicKey(int(public.n))
    phe_private = phe.PaillierPrivateKey(phe_public, int(private.p), int(private.q))
    values = [0, 1, -1, 2**200, -(2**300), 123456789]
    ours = public.encrypt_int(values)
    assert [phe_private.raw_decrypt(int(c)) for c in ours.ciphertexts] == [v % int(public.n) for v in values]
    theirs = [phe_public.raw_encrypt(v % int(public.n)) for v in values]
    imported = EncryptedArray.from_ciphertexts(public, theirs, frac_bits=0, bound=2**300)
    assert list(private.decrypt_int(imported)) == values


# ---------------------------------------------------------- arithmetic


@PROPERTY
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=10))
def test_sums_of_ciphertexts_match_numpy(keys, pairs):
    public, private = keys
    a, b = np.array(pairs).T
    ea, eb = public.encrypt(a), public.encrypt(b)
    np.testing.assert_array_equal(private.decrypt(ea + eb), fixed(a) + fixed(b))
    np.testing.assert_array_equal(private.decrypt(ea - eb), fixed(a) - fixed(b))
    assert private.decrypt(ea.sum()) == pytest.approx(fixed(a).sum(), abs=1e-9)
    np.testing.assert_array_equal(private.decrypt(-ea), -fixed(a))


@PROPERTY
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=10))
def test_adding_and_subtracting_plaintext_matches_numpy(keys, pairs):
    public, private = keys
    a, b = np.array(pairs).T
    ea = public.encrypt(a)
    np.testing.assert_array_equal(private.decrypt(ea + b), fixed(a) + fixed(b))
    np.testing.assert_array_equal(private.decrypt(ea - b), fixed(a) - fixed(b))
    np.testing.assert_array_equal(private.decrypt(b - ea), fixed(b) - fixed(a))
    np.testing.assert_array_equal(private.decrypt(b + ea), fixed(a) + fixed(b))


@PROPERTY
@given(st.lists(st.tuples(finite, small_ints, finite), min_size=1, max_size=8), small_ints, finite)
def test_products_by_scalars_and_arrays_match_numpy(keys, rows, int_scalar, float_scalar):
    public, private = keys
    a, k, f = (np.array(column) for column in zip(*rows))
    k = k.astype(np.int64)
    ea = public.encrypt(a)
    # Integer multipliers are exact.
    np.testing.assert_array_equal(private.decrypt_int(ea * k), [v * int(w) for v, w in zip(private.decrypt_int(ea), k)])
    np.testing.assert_array_equal(private.decrypt(ea * int_scalar), fixed(a) * int_scalar)
    # Float multipliers carry 53 significant bits relative to their largest magnitude.
    tolerance = 4 * 2.0**-53 * (np.abs(f).max() * np.abs(a).max() + 1)
    np.testing.assert_allclose(private.decrypt(ea * f), fixed(a) * f, rtol=0, atol=tolerance)
    tolerance = 4 * 2.0**-53 * (abs(float_scalar) * np.abs(a).max() + 1)
    np.testing.assert_allclose(private.decrypt(float_scalar * ea), fixed(a) * float_scalar, rtol=0, atol=tolerance)


def test_multiplying_by_a_power_of_two_keeps_exponents_small(keys):
    public, private = keys
    ea = public.encrypt(np.array([3.0, -5.0]))
    quarter = ea * 0.25
    assert quarter.frac_bits == ea.frac_bits + 2
    np.testing.assert_array_equal(private.decrypt(quarter), [0.75, -1.25])
    np.testing.assert_array_equal(private.decrypt(ea / 4), [0.75, -1.25])


def test_products_track_the_scale_so_float_times_float_decrypts_correctly(keys):
    public, private = keys
    ea = public.encrypt(np.array([1.5, -2.0]))
    twice = (ea * 0.1) * 0.3
    np.testing.assert_allclose(private.decrypt(twice), [1.5 * 0.1 * 0.3, -2.0 * 0.1 * 0.3], rtol=1e-14)
    assert twice.frac_bits > ea.frac_bits


def test_adding_arrays_of_different_scales_aligns_them(keys):
    public, private = keys
    coarse = public.encrypt(np.array([1.5, 2.0]), frac_bits=4)
    finer = public.encrypt(np.array([0.125, 0.0625]))
    total = coarse + finer
    assert total.frac_bits == finer.frac_bits
    np.testing.assert_array_equal(private.decrypt(total), [1.625, 2.0625])


def test_broadcasting_follows_numpy(keys):
    public, private = keys
    grid = np.arange(6.0).reshape(2, 3)
    row = np.array([10.0, 20.0, 30.0])
    enc = public.encrypt(grid)
    np.testing.assert_array_equal(private.decrypt(enc + row), grid + row)
    np.testing.assert_array_equal(private.decrypt(enc + public.encrypt(row)), grid + row)
    np.testing.assert_array_equal(private.decrypt(enc * np.array([[2], [3]])), grid * np.array([[2], [3]]))
    np.testing.assert_array_equal(private.decrypt(row + enc), grid + row)  # numpy defers to us


def test_sums_along_axes_cumulative_sums_and_reshaping_match_numpy(keys):
    public, private = keys
    grid = np.arange(12.0).reshape(3, 4) - 5
    enc = public.encrypt(grid)
    np.testing.assert_array_equal(private.decrypt(enc.sum(axis=0)), grid.sum(axis=0))
    np.testing.assert_array_equal(private.decrypt(enc.sum(axis=1)), grid.sum(axis=1))
    assert private.decrypt(enc.sum()) == grid.sum()
    np.testing.assert_array_equal(private.decrypt(enc.cumsum(axis=1)), grid.cumsum(axis=1))
    np.testing.assert_array_equal(private.decrypt(enc.cumsum(axis=0)), grid.cumsum(axis=0))
    np.testing.assert_array_equal(private.decrypt(enc.T), grid.T)
    np.testing.assert_array_equal(private.decrypt(enc[1:, ::2]), grid[1:, ::2])
    np.testing.assert_array_equal(private.decrypt(enc.reshape(4, 3)), grid.reshape(4, 3))
    np.testing.assert_array_equal(private.decrypt(concatenate([enc, enc[:1]])), np.concatenate([grid, grid[:1]]))
    assert private.decrypt(public.encrypt(np.zeros((0, 3))).sum(axis=0)).tolist() == [0.0, 0.0, 0.0]


def test_multiplying_two_ciphertexts_is_refused(keys):
    public, _ = keys
    enc = public.encrypt(np.array([1.0]))
    with pytest.raises(TypeError):
        enc * enc


# ----------------------------------------------------- X^T [[d]] and bucket sums


@PROPERTY
@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=16),
    st.booleans(),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_x_transpose_d_with_integer_features_is_exact(keys, rows, cols, bits, signed, seed):
    public, private = keys
    rng = np.random.default_rng(seed)
    low = -(2 ** (bits - 1)) if signed else 0
    X = rng.integers(low, low + 2**bits, size=(rows, cols))
    d = rng.integers(-(2**40), 2**40, size=rows)
    enc = public.encrypt_int(d)
    expected = [sum(int(X[i, j]) * int(d[i]) for i in range(rows)) for j in range(cols)]
    assert list(private.decrypt_int(X.T @ enc)) == expected
    assert list(private.decrypt_int(enc.dot(X))) == expected
    assert list(private.decrypt_int(enc @ X)) == expected


def test_x_transpose_d_uses_offsets_for_columns_far_from_zero(keys):
    public, private = keys
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.integers(60_000, 65_536, 50), rng.integers(-70_000, -69_000, 50), np.zeros(50, int)])
    d = rng.normal(size=50)
    enc = public.encrypt(d)
    np.testing.assert_allclose(private.decrypt(X.T @ enc), X.T @ fixed(d), rtol=1e-12)


@PROPERTY
@given(
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_x_transpose_d_with_float_features_matches_numpy_to_the_block_precision(keys, rows, cols, seed):
    public, private = keys
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=3.0, size=(rows, cols))
    d = rng.normal(size=rows)
    result = private.decrypt(X.T @ public.encrypt(d))
    # 24 significant bits for X's largest entry, 2**-54 for each d.
    tolerance = rows * (np.abs(X).max() * 2.0**-24 * np.abs(d).max() + np.abs(X).max() * 2.0**-53) + 1e-12
    np.testing.assert_allclose(result, X.T @ d, rtol=0, atol=tolerance)
    precise = private.decrypt(public.encrypt(d).dot(X, significant_bits=53))
    np.testing.assert_allclose(precise, X.T @ d, rtol=1e-9, atol=1e-9)


def test_x_transpose_d_agrees_with_the_same_computation_in_phe(keys, phe_keys):
    public, private = keys
    phe_public, phe_private = phe_keys
    rng = np.random.default_rng(3)
    X = rng.integers(-(2**15), 2**15, size=(12, 3))
    d = rng.normal(size=12)
    ours = private.decrypt(X.T @ public.encrypt(d))
    enc_d = [phe_public.encrypt(float(v)) for v in d]
    theirs = [
        phe_private.decrypt(sum((enc_d[i] * int(X[i, j]) for i in range(12)), phe_public.encrypt(0))) for j in range(3)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(ours, X.T @ d, rtol=1e-12)


@PROPERTY
@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_bucket_sums_match_numpy(keys, rows, features, n_buckets, seed):
    public, private = keys
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_buckets, size=(rows, features))
    g = rng.normal(size=rows)
    hist = private.decrypt(public.encrypt(g).bucket_sum(ids, n_buckets))
    expected = np.zeros((features, n_buckets))
    for j in range(features):
        np.add.at(expected[j], ids[:, j], fixed(g))
    np.testing.assert_allclose(hist, expected, rtol=0, atol=1e-12)
    single = private.decrypt(bucket_sum(public.encrypt(g), ids[:, 0], n_buckets))
    np.testing.assert_allclose(single, expected[0], rtol=0, atol=1e-12)


def test_bucket_sums_agree_with_phe(keys, phe_keys):
    public, private = keys
    phe_public, phe_private = phe_keys
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 4, size=(25, 2))
    g = rng.normal(size=25)
    ours = private.decrypt(public.encrypt(g).bucket_sum(ids, 4))
    enc_g = [phe_public.encrypt(float(v)) for v in g]
    for j in range(2):
        for b in range(4):
            members = [enc_g[i] for i in range(25) if ids[i, j] == b]
            theirs = phe_private.decrypt(sum(members, phe_public.encrypt(0)))
            assert ours[j, b] == pytest.approx(theirs, abs=1e-12)


def test_empty_buckets_are_fresh_encryptions_of_zero_not_the_trivial_ciphertext(keys):
    public, private = keys
    enc = public.encrypt(np.array([1.0, 2.0]))
    hist = enc.bucket_sum(np.array([0, 0]), 3)
    np.testing.assert_array_equal(private.decrypt(hist), [3.0, 0.0, 0.0])
    assert all(c != 1 for c in hist.ciphertexts)
    assert all(c != 1 for c in (enc * np.zeros(2, dtype=int)).ciphertexts)
    zero_column = np.zeros((2, 1), dtype=int).T @ enc
    assert private.decrypt(zero_column).tolist() == [0.0] and zero_column.ciphertexts[0] != 1


def test_bucket_sum_rejects_ids_out_of_range(keys):
    public, _ = keys
    enc = public.encrypt(np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        enc.bucket_sum(np.array([0, 3]), 3)
    with pytest.raises(ValueError):
        enc.bucket_sum(np.array([0, 1, 1]), 3)


def test_results_do_not_depend_on_the_thread_count(keys):
    public, private = keys
    rng = np.random.default_rng(11)
    X = rng.integers(-300, 300, size=(80, 3))
    d = public.encrypt(rng.normal(size=80))
    ids = rng.integers(0, 5, size=(80, 3))
    with_threads = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 5)), private.decrypt(d))
    paillier.set_thread_count(1)
    try:
        alone = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 5)), private.decrypt(d))
    finally:
        paillier.set_thread_count(None)
    for a, b in zip(with_threads, alone):
        np.testing.assert_array_equal(a, b)


def test_helper_processes_give_the_same_results_as_this_process(keys, monkeypatch):
    from engine.crypto import _paillier_kernels as kernels
    from engine.crypto import _paillier_worker as worker

    public, private = keys
    rng = np.random.default_rng(13)
    X = rng.integers(-(2**15), 2**15, size=(120, 4))
    ids = rng.integers(0, 6, size=(120, 3))
    d = public.encrypt(rng.normal(size=120))
    monkeypatch.setattr(kernels, "HELPER_MIN_ROW_PASSES", 10**12)
    local = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 6)))
    monkeypatch.setattr(kernels, "HELPER_MIN_ROW_PASSES", 0)
    monkeypatch.setattr(worker, "_disabled", False)
    paillier.set_thread_count(2)
    try:
        assert paillier.warm_up() == 1
        shared = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 6)))

        # A helper that dies mid-job: its share is recomputed here and helpers are switched off.
        def broken(self):
            raise worker.HelperError("simulated crash")

        monkeypatch.setattr(worker._Helper, "receive", broken)
        recovered = private.decrypt(X.T @ d)
        assert worker._disabled
    finally:
        paillier.set_thread_count(None)
    np.testing.assert_array_equal(local[0], shared[0])
    np.testing.assert_array_equal(local[1], shared[1])
    np.testing.assert_array_equal(local[0], recovered)


def test_the_helper_protocol_frames_fields_and_optional_ciphertexts():
    from engine.crypto import _paillier_worker as worker

    fields = [b"", b"abc", bytes(range(256))]
    assert [bytes(f) for f in worker.unpack_fields(worker.pack_fields(fields))] == fields
    with pytest.raises(ValueError):
        worker.unpack_fields(worker.pack_fields(fields)[:-1])
    values = [gmpy2.mpz(5), None, gmpy2.mpz(2**100)]
    blob = worker.optional_ciphertexts_to_bytes(values, 16)
    assert worker.optional_ciphertexts_from_bytes(memoryview(blob), 16) == values


# ------------------------------------------------------------- overflow


def test_an_operation_that_could_overflow_is_refused_before_computing(keys):
    public, _ = keys
    big = public.encrypt_int([public.max_int // 2 + 1])
    with pytest.raises(OverflowError):
        big + big
    with pytest.raises(OverflowError):
        big * 3
    with pytest.raises(OverflowError):
        public.encrypt_int([2**1000]) * (2**30)
    with pytest.raises(OverflowError):
        np.ones((1, 1), dtype=np.int64) * 2**40 @ public.encrypt_int([2**990])


def test_decrypting_a_value_in_the_overflow_band_raises(keys):
    public, private = keys
    top = public.encrypt_int([public.max_int, public.max_int])
    # Build the wrapped sum by hand, the way an untracked computation would.
    c = top.ciphertexts[0] * top.ciphertexts[1] % public.nsquare
    wrapped = EncryptedArray.from_ciphertexts(public, [c], frac_bits=0)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt(wrapped)


def test_decrypting_beyond_the_declared_bound_raises(keys):
    public, private = keys
    enc = public.encrypt_int([2**200])
    claimed = EncryptedArray.from_ciphertexts(public, enc.ciphertexts, frac_bits=0, bound=2**100)
    with pytest.raises(OverflowError):
        private.decrypt_int(claimed)


def test_small_plaintexts_decrypt_modulo_p_alone_and_large_ones_by_full_crt(keys, monkeypatch):
    public, private = keys
    primes_used = []
    real_half = paillier.kernels.crt_half

    def recording_half(cts, prime, prime_square, h):
        primes_used.append(prime)
        return real_half(cts, prime, prime_square, h)

    monkeypatch.setattr(paillier.kernels, "crt_half", recording_half)
    edge = int(private.p) >> paillier.SINGLE_PRIME_MARGIN_BITS
    values = [edge, -edge, 0, 1, -1, edge // 3]
    small = EncryptedArray.from_ciphertexts(public, public.encrypt_int(values).ciphertexts, frac_bits=0, bound=edge)
    assert private.decrypt_int(small).tolist() == values
    assert set(primes_used) == {private.p}
    primes_used.clear()
    large_values = [edge + 1, -(edge + 1), 2**400, -(2**400)]
    large = EncryptedArray.from_ciphertexts(
        public, public.encrypt_int(large_values).ciphertexts, frac_bits=0, bound=2**400)
    assert private.decrypt_int(large).tolist() == large_values
    assert set(primes_used) == {private.p, private.q}
    # A value just past a small bound is still caught on the single-prime path.
    beyond = EncryptedArray.from_ciphertexts(public, public.encrypt_int([edge + 1]).ciphertexts, frac_bits=0,
                                             bound=edge)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt_int(beyond)


# ------------------------------------------------------ wrong keys and tampering


def test_decrypting_with_the_wrong_private_key_is_refused(keys, other_keys):
    public, _ = keys
    _, other_private = other_keys
    with pytest.raises(KeyMismatchError, match="key"):
        other_private.decrypt(public.encrypt(np.array([1.0])))


def test_combining_ciphertexts_under_different_keys_is_refused(keys, other_keys):
    with pytest.raises(ValueError):
        keys[0].encrypt(np.array([1.0])) + other_keys[0].encrypt(np.array([1.0]))


def test_ciphertexts_forged_onto_another_key_fail_to_import_or_to_decrypt(keys, other_keys):
    public, private = keys
    other_public, _ = other_keys
    foreign = other_public.encrypt(np.linspace(-1, 1, 30))
    smaller = [c for c in foreign.ciphertexts if c < public.nsquare]
    larger = [c for c in foreign.ciphertexts if c >= public.nsquare]
    if larger:
        with pytest.raises(InvalidCiphertextError, match="different key"):
            EncryptedArray.from_ciphertexts(public, larger, frac_bits=53)
    if smaller:
        # Decrypts to noise modulo n, far outside the declared bound.
        forged = EncryptedArray.from_ciphertexts(public, smaller, frac_bits=53, bound=2**60)
        with pytest.raises(PlaintextOverflowError):
            private.decrypt(forged)


def test_tampered_ciphertexts_are_detected_by_the_bound_check(keys):
    public, private = keys
    enc = public.encrypt(np.array([0.5, -0.25, 3.0]))
    blobs = enc.to_bytes_list()
    flipped = bytearray(blobs[1])
    flipped[-1] ^= 1
    tampered = EncryptedArray.from_bytes_list(
        public, [blobs[0], bytes(flipped), blobs[2]], frac_bits=enc.frac_bits, bound=enc.bound
    )
    with pytest.raises(PlaintextOverflowError):
        private.decrypt(tampered)
    # Homomorphic tampering is not detectable: Paillier is malleable by design.
    shifted = EncryptedArray.from_ciphertexts(
        public, [enc.ciphertexts[0] * (public.n + 1) % public.nsquare], frac_bits=enc.frac_bits, bound=enc.bound
    )
    assert private.decrypt_int(shifted)[0] == 2**52 + 1


def test_imported_ciphertexts_must_lie_in_range_and_have_the_key_width(keys):
    public, _ = keys
    for bad in (0, public.nsquare, public.nsquare + 5, -3):
        with pytest.raises(InvalidCiphertextError):
            EncryptedArray.from_ciphertexts(public, [bad], frac_bits=0)
    with pytest.raises(InvalidCiphertextError, match="bytes"):
        EncryptedArray.from_bytes_list(public, [b"\x01" * 100], frac_bits=0)
    with pytest.raises(InvalidCiphertextError):
        EncryptedArray.from_bytes(public, b"\x01" * 300, frac_bits=0)
    with pytest.raises(InvalidCiphertextError):
        EncryptedArray.from_ciphertexts(public, [public.n], frac_bits=0, check_coprime=True)
    with pytest.raises(InvalidCiphertextError):
        EncryptedArray.from_ciphertexts(public, [5], frac_bits=0, bound=public.max_int + 1)


def test_ciphertexts_survive_serialisation(keys):
    public, private = keys
    enc = public.encrypt(np.arange(6.0).reshape(2, 3))
    data = enc.to_bytes()
    assert len(data) == 6 * public.ciphertext_bytes
    again = EncryptedArray.from_bytes(public, data, (2, 3), frac_bits=enc.frac_bits, bound=enc.bound)
    np.testing.assert_array_equal(private.decrypt(again), np.arange(6.0).reshape(2, 3))
    listed = EncryptedArray.from_bytes_list(public, enc.to_bytes_list(), (2, 3), frac_bits=enc.frac_bits)
    np.testing.assert_array_equal(private.decrypt(listed), np.arange(6.0).reshape(2, 3))


def test_rerandomising_changes_every_ciphertext_but_no_plaintext(keys):
    public, private = keys
    enc = public.encrypt(np.array([1.0, -2.0, 0.0]))
    for fresh in (enc.rerandomize(), enc.rerandomize(circuit_private=False)):
        assert all(a != b for a, b in zip(enc.ciphertexts, fresh.ciphertexts))
        np.testing.assert_array_equal(private.decrypt(fresh), [1.0, -2.0, 0.0])


# --------------------------------------------------------------- packing


def test_packed_slots_survive_encrypted_bucket_sums(keys):
    public, private = keys
    rng = np.random.default_rng(2)
    rows = 40
    g = rng.uniform(-1, 1, rows)
    h = rng.uniform(0, 1, rows)
    frac = 20
    packer = SlotPacker.for_sums(max_value=2 << frac, max_terms=rows, n_slots=2)
    packer.check_key(public)
    g_int = np.rint((g + 1) * 2**frac).astype(np.int64)
    h_int = np.rint(h * 2**frac).astype(np.int64)
    enc = public.encrypt_int(packer.pack(np.stack([g_int, h_int], axis=1)))
    bins = rng.integers(0, 4, rows)
    sums = packer.unpack(private.decrypt_int(enc.bucket_sum(bins, 4)))
    counts = np.bincount(bins, minlength=4)
    for b in range(4):
        assert sums[b, 0] == int(g_int[bins == b].sum())
        assert sums[b, 1] == int(h_int[bins == b].sum())
        assert (sums[b, 0] - counts[b] * 2**frac) / 2**frac == pytest.approx(g[bins == b].sum(), abs=rows * 2.0**-frac)


def test_the_packer_refuses_values_and_layouts_that_could_overflow(keys):
    public, _ = keys
    packer = SlotPacker.for_sums(max_value=255, max_terms=16, n_slots=3)
    assert packer.slot_bits == (255 * 16).bit_length() == 12
    with pytest.raises(OverflowError):
        packer.pack([[256, 0, 0]])
    with pytest.raises(OverflowError):
        packer.pack([[-1, 0, 0]])
    assert packer.unpack(packer.pack([[1, 2, 3], [255, 0, 7]])).tolist() == [[1, 2, 3], [255, 0, 7]]
    slots = SlotPacker.capacity(public, 100)
    SlotPacker(slot_bits=100, n_slots=slots, max_value=1).check_key(public)
    with pytest.raises(OverflowError):
        SlotPacker(slot_bits=100, n_slots=slots + 1, max_value=1).check_key(public)
