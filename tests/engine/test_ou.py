"""Tests of engine.crypto.ou: exact arithmetic, our Paillier as the reference, failure modes.

Okamoto-Uchiyama keys are quick to make (~0.1 s for 2048 bits), so these
tests use real 2048-bit keys; the plaintext space is p (~680 bits usable).
"""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.crypto import he, ou, paillier
from engine.crypto.ou import (
    EncryptedArray,
    InvalidCiphertextError,
    KeyMismatchError,
    KeySizeError,
    PlaintextOverflowError,
    PublicKey,
    SlotPacker,
    concatenate,
    generate_keypair,
)
from engine.wire import BigIntArray, decode, encode

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def keys():
    return generate_keypair()


@pytest.fixture(scope="module")
def other_keys():
    return generate_keypair()


@pytest.fixture(scope="module")
def paillier_keys():
    return paillier.generate_keypair(1024, insecure_allow_small_keys=True)


def ints(values):
    return [int(v) for v in np.ravel(values)]


# ----------------------------------------------------------------- keys


def test_a_default_key_is_2048_bits_p_squared_q_with_equal_size_primes_and_a_224_bit_subgroup(keys):
    public, private = keys
    p, q, t = private.p, private.q, private.t
    assert public.bits == public.n.bit_length() == 2048
    assert p * p * q == public.n
    assert p.bit_length() == 683 and abs(q.bit_length() - p.bit_length()) <= 1
    assert gmpy2.is_prime(p) and gmpy2.is_prime(q) and gmpy2.is_prime(t)
    assert t.bit_length() == 224 and (p - 1) % t == 0
    # Far apart in their top bits: n's cube root must not give p away.
    assert abs(p - q).bit_length() > 683 - 100
    # The public plaintext bound holds whatever p turned out to be.
    assert 3 * public.max_int < p and public.max_int.bit_length() == 681
    assert public.ciphertext_bytes == 256 == paillier.generate_keypair(2048)[0].ciphertext_bytes // 2


def test_it_refuses_keys_below_2048_bits_without_the_insecure_flag():
    with pytest.raises(KeySizeError, match="insecure_allow_small_keys"):
        generate_keypair(1536)
    with pytest.raises(KeySizeError, match="even for tests"):
        generate_keypair(512, insecure_allow_small_keys=True)
    public, private = generate_keypair(1024, insecure_allow_small_keys=True)
    assert public.bits == 1024 and private.t.bit_length() == 160
    with pytest.raises(KeySizeError, match="too small"):
        PublicKey.from_bytes(public.to_bytes())
    assert PublicKey.from_bytes(public.to_bytes(), insecure_allow_small_keys=True) == public


def test_a_3072_bit_key_has_the_128_bit_subgroup_and_exponent():
    public, private = generate_keypair(3072)
    assert public.bits == 3072 and private.p.bit_length() == 1024
    assert private.t.bit_length() == 256 and public.short_exponent_bits == 512


def test_a_public_key_survives_export_and_import_and_bad_keys_are_refused(keys):
    public, private = keys
    data = public.to_bytes()
    assert data[:3] == b"OU1" and len(data) == 3 + 3 * 256
    again = PublicKey.from_bytes(data)
    assert again == public and hash(again) == hash(public)
    np.testing.assert_array_equal(private.decrypt(again.encrypt([0.5, -2.0])), [0.5, -2.0])
    n, g, h = public.n, public.g, public.h
    for bad in (b"", b"OU1", b"XX1" + data[3:], data[:-1], paillier.generate_keypair(2048)[0].to_bytes()):
        with pytest.raises(KeySizeError):
            PublicKey.from_bytes(bad)
    with pytest.raises(KeySizeError):
        PublicKey(n + 1, g, h)  # even
    with pytest.raises(KeySizeError):
        PublicKey(private.p**3, g, h)  # a perfect power
    with pytest.raises(KeySizeError, match="G"):
        PublicKey(n, private.p, h)  # not a unit
    with pytest.raises(KeySizeError, match="H"):
        PublicKey(n, g, n)
    with pytest.raises(KeyMismatchError):
        ou.PrivateKey(public, private.q, private.p, private.t)
    with pytest.raises(KeyMismatchError):
        ou.PrivateKey(public, private.p, private.q, private.t + 2)


