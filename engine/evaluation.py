"""Model evaluation metrics for the engine, in plain numpy.

Why not scikit-learn: the engine must stay light (no scikit-learn at
runtime), and the UI wants one JSON-ready report rather than a dozen calls.
The definitions follow scikit-learn exactly, including how tied scores are
handled, and ``tests/engine/test_evaluation.py`` checks every function
against scikit-learn to 1e-9 on random data with ties:

* ROC: scores sorted descending; every *distinct* score is one threshold
  ("predict positive when score >= threshold"), so tied scores move the curve
  diagonally, as in ``sklearn.metrics.roc_curve``. The first threshold is
  ``+inf`` (the (0, 0) point). ``drop_intermediate`` removes collinear points
  like scikit-learn; areas and KS are unaffected by it.
* AUC is the trapezoidal area under that curve (= the Mann-Whitney
  probability that a random positive outscores a random negative, ties
  counting one half).
* KS is ``max(tpr - fpr)`` over the ROC thresholds; the threshold returned is
  the one reaching it (the highest if several do).
* Precision-recall and average precision are scikit-learn's step-wise
  definitions (no interpolation).

Binary labels: ``y_true`` holds two classes; the positive one is
``pos_label``, which defaults to 1 when the labels are {0, 1}, {-1, 1} or
booleans. A label array with a single class raises ``ValueError`` (AUC, KS
and recall are undefined).

:func:`binary_report` and :func:`regression_report` return plain Python
types only (``float``/``int``/``list``/``dict``; ``None`` for ``inf``/``nan``)
so the result can go straight to ``json.dumps``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "average_precision_score",
    "binary_report",
    "confusion_at_threshold",
    "downsample_curve",
    "explained_variance_score",
    "ks_statistic",
    "lift_table",
    "mean_absolute_error",
    "mean_squared_error",
    "precision_recall_curve",
    "r2_score",
    "regression_report",
    "roc_auc_score",
    "roc_curve",
    "root_mean_squared_error",
]


# ------------------------------------------------------------- validation


def _binary_inputs(y_true: Any, y_score: Any, pos_label: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(boolean positives, float64 scores), validated."""
    labels = np.asarray(y_true)
    scores = np.asarray(y_score)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError("y_true and y_score must be 1-D")
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(f"y_true has {labels.shape[0]} entries but y_score has {scores.shape[0]}")
    if labels.shape[0] == 0:
        raise ValueError("y_true is empty")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"y_score must be numeric, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("y_score contains NaN or infinity")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError(
            f"y_true has a single class ({classes[0]!r}); binary metrics need both positives and negatives"
        )
    if classes.size > 2:
        raise ValueError(f"y_true has {classes.size} classes; binary metrics need exactly 2")
    if pos_label is None:
        as_set = {c.item() if hasattr(c, "item") else c for c in classes}
        if as_set <= {0, 1} or as_set <= {-1, 1} or as_set <= {False, True}:
            pos_label = 1
        else:
            raise ValueError(f"labels are {sorted(as_set)!r}: say which one is positive with pos_label")
    positives = labels == pos_label
    if not positives.any():
        raise ValueError(f"pos_label={pos_label!r} does not occur in y_true")
    return positives, scores


def _regression_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if truth.ndim != 1 or pred.ndim != 1:
        raise ValueError("y_true and y_pred must be 1-D")
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.shape[0]} entries but y_pred has {pred.shape[0]}")
    if truth.size == 0:
        raise ValueError("y_true is empty")
    if not (np.isfinite(truth).all() and np.isfinite(pred).all()):
        raise ValueError("inputs contain NaN or infinity")
    return truth, pred


# ------------------------------------------------------------ binary curves


