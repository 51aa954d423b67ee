"""Feature selection rules: pure functions, no federation.

Used by the ``feature_selection`` component and at scoring time
(:func:`apply_model`). The rules, in the order the component applies them:

1. **IV** (:func:`select_by_iv`): keep features whose IV is at least ``threshold``
   and/or that rank in the ``top_k`` by IV (descending; ties by party then name).
   Features without an IV (not binned) are not judged by this rule.
2. **Missing rate**: drop a column whose share of missing values exceeds the maximum.
3. **Variance**: drop a numeric column whose population variance is at most the
   minimum (``0`` drops constant columns; an all-missing column has no variance and
   is dropped too).
4. **Correlation** (:func:`correlation_drops`): among the numeric survivors, for each
   pair with ``|r| > threshold`` (pairwise-complete Pearson) drop the one ranked
   lower, ranking by IV when known (higher first) and then by column order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.ml.stats import correlation_matrix

__all__ = ["COMPONENT", "apply_model", "correlation_drops", "select_by_iv"]

COMPONENT = "feature_selection"


def select_by_iv(ivs: Mapping[tuple[str, str], float], threshold: float | None = None,
                 top_k: int | None = None) -> set[tuple[str, str]]:
    """The ``(party, feature)`` keys kept: IV >= threshold (if set) and within the top k (if set)."""
    keys = list(ivs)
    kept = set(keys)
    if threshold is not None:
        kept = {key for key in kept if ivs[key] >= threshold}
    if top_k is not None:
        ranked = sorted(keys, key=lambda key: (-ivs[key], key[0], key[1]))
        kept &= set(ranked[:top_k])
    return kept


def correlation_drops(matrix: np.ndarray, names: Sequence[str], threshold: float,
                      priority: Sequence[float | None] | None = None) -> list[dict[str, Any]]:
    """Greedy de-correlation: visit columns from highest to lowest priority (IV when given,
    then column order) and drop one whose ``|r|`` with an already kept column exceeds
    ``threshold``. Returns ``[{"name", "partner", "correlation"}]`` for the dropped ones."""
    names = list(names)
    k = len(names)
    if k < 2:
        return []
    corr = correlation_matrix(matrix)
    if priority is None:
        priority = [None] * k
    order = sorted(range(k), key=lambda j: (priority[j] is None, -(priority[j] or 0.0), j))
    kept: list[int] = []
    dropped = []
    for j in order:
        partner = next((i for i in kept if np.isfinite(corr[i, j]) and abs(corr[i, j]) > threshold), None)
        if partner is None:
            kept.append(j)
        else:
            dropped.append({"name": names[j], "partner": names[partner], "correlation": float(corr[partner, j])})
    return dropped


def apply_model(document: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the id, the label (when present) and the selected columns of ``frame``, in the model's order."""
    from engine.ml import model_io
    from engine.ml.columns import require_columns

    if not isinstance(document, dict) or document.get("component") != COMPONENT:
        raise model_io.ModelFormatError("this is not a feature_selection model")
    body = document["body"]
    keep = [body["id_column"]]
    if body.get("label_column") and body["label_column"] in frame.columns:
        keep.append(body["label_column"])
    keep += [c for c in body["kept"] if c not in keep]
    require_columns(frame, keep)
    return frame[keep].reset_index(drop=True)
