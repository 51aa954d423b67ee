"""The plaintext tree learner (engine.ml.tree) and the SecureBoost encodings under it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.components.secureboost import protocol as P
from engine.crypto.paillier import generate_keypair
from engine.errors import (
    AllMissingColumn,
    ConstantColumn,
    InvalidParameters,
    MissingColumn,
    NotNumeric,
    ProtocolError,
    SingleClass,
)
from engine.ml import tree as T
from engine.ml.columns import label_vector

# ------------------------------------------------------------------ binning


def test_few_distinct_values_each_get_their_own_bin_and_thresholds_are_observed_values():
    values = np.array([3.0, 1.0, 2.0, 2.0, np.nan, 1.0])
    edges = T.fit_bin_edges(values, max_bins=32)
    assert edges.tolist() == [1.0, 2.0]
    codes = T.apply_bin_edges(values, edges, missing_code=9)
    assert codes.tolist() == [2, 0, 1, 1, 9, 0]


def test_many_values_get_quantile_edges_that_are_observed_and_strictly_increasing():
    rng = np.random.default_rng(0)
    values = np.round(rng.lognormal(size=5000), 3)
    edges = T.fit_bin_edges(values, max_bins=16)
    assert 10 <= len(edges) <= 15
    assert np.all(np.diff(edges) > 0) and np.isin(edges, values).all() and edges.max() < values.max()
    counts = np.bincount(T.apply_bin_edges(values, edges, 99), minlength=len(edges) + 1)
    assert counts.min() > 0.5 * len(values) / 16  # roughly equal-frequency


def test_bin_at_most_t_means_value_at_most_the_t_th_edge():
    rng = np.random.default_rng(1)
    values = rng.normal(size=2000)
    values[::17] = np.nan
    edges = T.fit_bin_edges(values, 8)
    codes = T.apply_bin_edges(values, edges, len(edges) + 1)
    for t in range(len(edges) + 1):
        by_code = codes <= t
        by_value = T.goes_left(values, T.threshold_of(edges, t))
        assert np.array_equal(by_code, by_value)


def test_constant_and_all_missing_columns_are_skipped_or_refused_by_name():
    matrix = np.array([[1.0, np.nan, 5.0, 1.0], [1.0, np.nan, 6.0, np.nan], [1.0, np.nan, 7.0, 1.0]])
    binned = T.bin_columns(matrix, ["const", "empty", "ok", "flag"], 32)
    assert binned.features == ["ok", "flag"]  # a constant with gaps still splits present/missing
    assert binned.skipped == [{"name": "const", "reason": "constant"}, {"name": "empty", "reason": "all_missing"}]
    assert binned.n_buckets == 4 and binned.codes[:, 1].tolist() == [0, 3, 0]
    with pytest.raises(ConstantColumn, match="'const'.*constant: a tree cannot split on it"):
        T.bin_columns(matrix, ["const", "empty", "ok", "flag"], 32, degenerate="error")
    with pytest.raises(AllMissingColumn, match="'empty'.*only missing values: a tree cannot split on it"):
        T.bin_columns(matrix[:, 1:], ["empty", "ok", "flag"], 32, degenerate="error")


def test_feature_columns_must_be_numbers_but_blank_text_is_missing():
    frame = pd.DataFrame({"a": ["1.5", "", " 2 "], "b": ["x", "1", "2"], "c": [1.0, math.inf, 0.0]})
    assert np.array_equal(T.feature_matrix(frame, ["a"])[:, 0], [1.5, np.nan, 2.0], equal_nan=True)
    with pytest.raises(NotNumeric, match="'b'"):
        T.feature_matrix(frame, ["b"])
    with pytest.raises(NotNumeric, match="'c'.*infinite"):
        T.feature_matrix(frame, ["c"])
    with pytest.raises(MissingColumn, match="'d'"):
        T.feature_matrix(frame, ["d"])


def test_labels_must_be_zero_or_one_with_both_classes():
    assert label_vector(pd.DataFrame({"y": [0, 1, 1]}), "y").tolist() == [0, 1, 1]
    with pytest.raises(SingleClass, match="'y'.*single class"):
        label_vector(pd.DataFrame({"y": [1, 1, 1]}), "y")
    with pytest.raises(NotNumeric, match="'y'.*0/1 labels"):
        label_vector(pd.DataFrame({"y": [0, 2, 1]}), "y")
    with pytest.raises(NotNumeric, match="'y'.*0/1 labels"):
        label_vector(pd.DataFrame({"y": [0, None, 1]}), "y")


# ------------------------------------------------------------ arithmetic


def test_histograms_are_exact_integer_sums_even_for_large_weights():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 5, size=(3000, 3)).astype(np.int32)
    gq = rng.integers(-(1 << 32), 1 << 32, size=3000)
    hq = rng.integers(0, 1 << 30, size=3000)
    g_hist, h_hist, count = T.node_histograms(codes, gq, hq, 6)
    for j in range(3):
        for b in range(6):
            rows = codes[:, j] == b
            assert int(g_hist[j, b]) == sum(int(v) for v in gq[rows])
            assert int(h_hist[j, b]) == sum(int(v) for v in hq[rows])
            assert count[j, b] == rows.sum()


def test_gains_follow_the_xgboost_formula_and_invalid_candidates_are_minus_infinity():
    bits = 4
    gl = np.array([[16, 32]])  # sums are integers times 2**-4: G_L = 1.0, 2.0
    hl = np.array([[8, 28]])  # H_L = 0.5, 1.75
    gains = T.split_gains(gl, hl, 48, 32, l2=1.0, min_child_weight=0.5, bits=bits)
    g, h = 3.0, 2.0
    expected0 = 1.0**2 / (0.5 + 1) + 2.0**2 / (1.5 + 1) - g**2 / (h + 1)
    assert gains[0, 0] == pytest.approx(expected0, rel=1e-15)
    assert gains[0, 1] == -np.inf  # H_R = 0.25 < min_child_weight


def test_a_split_with_an_empty_side_has_gain_exactly_zero():
    gains = T.split_gains(np.array([0, 1234]), np.array([0, 999]), 1234, 999, l2=1.0, min_child_weight=0.0, bits=10)
    assert gains.tolist() == [0.0, 0.0]
    assert T.split_gains(np.array([0]), np.array([0]), 5, 0, l2=0.0, min_child_weight=0.0, bits=2).tolist() == [0.0]


def test_the_first_best_candidate_wins_ties_in_feature_then_bin_order():
    gains = np.array([[1.0, 3.0, 3.0], [3.0, -np.inf, 2.0]])
    assert T.best_candidate(gains) == (3.0, 0, 1)
    assert T.best_candidate(np.full((2, 2), -np.inf)) is None


def test_leaf_values_are_minus_g_over_h_plus_lambda_times_eta():
    assert T.leaf_value(-8, 12, l2=1.0, learning_rate=0.5, bits=2) == pytest.approx(2.0 / 4.0 * 0.5)
    assert T.leaf_value(5, 0, l2=0.0, learning_rate=0.3, bits=2) == 0.0


def test_quantized_gradients_stay_in_their_ranges():
    margin = np.array([-40.0, -1.0, 0.0, 2.0, 40.0])
    y = np.array([1, 0, 1, 1, 0])
    g, h = T.gradients(y, margin)
    gq, hq = T.quantize(g, h, 20)
    assert np.abs(gq).max() <= 1 << 20 and hq.min() >= 0 and hq.max() <= 1 << 18
    assert gq[2] == -(1 << 19) and hq[2] == 1 << 18


def test_row_subsampling_is_seeded_per_tree_and_sorted():
    a, b = T.sample_rows(1000, 0.3, 7, 2), T.sample_rows(1000, 0.3, 7, 2)
    assert np.array_equal(a, b) and len(a) == 300 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, T.sample_rows(1000, 0.3, 7, 3))
    assert np.array_equal(T.sample_rows(5, 1.0, 0, 0), np.arange(5))


def test_precision_that_could_overflow_exact_sums_is_refused():
    T.check_precision(100_000, 32)
    with pytest.raises(InvalidParameters, match="precision_bits"):
        T.check_precision(1 << 21, 32)


def test_early_stopping_keeps_the_best_tree_count():
    stopper = T.EarlyStopping(2, "logloss")
    assert [stopper.update(k, v) for k, v in enumerate([0.5, 0.4, 0.45, 0.41], start=1)] == [False, False, False, True]
    assert stopper.best_trees == 2
    auc = T.EarlyStopping(0, "auc")
    assert not any(auc.update(k, v) for k, v in enumerate([0.7, 0.8, 0.6], start=1)) and auc.best_trees == 2


# ----------------------------------------------------------- tree growing


def test_a_tree_separates_a_perfectly_separable_feature_at_its_threshold():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    frame = pd.DataFrame({"noise": [5.0, 1.0, 4.0, 2.0, 3.0, 5.0, 1.0, 2.0], "x": x})
    model = T.train(frame, y, T.BoostParams(n_trees=1, max_depth=1, min_child_weight=0.0))
    root = model["trees"][0][0]
    assert root["split"] == {"feature": "x", "bin": 3, "threshold": 4.0}
    left, right = model["trees"][0][1], model["trees"][0][2]
    assert left["leaf"] < 0 < right["leaf"] and left["samples"] == right["samples"] == 4
    margins = T.predict_margin(model, frame)
    assert np.all(margins[:4] < 0) and np.all(margins[4:] > 0)


def test_missing_values_go_right_and_can_be_split_off():
    x = np.array([1.0, 2.0, np.nan, np.nan, 1.0, 2.0, np.nan, np.nan])
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    model = T.train(pd.DataFrame({"x": x}), y, T.BoostParams(n_trees=1, max_depth=1, min_child_weight=0.0))
    assert model["trees"][0][0]["split"] == {"feature": "x", "bin": 1, "threshold": None}
    margins = T.predict_margin(model, pd.DataFrame({"x": [np.nan, 1.5, 99.0]}))
    assert margins[0] > 0 > margins[1] and margins[2] < 0


def test_central_training_predicts_its_training_rows_like_its_own_margins():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    frame.loc[::7, "b"] = np.nan
    y = (frame["a"].fillna(0) + rng.normal(size=400) > 0).astype(int).to_numpy()
    params = T.BoostParams(n_trees=4, max_depth=3, subsample=0.7, seed=3)
    model = T.train(frame, y, params, validate=(frame.iloc[:100], y[:100]))
    assert len(model["trees"]) == 4 and len(model["history"]) == 4
    assert model["history"][-1]["train_logloss"] < model["history"][0]["train_logloss"]
    margin = T.predict_margin(model, frame)
    assert T.logloss(y, margin) == model["history"][-1]["train_logloss"]


# ------------------------------------------------------- protocol encodings


@pytest.mark.parametrize("frac_bits, rows", [(8, 10), (20, 569), (20, 100_000), (32, 300_000)])
def test_a_packed_gradient_sum_decodes_exactly(frac_bits, rows):
    layout = P.Layout.for_rows(frac_bits, rows)
    rng = np.random.default_rng(frac_bits)
    gq = rng.integers(-(1 << frac_bits), (1 << frac_bits) + 1, size=rows)
    gq[:3] = [-(1 << frac_bits)] * 3
    hq = rng.integers(0, (1 << (frac_bits - 2)) + 1, size=rows)
    hq[:3] = 1 << (frac_bits - 2)
    plain = layout.encode(gq, hq)
    assert max(abs(v) for v in plain) <= layout.sample_bound
    assert layout.decode(sum(plain)) == (int(gq.sum()), int(hq.sum()))
    assert layout.decode(sum(plain[:1])) == (int(gq[0]), int(hq[0]))


def test_histogram_entries_pack_several_per_ciphertext_and_unpack_exactly():
    public, private = generate_keypair(1024, insecure_allow_small_keys=True)
    layout = P.Layout.for_rows(20, 500)
    width = layout.pair_width(500)
    slots = P.slots_per_ciphertext(public, width)
    assert slots == (public.max_int.bit_length() - 1) // width >= 10
    bound = 500 * layout.sample_bound
    rng = np.random.default_rng(5)
    values = [int(v) for v in rng.integers(-bound, bound, size=2 * slots + 3)]
    values[:2] = [bound, -bound]
    encrypted = public.encrypt_int(values)
    packed = P.pack(encrypted, bound, width, slots)
    assert packed.size == 3
    plain = private.decrypt_int(packed).tolist()
    assert P.unpack_pairs(plain, width, slots, len(values)) == values


def test_unpacking_refuses_more_digits_than_announced():
    with pytest.raises(ProtocolError):
        P.unpack_pairs([1 << 40], 8, 2, 2)


def test_row_masks_round_trip_and_wrong_sizes_are_refused():
    mask = np.array([True, False, True] * 5)
    assert np.array_equal(P.unpack_mask(P.pack_mask(mask), 15, "test"), mask)
    with pytest.raises(ProtocolError, match="cannot describe"):
        P.unpack_mask(P.pack_mask(mask), 40, "test")


def test_opaque_ids_are_distinct_and_permutations_are_permutations():
    ids = P.new_opaque_ids(1000)
    assert len(set(ids.tolist())) == 1000 and ids.min() >= 0
    perm = P.secure_permutation(100)
    assert sorted(perm.tolist()) == list(range(100))