def _binary_clf_curve(positives: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive counts at each distinct score, highest score first."""
    # mergesort is stable, so the reversed order matches scikit-learn exactly.
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores = scores[order]
    positives = positives[order]
    distinct = np.where(np.diff(scores))[0]
    threshold_idx = np.r_[distinct, positives.size - 1]
    tps = np.cumsum(positives, dtype=np.int64)[threshold_idx]
    fps = 1 + threshold_idx - tps
    return fps.astype(np.float64), tps.astype(np.float64), scores[threshold_idx]


def roc_curve(
    y_true: Any, y_score: Any, *, pos_label: Any = None, drop_intermediate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` like ``sklearn.metrics.roc_curve``; ``thresholds[0]`` is ``inf``."""
    positives, scores = _binary_inputs(y_true, y_score, pos_label)
    fps, tps, thresholds = _binary_clf_curve(positives, scores)
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc_score(y_true: Any, y_score: Any, *, pos_label: Any = None) -> float:
    """Area under the ROC curve (trapezoidal; ties count one half)."""
    fpr, tpr, _ = roc_curve(y_true, y_score, pos_label=pos_label)
    return float(np.trapezoid(tpr, fpr))


def ks_statistic(y_true: Any, y_score: Any, *, pos_label: Any = None) -> tuple[float, float]:
    """``(ks, threshold)``: the largest ``tpr - fpr`` and the score threshold reaching it."""
    fpr, tpr, thresholds = roc_curve(y_true, y_score, pos_label=pos_label)
    gap = tpr - fpr
    best = int(np.argmax(gap))
    return float(gap[best]), float(thresholds[best])


def precision_recall_curve(
    y_true: Any, y_score: Any, *, pos_label: Any = None, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` like ``sklearn.metrics.precision_recall_curve``.

    Ordered by increasing threshold; the last point is (precision 1, recall 0)
    and has no threshold, so ``thresholds`` is one shorter.
    """
    positives, scores = _binary_inputs(y_true, y_score, pos_label)
    fps, tps, thresholds = _binary_clf_curve(positives, scores)
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(tps[:-1]), np.diff(tps[1:])), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    predicted = tps + fps
    precision = np.zeros_like(tps)
    np.divide(tps, predicted, out=precision, where=predicted != 0)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision_score(y_true: Any, y_score: Any, *, pos_label: Any = None) -> float:
    """``sum_k (R_k - R_{k-1}) * P_k`` over the PR curve (no interpolation)."""
    precision, recall, _ = precision_recall_curve(y_true, y_score, pos_label=pos_label)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def downsample_curve(x: Any, y: Any, max_points: int, *extra: Any) -> tuple[np.ndarray, ...]:
    """At most ``max_points`` points of a curve for charting, endpoints kept.

    Points are picked evenly along the curve's length (in the units of x
    and y), so steep and flat stretches both keep their shape, unlike
    picking every k-th point. ``extra`` arrays (e.g. thresholds) aligned
    with ``x`` are subsampled the same way; arrays one shorter than ``x``
    (precision-recall thresholds) are allowed and keep their alignment.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if max_points < 2:
        raise ValueError("max_points must be >= 2")
    count = xs.size
    if count <= max_points:
        keep = np.arange(count)
    else:
        steps = np.hypot(np.diff(xs), np.diff(ys))
        along = np.r_[0.0, np.cumsum(steps)]
        targets = np.linspace(0.0, along[-1], max_points)
        # max_points - 2 interior targets plus both endpoints: never more than max_points.
        keep = np.unique(np.r_[0, np.searchsorted(along, targets[1:-1]), count - 1].clip(0, count - 1))
    out: list[np.ndarray] = [xs[keep], ys[keep]]
    for values in extra:
        values = np.asarray(values)
        out.append(values[keep[keep < values.size]])
    return tuple(out)


# ------------------------------------------------------ tables and matrices


def lift_table(y_true: Any, y_score: Any, *, n_bins: int = 10, pos_label: Any = None) -> list[dict[str, Any]]:
    """Lift and gain by score bins (deciles by default), highest scores first.

    Rows are ranked by score (ties in their original order) and cut into
    ``n_bins`` groups of sizes differing by at most one. Each bin reports its
    size, positives, score range, response rate, lift (rate / overall rate),
    and the cumulative positives, gain (share of all positives captured so
    far) and cumulative lift.
    """
    positives, scores = _binary_inputs(y_true, y_score, pos_label)
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    count = scores.size
    n_bins = min(n_bins, count)
    order = np.argsort(-scores, kind="mergesort")
    ranked_scores = scores[order]
    ranked_pos = positives[order]
    total_pos = int(ranked_pos.sum())
    base_rate = total_pos / count
    edges = [count * k // n_bins for k in range(n_bins + 1)]
    rows = []
    cum_count = cum_pos = 0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        size = hi - lo
        pos = int(ranked_pos[lo:hi].sum())
        cum_count += size
        cum_pos += pos
        rate = pos / size
        cum_rate = cum_pos / cum_count
        rows.append(
            {
                "bin": b + 1,
                "count": size,
                "positives": pos,
                "min_score": float(ranked_scores[hi - 1]),
                "max_score": float(ranked_scores[lo]),
                "response_rate": rate,
                "lift": rate / base_rate,
                "cumulative_count": cum_count,
                "cumulative_positives": cum_pos,
                "cumulative_response_rate": cum_rate,
                "gain": cum_pos / total_pos,
                "cumulative_lift": cum_rate / base_rate,
            }
        )
    return rows


def confusion_at_threshold(
    y_true: Any, y_score: Any, threshold: float = 0.5, *, pos_label: Any = None
) -> dict[str, Any]:
    """Confusion matrix and the usual rates when predicting positive for ``score >= threshold``.

    ``matrix`` is ``[[tn, fp], [fn, tp]]`` (rows: actual negative/positive),
    like ``sklearn.metrics.confusion_matrix`` with the negative class first.
    Undefined ratios (no predicted positives...) are 0.0, scikit-learn's
    ``zero_division`` result.
    """
    positives, scores = _binary_inputs(y_true, y_score, pos_label)
    predicted = scores >= threshold
    tp = int(np.sum(predicted & positives))
    fp = int(np.sum(predicted & ~positives))
    fn = int(np.sum(~predicted & positives))
    tn = int(np.sum(~predicted & ~positives))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "threshold": float(threshold),
        "matrix": [[tn, fp], [fn, tp]],
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / scores.size,
    }


# -------------------------------------------------------------- regression


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    truth, pred = _regression_inputs(y_true, y_pred)
    return float(np.mean((truth - pred) ** 2))


def root_mean_squared_error(y_true: Any, y_pred: Any) -> float:
    return math.sqrt(mean_squared_error(y_true, y_pred))


def mean_absolute_error(y_true: Any, y_pred: Any) -> float:
    truth, pred = _regression_inputs(y_true, y_pred)
    return float(np.mean(np.abs(truth - pred)))


def _one_minus_ratio(numerator: float, denominator: float) -> float:
    # scikit-learn's force_finite: a constant target gives 1.0 for a perfect fit, else 0.0.
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else 0.0
    return 1.0 - numerator / denominator


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (NaN for a single sample, like scikit-learn)."""
    truth, pred = _regression_inputs(y_true, y_pred)
    if truth.size < 2:
        return float("nan")
    residual = float(np.sum((truth - pred) ** 2))
    total = float(np.sum((truth - np.mean(truth)) ** 2))
    return _one_minus_ratio(residual, total)


def explained_variance_score(y_true: Any, y_pred: Any) -> float:
    """``1 - Var(y - y_pred) / Var(y)``."""
    truth, pred = _regression_inputs(y_true, y_pred)
    error = truth - pred
    numerator = float(np.mean((error - np.mean(error)) ** 2))
    denominator = float(np.mean((truth - np.mean(truth)) ** 2))
    return _one_minus_ratio(numerator, denominator)


# ----------------------------------------------------------------- reports


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_list(values: np.ndarray) -> list[float | None]:
    return [_json_float(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def binary_report(
    y_true: Any,
    y_score: Any,
    *,
    threshold: float = 0.5,
    n_bins: int = 10,
    max_curve_points: int = 200,
    pos_label: Any = None,
) -> dict[str, Any]:
    """Everything the UI shows for a binary classifier, as JSON-ready Python types.

    Keys: ``n``, ``n_positive``, ``n_negative``, ``auc``, ``ks``,
    ``ks_threshold``, ``average_precision``, ``confusion`` (see
    :func:`confusion_at_threshold`), ``roc`` and ``pr`` (curves downsampled to
    at most ``max_curve_points`` points, endpoints kept; every point has a
    threshold, ``None`` for the ``inf`` first ROC threshold and for the final
    recall-0 PR point, which has none), and ``lift`` (see :func:`lift_table`).
    """
    positives, scores = _binary_inputs(y_true, y_score, pos_label)
    # Validated once; the helpers below see a {0, 1} label array.
    labels = positives.astype(np.int8)
    fpr, tpr, roc_thresholds = roc_curve(labels, scores)
    gap = tpr - fpr
    best = int(np.argmax(gap))
    precision, recall, pr_thresholds = precision_recall_curve(labels, scores)
    average_precision = float(-np.sum(np.diff(recall) * precision[:-1]))
    roc_x, roc_y, roc_t = downsample_curve(fpr, tpr, max_curve_points, roc_thresholds)
    # Pad the PR thresholds so every point has one; the final (recall 0) point has none.
    pr_x, pr_y, pr_t = downsample_curve(recall, precision, max_curve_points, np.r_[pr_thresholds, np.nan])
    n_positive = int(positives.sum())
    return {
        "n": int(scores.size),
        "n_positive": n_positive,
        "n_negative": int(scores.size - n_positive),
        "auc": float(np.trapezoid(tpr, fpr)),
        "ks": float(gap[best]),
        "ks_threshold": _json_float(roc_thresholds[best]),
        "average_precision": average_precision,
        "confusion": confusion_at_threshold(labels, scores, threshold),
        "roc": {"fpr": _json_list(roc_x), "tpr": _json_list(roc_y), "thresholds": _json_list(roc_t)},
        "pr": {"recall": _json_list(pr_x), "precision": _json_list(pr_y), "thresholds": _json_list(pr_t)},
        "lift": lift_table(labels, scores, n_bins=n_bins),
    }


def regression_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MSE, RMSE, MAE, R^2 and explained variance, as plain floats (``None`` for an undefined R^2)."""
    mse = mean_squared_error(y_true, y_pred)
    return {
        "n": int(np.asarray(y_true).shape[0]),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": mean_absolute_error(y_true, y_pred),
        "r2": _json_float(r2_score(y_true, y_pred)),
        "explained_variance": explained_variance_score(y_true, y_pred),
    }
