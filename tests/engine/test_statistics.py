"""Per-party statistics: counts, missing rates, moments, quantiles, correlations; nothing crosses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from engine.components.statistics import statistics
from engine.federation import InMemoryTransport, run_local
from engine.ml import stats
from engine.samples import credit_table


def test_numeric_summary_matches_numpy_and_scipy_population_moments():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, size=1000)
    values[::50] = np.nan
    summary = stats.numeric_summary(values, quantiles=[0.1, 0.5])
    observed = values[~np.isnan(values)]
    assert summary["count"] == 980 and summary["missing"] == 20 and summary["missing_rate"] == 0.02
    assert summary["mean"] == pytest.approx(observed.mean(), rel=1e-12)
    assert summary["var"] == pytest.approx(observed.var(), rel=1e-12)
    assert summary["skewness"] == pytest.approx(scipy_stats.skew(observed), rel=1e-9)
    assert summary["kurtosis"] == pytest.approx(scipy_stats.kurtosis(observed), rel=1e-9)
    assert summary["quantiles"] == {"0.1": np.quantile(observed, 0.1), "0.5": np.median(observed)}
    assert summary["min"] == observed.min() and summary["distinct"] == 980 and not summary["constant"]


def test_constant_and_all_missing_columns_are_described_with_undefined_moments_as_none():
    constant = stats.numeric_summary(np.full(10, 4.0))
    assert constant["constant"] and constant["std"] == 0.0 and constant["skewness"] is None
    empty = stats.numeric_summary(np.full(5, np.nan))
    assert empty["missing_rate"] == 1.0 and empty["mean"] is None and empty["quantiles"]["0.5"] is None


def test_categorical_summary_lists_the_most_frequent_values():
    text = np.array(["a", "b", "a", None, "c", "a", "b"], dtype=object)
    summary = stats.categorical_summary(text, top=2)
    assert summary["top"] == [{"value": "a", "count": 3}, {"value": "b", "count": 2}]
    assert summary["distinct"] == 3 and summary["missing"] == 1


def test_pearson_and_spearman_correlations_match_numpy_and_scipy_and_skip_missing_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    matrix = np.column_stack([x, x**3 + rng.normal(scale=0.1, size=300), rng.normal(size=300), np.ones(300)])
    pearson = stats.correlation_matrix(matrix)
    assert pearson[:3, :3] == pytest.approx(np.corrcoef(matrix[:, :3].T), abs=1e-12)
    assert np.isnan(pearson[3, 0])  # a constant column has no correlation
    spearman = stats.correlation_matrix(matrix[:, :3], "spearman")
    assert spearman == pytest.approx(scipy_stats.spearmanr(matrix[:, :3]).statistic, abs=1e-12)
    gappy = matrix[:, :2].copy()
    gappy[:10, 0] = np.nan
    assert stats.correlation_matrix(gappy)[0, 1] == pytest.approx(np.corrcoef(matrix[10:, :2].T)[0, 1], abs=1e-12)


def test_each_party_describes_its_own_table_and_no_message_crosses():
    table = credit_table(1500, seed=9)
    transport = InMemoryTransport()
    pushed = []
    original = transport.push
    transport.push = lambda *args: (pushed.append(args[3]), original(*args))
    out = run_local(statistics, {"label_column": "default", "quantiles": [0.5]},
                    {"guest": {"data": table[["id", "default", "age", "income", "region"]]},
                     "host": {"data": table[["id", "debt_ratio", "education"]]}}, transport=transport)
    assert pushed == []
    guest = out["guest"]["metrics"]
    assert guest["rows"] == 1500 and set(guest["columns"]) == {"age", "income", "region"}
    assert guest["columns"]["income"]["missing"] == int(table["income"].eq("").sum())
    assert guest["columns"]["region"]["type"] == "categorical"
    assert guest["label"]["classes"] == {str(k): int(v) for k, v in table["default"].value_counts().sort_index().items()}
    assert guest["correlation"]["columns"] == ["age", "income"]
    assert out["host"]["metrics"]["columns"]["debt_ratio"]["quantiles"]["0.5"] == table["debt_ratio"].median()
    assert "label" not in out["host"]["metrics"]
    json.dumps(out, allow_nan=False)


def test_the_correlation_matrix_can_be_skipped_or_switched_off():
    frame = pd.DataFrame({"id": ["1", "2", "3"], "a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0], "c": [1, 1, 2]})
    out = run_local(statistics, {"max_correlation_columns": 2},
                    {"guest": {"data": frame}, "host": {"data": frame}})
    assert "skipped" in out["guest"]["metrics"]["correlation"]
    off = run_local(statistics, {"correlation": "none"}, {"guest": {"data": frame}, "host": {"data": frame}})
    assert "correlation" not in off["host"]["metrics"]
