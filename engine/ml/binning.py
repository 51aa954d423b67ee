"""Binning, WOE and IV: pure numpy functions shared by the ``hetero_binning`` component,
the central reference in the tests, and scoring-time WOE transforms.

Bins of one feature
===================
* **Numeric, equal frequency** (``"quantile"``): cut points are the
  ``k/n_bins`` quantiles (numpy's default linear interpolation) of the observed,
  non-missing training values, deduplicated; a cut point at or above the largest
  observed value is dropped (its bin would be empty), so heavy ties give fewer bins.
* **Numeric, equal width** (``"equal_width"``): ``n_bins - 1`` cut points evenly
  spaced strictly between the observed minimum and maximum (empty bins possible).
* Value bins are right-closed: with cut points ``c_1 < ... < c_k`` bin 0 is
  ``(-inf, c_1]``, bin ``i`` is ``(c_i, c_{i+1}]``, the last is ``(c_k, +inf)``, so
  values never seen in training still fall into a bin.
* **Categorical**: one bin per training category (most frequent first, ties by
  text), at most ``max_categories``; then one ``__other__`` bin (rarer training
  categories and categories first seen at scoring time; may be empty).
* **Missing values** always have their own bin, last (index ``n_value_bins``),
  even when it is empty.

WOE and IV
==========
``E`` / ``N`` are the total events (label 1) / non-events (label 0). For a bin with
``e`` events and ``m`` non-events::

    if e == 0 or m == 0:  e, m = e + smoothing, m + smoothing   # default 0.5, only in that bin
    WOE = ln((e / E) / (m / N))
    IV_bin = (e / E - m / N) * WOE,    IV = sum of IV_bin

so WOE is positive where events are over-represented (the convention of FATE).
A bin with no rows at all (an empty equal-width bin, an empty missing bin) gets
``WOE = 0`` and ``IV_bin = 0``: nothing is known about it, and a scoring row that
falls there is treated as neutral.

Degenerate features: *constant* (a single observed value: one value bin) and
*all missing* (only the missing bin) carry no information (IV 0); the component
refuses them by default (see its ``degenerate_columns`` parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AllMissingColumn, ConstantColumn
from engine.ml.columns import numeric_values, require_columns
from engine.ml.preprocessing import _category_text, infer_numeric

__all__ = [
    "MISSING",
    "OTHER",
    "apply_model",
    "bin_counts",
    "bin_labels",
    "category_bin_index",
    "category_bins",
    "event_counts",
    "feature_bin_index",
    "fit_feature",
    "numeric_bin_index",
    "numeric_cut_points",
    "woe_iv",
    "woe_transform",
]

OTHER = "__other__"
MISSING = "missing"


# --------------------------------------------------------------- cut points


def numeric_cut_points(values: np.ndarray, method: str, n_bins: int) -> np.ndarray:
    """Inner cut points of one numeric feature (float64 with NaN for missing)."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    observed = values[~np.isnan(values)]
    if observed.size == 0 or n_bins == 1:
        return np.empty(0, dtype=np.float64)
    low, high = float(observed.min()), float(observed.max())
    if low == high:
        return np.empty(0, dtype=np.float64)
    if method == "quantile":
        cuts = np.quantile(observed, np.arange(1, n_bins) / n_bins)
    elif method == "equal_width":
        cuts = low + (high - low) * (np.arange(1, n_bins) / n_bins)
    else:
        raise ValueError(f"unknown binning method {method!r}")
    cuts = np.unique(cuts.astype(np.float64))
    return cuts[cuts < high]


