"""The psi component and the ristretto255 helpers under it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.components.psi import protocol
from engine.crypto import ecc
from engine.errors import CryptoError, InvalidInput, PolicyViolation, ProtocolError
from engine.federation import InMemoryTransport, run_local

# ------------------------------------------------------------- ristretto255


def test_expand_message_xmd_matches_the_rfc_9380_sha512_vectors():
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert ecc.expand_message_xmd_sha512(b"", dst, 32).hex() == (
        "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba")
    assert ecc.expand_message_xmd_sha512(b"abc", dst, 32).hex() == (
        "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc")
    assert ecc.expand_message_xmd_sha512(b"", dst, 128).hex() == (
        "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921b052b62eaed99b46f72f2ef4cc96bfaf"
        "254ebbbec091e1a3b9e4fb5e5b619d2e0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
        "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961")


@pytest.mark.parametrize(
    "message, blinded",
    [
        ("00", "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c"),
        ("5a" * 17, "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418"),
    ],
)
def test_hash_to_group_times_a_scalar_matches_the_rfc_9497_ristretto255_oprf_vectors(message, blinded):
    # RFC 9497 A.1.1: BlindedElement = Blind * HashToGroup(Input), where HashToGroup is
    # hash_to_ristretto255 with DST "HashToGroup-OPRFV1-\x00-ristretto255-SHA512".
    dst = b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512"
    blind = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
    point = ecc.hash_to_group(bytes.fromhex(message), dst)
    assert ecc.scalar_mult(blind, point).hex() == blinded
    batch = ecc.hash_to_group_many([bytes.fromhex(message)], dst, scalar=blind)
    assert batch[0].tobytes().hex() == blinded


def test_batch_hashing_and_multiplication_on_threads_match_the_single_value_functions():
    messages = [f"{i:07d}".encode() for i in range(1500)]
    a, b = ecc.random_scalar(), ecc.random_scalar()
    hashed = ecc.hash_to_group_many(messages, b"test-dst", threads=2)
    assert hashed[777].tobytes() == ecc.hash_to_group(messages[777], b"test-dst")
    ab = ecc.scalar_mult_many(b, ecc.hash_to_group_many(messages, b"test-dst", scalar=a, threads=2), threads=2)
    ba = ecc.scalar_mult_many(a, ecc.scalar_mult_many(b, hashed, threads=1), threads=2)
    assert np.array_equal(ab, ba)  # blinding commutes: the heart of ECDH-PSI


def test_scalar_mult_many_counts_elements_that_are_not_group_elements():
    elements = ecc.hash_to_group_many([b"a", b"b", b"c"], b"dst")
    elements[1] = 0xFF  # not a canonical encoding
    elements[2] = 0  # the identity
    with pytest.raises(CryptoError, match="2 of 3"):
        ecc.scalar_mult_many(ecc.random_scalar(), elements)


def test_the_x25519_path_computes_in_the_ristretto255_group():
    # X25519(k, u(P)) must represent (clamp(k) mod L) * P: check it against libsodium's
    # ristretto255 multiplication, comparing both after one more X25519 by a common k2.
    ids = [f"id-{i}".encode() for i in range(20)]
    k, k2 = ecc.random_x25519_scalar(), ecc.random_x25519_scalar()
    clamped = bytearray(k)
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    k_mod_l = (int.from_bytes(clamped, "little") % ecc.ORDER).to_bytes(32, "little")
    via_x25519 = ecc.x25519_many(k2, ecc.hash_to_montgomery_many(ids, b"dst", k))
    via_ristretto = ecc.x25519_many(k2, np.array([
        np.frombuffer(ecc.ristretto_to_montgomery(ecc.scalar_mult(k_mod_l, ecc.hash_to_group(m, b"dst"))), np.uint8)
        for m in ids]))
    assert np.array_equal(via_x25519, via_ristretto)
    # And blinding commutes, as ECDH-PSI needs.
    a, b = ecc.random_x25519_scalar(), ecc.random_x25519_scalar()
    ab = ecc.x25519_many(b, ecc.hash_to_montgomery_many(ids, b"dst", a, threads=2), threads=2)
    ba = ecc.x25519_many(a, ecc.hash_to_montgomery_many(ids, b"dst", b))
    assert np.array_equal(ab, ba)


def test_x25519_refuses_low_order_points_and_counts_them():
    us = np.zeros((3, 32), np.uint8)
    us[1, 0] = 1  # u = 1: a point of order 4
    us[2] = ecc.hash_to_montgomery_many([b"fine"], b"dst", ecc.random_x25519_scalar())[0]
    with pytest.raises(CryptoError, match="2 of 3"):
        ecc.x25519_many(ecc.random_x25519_scalar(), us)
    with pytest.raises(CryptoError, match="not a valid"):
        ecc.ristretto_to_montgomery(b"\xff" * 32)


_P = 2**255 - 19
_A = 486662
_ORDER_8_US = (
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
)


def _curve_v(u: int) -> int | None:
    """A v with v**2 = u**3 + A u**2 + u (mod p), or None when u is on the twist."""
    rhs = (u * u * u + _A * u * u + u) % _P
    v = pow(rhs, (_P + 3) // 8, _P)
    if v * v % _P != rhs:
        v = v * pow(2, (_P - 1) // 4, _P) % _P
    return v if v * v % _P == rhs else None


def _u_bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


def test_x25519_clears_a_torsion_component_a_peer_adds_to_a_group_element():
    # A malicious peer may send u(P + T) with T of order 8 instead of u(P). The clamped
    # X25519 scalar is a multiple of 8, so the reply is exactly the reply to u(P): nothing
    # about the secret modulo 8 is exposed (the small-subgroup attack ristretto prevents).
    element_u = ecc.hash_to_montgomery_many([b"an id"], b"dst", ecc.random_x25519_scalar())[0].tobytes()
    u1 = int.from_bytes(element_u, "little")
    v1 = _curve_v(u1)
    assert v1 is not None
    secret = ecc.random_x25519_scalar()
    for u2 in _ORDER_8_US:
        v2 = _curve_v(u2)
        assert v2 is not None
        slope = (v2 - v1) * pow(u2 - u1, -1, _P) % _P
        u_sum = (slope * slope - _A - u1 - u2) % _P
        assert u_sum != u1
        assert ecc.x25519(secret, _u_bytes(u_sum)) == ecc.x25519(secret, element_u)
        with pytest.raises(CryptoError, match="low-order"):
            ecc.x25519(secret, _u_bytes(u2))


def test_x25519_on_a_twist_point_answers_in_the_twist_and_never_leaks_a_low_order_result():
    # u values that are not on the curve lie on its quadratic twist (order 4 * a 253-bit
    # prime). The reply is a twist point again, not a curve point an honest party would
    # produce, so it can match no doubly blinded id; recovering the secret from it is a
    # discrete logarithm in that 253-bit group.
    secret = ecc.random_x25519_scalar()
    twist_us = [u for u in range(2, 200) if _curve_v(u) is None][:20]
    assert twist_us
    for u in twist_us:
        reply = int.from_bytes(ecc.x25519(secret, _u_bytes(u)), "little")
        assert reply != 0 and _curve_v(reply) is None


def test_invalid_scalars_and_domain_tags_are_refused():
    with pytest.raises(CryptoError, match="non-zero"):
        ecc.scalar_mult_many(bytes(32), np.zeros((1, 32), np.uint8))
    with pytest.raises(CryptoError, match="reduced"):
        ecc.scalar_mult(b"\xff" * 32, ecc.hash_to_group(b"x", b"d"))
    with pytest.raises(CryptoError, match="tag"):
        ecc.hash_to_group_many([b"x"], b"")


# ------------------------------------------------------------------------ psi


def psi(guest_ids, host_ids, transport=None, role_params=None, **params):
    guest = pd.DataFrame({"id": list(guest_ids), "g": range(len(guest_ids))})
    host = pd.DataFrame({"id": list(host_ids), "h": range(len(host_ids))})
    return run_local("psi", params, {"guest": {"data": guest}, "host": {"data": host}},
                     transport=transport, role_params=role_params, timeout=30)


TRICKY_GUEST = [
    "0012345", "12345", "a ", " a", "a", "", "é", "e\u0301", "日本", "NA", "null", "x" * 10_000,
    "x" * 10_000 + "y", "guest-only-1", "tab\tnew\nline", "🎉", "nul\x00inside", "\x00",
]
TRICKY_HOST = [
    "12345", "a", "e\u0301", "日本", "null", "x" * 10_000 + "y", "host-only", "0012345 ", "NaN", "🎉", "",
    "nul", "\x00",
]


@pytest.mark.parametrize("arithmetic", ["x25519", "ristretto255"])
def test_psi_matches_ids_exactly_as_text_like_a_python_set_intersection(arithmetic):
    out = psi(TRICKY_GUEST, TRICKY_HOST, arithmetic=arithmetic)
    expected = set(TRICKY_GUEST) & set(TRICKY_HOST)
    assert set(out["guest"]["data"]["id"]) == expected
    assert out["guest"]["metrics"]["intersection_size"] == len(expected) == 9
    assert "0012345" not in expected and "é" not in expected and "a " not in expected
    assert "nul" not in expected and "\x00" in expected  # NUL is a character like any other


def test_both_parties_get_their_own_rows_for_the_intersection_in_the_same_order():
    out = psi(TRICKY_GUEST, TRICKY_HOST)
    guest_rows, host_rows = out["guest"]["data"], out["host"]["data"]
    assert guest_rows["id"].tolist() == host_rows["id"].tolist()
    assert list(guest_rows.columns) == ["id", "g"] and list(host_rows.columns) == ["id", "h"]
    for _, row in guest_rows.iterrows():
        assert TRICKY_GUEST[row["g"]] == row["id"]  # rows travel with their own features
    assert out["host"]["metrics"]["rows_revealed"] is True


def test_the_shared_order_does_not_follow_either_input_order():
    ids = [f"{i:05d}" for i in range(300)]
    out = psi(ids, list(reversed(ids)))
    shared = out["guest"]["data"]["id"].tolist()
    assert sorted(shared) == ids and shared != ids and shared != ids[::-1]


@settings(max_examples=25, deadline=None)
@given(
    st.sets(st.text(max_size=6), max_size=40),
    st.sets(st.text(max_size=6), max_size=40),
)
def test_psi_equals_the_set_intersection_for_arbitrary_text_ids(guest_ids, host_ids):
    guest_ids, host_ids = sorted(guest_ids), sorted(host_ids)
    out = psi(guest_ids, host_ids)
    assert set(out["guest"]["data"]["id"]) == set(guest_ids) & set(host_ids)
    assert out["guest"]["data"]["id"].tolist() == out["host"]["data"]["id"].tolist()


def test_guest_only_reveal_gives_the_host_no_rows_and_never_sends_it_the_matching_material():
    transport = RecordingTransport()
    out = psi(TRICKY_GUEST, TRICKY_HOST, transport=transport, reveal="guest")
    assert set(out["guest"]["data"]["id"]) == set(TRICKY_GUEST) & set(TRICKY_HOST)
    assert len(out["host"]["data"]) == 0 and list(out["host"]["data"].columns) == ["id", "h"]
    assert out["host"]["metrics"]["intersection_size"] == 9
    assert out["host"]["metrics"]["rows_revealed"] is False
    to_host = transport.keys("guest", "host")
    assert not [k for k in to_host if "reblinded" in k]  # B^a would let the host match
    assert "psi/verdict" in to_host


def test_cardinality_only_gives_both_the_size_and_nobody_rows_or_the_permutation():
    transport = RecordingTransport()
    out = psi(TRICKY_GUEST, TRICKY_HOST, transport=transport, reveal="cardinality")
    for role in ("guest", "host"):
        assert len(out[role]["data"]) == 0
        assert out[role]["metrics"]["intersection_size"] == 9
    assert "psi/permutation" not in transport.keys("host", "guest")


def test_empty_inputs_and_disjoint_sets_give_an_empty_intersection():
    for guest_ids, host_ids in [([], []), ([], ["a"]), (["a"], []), (["a", "b"], ["c"])]:
        out = psi(guest_ids, host_ids)
        assert len(out["guest"]["data"]) == len(out["host"]["data"]) == 0
        assert out["guest"]["metrics"]["intersection_size"] == 0


@pytest.mark.parametrize("arithmetic", ["x25519", "ristretto255"])
def test_sets_larger_than_one_message_and_one_thread_slice_are_chunked_and_still_exact(monkeypatch, arithmetic):
    monkeypatch.setattr(protocol, "CHUNK", 128)  # 1000 ids -> 8 chunks per list
    guest_ids = [f"g{i}" for i in range(1000)]
    host_ids = [f"g{i}" for i in range(500, 1300)]
    transport = RecordingTransport()
    out = psi(guest_ids, host_ids, transport=transport, arithmetic=arithmetic)
    assert set(out["host"]["data"]["id"]) == {f"g{i}" for i in range(500, 1000)}
    assert out["guest"]["data"]["id"].tolist() == out["host"]["data"]["id"].tolist()
    assert "psi/blinded.7/chunk" in transport.keys("guest", "host")


# ------------------------------------------------------------------ duplicates


def test_duplicate_ids_can_be_refused_without_revealing_them():
    with pytest.raises(InvalidInput, match="2 rows whose id appears on an earlier row") as info:
        psi(["secret-id", "secret-id", "other", "other"], ["x"], duplicate_ids="error")
    assert "secret-id" not in str(info.value)


def test_by_default_the_first_row_of_each_id_is_kept_and_the_rest_reported():
    out = psi(["a", "b", "a", "c"], ["a", "c", "c"])
    assert "1 rows repeat an id" in out["guest"]["metrics"]["warnings"][0]
    assert out["host"]["metrics"]["warnings"] and not psi(["a"], ["a"])["guest"]["metrics"]["warnings"]
    guest, host = out["guest"]["data"], out["host"]["data"]
    assert guest["id"].tolist() == host["id"].tolist() and sorted(guest["id"]) == ["a", "c"]
    assert dict(zip(guest["id"], guest["g"], strict=True)) == {"a": 0, "c": 3}
    assert dict(zip(host["id"], host["h"], strict=True)) == {"a": 0, "c": 1}
    assert out["guest"]["metrics"]["duplicate_rows"] == 1 and out["host"]["metrics"]["duplicate_rows"] == 1


def test_duplicate_ids_can_keep_every_row_grouped_by_id_in_the_shared_order():
    out = psi(["a", "b", "a", "c"], ["a", "c", "c"], duplicate_ids="all")
    guest, host = out["guest"]["data"], out["host"]["data"]
    assert sorted(guest["g"]) == [0, 2, 3] and sorted(host["h"]) == [0, 1, 2]
    # Same id order on both sides; each id's rows are contiguous and in input order.
    assert list(dict.fromkeys(guest["id"])) == list(dict.fromkeys(host["id"]))
    assert guest[guest["id"] == "a"]["g"].tolist() == [0, 2]
    assert out["guest"]["metrics"]["output_rows"] == 3 and out["guest"]["metrics"]["intersection_size"] == 2


# ---------------------------------------------------------------------- policy


def test_an_intersection_below_min_overlap_reveals_nothing_and_fails_both_sides():
    transport = RecordingTransport()
    with pytest.raises(PolicyViolation, match="min_overlap=5") as info:
        psi(["a", "b", "c"], ["a", "b", "z"], transport=transport, min_overlap=5)
    assert "2" not in str(info.value)  # not even the size
    assert "psi/permutation" not in transport.keys("host", "guest")
    assert not [k for k in transport.keys("guest", "host") if "reblinded" in k]


def test_each_party_may_set_its_own_min_overlap_and_the_larger_applies():
    with pytest.raises(PolicyViolation):
        psi(["a", "b", "c"], ["a", "b", "c"], role_params={"host": {"min_overlap": 4}})
    out = psi(["a", "b", "c"], ["a", "b", "c"], min_overlap=3)
    assert out["guest"]["metrics"]["intersection_size"] == 3


def test_parties_that_disagree_on_what_to_reveal_or_how_to_compute_refuse_to_run():
    with pytest.raises(ProtocolError, match="disagree on 'reveal'"):
        psi(["a"], ["a"], role_params={"host": {"reveal": "guest"}})
    with pytest.raises(ProtocolError, match="disagree on 'arithmetic'"):
        psi(["a"], ["a"], role_params={"host": {"arithmetic": "ristretto255"}})


# ---------------------------------------------------------------------- inputs


def test_pyarrow_tables_are_accepted_and_returned_as_pyarrow_tables():
    guest = pa.table({"uid": ["1", "2", "3"], "f": [1.0, 2.0, 3.0]})
    host = pa.table({"uid": pa.array(["3", "1"], type=pa.large_string())})
    out = run_local("psi", {"id_column": "uid"}, {"guest": {"data": guest}, "host": {"data": host}})
    assert isinstance(out["guest"]["data"], pa.Table)
    assert out["guest"]["data"].column("uid").to_pylist() == out["host"]["data"].column("uid").to_pylist()
    assert sorted(out["guest"]["data"].column("uid").to_pylist()) == ["1", "3"]


def test_a_missing_id_column_is_named_with_the_columns_that_exist():
    with pytest.raises(InvalidInput, match="no id column 'phone' \\(columns: 'id', 'g'\\)"):
        run_local("psi", {"id_column": "phone"},
                  {"guest": {"data": pd.DataFrame({"id": ["a"], "g": [1]})},
                   "host": {"data": pd.DataFrame({"phone": ["a"]})}})


def test_numeric_ids_are_refused_because_their_leading_zeros_are_already_lost():
    with pytest.raises(InvalidInput, match="integer values, not text.*dtype=str"):
        run_local("psi", {}, {"guest": {"data": pd.DataFrame({"id": [12345]})},
                              "host": {"data": pd.DataFrame({"id": ["12345"]})}})


def test_missing_ids_are_refused():
    with pytest.raises(InvalidInput, match="missing values"):
        psi(["a", None], ["a"])
    with pytest.raises(InvalidInput, match="missing values"):
        run_local("psi", {}, {"guest": {"data": pa.table({"id": ["a", None]})},
                              "host": {"data": pa.table({"id": ["a"]})}})


# --------------------------------------------------------------------- helpers


class RecordingTransport(InMemoryTransport):
    """An in-memory transport that remembers which messages went where."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, str, str]] = []

    def push(self, session_id, src, dst, key, payload):
        self.log.append((src, dst, key))
        super().push(session_id, src, dst, key, payload)

    def keys(self, src, dst):
        return [key for s, d, key in self.log if (s, d) == (src, dst)]
