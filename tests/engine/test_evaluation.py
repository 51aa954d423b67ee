"""engine.evaluation against scikit-learn, on random data with many tied scores."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics

from engine import evaluation as ev

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def binary_data(seed: int, n: int, distinct: int):
    """Labels with both classes and scores drawn from few distinct values (lots of ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    scores = np.round(rng.random(n) * distinct) / distinct + 0.3 * y * rng.random(n).round(1)
    return y, scores


seeds = st.integers(min_value=0, max_value=2**32 - 1)
sizes = st.integers(min_value=2, max_value=300)
distincts = st.sampled_from([1, 2, 5, 20, 1000])


@PROPERTY
@given(seeds, sizes, distincts)
def test_roc_curve_and_auc_equal_scikit_learn_with_ties(seed, n, distinct):
    y, s = binary_data(seed, n, distinct)
    for drop in (True, False):
        ours = ev.roc_curve(y, s, drop_intermediate=drop)
        theirs = metrics.roc_curve(y, s, drop_intermediate=drop)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert ev.roc_auc_score(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-9)


@PROPERTY
@given(seeds, sizes, distincts)
def test_precision_recall_curve_and_average_precision_equal_scikit_learn(seed, n, distinct):
    y, s = binary_data(seed, n, distinct)
    for drop in (False, True):
        ours = ev.precision_recall_curve(y, s, drop_intermediate=drop)
        theirs = metrics.precision_recall_curve(y, s, drop_intermediate=drop)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert ev.average_precision_score(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-9)


@PROPERTY
@given(seeds, sizes, distincts)
def test_ks_is_the_largest_gap_between_sklearn_tpr_and_fpr(seed, n, distinct):
    y, s = binary_data(seed, n, distinct)
    fpr, tpr, thresholds = metrics.roc_curve(y, s)
    ks, threshold = ev.ks_statistic(y, s)
    assert ks == pytest.approx(np.max(tpr - fpr), abs=1e-9)
    assert threshold == thresholds[np.argmax(tpr - fpr)]


@PROPERTY
@given(seeds, sizes, distincts, st.sampled_from([0.0, 0.25, 0.5, 0.9, 2.0]))
def test_confusion_matrix_and_rates_equal_scikit_learn(seed, n, distinct, threshold):
    y, s = binary_data(seed, n, distinct)
    predicted = (s >= threshold).astype(int)
    ours = ev.confusion_at_threshold(y, s, threshold)
    assert ours["matrix"] == metrics.confusion_matrix(y, predicted, labels=[0, 1]).tolist()
    assert ours["precision"] == pytest.approx(metrics.precision_score(y, predicted, zero_division=0), abs=1e-9)
    assert ours["recall"] == pytest.approx(metrics.recall_score(y, predicted, zero_division=0), abs=1e-9)
    assert ours["f1"] == pytest.approx(metrics.f1_score(y, predicted, zero_division=0), abs=1e-9)
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(y, predicted), abs=1e-9)


@PROPERTY
@given(seeds, st.integers(min_value=2, max_value=300), st.booleans())
def test_regression_metrics_equal_scikit_learn(seed, n, constant_target):
    rng = np.random.default_rng(seed)
    y = np.full(n, 3.5) if constant_target else rng.normal(size=n) * 10
    pred = y + rng.normal(size=n) * rng.choice([0.0, 1.0])
    report = ev.regression_report(y, pred)
    assert report["mse"] == pytest.approx(metrics.mean_squared_error(y, pred), abs=1e-9)
    assert report["rmse"] == pytest.approx(metrics.root_mean_squared_error(y, pred), abs=1e-9)
    assert report["mae"] == pytest.approx(metrics.mean_absolute_error(y, pred), abs=1e-9)
    assert report["r2"] == pytest.approx(metrics.r2_score(y, pred), abs=1e-9)
    assert report["explained_variance"] == pytest.approx(metrics.explained_variance_score(y, pred), abs=1e-9)


