"""Hetero binning with WOE/IV: the maths, the federation against central binning, and what crosses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine import wire
from engine.components.binning import hetero_binning
from engine.components.binning.protocol import pack_sums, unpack_sums
from engine.components.split.align import RowsNotAligned
from engine.crypto.paillier import generate_keypair
from engine.errors import AllMissingColumn, ConstantColumn, InvalidParameters, ProtocolError, SingleClass
from engine.federation import InMemoryTransport, run_local
from engine.ml import binning as B
from engine.ml import model_io
from engine.samples import breast_cancer_split, credit_table

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}


class RecordingTransport(InMemoryTransport):
    """Remembers every message, decoded, with who sent it to whom."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, str, str, object]] = []

    def push(self, session_id, src, dst, key, payload):
        self.log.append((src, dst, key, wire.decode(payload)))
        super().push(session_id, src, dst, key, payload)

    def received_by(self, dst):
        return [(key, value) for _, d, key, value in self.log if d == dst]


def leaves(value):
    """Every scalar inside nested dicts/lists/arrays (keys included)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, np.ndarray):
        yield from value.ravel().tolist()
    elif not isinstance(value, wire.BigIntArray):
        yield value


def federated(guest, host, transport=None, role_params=None, **params):
    return run_local(hetero_binning, {**SMALL_KEYS, **params}, {"guest": {"data": guest}, "host": {"data": host}},
                     transport=transport, role_params=role_params, timeout=60)


def central(guest, host, label="y", smoothing=0.5, **fit):
    """The same binning done in one place, in plaintext, on the joined table."""
    joined = guest.merge(host, on="id")
    columns = [c for c in joined.columns if c not in ("id", label)]
    features, index, _ = B.fit_table(joined, columns, **fit)
    tables = B.feature_tables(features, index, joined[label].to_numpy(), smoothing)
    return {t["name"]: t for t in tables}


def by_name(result):
    """Federated per-feature tables keyed by real column name (host ids mapped by the host's half)."""
    host_names = {f["id"]: f["name"] for f in result["host"]["model"]["body"]["features"]}
    out = {}
    for feature in result["guest"]["model"]["body"]["features"]:
        name = feature["name"] if feature["own"] else host_names[feature["name"]]
        out[name] = feature
    return out


@pytest.fixture(scope="module")
def cancer():
    return breast_cancer_split()


@pytest.fixture(scope="module")
def credit():
    table = credit_table(3000, seed=11)
    guest = table[["id", "default", "age", "income", "region", "late_payments"]].rename(columns={"default": "y"})
    host = table[["id", "debt_ratio", "utilisation", "education", "months_employed", "credit_lines"]]
    # Both sides in the order psi would give them: the same.
    return guest.reset_index(drop=True), host.reset_index(drop=True)


def aligned(guest, host):
    """Host rows in the guest's order (what psi outputs)."""
    return guest, host.set_index("id").loc[guest["id"]].reset_index()


# ------------------------------------------------------------------ pure maths


def test_equal_frequency_cut_points_are_deduplicated_quantiles_below_the_maximum():
    values = np.array([1, 1, 1, 1, 2, 3, 4, 5, 5, 5, np.nan], dtype=float)
    cuts = B.numeric_cut_points(values, "quantile", 4)
    observed = values[~np.isnan(values)]
    expected = np.unique(np.quantile(observed, [0.25, 0.5, 0.75]))
    assert np.array_equal(cuts, expected[expected < 5])
    assert B.numeric_cut_points(np.array([7.0, 7.0, np.nan]), "quantile", 10).size == 0


def test_equal_width_cut_points_split_the_observed_range_evenly():
    cuts = B.numeric_cut_points(np.array([0.0, 10.0, 3.0, np.nan]), "equal_width", 5)
    assert np.allclose(cuts, [2, 4, 6, 8])


def test_bins_are_right_closed_and_missing_values_get_the_last_bin():
    cuts = np.array([1.0, 2.0])
    index = B.numeric_bin_index(np.array([-5, 1.0, 1.5, 2.0, 2.5, np.inf, np.nan]), cuts)
    assert index.tolist() == [0, 0, 1, 1, 2, 2, 3]


def test_categories_get_a_bin_each_most_frequent_first_then_other_then_missing():
    series = pd.Series(["b", "a", "b", None, "c", "b", "a", ""])
    spec, index = B.fit_feature(series, max_categories=2)
    assert spec["categories"] == ["b", "a"] and spec["n_value_bins"] == 3
    assert index.tolist() == [0, 1, 0, 3, 2, 0, 1, 3]
    assert B.feature_bin_index(pd.Series(["zzz", "a"]), spec).tolist() == [2, 1]
    assert B.bin_labels(spec) == ["b", "a", "__other__", "missing"]


def test_woe_and_iv_follow_the_textbook_formula_with_smoothing_only_where_a_class_is_absent():
    events = np.array([10, 0, 30, 0])
    counts = np.array([50, 20, 40, 0])  # bin 1 has no event, bin 3 no row at all
    E, N = 40, 70
    woe, iv_bins, iv = B.woe_iv(events, counts, E, N, smoothing=0.5)
    expected0 = np.log((10 / E) / (40 / N))
    expected1 = np.log((0.5 / E) / (20.5 / N))
    expected2 = np.log((30 / E) / (10 / N))
    assert woe.tolist() == pytest.approx([expected0, expected1, expected2, 0.0], abs=1e-15)
    assert iv_bins[0] == pytest.approx((10 / E - 40 / N) * expected0, abs=1e-15)
    assert iv_bins[3] == 0.0 and iv == pytest.approx(iv_bins.sum())
    with pytest.raises(ValueError):
        B.woe_iv(events, counts, 0, 110)


def test_packed_encrypted_sums_unpack_to_the_same_integers():
    public, private = generate_keypair(1024, insecure_allow_small_keys=True)
    values = np.arange(0, 3 * 37) % 1000  # more values than one ciphertext holds
    enc = public.encrypt_int(values).reshape(3, 37)
    packed, slots = pack_sums(enc, slot_bits=10)
    assert packed.size == int(np.ceil(values.size / slots)) and slots == (public.max_int.bit_length() - 1) // 10
    out = unpack_sums(private.decrypt_int(packed).tolist(), 10, slots, values.size)
    assert out.tolist() == values.tolist()


# ------------------------------------------------- federated equals central


@pytest.mark.parametrize("method", ["quantile", "equal_width"])
def test_federated_woe_and_iv_equal_central_binning_on_the_joined_breast_cancer_data(cancer, method):
    guest, host = aligned(*cancer)
    result = federated(guest, host, method=method, n_bins=8)
    reference = central(guest, host, method=method, n_bins=8)
    got = by_name(result)
    assert set(got) == set(reference) and len(got) == 30
    for name, ref in reference.items():
        feature = got[name]
        assert feature["iv"] == pytest.approx(ref["iv"], abs=1e-9)
        assert [b["count"] for b in feature["bins"]] == ref["counts"].tolist()
        assert [b["events"] for b in feature["bins"]] == ref["events"].tolist()
        assert np.allclose(feature["woe"], ref["woe"], rtol=0, atol=1e-9)
    # The guest's metrics rank every feature by IV, host features under opaque ids.
    ranked = [f["iv"] for f in result["guest"]["metrics"]["features"]]
    assert ranked == sorted(ranked, reverse=True)
    assert set(result["guest"]["metrics"]["host_iv"]) == {f"h{j}" for j in range(20)}


def test_federated_binning_equals_central_on_credit_data_with_gaps_and_categories(credit):
    guest, host = credit
    result = federated(guest, host, n_bins=12, max_categories=4, categorical_columns=["late_payments"],
                       role_params={"guest": {"categorical_columns": ["late_payments"]},
                                    "host": {"categorical_columns": []}})
    reference = central(guest, host, n_bins=12, max_categories=4, categorical_columns=["late_payments"])
    got = by_name(result)
    for name, ref in reference.items():
        assert got[name]["iv"] == pytest.approx(ref["iv"], abs=1e-9), name
        assert np.allclose(got[name]["woe"], ref["woe"], rtol=0, atol=1e-9)
    income = got["income"]["bins"]
    assert income[-1]["missing"] and income[-1]["count"] == int(guest["income"].eq("").sum()) > 0
    education = got["education"]  # a host text column: bins by category, opaque to the guest
    assert [b["label"] for b in education["bins"]] == ["bin 0", "bin 1", "bin 2", "bin 3", "bin 4", "missing"]
    host_half = {f["name"]: f for f in result["host"]["model"]["body"]["features"]}
    frequent = host["education"].value_counts()
    assert host_half["education"]["spec"]["categories"] == list(frequent.index[:4])  # the names stay at the host


def test_host_can_learn_its_woe_and_output_woe_data_equal_to_the_central_transform(cancer):
    guest, host = aligned(*cancer)
    result = federated(guest, host, host_learns="woe", transform=True)
    reference = central(guest, host)
    joined = guest.merge(host, on="id")
    for role, frame in (("guest", result["guest"]["data"]), ("host", result["host"]["data"])):
        assert frame["id"].tolist() == guest["id"].tolist()
        for column in frame.columns.drop(["id", "y"], errors="ignore"):
            ref = reference[column]
            expected = ref["woe"][B.feature_bin_index(joined[column], ref["spec"])]
            assert np.allclose(frame[column].to_numpy(), expected, rtol=0, atol=1e-9), (role, column)
    assert list(result["guest"]["data"].columns[:2]) == ["id", "y"]
    # The saved halves WOE-transform new rows exactly as training did (scoring time).
    for role, table in (("guest", guest), ("host", host)):
        document = model_io.loads(model_io.dumps(result[role]["model"]), component="hetero_binning", role=role)
        assert B.apply_model(document, table).equals(result[role]["data"])


# ------------------------------------------------------------ what crosses


def test_the_host_receives_only_a_public_key_ciphertexts_and_its_own_ivs(cancer):
    guest, host = aligned(*cancer)
    transport = RecordingTransport()
    result = federated(guest, host, transport=transport)
    received = transport.received_by("host")
    keys = [key for key, _ in received]
    assert keys == ["hetero_binning/hello", "hetero_binning/labels.0/chunk", "hetero_binning/result"]
    hello, labels, ivs = (value for _, value in received)
    assert set(hello) == {"protocol", "rows", "nonce", "host_learns", "public_key", "label_bound"}
    assert isinstance(labels, wire.BigIntArray) and len(labels) == len(guest)
    # Ciphertexts, not labels: every value is a big number and all are distinct.
    assert min(labels.values) > 2**512 and len(set(labels.values)) == len(guest)
    assert set(ivs) == {"iv"} and len(ivs["iv"]) == 20
    assert ivs["iv"] == [f["iv"] for f in result["guest"]["model"]["body"]["features"] if not f["own"]]
    for _, value in received:
        assert not isinstance(value, np.ndarray)


def test_the_guest_never_receives_the_hosts_cut_points_names_or_rows(cancer):
    guest, host = aligned(*cancer)
    transport = RecordingTransport()
    result = federated(guest, host, transport=transport)
    received = dict(transport.received_by("guest"))
    assert set(received) == {"hetero_binning/hello", "hetero_binning/histogram"}
    histogram = received["hetero_binning/histogram"]
    assert set(histogram) == {"features", "names", "n_value_bins", "counts", "packed", "slot_bits", "slots"}
    assert histogram["names"] is None and histogram["features"] == [f"h{j}" for j in range(20)]
    assert histogram["counts"].dtype == np.int64  # bin sizes only: no float crosses
    cut_points = {c for f in result["host"]["model"]["body"]["features"] for c in f["spec"]["cut_points"]}
    guest_knows = set(leaves(result["guest"]["model"])) | set(leaves(list(received.values())))
    assert cut_points and not cut_points & guest_knows
    assert not set(host.columns[1:]) & guest_knows


def test_the_host_learns_nothing_back_when_told_so_and_may_share_its_column_names(cancer):
    guest, host = aligned(*cancer)
    transport = RecordingTransport()
    result = federated(guest, host, transport=transport, host_learns="nothing", share_feature_names=True)
    assert [key for key, _ in transport.received_by("host")][-1] == "hetero_binning/labels.0/chunk"
    assert all("iv" not in f and "woe" not in f for f in result["host"]["model"]["body"]["features"])
    host_features = [f for f in result["guest"]["model"]["body"]["features"] if not f["own"]]
    assert [f["display_name"] for f in host_features] == list(host.columns[1:])


def test_labels_travel_in_several_chunks_when_there_are_many_rows(monkeypatch, cancer):
    from engine.components.binning import protocol

    monkeypatch.setattr(protocol, "CHUNK", 200)
    guest, host = aligned(*cancer)
    transport = RecordingTransport()
    result = federated(guest, host, transport=transport)
    chunks = [key for key, _ in transport.received_by("host") if key.endswith("/chunk")]
    assert len(chunks) == 3
    assert by_name(result)["worst_area"]["iv"] == pytest.approx(central(guest, host)["worst_area"]["iv"], abs=1e-9)


# ------------------------------------------------------------------ edge cases


def small_tables(**host_columns):
    rng = np.random.default_rng(3)
    ids = [f"{i:04d}" for i in range(60)]
    guest = pd.DataFrame({"id": ids, "y": np.arange(60) % 2, "a": rng.normal(size=60)})
    host = pd.DataFrame({"id": ids, "b": rng.normal(size=60), **host_columns})
    return guest, host


def test_a_constant_host_column_is_refused_by_name_unless_dropped_or_kept():
    guest, host = small_tables(flat=np.full(60, 3.0))
    with pytest.raises(ConstantColumn, match="'flat' of input 'data' is constant"):
        federated(guest, host)
    dropped = federated(guest, host, degenerate_columns="drop")
    assert dropped["host"]["model"]["body"]["dropped"] == [{"name": "flat", "reason": "constant"}]
    assert len([f for f in dropped["guest"]["model"]["body"]["features"] if not f["own"]]) == 1
    kept = federated(guest, host, degenerate_columns="keep")
    flat = kept["guest"]["model"]["body"]["features"][-1]
    assert flat["iv"] == 0.0 and len(flat["bins"]) == 2  # one value bin and the (empty) missing bin


def test_an_all_missing_guest_column_is_refused_by_name():
    guest, host = small_tables()
    guest["empty"] = np.nan
    with pytest.raises(AllMissingColumn, match="'empty' of input 'data' has only missing values"):
        federated(guest, host)


def test_a_label_with_one_class_only_is_a_clear_error_before_anything_is_sent():
    guest, host = small_tables()
    guest["y"] = 1
    transport = RecordingTransport()
    with pytest.raises(SingleClass, match="label column 'y' of input 'data' holds a single class"):
        federated(guest, host, transport=transport)
    assert transport.received_by("host") == []


def test_misaligned_tables_stop_before_any_label_is_sent():
    guest, host = small_tables()
    transport = RecordingTransport()
    with pytest.raises(RowsNotAligned, match="same ids in the same order"):
        federated(guest, host.iloc[::-1].reset_index(drop=True), transport=transport)
    assert [key for key, _ in transport.received_by("host")] == ["hetero_binning/hello"]


def test_parties_that_disagree_on_what_the_host_learns_refuse_to_run():
    guest, host = small_tables()
    with pytest.raises(ProtocolError, match="disagree on host_learns"):
        federated(guest, host, role_params={"host": {"host_learns": "woe"}})


def test_a_host_woe_transform_without_the_woe_is_refused_and_small_keys_need_the_test_flag():
    guest, host = small_tables()
    with pytest.raises(InvalidParameters, match="host_learns='woe'"):
        federated(guest, host, transform=True)
    with pytest.raises(InvalidParameters, match="insecure_allow_small_keys"):
        hetero_binning.validate_params({"key_bits": 1024})
    assert hetero_binning.validate_params({}).key_bits == 2048


def test_the_binning_model_documents_are_valid_model_files_and_metrics_are_json(cancer):
    guest, host = aligned(*cancer)
    result = federated(guest, host)
    for role in ("guest", "host"):
        document = model_io.loads(model_io.dumps(result[role]["model"]), component="hetero_binning", role=role)
        assert document["model_id"] == result["guest"]["model"]["model_id"]
        json.dumps(result[role]["metrics"], allow_nan=False)
    host_feature = result["host"]["model"]["body"]["features"][0]
    assert host_feature["spec"]["type"] == "numeric" and host_feature["bins"][0]["label"].startswith("(-inf, ")
    assert "iv" in host_feature and "woe" not in host_feature


def test_the_runner_bins_csv_files_and_writes_each_half(tmp_path, cancer):
    from engine.__main__ import main
    from engine.errors import ComponentNotFound
    from engine.registry import get_component, register

    try:
        get_component("hetero_binning")
    except ComponentNotFound:  # until the lead lists it in engine/components BUILTINS
        register(hetero_binning)
    guest, host = aligned(*cancer)
    guest.to_csv(tmp_path / "g.csv", index=False)
    host.to_csv(tmp_path / "h.csv", index=False)
    params = json.dumps({**SMALL_KEYS, "n_bins": 5})
    code = main(["run", "hetero_binning", "--data", f"guest={tmp_path / 'g.csv'}", f"host={tmp_path / 'h.csv'}",
                 "--params", params, "--out", str(tmp_path / "out")])
    assert code == 0
    model = json.loads((tmp_path / "out" / "guest" / "model.json").read_text())
    assert model["component"] == "hetero_binning" and len(model["body"]["features"]) == 30
    ivs = json.loads((tmp_path / "out" / "guest" / "metrics.json").read_text())["iv"]
    assert ivs["mean_radius"] == pytest.approx(central(guest, host, n_bins=5)["mean_radius"]["iv"], abs=1e-9)


def test_each_party_chooses_its_own_columns_through_role_parameters(cancer):
    guest, host = aligned(*cancer)
    result = federated(guest, host, role_params={"guest": {"columns": ["mean_radius", "mean_texture"]},
                                                 "host": {"exclude_columns": list(host.columns[3:])}})
    features = result["guest"]["model"]["body"]["features"]
    assert [f["name"] for f in features] == ["mean_radius", "mean_texture", "h0", "h1"]
    assert [f["name"] for f in result["host"]["model"]["body"]["features"]] == list(host.columns[1:3])