def test_the_scheme_is_chosen_by_name_and_both_share_one_interface_and_one_set_of_errors():
    assert he.scheme("ou") is ou and he.scheme("paillier") is paillier
    with pytest.raises(ValueError, match="paillier, ou"):
        he.scheme("rsa")
    for name in he.SCHEME_API:
        assert hasattr(ou, name) and hasattr(paillier, name), name
    assert ou.EncryptedArray is paillier.EncryptedArray
    assert ou.PlaintextOverflowError is paillier.PlaintextOverflowError
    assert issubclass(ou.KeySizeError, paillier.PaillierError)


# ------------------------------------------------------ exact round trips


def test_integers_round_trip_exactly_including_zero_negatives_and_the_limits(keys):
    public, private = keys
    m = public.max_int
    rng = np.random.default_rng(1)
    values = [0, 1, -1, m, -m, m - 1, -(m - 1), 2**64, -(2**64), 2**600 + 12345, -(2**679)]
    values += [int(v) for v in rng.integers(-(2**62), 2**62, size=40)]
    enc = public.encrypt_int(values)
    assert enc.bound == m
    assert list(private.decrypt_int(enc)) == values


def test_values_beyond_the_plaintext_space_are_refused_at_encryption(keys):
    public, _ = keys
    with pytest.raises(PlaintextOverflowError, match="bits"):
        public.encrypt_int([public.max_int + 1])
    with pytest.raises(PlaintextOverflowError):
        public.encrypt_int([-(public.max_int + 1)])
    # A float whose fixed-point encoding would not fit either.
    with pytest.raises(PlaintextOverflowError):
        public.encrypt([2.0**640])


def test_floats_round_trip_to_their_fixed_point_value(keys):
    public, private = keys
    values = np.array([0.0, -0.0, 1.5, -3.25, 1e-20, -1e12, 123456.789, 2.0**-53])
    expected = np.rint(np.ldexp(values, 53)) / 2.0**53
    np.testing.assert_array_equal(private.decrypt(public.encrypt(values)), expected)
    np.testing.assert_array_equal(private.decrypt(public.encrypt_zeros((2, 3))), np.zeros((2, 3)))
    assert private.decrypt(public.encrypt(np.zeros(0))).shape == (0,)


def test_wide_plaintexts_after_narrow_ones_grow_the_tables_correctly(keys):
    public, private = keys
    fresh = PublicKey(public.n, public.g, public.h)  # its own, empty tables
    assert private.decrypt_int(fresh.encrypt_int([3, -3])).tolist() == [3, -3]
    wide = [public.max_int - 7, -(2**500) - 1, 2**300]
    assert private.decrypt_int(fresh.encrypt_int(wide)).tolist() == wide


# ------------------------------------------------- homomorphic arithmetic


def test_addition_negation_and_plaintext_addition_match_integer_arithmetic(keys):
    public, private = keys
    rng = np.random.default_rng(2)
    a = [int(v) for v in rng.integers(-(2**60), 2**60, size=30)]
    b = [int(v) for v in rng.integers(-(2**60), 2**60, size=30)]
    ea, eb = public.encrypt_int(a), public.encrypt_int(b)
    assert list(private.decrypt_int(ea + eb)) == [x + y for x, y in zip(a, b)]
    assert list(private.decrypt_int(ea - eb)) == [x - y for x, y in zip(a, b)]
    assert list(private.decrypt_int(-ea)) == [-x for x in a]
    plain = np.array(b, dtype=np.int64)
    assert list(private.decrypt_int(ea + plain)) == [x + y for x, y in zip(a, b)]
    assert list(private.decrypt_int(plain - ea)) == [y - x for x, y in zip(a, b)]
    assert list(private.decrypt_int(ea - ea)) == [0] * 30