def test_r2_of_a_single_sample_is_undefined_like_scikit_learn():
    assert np.isnan(ev.r2_score([1.0], [2.0]))
    assert ev.regression_report([1.0], [2.0])["r2"] is None
    assert ev.explained_variance_score([1.0], [2.0]) == metrics.explained_variance_score([1.0], [2.0])


def test_labels_other_than_zero_one_need_a_positive_label():
    y = np.array(["good", "bad", "good", "bad"])
    s = np.array([0.9, 0.2, 0.6, 0.4])
    with pytest.raises(ValueError, match="pos_label"):
        ev.roc_auc_score(y, s)
    assert ev.roc_auc_score(y, s, pos_label="good") == metrics.roc_auc_score(y == "good", s)
    signed = np.array([1, -1, 1, -1])
    assert ev.roc_auc_score(signed, s) == metrics.roc_auc_score(signed, s)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], [True, True]])
def test_a_single_class_is_a_clear_error(labels):
    with pytest.raises(ValueError, match="single class"):
        ev.roc_auc_score(labels, np.linspace(0, 1, len(labels)))
    with pytest.raises(ValueError, match="single class"):
        ev.binary_report(labels, np.linspace(0, 1, len(labels)))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="entries"):
        ev.roc_curve([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        ev.roc_curve([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="3 classes"):
        ev.roc_curve([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        ev.r2_score([1.0, 2.0], [1.0])


def test_downsampled_curves_keep_endpoints_and_stay_within_the_limit():
    y, s = binary_data(1, 5000, 1000)
    fpr, tpr, thresholds = ev.roc_curve(y, s, drop_intermediate=False)
    x, yy, t = ev.downsample_curve(fpr, tpr, 50, thresholds)
    assert len(x) <= 50 and len(x) == len(yy) == len(t)
    assert (x[0], yy[0], x[-1], yy[-1]) == (fpr[0], tpr[0], fpr[-1], tpr[-1])
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(yy) >= 0)
    short = ev.downsample_curve([0, 1], [0, 1], 50)
    assert [list(a) for a in short] == [[0, 1], [0, 1]]


def test_lift_table_splits_ranked_rows_into_bins_with_consistent_gains():
    y, s = binary_data(4, 1003, 20)
    table = ev.lift_table(y, s, n_bins=10)
    assert [row["bin"] for row in table] == list(range(1, 11))
    assert sum(row["count"] for row in table) == 1003
    assert max(row["count"] for row in table) - min(row["count"] for row in table) <= 1
    assert sum(row["positives"] for row in table) == y.sum()
    assert table[-1]["gain"] == pytest.approx(1.0) and table[-1]["cumulative_lift"] == pytest.approx(1.0)
    order = np.argsort(-s, kind="mergesort")
    assert table[0]["positives"] == y[order][: table[0]["count"]].sum()
    assert all(a["min_score"] >= b["max_score"] for a, b in itertools.pairwise(table))


def test_binary_report_is_json_serialisable_and_consistent():
    y, s = binary_data(9, 2000, 1000)
    report = ev.binary_report(y, s, threshold=0.5, max_curve_points=100)
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert report["auc"] == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-9)
    assert report["average_precision"] == pytest.approx(metrics.average_precision_score(y, s), abs=1e-9)
    assert report["n"] == 2000 and report["n_positive"] + report["n_negative"] == 2000
    assert len(report["roc"]["fpr"]) <= 100 and report["roc"]["thresholds"][0] is None
    assert len(report["pr"]["recall"]) == len(report["pr"]["precision"]) == len(report["pr"]["thresholds"])
    assert report["pr"]["thresholds"][-1] is None and report["pr"]["recall"][-1] == 0.0
    assert len(report["lift"]) == 10
    assert report["confusion"]["matrix"] == metrics.confusion_matrix(y, (s >= 0.5).astype(int)).tolist()
