"""Encryption by the key's owner (engine.crypto.owner): the public key's ciphertexts, computed by CRT."""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest

from engine.crypto import _owner_worker as worker
from engine.crypto import _paillier_kernels as kernels
from engine.crypto import ou, paillier
from engine.crypto.owner import OwnerEncryptor


class RecordedRandomness:
    """A stand-in for ``os.urandom`` that hands out one fixed stream and records each request."""

    def __init__(self, seed: int):
        self.stream = np.random.default_rng(seed).bytes(1 << 16)
        self.requests: list[int] = []

    def __call__(self, count: int) -> bytes:
        self.requests.append(count)
        assert count <= len(self.stream)
        return self.stream[:count]


def test_paillier_owner_encryption_equals_the_public_keys_for_the_same_randomness(monkeypatch):
    public, private = paillier.generate_keypair(1024, insecure_allow_small_keys=True)
    state = worker.build_state(private.p, private.q, public.short_exponent_bits, 11)
    # The owner's hs (its tables' base), recombined from p**2 and q**2: give the public key the same one.
    hp, hq = state.table_p[0][1], state.table_q[0][1]
    hs = hp + state.p2 * ((hq - hp) * state.p2_inverse % state.q2)
    lam = gmpy2.lcm(private.p - 1, private.q - 1)
    assert hs != 1 and gmpy2.powmod(hs, lam, public.nsquare) == 1  # an n-th power modulo n**2, as DJN's hs
    public._table = kernels.fixed_base_table(hs, public.short_exponent_bits // 8, public.nsquare)
    integers = [0, 1, -1, 123456789, -(2**300), public.max_int]
    randomness = RecordedRandomness(5)
    monkeypatch.setattr(kernels.os, "urandom", randomness)
    monkeypatch.setattr(worker.os, "urandom", randomness)
    by_public_key = public.encrypt_int(integers).ciphertexts
    by_owner = worker.encrypt(state, [k % public.n for k in integers])
    assert by_owner == by_public_key
    # The same randomness length: 4 x kappa bits of exponent per ciphertext, as the public key draws.
    assert randomness.requests == [len(integers) * public.short_exponent_bits // 8] * 2
    assert public.short_exponent_bits == 4 * 80  # 1024-bit test key: kappa = 80


def test_okamoto_uchiyama_owner_encryption_equals_the_public_keys_for_the_same_randomness(monkeypatch):
    public, private = ou.generate_keypair()
    state = worker.build_ou_state(private.p, private.q, public.g, public.h, public.short_exponent_bits, 11, 96)
    integers = [0, 1, -1, 2**95 - 1, -(2**95 - 1), 123456789]
    randomness = RecordedRandomness(6)
    monkeypatch.setattr(ou.os, "urandom", randomness)
    monkeypatch.setattr(worker.os, "urandom", randomness)
    by_public_key = public.encrypt_int(integers).ciphertexts
    by_owner = worker.encrypt_ou(state, integers)
    assert by_owner == by_public_key
    assert randomness.requests == [len(integers) * public.short_exponent_bits // 8] * 2
    assert public.short_exponent_bits == 448
    # And it is G**m H**r mod n for the r that was drawn.
    size = public.short_exponent_bits // 8
    for index, (m, c) in enumerate(zip(integers, by_owner)):
        r = int.from_bytes(randomness.stream[index * size : (index + 1) * size], "little")
        assert c == pow(int(public.g), m, int(public.n)) * pow(int(public.h), r, int(public.n)) % int(public.n)


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_the_owner_draws_as_much_randomness_as_the_public_key(scheme):
    keys = (paillier.generate_keypair(1024, insecure_allow_small_keys=True) if scheme == "paillier"
            else ou.generate_keypair())
    encryptor = OwnerEncryptor(keys[1], workers=0)
    assert encryptor.exponent_bits == keys[0].short_exponent_bits


@pytest.mark.parametrize("workers", [0, 2])
def test_owner_encryption_makes_ciphertexts_the_library_decrypts(workers):
    public, private = paillier.generate_keypair(1024, insecure_allow_small_keys=True)
    values = np.random.default_rng(1).normal(scale=1000, size=300)
    encryptor = OwnerEncryptor(private, workers=workers)
    try:
        assert encryptor.worker_count == workers
        encrypted = encryptor.encrypt(values)
        assert np.array_equal(private.decrypt(encrypted), np.rint(values * 2.0**53) / 2.0**53)
        assert np.allclose(private.decrypt(encrypted + 1.0 - public.encrypt(values)), 1.0)
        assert len(set(encryptor.encrypt(np.zeros(200)).ciphertexts)) == 200  # fresh randomness each time
        assert private.decrypt(encryptor.encrypt([-2.5])).tolist() == [-2.5]  # small jobs stay in-process
        # Packed integers (SecureBoost's gradients), wider than 64 bits, signed.
        integers = [(int(k) << 40) + 7 for k in np.random.default_rng(2).integers(-2**30, 2**30, size=200)]
        packed = encryptor.encrypt_int(integers)
        assert packed.bound == max(abs(k) for k in integers) and packed.frac_bits == 0
        assert [int(v) for v in private.decrypt_int(packed)] == integers
    finally:
        encryptor.close()
    assert encryptor.worker_count == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_owner_encryption_under_okamoto_uchiyama_makes_the_public_keys_ciphertexts(workers):
    public, private = ou.generate_keypair()
    values = np.random.default_rng(1).normal(scale=1000, size=300)
    encryptor = OwnerEncryptor(private, workers=workers)
    try:
        assert encryptor.worker_count == workers
        encrypted = encryptor.encrypt(values)
        assert encrypted.public_key is public and all(0 < c < public.n for c in encrypted.ciphertexts)
        assert np.array_equal(private.decrypt(encrypted), np.rint(values * 2.0**53) / 2.0**53)
        assert np.allclose(private.decrypt(encrypted + 1.0 - public.encrypt(values)), 1.0)
        assert len(set(encryptor.encrypt(np.zeros(200)).ciphertexts)) == 200  # fresh randomness each time
        # A ciphertext of m is G**m times an element of <H> (order t modulo p**2), as the public key makes it.
        integers = [-(2**95) + 1, -7, 0, 9, 2**95 - 1] * 20
        cts = encryptor.encrypt_integers(integers)
        p2 = private.p * private.p
        for m, c in zip(integers, cts):
            mask = c * gmpy2.powmod(public.g, -m, public.n) % public.n
            assert gmpy2.powmod(mask % p2, private.t, p2) == 1
        decrypted = private.decrypt_int(ou.EncryptedArray.from_ciphertexts(public, cts, frac_bits=0))
        assert [int(v) for v in decrypted] == integers
        wide = [2**200 + 5, -(2**300)] * 40  # beyond the workers' tables: the public key's own path
        assert [int(v) for v in private.decrypt_int(encryptor.encrypt_int(wide))] == wide
    finally:
        encryptor.close()
    assert encryptor.worker_count == 0


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_a_value_beyond_the_key_is_refused_in_the_public_keys_words_before_anything_is_encrypted(scheme):
    public, private = (paillier.generate_keypair(1024, insecure_allow_small_keys=True) if scheme == "paillier"
                       else ou.generate_keypair())
    encryptor = OwnerEncryptor(private, workers=0)
    too_big = [1, public.max_int + 1]
    with pytest.raises(paillier.PlaintextOverflowError) as by_public_key:
        public.encrypt_int(too_big)
    with pytest.raises(paillier.PlaintextOverflowError) as by_owner:
        encryptor.encrypt_int(too_big)
    assert str(by_owner.value) == str(by_public_key.value)
    assert "holds at most" in str(by_owner.value)