def test_scalar_and_elementwise_products_match_integer_arithmetic(keys):
    public, private = keys
    rng = np.random.default_rng(3)
    a = [int(v) for v in rng.integers(-(2**40), 2**40, size=20)]
    k = rng.integers(-(2**20), 2**20, size=20)
    enc = public.encrypt_int(a)
    assert list(private.decrypt_int(enc * 12345)) == [12345 * x for x in a]
    assert list(private.decrypt_int(enc * -7)) == [-7 * x for x in a]
    assert list(private.decrypt_int(enc * k)) == [int(x) * int(y) for x, y in zip(a, k)]
    assert list(private.decrypt_int(enc * 0)) == [0] * 20
    floats = public.encrypt(np.array([0.5, -1.25, 3.0]))
    np.testing.assert_allclose(private.decrypt(floats * 0.1), [0.05, -0.125, 0.3], rtol=1e-15)
    np.testing.assert_array_equal(private.decrypt(floats / 4), [0.125, -0.3125, 0.75])


def test_sums_bucket_sums_and_matrix_products_are_exact(keys):
    public, private = keys
    rng = np.random.default_rng(4)
    rows = 300
    a = rng.integers(-(2**30), 2**30, size=rows)
    enc = public.encrypt_int(a)
    assert private.decrypt_int(enc.sum()) == int(a.sum())
    grid = public.encrypt_int(a[:12].reshape(3, 4))
    assert private.decrypt_int(grid.sum(axis=0)).tolist() == a[:12].reshape(3, 4).sum(axis=0).tolist()
    assert private.decrypt_int(grid.cumsum(axis=1)).tolist() == np.cumsum(a[:12].reshape(3, 4), axis=1).tolist()
    ids = rng.integers(0, 16, size=(rows, 5))
    hist = private.decrypt_int(enc.bucket_sum(ids, 16))
    for j in range(5):
        assert hist[j].tolist() == [int(a[ids[:, j] == b].sum()) for b in range(16)]
    X = rng.integers(-(2**15), 2**15, size=(rows, 6))
    assert private.decrypt_int(X.T @ enc).tolist() == [int(v) for v in X.T.astype(object) @ a.astype(object)]
    both = concatenate([enc[:2], enc[5:7]])
    assert private.decrypt_int(both).tolist() == [int(a[0]), int(a[1]), int(a[5]), int(a[6])]


def test_every_operation_gives_what_our_paillier_gives(keys, paillier_keys):
    rng = np.random.default_rng(5)
    values = rng.normal(scale=3.0, size=200)
    X = rng.integers(-50, 50, size=(200, 4))
    ids = rng.integers(0, 8, size=(200, 3))
    w = rng.normal(size=200)

    def run(public, private):
        d = public.encrypt(values)
        return [
            private.decrypt(d + d * 3),
            private.decrypt(d * w - 1.5),
            private.decrypt(X.T @ d),
            private.decrypt(d.bucket_sum(ids, 8)),
            private.decrypt((-d).cumsum()),
        ]

    for ours, reference in zip(run(*keys), run(*paillier_keys)):
        np.testing.assert_array_equal(ours, reference)


