"""Feature selection: IV rules decided by the guest for both parties, local rules per party."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import wire
from engine.components.binning import hetero_binning
from engine.components.selection import feature_selection
from engine.errors import InvalidInput
from engine.federation import InMemoryTransport, run_local
from engine.ml import binning as B
from engine.ml import model_io
from engine.ml import selection as S
from engine.samples import breast_cancer_split

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}


class RecordingTransport(InMemoryTransport):
    def __init__(self):
        super().__init__()
        self.log = []

    def push(self, session_id, src, dst, key, payload):
        self.log.append((src, dst, key, wire.decode(payload)))
        super().push(session_id, src, dst, key, payload)


@pytest.fixture(scope="module")
def binned():
    guest, host = breast_cancer_split(shuffle_seed=None)
    result = run_local(hetero_binning, SMALL_KEYS, {"guest": {"data": guest}, "host": {"data": host}}, timeout=60)
    return guest, host, result


def select(guest, host, binned_result=None, transport=None, **params):
    inputs = {"guest": {"data": guest}, "host": {"data": host}}
    if binned_result is not None:
        inputs["guest"]["binning"] = binned_result["guest"]["model"]
        inputs["host"]["binning"] = binned_result["host"]["model"]
    return run_local(feature_selection, params, inputs, transport=transport, timeout=30)


def central_ivs(guest, host):
    joined = guest.merge(host, on="id")
    columns = [c for c in joined.columns if c not in ("id", "y")]
    features, index, _ = B.fit_table(joined, columns)
    return {t["name"]: t["iv"] for t in B.feature_tables(features, index, joined["y"].to_numpy())}


# ---------------------------------------------------------------- functions


def test_iv_rules_keep_features_above_the_threshold_and_within_the_top_k():
    ivs = {("guest", "a"): 0.5, ("host", "h0"): 0.3, ("guest", "b"): 0.01, ("host", "h1"): 0.3}
    assert S.select_by_iv(ivs, threshold=0.02) == {("guest", "a"), ("host", "h0"), ("host", "h1")}
    assert S.select_by_iv(ivs, top_k=2) == {("guest", "a"), ("host", "h0")}  # ties by party, then name
    assert S.select_by_iv(ivs, threshold=0.4, top_k=3) == {("guest", "a")}


def test_correlated_pairs_lose_the_column_with_the_lower_iv_or_the_later_one():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    matrix = np.column_stack([x, x + rng.normal(scale=0.01, size=200), rng.normal(size=200)])
    drops = S.correlation_drops(matrix, ["a", "b", "c"], 0.9)
    assert [(d["name"], d["partner"]) for d in drops] == [("b", "a")]
    drops = S.correlation_drops(matrix, ["a", "b", "c"], 0.9, priority=[0.1, 0.5, None])
    assert [(d["name"], d["partner"]) for d in drops] == [("a", "b")]


# ---------------------------------------------------------------- component


def test_top_k_by_iv_over_both_parties_matches_the_ranking_of_central_binning(binned):
    guest, host, result = binned
    transport = RecordingTransport()
    out = select(guest, host, result, transport=transport, iv_top_k=7)
    ivs = central_ivs(guest, host)
    best = set(sorted(ivs, key=lambda name: -ivs[name])[:7])
    kept = set(out["guest"]["model"]["body"]["kept"]) | set(out["host"]["model"]["body"]["kept"])
    assert kept == best
    assert list(out["host"]["data"].columns) == ["id", *[c for c in host.columns if c in best]]
    assert list(out["guest"]["data"].columns[:2]) == ["id", "y"]
    # The host receives one message: which of its opaque features to keep.
    ((_, _, key, message),) = [entry for entry in transport.log if entry[1] == "host"]
    assert key == "feature_selection/keep" and set(message) == {"protocol", "keep"}
    assert all(k.startswith("h") for k in message["keep"])
    assert not [entry for entry in transport.log if entry[1] == "guest"]  # the guest learns nothing


def test_an_iv_threshold_drops_the_weak_features_of_both_parties(binned):
    guest, host, result = binned
    out = select(guest, host, result, iv_threshold=1.0)
    ivs = central_ivs(guest, host)
    kept = set(out["guest"]["model"]["body"]["kept"]) | set(out["host"]["model"]["body"]["kept"])
    assert kept == {name for name, iv in ivs.items() if iv >= 1.0}
    dropped = {d["name"]: d for d in out["guest"]["metrics"]["dropped"]}
    assert all(d["reason"] == "iv" and d["value"] < 1.0 for d in dropped.values())


def test_local_rules_drop_sparse_constant_and_redundant_columns_on_each_side():
    rng = np.random.default_rng(4)
    ids = [str(i) for i in range(100)]
    x = rng.normal(size=100)
    sparse = rng.normal(size=100)
    sparse[:60] = np.nan
    guest = pd.DataFrame({"id": ids, "y": np.arange(100) % 2, "x": x, "x_copy": 2 * x + 1, "sparse": sparse})
    host = pd.DataFrame({"id": ids, "flat": 3.0, "z": rng.normal(size=100), "keep_me": 5.0})
    out = select(guest, host, max_missing_rate=0.5, min_variance=0.0, max_correlation=0.95,
                 exclude_columns=["keep_me"])
    assert out["guest"]["model"]["body"]["kept"] == ["x"]
    reasons = {d["name"]: d["reason"] for d in out["guest"]["model"]["body"]["dropped"]}
    assert reasons == {"x_copy": "correlation", "sparse": "missing_rate"}
    assert out["host"]["model"]["body"]["kept"] == ["z", "keep_me"]  # protected columns stay
    assert out["host"]["metrics"]["dropped"] == [{"name": "flat", "reason": "variance", "value": 0.0}]


def test_a_selection_model_selects_the_same_columns_from_new_rows(binned):
    guest, host, result = binned
    out = select(guest, host, result, iv_top_k=5)
    for role, table in (("guest", guest), ("host", host)):
        document = model_io.loads(model_io.dumps(out[role]["model"]), component="feature_selection", role=role)
        assert S.apply_model(document, table.iloc[:50]).equals(out[role]["data"].iloc[:50])


def test_iv_rules_without_the_binning_model_are_a_clear_error(binned):
    guest, host, result = binned
    with pytest.raises(InvalidInput, match="need the 'binning' input"):
        select(guest, host, iv_threshold=0.1)
    with pytest.raises(InvalidInput, match="need the 'binning' input"):
        run_local(feature_selection, {"iv_top_k": 3},
                  {"guest": {"data": guest, "binning": result["guest"]["model"]}, "host": {"data": host}},
                  timeout=30)