def numeric_bin_index(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """int64 bin of every value: ``searchsorted`` over right-closed bins; NaN -> the
    missing bin ``len(cuts) + 1``."""
    cuts = np.asarray(cuts, dtype=np.float64)
    index = np.searchsorted(cuts, values, side="left").astype(np.int64)
    index[np.isnan(values)] = len(cuts) + 1
    return index


def category_bins(text: np.ndarray, max_categories: int) -> list[str]:
    """The categories that get their own bin: most frequent first, ties by text."""
    observed = [v for v in text if v is not None]
    counts = pd.Series(observed, dtype=object).value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return [str(c) for c, _ in ranked[:max_categories]]


def category_bin_index(text: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Bin of every value: its category's position, ``len(categories)`` for
    ``__other__``, ``len(categories) + 1`` for missing."""
    lookup = {c: i for i, c in enumerate(categories)}
    other, missing = len(categories), len(categories) + 1
    return np.fromiter((missing if v is None else lookup.get(v, other) for v in text), dtype=np.int64,
                       count=len(text))


# --------------------------------------------------------------- a feature


def fit_feature(series: pd.Series, *, method: str = "quantile", n_bins: int = 10, categorical: bool | None = None,
                max_categories: int = 32) -> tuple[dict[str, Any], np.ndarray]:
    """Fit the bins of one column: ``(spec, bin index per row)``.

    ``spec`` is JSON: ``{"type": "numeric", "cut_points": [...], "n_value_bins": k}`` or
    ``{"type": "categorical", "categories": [...], "n_value_bins": k}`` plus
    ``"observed"`` (non-missing count) and ``"distinct"`` (1 for a constant column,
    capped at 2: only degeneracy matters here).
    """
    if categorical is None:
        categorical = not infer_numeric(series)
    if categorical:
        text = _category_text(series)
        categories = category_bins(text, max_categories)
        index = category_bin_index(text, categories)
        observed = int(sum(v is not None for v in text))
        distinct = min(2, len({v for v in text if v is not None}))
        spec = {"type": "categorical", "categories": categories, "n_value_bins": len(categories) + 1}
    else:
        values = numeric_values(series)
        cuts = numeric_cut_points(values, method, n_bins)
        index = numeric_bin_index(values, cuts)
        present = values[~np.isnan(values)]
        observed = int(present.size)
        distinct = 0 if present.size == 0 else (1 if present.min() == present.max() else 2)
        spec = {"type": "numeric", "cut_points": [float(c) for c in cuts], "n_value_bins": len(cuts) + 1}
    spec["observed"] = observed
    spec["distinct"] = distinct
    return spec, index


def feature_bin_index(series: pd.Series, spec: dict[str, Any]) -> np.ndarray:
    """Bin of every row of ``series`` under a fitted ``spec`` (scoring time)."""
    if spec["type"] == "categorical":
        return category_bin_index(_category_text(series), spec["categories"])
    return numeric_bin_index(numeric_values(series), np.asarray(spec["cut_points"], dtype=np.float64))


def bin_labels(spec: dict[str, Any]) -> list[str]:
    """Human-readable label of every bin (value bins, then ``missing``)."""
    if spec["type"] == "categorical":
        return [*spec["categories"], OTHER, MISSING]
    cuts = spec["cut_points"]
    edges = ["-inf", *(repr(float(c)) for c in cuts), "+inf"]
    labels = [f"({edges[i]}, {edges[i + 1]}]" for i in range(len(cuts))] + [f"({edges[-2]}, +inf)"]
    return [*labels, MISSING]


# ----------------------------------------------------------------- counting


def bin_counts(index: np.ndarray, n_bins: int) -> np.ndarray:
    """Rows per bin (int64), ``index`` (rows,) or (rows, features) -> (n_bins,) or (features, n_bins)."""
    if index.ndim == 1:
        return np.bincount(index, minlength=n_bins).astype(np.int64)
    return np.stack([np.bincount(index[:, j], minlength=n_bins) for j in range(index.shape[1])]).astype(np.int64)


def event_counts(index: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    """Events (label 1) per bin, the plaintext counterpart of the encrypted bucket sums."""
    weights = np.asarray(y, dtype=np.float64)
    if index.ndim == 1:
        return np.bincount(index, weights=weights, minlength=n_bins).round().astype(np.int64)
    return np.stack([np.bincount(index[:, j], weights=weights, minlength=n_bins)
                     for j in range(index.shape[1])]).round().astype(np.int64)


def woe_iv(events: np.ndarray, counts: np.ndarray, total_events: int, total_non_events: int,
           smoothing: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-bin WOE, per-bin IV and the feature's IV (see the module docstring).

    ``events`` and ``counts`` are per bin (integers). ``total_events`` and
    ``total_non_events`` must both be positive (two classes).
    """
    events = np.asarray(events, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if total_events <= 0 or total_non_events <= 0:
        raise ValueError("WOE needs both classes")
    if np.any(events < 0) or np.any(events > counts):
        raise ValueError("event counts must lie between 0 and the bin's row count")
    non_events = counts - events
    empty = counts == 0
    adjust = (~empty) & ((events == 0) | (non_events == 0))
    e = np.where(adjust, events + smoothing, events)
    m = np.where(adjust, non_events + smoothing, non_events)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_rate = e / float(total_events)
        m_rate = m / float(total_non_events)
        woe = np.where(empty, 0.0, np.log(e_rate / m_rate))
        iv_bins = np.where(empty, 0.0, (e_rate - m_rate) * woe)
    return woe, iv_bins, float(iv_bins.sum())


def bin_table(spec: dict[str, Any], counts: np.ndarray, events: np.ndarray | None, woe: np.ndarray | None,
              iv_bins: np.ndarray | None, labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a binning table for the UI (one dict per bin, value bins then missing)."""
    n = spec["n_value_bins"] + 1
    labels = list(labels) if labels is not None else bin_labels(spec)
    rows = []
    for b in range(n):
        row: dict[str, Any] = {"bin": b, "label": labels[b], "count": int(counts[b]),
                               "missing": b == n - 1}
        if events is not None:
            row["events"] = int(events[b])
            row["non_events"] = int(counts[b] - events[b])
            row["event_rate"] = float(events[b] / counts[b]) if counts[b] else None
        if woe is not None:
            row["woe"] = float(woe[b])
        if iv_bins is not None:
            row["iv"] = float(iv_bins[b])
        rows.append(row)
    return rows


# ---------------------------------------------------------------- transform


def woe_transform(series: pd.Series, spec: dict[str, Any], woe: Sequence[float]) -> np.ndarray:
    """The WOE of every row's bin (float64)."""
    return np.asarray(woe, dtype=np.float64)[feature_bin_index(series, spec)]


def apply_model(document: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """WOE-transform ``frame`` with a fitted ``hetero_binning`` model half.

    Output: the id column, the label column if the model has one and ``frame``
    holds it, then every feature of this party whose WOE this half knows, in the
    model's order. Raises :class:`~engine.ml.model_io.ModelFormatError` when the
    half holds no WOE (a host that was not told its WOE).
    """
    from engine.ml import model_io

    if not isinstance(document, dict) or document.get("component") != "hetero_binning":
        raise model_io.ModelFormatError("this is not a hetero_binning model")
    body = document["body"]
    id_column = body["id_column"]
    features = [f for f in body["features"] if f.get("own", True)]
    if any("woe" not in f for f in features):
        raise model_io.ModelFormatError(
            "this half of the binning model holds no WOE values (the guest did not release them)")
    require_columns(frame, [id_column, *(f["name"] for f in features)])
    parts: dict[str, Any] = {id_column: frame[id_column].astype(str).to_numpy(dtype=object)}
    label = body.get("label_column")
    if label and label in frame.columns:
        parts[label] = frame[label].to_numpy()
    for feature in features:
        parts[feature["name"]] = woe_transform(frame[feature["name"]], feature["spec"], feature["woe"])
    return pd.DataFrame(parts, index=range(len(frame)))


# ------------------------------------------------------------------- tables


def fit_table(frame: pd.DataFrame, features: Sequence[str], *, method: str = "quantile", n_bins: int = 10,
              categorical_columns: Sequence[str] = (), max_categories: int = 32,
              degenerate_columns: str = "error") -> tuple[list[dict[str, Any]], np.ndarray, list[dict[str, str]]]:
    """Fit the bins of several columns of one party.

    Returns ``(features, index, dropped)``: ``features`` is a list of
    ``{"name": column, "spec": spec}`` for the kept columns, ``index`` the
    ``(rows, len(features))`` int64 bin matrix (missing = ``n_value_bins``), and
    ``dropped`` the degenerate columns left out (``degenerate_columns="drop"``).
    ``"error"`` raises :class:`~engine.errors.ConstantColumn` /
    :class:`~engine.errors.AllMissingColumn` naming the column; ``"keep"``
    keeps them (one value bin, or only the missing bin: IV 0).
    """
    require_columns(frame, features)
    kept: list[dict[str, Any]] = []
    columns: list[np.ndarray] = []
    dropped: list[dict[str, str]] = []
    forced = set(categorical_columns)
    for name in features:
        spec, index = fit_feature(frame[name], method=method, n_bins=n_bins,
                                  categorical=True if name in forced else None, max_categories=max_categories)
        reason = "all_missing" if spec["observed"] == 0 else "constant" if spec["distinct"] == 1 else None
        if reason is not None:
            if degenerate_columns == "error":
                hint = "it cannot be binned (set degenerate_columns to 'drop' or 'keep', or leave it out)"
                raise (AllMissingColumn if reason == "all_missing" else ConstantColumn)(str(name), hint=hint)
            if degenerate_columns == "drop":
                dropped.append({"name": str(name), "reason": reason})
                continue
        kept.append({"name": str(name), "spec": spec})
        columns.append(index)
    matrix = np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0), dtype=np.int64)
    return kept, matrix, dropped


def feature_tables(features: list[dict[str, Any]], index: np.ndarray, y: np.ndarray,
                   smoothing: float = 0.5) -> list[dict[str, Any]]:
    """Plaintext WOE/IV of every feature (the guest's own, and the central reference):
    adds ``counts``, ``events``, ``woe``, ``iv_bins``, ``iv`` to each feature dict."""
    total_events = int(np.sum(y))
    total_non_events = int(len(y) - total_events)
    out = []
    for j, feature in enumerate(features):
        n = feature["spec"]["n_value_bins"] + 1
        counts = bin_counts(index[:, j], n)
        events = event_counts(index[:, j], y, n)
        woe, iv_bins, iv = woe_iv(events, counts, total_events, total_non_events, smoothing)
        out.append({**feature, "counts": counts, "events": events, "woe": woe, "iv_bins": iv_bins, "iv": iv})
    return out
