"""Per-party column statistics: pure numpy/pandas functions, no federation.

Used by the ``statistics`` component (metrics for the UI) and by
``feature_selection`` (missing rates, variances, correlations). Conventions:

* Missing = ``None``, ``NaN`` or blank text (:func:`engine.ml.preprocessing.is_missing`).
* Moments are population moments of the observed values: ``var = mean((x - mean)^2)``,
  ``std = sqrt(var)``, ``skewness = m3 / m2^1.5``, ``kurtosis = m4 / m2^2 - 3`` (excess);
  undefined ones (no value; skewness/kurtosis of a constant) are ``None``.
* Quantiles use numpy's default linear interpolation.
* Correlations are pairwise-complete: each pair uses the rows where both values are
  present (Pearson, or Spearman = Pearson on the average ranks of each column's observed
  values; with no missing value this is exactly Spearman's rho). Undefined ones (a constant
  column, fewer than 2 shared rows) are ``None`` in JSON and ``NaN`` in arrays.

Every function returns JSON-ready values (Python floats/ints, ``None`` for undefined).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.ml.columns import is_missing, numeric_values
from engine.ml.preprocessing import _category_text, infer_numeric

__all__ = [
    "DEFAULT_QUANTILES",
    "categorical_summary",
    "column_summary",
    "correlation_matrix",
    "json_float",
    "missing_rate",
    "numeric_summary",
    "variance",
]

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def json_float(value: Any) -> float | None:
    """A finite Python float, or None."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def numeric_summary(values: np.ndarray, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> dict[str, Any]:
    """Counts, missing rate, moments, extremes, quantiles of one numeric column (NaN = missing)."""
    values = np.asarray(values, dtype=np.float64)
    rows = int(values.size)
    observed = values[~np.isnan(values)]
    count = int(observed.size)
    out: dict[str, Any] = {
        "type": "numeric", "rows": rows, "count": count, "missing": rows - count,
        "missing_rate": (rows - count) / rows if rows else None,
    }
    if count == 0:
        out.update({"mean": None, "std": None, "var": None, "min": None, "max": None, "skewness": None,
                    "kurtosis": None, "sum": None, "zeros": 0, "distinct": 0, "constant": False,
                    "quantiles": {_qkey(q): None for q in quantiles}})
        return out
    finite = observed[np.isfinite(observed)]
    mean = float(np.mean(finite)) if finite.size else None
    centred = finite - mean if finite.size else finite
    m2 = float(np.mean(centred**2)) if finite.size else None
    m3 = float(np.mean(centred**3)) if finite.size else None
    m4 = float(np.mean(centred**4)) if finite.size else None
    spread = m2 is not None and m2 > 0
    distinct = int(np.unique(observed).size)
    out.update({
        "mean": json_float(mean), "var": json_float(m2), "std": json_float(np.sqrt(m2)) if m2 is not None else None,
        "min": json_float(np.min(observed)), "max": json_float(np.max(observed)),
        "skewness": json_float(m3 / m2**1.5) if spread else None,
        "kurtosis": json_float(m4 / m2**2 - 3.0) if spread else None,
        "sum": json_float(np.sum(finite)), "zeros": int(np.count_nonzero(observed == 0)),
        "distinct": distinct, "constant": distinct == 1,
        "quantiles": {_qkey(q): json_float(v) for q, v in zip(quantiles, np.quantile(observed, list(quantiles)))}
        if len(quantiles) else {},
    })
    return out


def _qkey(q: float) -> str:
    return repr(float(q))


def categorical_summary(text: np.ndarray, top: int = 10) -> dict[str, Any]:
    """Counts, missing rate, distinct values and the most frequent categories (object array, None = missing)."""
    rows = len(text)
    observed = [v for v in text if v is not None]
    counts = pd.Series(observed, dtype=object).value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return {
        "type": "categorical", "rows": rows, "count": len(observed), "missing": rows - len(observed),
        "missing_rate": (rows - len(observed)) / rows if rows else None,
        "distinct": len(counts), "constant": len(counts) == 1,
        "top": [{"value": str(v), "count": int(c)} for v, c in ranked[:top]],
    }


def column_summary(series: pd.Series, quantiles: Sequence[float] = DEFAULT_QUANTILES, top: int = 10,
                   categorical: bool | None = None) -> dict[str, Any]:
    if categorical is None:
        categorical = not infer_numeric(series)
    if categorical:
        return categorical_summary(_category_text(series), top)
    return numeric_summary(numeric_values(series), quantiles)


def missing_rate(series: pd.Series) -> float:
    """Share of missing values (0 for an empty column)."""
    return float(is_missing(series).mean()) if len(series) else 0.0


def variance(series: pd.Series) -> float | None:
    """Population variance of the observed values of a numeric column (None if none observed)."""
    values = numeric_values(series)
    observed = values[np.isfinite(values)]
    return float(np.var(observed)) if observed.size else None


def correlation_matrix(matrix: np.ndarray, method: str = "pearson") -> np.ndarray:
    """Pairwise-complete correlation of the columns of ``matrix`` (rows, k); NaN = missing or undefined."""
    frame = pd.DataFrame(np.asarray(matrix, dtype=np.float64))
    if method == "spearman":
        frame = frame.rank(method="average")  # ranks of observed values; NaN stays NaN
    elif method != "pearson":
        raise ValueError(f"unknown correlation method {method!r}")
    result = frame.corr(method="pearson", min_periods=2).to_numpy()
    # pandas returns values a rounding error above 1 for identical columns.
    return np.clip(result, -1.0, 1.0)