def test_sums_over_index_lists_match_integer_sums_in_both_schemes(keys, paillier_keys):
    rng = np.random.default_rng(9)
    a = rng.integers(-(2**50), 2**50, size=60)
    lists = [rng.choice(60, size=size, replace=False) for size in (1, 7, 60, 23)] + [[], [3, 3, 3]]
    expected = [int(a[np.asarray(ix, dtype=np.int64)].sum()) for ix in lists]
    for public, private in (keys, paillier_keys):
        sums = public.encrypt_int(a).index_sums(lists)
        assert sums.shape == (6,) and private.decrypt_int(sums).tolist() == expected
        assert sums.bound == 60 * int(np.abs(a).max())
    enc = keys[0].encrypt_int(a)
    for bad in ([[60]], [[-1]], [[0.5]], [[[1, 2]]]):
        with pytest.raises(ValueError, match="position"):
            enc.index_sums(bad)
    with pytest.raises(ValueError, match="1-D"):
        enc.reshape(6, 10).index_sums([[0]])
    with pytest.raises(PlaintextOverflowError):
        keys[0].encrypt_int([keys[0].max_int // 2 + 1]).index_sums([[0, 0]])


def test_empty_buckets_are_fresh_encryptions_of_zero(keys):
    public, private = keys
    enc = public.encrypt_int([1, 2, 3])
    hist = enc.bucket_sum(np.array([0, 0, 2]), 4)
    assert private.decrypt_int(hist).tolist() == [3, 0, 3, 0]
    assert 1 not in hist.ciphertexts
    assert hist.ciphertexts[1] != hist.ciphertexts[3]


def test_results_do_not_depend_on_the_thread_count_or_on_helper_processes(keys, monkeypatch):
    from engine.crypto import _paillier_kernels as kernels
    from engine.crypto import _paillier_worker as worker

    public, private = keys
    rng = np.random.default_rng(6)
    X = rng.integers(-(2**15), 2**15, size=(150, 3))
    ids = rng.integers(0, 6, size=(150, 3))
    d = public.encrypt(rng.normal(size=150))
    monkeypatch.setattr(kernels, "HELPER_MIN_ROW_PASSES", 10**12)
    ou.set_thread_count(1)
    try:
        alone = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 6)), private.decrypt(d))
        ou.set_thread_count(2)
        threads = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 6)), private.decrypt(d))
        monkeypatch.setattr(kernels, "HELPER_MIN_ROW_PASSES", 0)
        monkeypatch.setattr(worker, "_disabled", False)
        assert ou.warm_up() == 1
        helpers = (private.decrypt(X.T @ d), private.decrypt(d.bucket_sum(ids, 6)), private.decrypt(d))
    finally:
        ou.set_thread_count(None)
    for a, b, c in zip(alone, threads, helpers):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------- overflow


