"""Helpers both SecureBoost roles use: reading tables, parameters, model-half checks."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InvalidInput
from engine.ml import model_io
from engine.ml import tree as T
from engine.ml.columns import ID_COLUMN_HINT, require_columns

COMPONENT = "hetero_secureboost"
PREDICT_COMPONENT = "hetero_secureboost_predict"
VERSION = "1.0.0"


def as_frame(table: Any, input: str) -> pd.DataFrame:
    """A pandas DataFrame from a DataFrame or a pyarrow Table."""
    if isinstance(table, pd.DataFrame):
        return table
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pa = None
    if pa is not None and isinstance(table, pa.Table):
        return table.to_pandas()
    raise InvalidInput(f"input {input!r} must be a table", input=input)


def read_ids(frame: pd.DataFrame, column: str, input: str) -> list[str]:
    """The id column as a list of text; refuses a missing column, non-text or missing ids."""
    require_columns(frame, [column], input=input, hint=ID_COLUMN_HINT)
    values = frame[column].tolist()
    if not all(isinstance(v, str) for v in values):
        raise InvalidInput(
            f"id column {column!r} of input {input!r} must hold text (read it with dtype=str) "
            "and have no missing value",
            input=input,
            column=column,
        )
    return values


def apply_transform(document: Any, frame: pd.DataFrame, input: str) -> pd.DataFrame:
    """Apply a fitted preprocessing model (``engine.ml.preprocessing``) when one is given."""
    if document is None:
        return frame
    try:
        from engine.ml.preprocessing import apply_model
    except ImportError:
        raise InvalidInput(
            "the 'transform' input needs engine.ml.preprocessing, which this engine does not have",
            input="transform",
        ) from None
    return apply_model(document, frame)


def default_features(frame: pd.DataFrame, params: Any, *, role: str) -> list[str]:
    """The job's feature columns, or every column but the id (and, at the guest, the label)."""
    if params.feature_columns is not None:
        features = list(params.feature_columns)
        if len(set(features)) != len(features):
            raise InvalidInput("the 'feature_columns' parameter names a column twice", input="data")
        require_columns(frame, features, input="data", hint="it is named in the 'feature_columns' parameter")
        for name in features:
            if name == params.id_column or (role == "guest" and name == params.label_column):
                raise InvalidInput(f"column {name!r} is the id or label column, not a feature", input="data",
                                   column=name)
        return features
    excluded = {params.id_column} | ({params.label_column} if role == "guest" else set())
    return [str(c) for c in frame.columns if c not in excluded]


def boost_params(params: Any) -> T.BoostParams:
    return T.BoostParams(
        n_trees=params.n_trees,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        min_child_weight=params.min_child_weight,
        l2=params.l2,
        min_split_gain=params.min_split_gain,
        subsample=params.subsample,
        seed=params.seed,
        precision_bits=params.precision_bits,
        early_stopping_rounds=params.early_stopping_rounds,
        early_stopping_metric=params.early_stopping_metric,
    )


# --------------------------------------------------------- model-half checks


