"""Gradient-boosted decision trees in plaintext: the reference SecureBoost must equal.

This module is two things at once:

* the **pure functions** every tree learner here uses -- binning, gradients and
  their fixed-point encoding, exact integer histograms, split gains, leaf
  values, row subsampling, early stopping, the level-wise tree-growing driver
  :func:`grow_tree` -- shared by the federated component
  (:mod:`engine.components.secureboost`) so that both make the same decisions
  from the same numbers;
* a **central trainer** (:func:`train`, :func:`predict_margin`) that runs the
  same algorithm on a joined table in plaintext. The federated trees must be
  *identical* to its trees (same splits, same leaf values bit for bit): that
  is what ``tests/engine/test_secureboost.py`` checks.

The algorithm (binary logistic loss, XGBoost-style second-order boosting)
=========================================================================

**Binning.** Each feature is cut into at most ``max_bins`` quantile bins
(:func:`fit_bin_edges`): with ``u`` distinct observed values, if
``len(u) <= max_bins`` every value is its own bin (edges ``u[:-1]``), else the
edges are the ``k / max_bins`` quantiles (``method="inverted_cdf"``, so every
edge is an observed value), deduplicated, below the maximum. A value ``x``
falls in bin ``b = #{edges < x}``; so *bin <= t* means exactly *x <= edges[t]*,
and the split thresholds are observed values. **Missing values** (NaN, blank
text) get a bin of their own after every other bin: a split "bin <= t" sends
them right, with the highest values; the candidate ``t = K - 1`` ("present"
left, "missing" right) lets a tree separate them. This default direction is
fixed (XGBoost learns it per split). At prediction time a missing value goes
right too.

**Gradients** of the logistic loss at margin ``m``: ``p = 1 / (1 + exp(-m))``,
``g = p - y``, ``h = p (1 - p)``. They are **fixed-point encoded** before any
use: ``Gq = rint(g * 2**F)``, ``Hq = rint(h * 2**F)`` (``F`` =
``precision_bits``, default 20), because the federated protocol encrypts
integers. Every sum below is an exact integer sum of these, so it does not
depend on the order of additions, and the federated learner, which adds them
under encryption, gets exactly the same sums.

**Split gain** of a node with sums ``(G, H)`` split into ``(GL, HL)`` and
``(GR, HR) = (G - GL, H - HL)`` (reals: integers times ``2**-F``)::

    gain = GL^2 / (HL + l2) + GR^2 / (HR + l2) - G^2 / (H + l2)

(XGBoost's ``loss_chg`` without the 1/2; a term with ``H + l2 == 0`` counts 0).
A candidate is valid when ``HL >= min_child_weight`` and
``HR >= min_child_weight``. The node is split on the best valid candidate if
its gain is ``> min_split_gain`` (pre-pruning). **Ties** go to the first
candidate in (feature, bin) order, features in table order: in the federated
setting the guest's features come first, then the host's.

**Leaf value** ``-G / (H + l2) * learning_rate``.

**Trees grow level by level** (:func:`grow_tree`): at each depth every open
node (fewer than ``max_depth`` levels above it, at least two rows,
``H >= 2 * min_child_weight``) is examined; nodes are numbered in creation
order (root 0; the children of the nodes split at one level are numbered in
the order of those nodes, left then right).

**Boosting.** The initial margin is the training log-odds
``log(mean(y) / (1 - mean(y)))``. Tree ``t`` is grown on the rows drawn by
:func:`sample_rows` (``subsample`` of them, without replacement, from a
generator seeded with ``(seed, t)``) and then every training row's margin
gets its leaf's value. With a validation set and ``early_stopping_rounds``,
training stops once the validation metric (``logloss`` or ``auc``) has not
improved for that many trees, and the model keeps the trees up to the best one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from engine.errors import AllMissingColumn, ConstantColumn, InvalidParameters, SingleClass
from engine.ml.columns import numeric_column, require_columns

__all__ = [
    "BinnedColumns",
    "BoostParams",
    "EarlyStopping",
    "PlainSplitter",
    "Splitter",
    "add_leaves",
    "apply_bin_edges",
    "base_margin",
    "best_candidate",
    "bin_columns",
    "candidate_sums",
    "check_precision",
    "feature_matrix",
    "fit_bin_edges",
    "goes_left",
    "gradients",
    "grow_tree",
    "leaf_of_rows",
    "leaf_value",
    "leaf_values",
    "logloss",
    "node_histograms",
    "predict_margin",
    "quantize",
    "route_rows",
    "sample_rows",
    "sigmoid",
    "split_gains",
    "threshold_of",
    "train",
    "validation_metrics",
]


# -------------------------------------------------------------- parameters


@dataclass(frozen=True)
class BoostParams:
    """Everything that decides the trees (the component's parameters map onto these)."""

    n_trees: int = 10
    max_depth: int = 3
    learning_rate: float = 0.3
    min_child_weight: float = 1.0
    l2: float = 1.0
    min_split_gain: float = 0.0
    subsample: float = 1.0
    seed: int = 0
    precision_bits: int = 20
    early_stopping_rounds: int = 0
    early_stopping_metric: Literal["logloss", "auc"] = "logloss"

    def __post_init__(self) -> None:
        checks = [
            ("n_trees", self.n_trees >= 1),
            ("max_depth", self.max_depth >= 1),
            ("learning_rate", 0 < self.learning_rate <= 10),
            ("min_child_weight", self.min_child_weight >= 0),
            ("l2", self.l2 >= 0),
            ("min_split_gain", self.min_split_gain >= 0),
            ("subsample", 0 < self.subsample <= 1),
            ("precision_bits", 8 <= self.precision_bits <= 32),
            ("early_stopping_rounds", self.early_stopping_rounds >= 0),
            ("early_stopping_metric", self.early_stopping_metric in ("logloss", "auc")),
        ]
        for name, ok in checks:
            if not ok:
                raise InvalidParameters(f"invalid parameter {name!r}: {getattr(self, name)!r}", param=name)


# ------------------------------------------------------------------- input


def feature_matrix(frame: pd.DataFrame, features: Sequence[str], *, input: str = "data") -> np.ndarray:
    """The feature columns as a float64 matrix (rows x features), NaN where missing (blank text too)."""
    require_columns(frame, features, input=input)
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, column in enumerate(features):
        out[:, j] = numeric_column(frame, column, input=input)
    return out


# ----------------------------------------------------------------- binning


def fit_bin_edges(values: np.ndarray, max_bins: int) -> np.ndarray:
    """Quantile cut points of one feature (see the module docstring); NaN is ignored.

    Returns strictly increasing observed values; ``len(edges) + 1`` bins. An
    all-missing feature gets no edge (one bin, never split on).
    """
    if max_bins < 2:
        raise ValueError("max_bins must be at least 2")
    x = values[~np.isnan(values)]
    if x.size == 0:
        return np.empty(0, dtype=np.float64)
    distinct = np.unique(x)
    if distinct.size <= max_bins:
        return distinct[:-1].astype(np.float64)
    quantiles = np.arange(1, max_bins, dtype=np.float64) / max_bins
    # inverted_cdf returns observed values, so every threshold is a value seen in training.
    edges = np.unique(np.quantile(x, quantiles, method="inverted_cdf"))
    return edges[edges < distinct[-1]].astype(np.float64)


def apply_bin_edges(values: np.ndarray, edges: np.ndarray, missing_code: int) -> np.ndarray:
    """Bin index of every value: ``#{edges < x}``; NaN -> ``missing_code``."""
    codes = np.searchsorted(edges, values, side="left").astype(np.int32)
    codes[np.isnan(values)] = missing_code
    return codes


def threshold_of(edges: np.ndarray, t: int) -> float | None:
    """The split "bin <= t" as a value threshold ``x <= threshold``; ``None`` = "not missing"."""
    return float(edges[t]) if t < len(edges) else None


@dataclass
class BinnedColumns:
    """One party's (or the joined table's) features, binned.

    ``codes[i, j]`` is row ``i``'s bin for feature ``j`` in ``[0, n_bins[j])``,
    or ``n_buckets - 1`` when missing. ``n_buckets`` is the width every
    histogram has: the largest ``n_bins`` plus one missing bucket when some
    feature has missing values.
    """

    features: list[str]
    edges: list[np.ndarray]
    codes: np.ndarray
    n_buckets: int
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_bins(self) -> np.ndarray:
        return np.array([len(e) + 1 for e in self.edges], dtype=np.int64)

    def codes_for(self, matrix: np.ndarray) -> np.ndarray:
        """Bin codes of new rows (same features, same order) with these edges."""
        out = np.empty(matrix.shape, dtype=np.int32)
        for j, edges in enumerate(self.edges):
            out[:, j] = apply_bin_edges(matrix[:, j], edges, self.n_buckets - 1)
        return out


CANNOT_SPLIT = "a tree cannot split on it (drop it, or set degenerate_columns='skip')"


def bin_columns(
    matrix: np.ndarray,
    features: Sequence[str],
    max_bins: int | Sequence[int],
    *,
    degenerate: Literal["skip", "error"] = "skip",
    input: str = "data",
) -> BinnedColumns:
    """Fit edges on every column of ``matrix`` and bin it.

    ``max_bins`` is one number or one per feature (each party may bin its own
    columns differently). A constant column (one distinct value and no
    missing value) or an all-missing one cannot be split on: it is left out
    (``degenerate="skip"``, listed in ``skipped``) or refused
    (:class:`~engine.errors.ConstantColumn`, :class:`~engine.errors.AllMissingColumn`).
    """
    features = list(features)
    per_feature = [max_bins] * len(features) if isinstance(max_bins, int) else list(max_bins)
    kept, edges_list, columns, skipped = [], [], [], []
    for j, name in enumerate(features):
        column = matrix[:, j]
        edges = fit_bin_edges(column, per_feature[j])
        missing = np.isnan(column)
        reason = None
        if missing.all():
            reason = "all_missing"
        elif len(edges) == 0 and not missing.any():
            reason = "constant"
        if reason is not None:
            if degenerate == "error":
                error = AllMissingColumn if reason == "all_missing" else ConstantColumn
                raise error(name, input=input, hint=CANNOT_SPLIT)
            skipped.append({"name": name, "reason": reason})
            continue
        kept.append(name)
        edges_list.append(edges)
        columns.append(column)
    any_missing = any(np.isnan(c).any() for c in columns)
    widest = max((len(e) + 1 for e in edges_list), default=1)
    n_buckets = widest + (1 if any_missing else 0)
    codes = np.empty((matrix.shape[0], len(kept)), dtype=np.int32)
    for j, (column, edges) in enumerate(zip(columns, edges_list)):
        codes[:, j] = apply_bin_edges(column, edges, n_buckets - 1)
    return BinnedColumns(kept, edges_list, codes, n_buckets, skipped)


# --------------------------------------------------------------- gradients


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-margin))