def test_an_operation_that_could_overflow_is_refused_before_computing(keys):
    public, _ = keys
    half = public.encrypt_int([public.max_int // 2 + 1])
    with pytest.raises(PlaintextOverflowError, match="overflow"):
        half + half
    with pytest.raises(PlaintextOverflowError):
        half * 3
    with pytest.raises(PlaintextOverflowError):
        public.encrypt_int([2**600]) * 2**90
    with pytest.raises(PlaintextOverflowError):
        public.encrypt_int([2**600] * 4).sum() * 2**79
    with pytest.raises(PlaintextOverflowError):
        public.encrypt_int([2**650, 1]) @ np.full((2, 1), 2**40, dtype=np.int64)
    # Paillier's 2046 bits would hold this; OU's ~680 do not.
    paillier_public = paillier.generate_keypair(1024, insecure_allow_small_keys=True)[0]
    paillier_public.encrypt_int([2**900])
    with pytest.raises(PlaintextOverflowError):
        public.encrypt_int([2**900])


def test_a_sum_that_wrapped_modulo_p_or_exceeds_its_declared_bound_fails_to_decrypt(keys):
    public, private = keys
    top = public.encrypt_int([public.max_int, public.max_int])
    # Built by hand, the way an untracked computation would: 2 * max_int is beyond max_int.
    wrapped = EncryptedArray.from_ciphertexts(public, [top.ciphertexts[0] * top.ciphertexts[1] % public.n],
                                              frac_bits=0)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt_int(wrapped)
    claimed = EncryptedArray.from_ciphertexts(public, public.encrypt_int([2**200]).ciphertexts, frac_bits=0,
                                              bound=2**100)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt_int(claimed)


def test_a_crafted_ciphertext_of_a_plaintext_beyond_p_is_refused_rather_than_reduced_modulo_p(keys):
    # Handing back M mod p would let the crafter compute gcd(M - (M mod p), n) = p.
    public, private = keys
    rng = np.random.default_rng(7)
    big = int.from_bytes(rng.bytes(180), "big")  # ~1440 bits, far beyond p
    crafted = gmpy2.powmod(public.g, big, public.n) * public.encrypt_int([0]).ciphertexts[0] % public.n
    forged = EncryptedArray.from_ciphertexts(public, [crafted], frac_bits=0, bound=2**120)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt_int(forged)


# ------------------------------------------------ other keys, bad bytes


def test_ciphertexts_of_another_key_cannot_be_combined_or_decrypted(keys, other_keys):
    public, private = keys
    other_public, other_private = other_keys
    mine, theirs = public.encrypt([1.0, 2.0]), other_public.encrypt([1.0, 2.0])
    with pytest.raises(KeyMismatchError):
        mine + theirs
    with pytest.raises(KeyMismatchError, match="key"):
        other_private.decrypt(mine)
    with pytest.raises(KeyMismatchError):
        paillier.generate_keypair(1024, insecure_allow_small_keys=True)[1].decrypt(mine)
    # The raw numbers of a (slightly larger) key moved onto ours: too large to import, or noise modulo p.
    foreign = generate_keypair(2056)[0].encrypt(np.linspace(-1, 1, 40))
    larger = [c for c in foreign.ciphertexts if c >= public.n]
    smaller = [c % public.n for c in foreign.ciphertexts]
    assert larger
    with pytest.raises(InvalidCiphertextError, match="different key"):
        EncryptedArray.from_ciphertexts(public, larger, frac_bits=53)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt(EncryptedArray.from_ciphertexts(public, smaller, frac_bits=53, bound=2**60))


def test_malformed_or_out_of_range_ciphertexts_are_refused_on_import(keys):
    public, private = keys
    for bad in (0, -3, public.n, public.n + 5, public.n**2 - 1):
        with pytest.raises(InvalidCiphertextError):
            EncryptedArray.from_ciphertexts(public, [bad], frac_bits=0)
    with pytest.raises(InvalidCiphertextError):
        EncryptedArray.from_ciphertexts(public, [private.p * 12345], frac_bits=0, check_coprime=True)
    with pytest.raises(InvalidCiphertextError, match="bytes"):
        EncryptedArray.from_bytes_list(public, [b"\x01" * 512], frac_bits=0)  # a Paillier-2048 width
    with pytest.raises(InvalidCiphertextError, match="whole number"):
        EncryptedArray.from_bytes(public, b"\x01" * 300, frac_bits=0)
    with pytest.raises(InvalidCiphertextError, match="fill shape"):
        EncryptedArray.from_ciphertexts(public, [5, 6], (3,), frac_bits=0)
    with pytest.raises(InvalidCiphertextError, match="bound"):
        EncryptedArray.from_ciphertexts(public, [5], frac_bits=0, bound=public.max_int + 1)


def test_a_flipped_bit_is_caught_by_the_bound_check(keys):
    public, private = keys
    enc = public.encrypt(np.array([0.5, -0.25, 3.0]))
    blobs = enc.to_bytes_list()
    flipped = bytearray(blobs[1])
    flipped[-1] ^= 1
    tampered = EncryptedArray.from_bytes_list(public, [blobs[0], bytes(flipped), blobs[2]],
                                              frac_bits=enc.frac_bits, bound=enc.bound)
    with pytest.raises(PlaintextOverflowError):
        private.decrypt(tampered)


# ------------------------------------------------------- serialisation


def test_ciphertexts_and_keys_survive_serialisation_and_the_wire_format(keys):
    public, private = keys
    values = np.arange(-3.0, 3.0).reshape(2, 3)
    enc = public.encrypt(values)
    data = enc.to_bytes()
    assert len(data) == 6 * 256
    again = EncryptedArray.from_bytes(public, data, (2, 3), frac_bits=enc.frac_bits, bound=enc.bound)
    np.testing.assert_array_equal(private.decrypt(again), values)
    message = decode(encode({"key": public.to_bytes(), "cts": BigIntArray(enc.ciphertexts, enc.shape)}))
    key = PublicKey.from_bytes(message["key"])
    received = EncryptedArray.from_ciphertexts(key, message["cts"].to_mpz(), (2, 3), frac_bits=53, bound=enc.bound)
    np.testing.assert_array_equal(private.decrypt(received), values)


def test_rerandomising_hides_which_ciphertext_a_result_came_from(keys):
    public, private = keys
    sums = public.encrypt_int([7, -7, 0]).cumsum()
    seen = {int(c) for c in sums.ciphertexts}
    for circuit_private in (True, False, True):
        fresh = sums.rerandomize(circuit_private=circuit_private)
        assert seen.isdisjoint(int(c) for c in fresh.ciphertexts)
        seen.update(int(c) for c in fresh.ciphertexts)
        assert private.decrypt_int(fresh).tolist() == [7, 0, 0] and fresh.bound == sums.bound


def test_the_rerandomising_exponent_covers_the_order_of_h_with_128_bits_to_spare(keys):
    """``H**r`` is uniform in ``<H>`` (to 2**-128) only if ``r`` spans 128 bits more than ``ord(H)``:
    the public bound the exponent is sized from must hold for the key's real order."""
    public, private = keys
    n, t, q = int(public.n), int(private.t), int(private.q)
    multiple = t * (q - 1)  # ord(H) divides it: t modulo p**2, a divisor of q - 1 modulo q
    assert pow(int(public.h), multiple, n) == 1
    assert multiple.bit_length() <= public.uniform_exponent_bits - 128
    assert public.uniform_exponent_bits == 1036  # for 2048 bits, instead of the 2176 of bits + 128


# --------------------------------------------------------------- packing


def test_the_packer_fits_a_third_as_many_slots_as_paillier_and_packed_sums_survive(keys):
    public, private = keys
    paillier_public = paillier.generate_keypair(2048)[0]
    assert SlotPacker.capacity(public, 60) == 11
    assert SlotPacker.capacity(paillier_public, 60) == 34
    rng = np.random.default_rng(8)
    rows = 200
    packer = SlotPacker.for_sums(max_value=2**40, max_terms=rows, n_slots=SlotPacker.capacity(public, 48))
    packer.check_key(public)
    values = rng.integers(0, 2**40, size=(rows, packer.n_slots))
    enc = public.encrypt_int(packer.pack(values))
    bins = rng.integers(0, 5, rows)
    sums = packer.unpack(private.decrypt_int(enc.bucket_sum(bins, 5)))
    for b in range(5):
        assert sums[b].tolist() == [int(v) for v in values[bins == b].sum(axis=0)]
    with pytest.raises(PlaintextOverflowError):
        SlotPacker(slot_bits=48, n_slots=packer.n_slots + 1, max_value=1).check_key(public)


# -------------------------------------------------------------- property


@PROPERTY
@given(
    a=st.lists(st.integers(min_value=-(2**300), max_value=2**300), min_size=1, max_size=8),
    data=st.data(),
    k=st.integers(min_value=-(2**200), max_value=2**200),
)
def test_homomorphic_properties_hold_for_any_integers(keys, a, data, k):
    public, private = keys
    b = data.draw(st.lists(st.integers(min_value=-(2**300), max_value=2**300), min_size=len(a), max_size=len(a)))
    ea, eb = public.encrypt_int(a), public.encrypt_int(b)
    assert list(private.decrypt_int(ea + eb)) == [x + y for x, y in zip(a, b)]
    assert list(private.decrypt_int(ea * k)) == [x * k for x in a]
    assert list(private.decrypt_int(-(ea - eb))) == [y - x for x, y in zip(a, b)]
    assert private.decrypt_int(ea.sum()) == sum(a)