def _fail(message: str) -> None:
    raise model_io.ModelFormatError(f"SecureBoost model: {message}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_edges(bins: Any, features: list[str]) -> None:
    if not isinstance(bins, dict) or sorted(bins) != sorted(features):
        _fail("'bins' must give the edges of every feature")
    for name, edges in bins.items():
        if not isinstance(edges, list) or not all(_finite(e) for e in edges):
            _fail(f"the edges of {name!r} must be a list of numbers")
        if any(b <= a for a, b in pairwise(edges)):
            _fail(f"the edges of {name!r} must increase")


def check_guest_body(body: Any) -> None:
    """Structural checks of the guest's half (what ``import`` refuses)."""
    if not isinstance(body, dict):
        _fail("the body must be an object")
    for key in ("id_column", "features", "bins", "base_margin", "trees"):
        if key not in body:
            _fail(f"the guest half lacks {key!r}")
    features = body["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        _fail("'features' must be a list of names")
    _check_edges(body["bins"], features)
    if not _finite(body["base_margin"]):
        _fail("'base_margin' must be a number")
    if not isinstance(body["trees"], list):
        _fail("'trees' must be a list")
    for t, nodes in enumerate(body["trees"]):
        _check_tree(nodes, t, features, body["bins"])


def _check_tree(nodes: Any, t: int, features: list[str], bins: dict[str, list]) -> None:
    if not isinstance(nodes, list) or not nodes:
        _fail(f"tree {t} has no nodes")
    ids = [nd.get("id") if isinstance(nd, dict) else None for nd in nodes]
    if ids != list(range(len(nodes))):
        _fail(f"tree {t}: nodes must be numbered 0, 1, 2... in order")
    reached = {0}
    for nd in nodes:
        where = f"tree {t} node {nd['id']}"
        if "leaf" in nd:
            if not _finite(nd["leaf"]):
                _fail(f"{where}: the leaf value must be a number")
            continue
        split, left, right = nd.get("split"), nd.get("left"), nd.get("right")
        if not isinstance(split, dict) or split.get("owner") not in ("guest", "host"):
            _fail(f"{where}: a node is a leaf or has a split owned by 'guest' or 'host'")
        if not (isinstance(left, int) and isinstance(right, int) and nd["id"] < left < len(nodes)
                and nd["id"] < right < len(nodes) and left != right):
            _fail(f"{where}: children must be later nodes of the same tree")
        if left in reached or right in reached:
            _fail(f"{where}: a node is reached twice")
        reached.update((left, right))
        if split["owner"] == "guest":
            name, b = split.get("feature"), split.get("bin")
            if name not in features or not isinstance(b, int) or not 0 <= b <= len(bins[name]):
                _fail(f"{where}: unknown feature or bin")
            expected = bins[name][b] if b < len(bins[name]) else None
            if split.get("threshold") != expected:
                _fail(f"{where}: the threshold does not match the feature's bin edge")
        elif not isinstance(split.get("split_id"), str):
            _fail(f"{where}: a host split needs its opaque split_id")
    if len(reached) != len(nodes):
        _fail(f"tree {t}: some nodes are not reachable from the root")


def check_host_body(body: Any) -> None:
    """Structural checks of the host's half."""
    if not isinstance(body, dict):
        _fail("the body must be an object")
    for key in ("id_column", "features", "bins", "splits"):
        if key not in body:
            _fail(f"the host half lacks {key!r}")
    features = body["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        _fail("'features' must be a list of names")
    _check_edges(body["bins"], features)
    splits = body["splits"]
    if not isinstance(splits, dict):
        _fail("'splits' must map split ids to splits")
    for split_id, split in splits.items():
        if not isinstance(split, dict) or split.get("feature") not in features:
            _fail(f"split {split_id}: unknown feature")
        edges = body["bins"][split["feature"]]
        b = split.get("bin")
        if not isinstance(b, int) or not 0 <= b <= len(edges):
            _fail(f"split {split_id}: bin out of range")
        if split.get("threshold") != (edges[b] if b < len(edges) else None):
            _fail(f"split {split_id}: the threshold does not match the feature's bin edge")


def host_routing(body: dict[str, Any], matrix: np.ndarray, split_ids: list[str]) -> dict[str, np.ndarray]:
    """For each host split, which rows go left (``x <= threshold``; missing goes right)."""
    index = {name: j for j, name in enumerate(body["features"])}
    out = {}
    for split_id in split_ids:
        split = body["splits"][split_id]
        out[split_id] = T.goes_left(matrix[:, index[split["feature"]]], split["threshold"])
    return out


def host_split_ids(body: dict[str, Any]) -> list[str]:
    """The opaque ids of the host's splits that the guest's trees use, sorted."""
    return sorted({nd["split"]["split_id"] for nodes in body["trees"] for nd in nodes
                   if "split" in nd and nd["split"]["owner"] == "host"})


def guest_margin(body: dict[str, Any], matrix: np.ndarray, masks: dict[str, np.ndarray]) -> np.ndarray:
    """Every row's margin under the guest's trees: the guest tests its own splits on ``matrix``
    (its features, in ``body["features"]`` order); ``masks`` say, per host split, which rows go left."""
    index = {name: j for j, name in enumerate(body["features"])}
    n = matrix.shape[0]

    def left(nd: dict, rows: np.ndarray) -> np.ndarray:
        split = nd["split"]
        if split["owner"] == "guest":
            return T.goes_left(matrix[rows, index[split["feature"]]], split["threshold"])
        return masks[split["split_id"]][rows]

    margin = np.full(n, float(body["base_margin"]))
    for nodes in body["trees"]:
        margin = T.add_leaves(margin, nodes, T.route_rows(nodes, left, n))
    return margin


# --- Checkpoints: the training state after each tree ------------------------------------

def params_record(params: Any) -> dict[str, Any]:
    """The training parameters kept in a model half (a local checkpoint path is not one)."""
    record = params.model_dump(mode="json")
    record.pop("checkpoint_dir", None)
    return record


def ids_sha256(ids: list[str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for value in ids:
        digest.update(value.encode("utf-8") + b"\0")
    return digest.hexdigest()


def write_checkpoint(params: Any, role: str, model_id: str, trees_done: int, state: dict[str, Any]) -> None:
    """``<checkpoint_dir>/<role>/tree-NNNNN.json``: what this party needs to go on after that tree."""
    if not params.checkpoint_dir:
        return
    document = model_io.build(component=COMPONENT, component_version=VERSION, role=role, model_id=model_id,
                              params=params_record(params), body={"kind": "checkpoint", "trees_done": trees_done, **state})
    model_io.write_checkpoint(params.checkpoint_dir, role, "tree", trees_done, document)


def read_checkpoint(document: Any, role: str, ids: list[str], params: Any) -> dict[str, Any] | None:
    """The body of this party's checkpoint given as the ``resume`` input, checked against the data."""
    if document is None:
        return None
    if not isinstance(document, dict) or document.get("component") != COMPONENT or document.get("role") != role:
        raise InvalidInput(f"the 'resume' input is not a {COMPONENT} {role} checkpoint", input="resume")
    body = document.get("body") or {}
    if body.get("kind") != "checkpoint" or not isinstance(body.get("trees_done"), int):
        raise InvalidInput("the 'resume' input is a model, not a training checkpoint", input="resume")
    if body.get("ids_sha256") != ids_sha256(ids):
        raise InvalidInput("the checkpoint was made on other rows (different ids or order)", input="resume")
    theirs = dict(document.get("params") or {})
    mine = params_record(params)
    for name in ("n_trees", "max_depth", "learning_rate", "min_child_weight", "l2", "min_split_gain", "subsample",
                 "seed", "max_bins", "precision_bits", "early_stopping_rounds", "early_stopping_metric"):
        if theirs.get(name) != mine.get(name):
            raise InvalidInput(f"the checkpoint was made with {name}={theirs.get(name)!r}, not {mine.get(name)!r}",
                               input="resume")
    return {**body, "model_id": document.get("model_id")}


def resume_point(state: dict[str, Any] | None, n_trees: int) -> int:
    """The first tree still to grow (all of them when training had stopped)."""
    if state is None:
        return 0
    return n_trees if state.get("stopped") else int(state["trees_done"])


def check_same_resume(mine: int, theirs: Any) -> None:
    if theirs != mine:
        raise InvalidInput(f"this party continues after tree {mine}, the other after tree {theirs}: both must "
                           "resume from the same checkpoint", input="resume")