def gradients(y: np.ndarray, margin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivatives of the logistic loss at ``margin``."""
    p = sigmoid(margin)
    return p - y, p * (1.0 - p)


def quantize(g: np.ndarray, h: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``rint(g * 2**bits)``, ``rint(h * 2**bits)`` as int64 (|g| <= 1, 0 <= h <= 1/4)."""
    scale = float(1 << bits)
    return np.rint(g * scale).astype(np.int64), np.rint(h * scale).astype(np.int64)


def check_precision(n_rows: int, bits: int) -> None:
    """Refuse a precision whose sums could leave the exactly representable range."""
    # Histograms are summed in float64 in 26-bit halves (see _exact_bincount), exact
    # while n * 2**26 < 2**53; leaf and gain arithmetic needs |G| < 2**53.
    if n_rows >= 1 << 26 or (n_rows << bits) >= 1 << 52:
        raise InvalidParameters(
            f"precision_bits={bits} is too fine for {n_rows} rows: sums would exceed 2^52 "
            "(lower precision_bits)",
            param="precision_bits",
        )


def base_margin(y: np.ndarray) -> float:
    """Initial margin: the log-odds of the positive rate."""
    rate = float(np.mean(y))
    return math.log(rate / (1.0 - rate))


def logloss(y: np.ndarray, margin: np.ndarray) -> float:
    p = np.clip(sigmoid(margin), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def sample_rows(n_rows: int, rate: float, seed: int, tree: int) -> np.ndarray:
    """Sorted row indices tree ``tree`` is grown on (all rows when ``rate >= 1``)."""
    if rate >= 1.0:
        return np.arange(n_rows, dtype=np.int64)
    rng = np.random.default_rng([seed, tree])
    count = min(n_rows, max(1, round(rate * n_rows)))
    return np.sort(rng.choice(n_rows, size=count, replace=False)).astype(np.int64)


# -------------------------------------------------------------- histograms


_HALF = 26
_LOW_MASK = (1 << _HALF) - 1


def _exact_bincount(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Integer-exact ``bincount`` of int64 weights.

    ``np.bincount`` sums in float64; splitting every weight into a 26-bit low
    part and the rest keeps every partial sum far below 2**53 (see
    :func:`check_precision`), so the result is exact.
    """
    low = np.bitwise_and(weights, _LOW_MASK).astype(np.float64)
    high = np.right_shift(weights, _HALF).astype(np.float64)
    low_sum = np.rint(np.bincount(index, weights=low, minlength=size)).astype(np.int64)
    high_sum = np.rint(np.bincount(index, weights=high, minlength=size)).astype(np.int64)
    return (high_sum << _HALF) + low_sum


def node_histograms(
    codes: np.ndarray, gq: np.ndarray, hq: np.ndarray, n_buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature and bucket: sums of ``gq``, ``hq`` and the row count, int64 ``(m, n_buckets)``."""
    m = codes.shape[1]
    flat = (codes.astype(np.int64) + np.arange(m, dtype=np.int64) * n_buckets).ravel()
    size = m * n_buckets
    count = np.bincount(flat, minlength=size).astype(np.int64)
    g = _exact_bincount(flat, np.repeat(gq, m), size)
    h = _exact_bincount(flat, np.repeat(hq, m), size)
    return g.reshape(m, n_buckets), h.reshape(m, n_buckets), count.reshape(m, n_buckets)


def candidate_sums(hist: np.ndarray, n_bins: np.ndarray) -> np.ndarray:
    """Left-side sums of every candidate "bin <= t": ``(m, max(n_bins))`` int64.

    Entries with ``t >= n_bins[j]`` are not candidates (set to 0; callers mask them).
    """
    width = int(n_bins.max()) if n_bins.size else 0
    cumulative = np.cumsum(hist[:, :width], axis=1)
    cumulative[np.arange(width)[None, :] >= n_bins[:, None]] = 0
    return cumulative


def _score(g: Any, h: Any, l2: float) -> Any:
    denominator = h + l2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, g * g / np.where(denominator > 0, denominator, 1.0), 0.0)


def split_gains(
    gl: np.ndarray, hl: np.ndarray, g_node: int, h_node: int, *, l2: float, min_child_weight: float, bits: int,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Gain of every candidate from integer left sums; ``-inf`` where invalid.

    Pure elementwise float64 arithmetic on exact integers: the same candidate
    gets the same gain bit for bit whatever array it sits in, which is what
    makes the central and the federated learners choose identically.
    """
    scale = 2.0**-bits
    gl_int = np.asarray(gl, dtype=np.int64)
    hl_int = np.asarray(hl, dtype=np.int64)
    g_left = gl_int.astype(np.float64) * scale
    h_left = hl_int.astype(np.float64) * scale
    g_right = (np.int64(g_node) - gl_int).astype(np.float64) * scale
    h_right = (np.int64(h_node) - hl_int).astype(np.float64) * scale
    parent = _score(np.float64(g_node) * scale, np.float64(h_node) * scale, l2)
    gain = (_score(g_left, h_left, l2) + _score(g_right, h_right, l2)) - parent
    ok = (h_left >= min_child_weight) & (h_right >= min_child_weight)
    if valid is not None:
        ok &= valid
    return np.where(ok, gain, -np.inf)


def best_candidate(gains: np.ndarray) -> tuple[float, int, int] | None:
    """``(gain, feature, bin)`` of the first maximal gain in (feature, bin) order; None if none is valid."""
    if gains.size == 0:
        return None
    flat = int(np.argmax(gains.ravel()))  # argmax returns the first maximum: the tie rule
    best = float(gains.ravel()[flat])
    if not math.isfinite(best):
        return None
    width = gains.shape[1]
    return best, flat // width, flat % width


def leaf_value(g_node: int, h_node: int, *, l2: float, learning_rate: float, bits: int) -> float:
    """``-G / (H + l2) * learning_rate`` from integer sums."""
    scale = 2.0**-bits
    denominator = float(h_node) * scale + l2
    if denominator <= 0:
        return 0.0
    return -(float(g_node) * scale) / denominator * learning_rate


# ------------------------------------------------------------- tree growth


class Splitter(Protocol):
    """How :func:`grow_tree` finds and applies splits (plaintext or federated).

    ``find(depth, nodes)`` returns, per node, ``None`` or a dict with at least
    ``"gain"`` (float) and ``"split"`` (what the model records). ``partition``
    receives the nodes that will be split (with ``"children"`` set on each
    choice) and returns each one's boolean "goes left" mask over its rows.
    ``finish(depth)`` is called once when growth stops, at the level reached.
    """

    def find(self, depth: int, nodes: list[dict]) -> list[dict | None]: ...

    def partition(self, depth: int, chosen: list[tuple[dict, dict]]) -> list[np.ndarray]: ...

    def finish(self, depth: int) -> None: ...


def grow_tree(rows: np.ndarray, gq: np.ndarray, hq: np.ndarray, params: BoostParams, splitter: Splitter) -> list[dict]:
    """Grow one tree level by level; returns its nodes, ordered by id.

    A node is ``{"id", "depth", "rows" (sorted row indices), "G", "H"}`` plus
    ``"split"``, ``"gain"``, ``"left"``, ``"right"`` for inner nodes or
    ``"leaf"`` (its value) for leaves.
    """
    def new_node(node_id: int, depth: int, node_rows: np.ndarray) -> dict:
        return {"id": node_id, "depth": depth, "rows": node_rows,
                "G": int(gq[node_rows].sum()), "H": int(hq[node_rows].sum())}

    nodes = [new_node(0, 0, np.asarray(rows, dtype=np.int64))]
    level = [nodes[0]]
    scale = 2.0**-params.precision_bits
    depth = 0
    while depth < params.max_depth:
        # Nodes that could not pass min_child_weight on both sides are not even examined.
        open_nodes = [nd for nd in level
                      if len(nd["rows"]) >= 2 and nd["H"] * scale >= 2 * params.min_child_weight]
        if not open_nodes:
            break
        choices = splitter.find(depth, open_nodes)
        chosen = [(nd, ch) for nd, ch in zip(open_nodes, choices)
                  if ch is not None and ch["gain"] > params.min_split_gain]
        for nd, ch in chosen:
            ch["children"] = [len(nodes), len(nodes) + 1]
            nodes.append({})  # placeholders, filled below
            nodes.append({})
        # Called even when nothing is split: a federated splitter must say so to its peer.
        masks = splitter.partition(depth, chosen)
        level = []
        for (nd, ch), left_mask in zip(chosen, masks):
            left_id, right_id = ch["children"]
            left_rows, right_rows = nd["rows"][left_mask], nd["rows"][~left_mask]
            nodes[left_id] = new_node(left_id, depth + 1, left_rows)
            nodes[right_id] = new_node(right_id, depth + 1, right_rows)
            nd.update(split=ch["split"], gain=ch["gain"], left=left_id, right=right_id)
            level += [nodes[left_id], nodes[right_id]]
        depth += 1
        if not chosen:
            break
    splitter.finish(depth)
    for nd in nodes:
        if "split" not in nd:
            nd["leaf"] = leaf_value(nd["G"], nd["H"], l2=params.l2, learning_rate=params.learning_rate,
                                    bits=params.precision_bits)
    return nodes


def leaf_of_rows(nodes: list[dict], n_rows: int) -> np.ndarray:
    """Leaf id of every row a tree was grown on (-1 for rows it was not)."""
    out = np.full(n_rows, -1, dtype=np.int64)
    for nd in nodes:
        if "leaf" in nd:
            out[nd["rows"]] = nd["id"]
    return out


def route_rows(nodes: Sequence[Mapping[str, Any]], goes_left: Callable[[Mapping[str, Any], np.ndarray], np.ndarray],
               n_rows: int) -> np.ndarray:
    """Leaf id of every row, following ``goes_left(node, rows) -> bool mask`` from the root."""
    out = np.empty(n_rows, dtype=np.int64)
    by_id = {nd["id"]: nd for nd in nodes}
    stack = [(0, np.arange(n_rows, dtype=np.int64))]
    while stack:
        node_id, rows = stack.pop()
        nd = by_id[node_id]
        if "leaf" in nd:
            out[rows] = node_id
            continue
        mask = goes_left(nd, rows)
        stack.append((nd["left"], rows[mask]))
        stack.append((nd["right"], rows[~mask]))
    return out


def leaf_values(nodes: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    return {nd["id"]: nd["leaf"] for nd in nodes if "leaf" in nd}


def add_leaves(margin: np.ndarray, nodes: Sequence[Mapping[str, Any]], leaf_ids: np.ndarray) -> np.ndarray:
    """``margin + value of each row's leaf`` (one float addition per row, in tree order)."""
    values = leaf_values(nodes)
    lookup = np.zeros(max(values) + 1, dtype=np.float64)
    for node_id, value in values.items():
        lookup[node_id] = value
    return margin + lookup[leaf_ids]


class PlainSplitter:
    """Split finding on a whole binned table in plaintext (the central reference)."""

    def __init__(self, binned: BinnedColumns, gq: np.ndarray, hq: np.ndarray, params: BoostParams):
        self.binned = binned
        self.gq, self.hq = gq, hq
        self.params = params
        self.n_bins = binned.n_bins

    def find(self, depth: int, nodes: list[dict]) -> list[dict | None]:
        out: list[dict | None] = []
        p = self.params
        for nd in nodes:
            rows = nd["rows"]
            g_hist, h_hist, _ = node_histograms(self.binned.codes[rows], self.gq[rows], self.hq[rows],
                                                self.binned.n_buckets)
            width = int(self.n_bins.max()) if self.n_bins.size else 0
            valid = np.arange(width)[None, :] < self.n_bins[:, None]
            gains = split_gains(candidate_sums(g_hist, self.n_bins), candidate_sums(h_hist, self.n_bins),
                                nd["G"], nd["H"], l2=p.l2, min_child_weight=p.min_child_weight,
                                bits=p.precision_bits, valid=valid)
            best = best_candidate(gains)
            if best is None:
                out.append(None)
                continue
            gain, j, t = best
            out.append({"gain": gain, "feature_index": j, "bin": t,
                        "split": {"feature": self.binned.features[j], "bin": t,
                                  "threshold": threshold_of(self.binned.edges[j], t)}})
        return out

    def partition(self, depth: int, chosen: list[tuple[dict, dict]]) -> list[np.ndarray]:
        return [self.binned.codes[nd["rows"], ch["feature_index"]] <= ch["bin"] for nd, ch in chosen]

    def finish(self, depth: int) -> None:
        pass


# ---------------------------------------------------------- early stopping


class EarlyStopping:
    """Tracks the validation metric; says when to stop and which tree count was best."""

    def __init__(self, rounds: int, metric: str):
        self.rounds = rounds
        self.metric = metric
        self.best_value: float | None = None
        self.best_trees = 0

    def update(self, trees: int, value: float) -> bool:
        """Record the metric after ``trees`` trees; True when training should stop."""
        better = (
            self.best_value is None
            or (value < self.best_value if self.metric == "logloss" else value > self.best_value)
        )
        if better:
            self.best_value, self.best_trees = value, trees
        return self.rounds > 0 and trees - self.best_trees >= self.rounds


def validation_metrics(y: np.ndarray, margin: np.ndarray) -> dict[str, float | None]:
    """logloss always; AUC and KS when both classes are present."""
    from engine.evaluation import ks_statistic, roc_auc_score

    out: dict[str, float | None] = {"logloss": logloss(y, margin), "auc": None, "ks": None}
    if np.unique(y).size == 2:
        scores = sigmoid(margin)
        out["auc"] = roc_auc_score(y, scores)
        out["ks"] = ks_statistic(y, scores)[0]
    return out


# ---------------------------------------------------------- central model


def _public_tree(nodes: list[dict]) -> list[dict]:
    """Nodes without the training rows (what a model stores)."""
    out = []
    for nd in nodes:
        item = {"id": nd["id"], "depth": nd["depth"], "samples": len(nd["rows"])}
        if "leaf" in nd:
            item["leaf"] = nd["leaf"]
        else:
            item.update(split=nd["split"], gain=nd["gain"], left=nd["left"], right=nd["right"])
        out.append(item)
    return out


def train(
    frame: pd.DataFrame,
    y: np.ndarray,
    params: BoostParams,
    *,
    features: Sequence[str] | None = None,
    max_bins: int | Sequence[int] = 32,
    validate: tuple[pd.DataFrame, np.ndarray] | None = None,
    degenerate: Literal["skip", "error"] = "skip",
) -> dict[str, Any]:
    """Train the boosted trees centrally, in plaintext, on one (joined) table.

    ``features`` defaults to every column of ``frame``; their order is the
    tie-breaking order. Returns ``{"base_margin", "trees" (list of node
    lists, see :func:`grow_tree`, without rows), "features", "edges",
    "skipped", "history" (per tree: train logloss, validation metrics),
    "n_trees"}``.
    """
    features = list(frame.columns) if features is None else list(features)
    y = np.asarray(y, dtype=np.int64)
    if y.size == 0 or y.min() == y.max():
        raise SingleClass("y")
    check_precision(len(y), params.precision_bits)
    binned = bin_columns(feature_matrix(frame, features), features, max_bins, degenerate=degenerate)
    margin = np.full(len(y), base_margin(y))
    base = float(margin[0])
    valid_codes = valid_margin = y_valid = None
    if validate is not None:
        valid_frame, y_valid = validate
        y_valid = np.asarray(y_valid, dtype=np.int64)
        valid_codes = binned.codes_for(feature_matrix(valid_frame, binned.features, input="validate"))
        valid_margin = np.full(len(y_valid), base)
    stopper = EarlyStopping(params.early_stopping_rounds, params.early_stopping_metric)
    trees: list[list[dict]] = []
    history = []
    index = {name: j for j, name in enumerate(binned.features)}

    def by_codes(codes: np.ndarray) -> Callable[[Mapping[str, Any], np.ndarray], np.ndarray]:
        return lambda nd, r: codes[r, index[nd["split"]["feature"]]] <= nd["split"]["bin"]

    for t in range(params.n_trees):
        g, h = gradients(y, margin)
        gq, hq = quantize(g, h, params.precision_bits)
        rows = sample_rows(len(y), params.subsample, params.seed, t)
        nodes = grow_tree(rows, gq, hq, params, PlainSplitter(binned, gq, hq, params))
        margin = add_leaves(margin, nodes, route_rows(nodes, by_codes(binned.codes), len(y)))
        trees.append(_public_tree(nodes))
        record: dict[str, Any] = {"tree": t, "train_logloss": logloss(y, margin)}
        stop = False
        if valid_codes is not None:
            valid_margin = add_leaves(valid_margin, nodes, route_rows(nodes, by_codes(valid_codes), len(y_valid)))
            metrics = validation_metrics(y_valid, valid_margin)
            record.update({f"validate_{k}": v for k, v in metrics.items()})
            stop = stopper.update(t + 1, metrics[params.early_stopping_metric])
        history.append(record)
        if stop:
            break
    keep = stopper.best_trees if (valid_codes is not None and params.early_stopping_rounds > 0) else len(trees)
    return {
        "base_margin": base,
        "trees": trees[:keep],
        "features": binned.features,
        "edges": {name: e.tolist() for name, e in zip(binned.features, binned.edges)},
        "skipped": binned.skipped,
        "history": history,
        "n_trees": keep,
    }


def goes_left(values: np.ndarray, threshold: float | None) -> np.ndarray:
    """Rows going left at a split with this threshold: ``x <= threshold``; missing goes right."""
    present = ~np.isnan(values)
    if threshold is None:
        return present
    return present & (values <= threshold)


def predict_margin(model: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Margins of new rows under a central model (:func:`train`'s result)."""
    features = list(model["features"])
    matrix = feature_matrix(frame, features)
    index = {name: j for j, name in enumerate(features)}
    margin = np.full(len(frame), float(model["base_margin"]))
    for nodes in model["trees"]:
        def left(nd: Mapping[str, Any], rows: np.ndarray) -> np.ndarray:
            return goes_left(matrix[rows, index[nd["split"]["feature"]]], nd["split"]["threshold"])

        margin = add_leaves(margin, nodes, route_rows(nodes, left, len(frame)))
    return margin
