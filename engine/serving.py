"""Scoring one row, or a few, with a loaded model half: what online scoring runs.

The batch prediction components (``hetero_lr_predict``, ``hetero_secureboost_predict``)
score a whole aligned table in one protocol run. Online scoring answers one id, or a
few, in milliseconds, so each site keeps its half loaded and its serving table
prepared in memory (:class:`ServingTable`), and the two halves exchange one message:

* the **host** computes its part for the requested rows (:meth:`Half.host_part`) —
  for logistic regression its partial score ``x_host . w_host`` per row, for
  SecureBoost, per split it owns, which rows go left — the same values the batch
  components send, so the guest learns exactly what it learns in a batch run;
* the **guest** combines it with its own rows into probabilities (:meth:`Half.combine`).

The arithmetic is the batch components' own functions, so a row scored online gets the
same float as the same row scored in a batch job. Nothing here imports Django; the
host part is plain JSON (floats written with ``repr`` precision, bit masks in base64).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from engine.errors import EngineError, ProtocolError
from engine.ml import model_io

LR, SB = "hetero_lr", "hetero_secureboost"
FEW_ROWS = 32  # up to this many rows, SecureBoost routes row by row (cheaper than numpy per tree node)
COMPONENTS = (LR, SB)


class ServingError(EngineError):
    """A model half or a serving table that cannot be used, in plain words."""


def _apply(transform: dict | None, frame: pd.DataFrame) -> pd.DataFrame:
    if transform is None:
        return frame
    from engine.ml.preprocessing import apply_model

    return apply_model(transform, frame)


@dataclass
class Half:
    """One site's half of a trained model, validated once and kept in memory."""

    document: dict
    transform: dict | None
    component: str
    role: str
    model_id: str
    features: list[str]
    _lr: Any = None  # hetero_lr's Half (weights, grid exponents)
    _body: dict = field(default_factory=dict)  # SecureBoost's body
    _split_ids: list[str] = field(default_factory=list)
    _split_feature: np.ndarray | None = None
    _split_threshold: np.ndarray | None = None
    _split_has_threshold: np.ndarray | None = None
    _host_ids: list[str] = field(default_factory=list)  # the guest's trees: the host splits they use
    _trees: list[dict] | None = None  # the guest's trees by node id, for walking a few rows

    @classmethod
    def load(cls, document: dict | bytes | str, transform: dict | bytes | str | None = None) -> Half:
        if isinstance(document, (bytes, str)):
            document = model_io.loads(document)
        if isinstance(transform, (bytes, str)):
            import json

            transform = json.loads(transform)
        component = document.get("component") if isinstance(document, dict) else None
        if component == LR:
            from engine.components.hetero_lr import model as lr_model

            lr = lr_model.read_half(document)
            return cls(document=lr.document, transform=transform, component=LR, role=lr.role,
                       model_id=lr.model_id, features=list(lr.features), _lr=lr)
        if component == SB:
            from engine.components.secureboost.common import check_guest_body, check_host_body

            checked = model_io.loads(model_io.dumps(document), component=SB)
            body = checked["body"]
            (check_guest_body if checked["role"] == "guest" else check_host_body)(body)
            half = cls(document=checked, transform=body.get("transform") or transform, component=SB,
                       role=checked["role"], model_id=checked["model_id"], features=list(body["features"]), _body=body)
            if half.role == "host":
                half._index_splits()
            else:
                from engine.components.secureboost.common import host_split_ids

                half._host_ids = host_split_ids(body)
            return half
        raise ServingError(f"online scoring serves {' and '.join(COMPONENTS)} models, not {component!r}")

    # --- rows -----------------------------------------------------------------------
    def matrix(self, frame: pd.DataFrame, *, input: str = "data") -> np.ndarray:
        """This half's feature matrix for ``frame`` (transformed first), rows in frame order."""
        frame = _apply(self.transform, frame)
        if self.component == LR:
            from engine.ml import logistic

            return logistic.feature_matrix(frame, self.features, input=input)
        from engine.ml import tree

        return tree.feature_matrix(frame, self.features, input=input)

    # --- the host's part ---------------------------------------------------------------
    def _index_splits(self) -> None:
        splits = self._body["splits"]
        self._split_ids = sorted(splits)
        index = {name: j for j, name in enumerate(self.features)}
        self._split_feature = np.array([index[splits[s]["feature"]] for s in self._split_ids], dtype=np.int64)
        thresholds = [splits[s]["threshold"] for s in self._split_ids]
        self._split_has_threshold = np.array([t is not None for t in thresholds], dtype=bool)
        self._split_threshold = np.array([np.inf if t is None else t for t in thresholds], dtype=np.float64)

    def host_part(self, matrix: np.ndarray) -> dict:
        """What the host sends for these rows (JSON)."""
        self._require("host")
        if self.component == LR:
            from engine.components.hetero_lr.model import partial_scores

            u = partial_scores(matrix, self._lr.weights, self._lr.exponents)
            return {"u": [float(v) for v in u]}
        # Every split's test on every row at once: x <= threshold, missing goes right (tree.goes_left).
        values = matrix[:, self._split_feature] if len(self._split_ids) else np.zeros((matrix.shape[0], 0))
        present = ~np.isnan(values)
        left = present & (~self._split_has_threshold | (values <= self._split_threshold))
        return {"routes": {sid: base64.b64encode(np.packbits(left[:, j])).decode("ascii")
                           for j, sid in enumerate(self._split_ids)}}

    def own_part(self, matrix: np.ndarray) -> dict:
        """What this half alone computes for these rows, whichever its role (JSON): the consistency
        sample of an exported half. LR: the partial scores (the guest's with its intercept);
        SecureBoost: per split this half owns, which rows go left."""
        if self.component == LR:
            from engine.components.hetero_lr.model import partial_scores

            u = partial_scores(matrix, self._lr.weights, self._lr.exponents, self._lr.intercept)
            return {"u": [float(v) for v in u]}
        if self.role == "host":
            return self.host_part(matrix)
        from engine.ml import tree as T

        index = {name: j for j, name in enumerate(self.features)}
        tests = sorted({(nd["split"]["feature"], nd["split"]["threshold"]) for nodes in self._body["trees"]
                        for nd in nodes if "split" in nd and nd["split"]["owner"] == "guest"}, key=repr)
        routes = {}
        for feature, threshold in tests:
            left = T.goes_left(matrix[:, index[feature]], threshold)
            routes[f"{feature} <= {threshold!r}"] = base64.b64encode(np.packbits(left)).decode("ascii")
        return {"routes": routes}

    # --- the guest's part --------------------------------------------------------------
    def guest_margin_part(self, matrix: np.ndarray) -> np.ndarray:
        """LR: the guest's own partial scores (intercept included); precomputable per row."""
        self._require("guest")
        from engine.components.hetero_lr.model import partial_scores

        return partial_scores(matrix, self._lr.weights, self._lr.exponents, self._lr.intercept)

    def combine(self, matrix: np.ndarray, part: Any, *, own: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of label 1 for the guest's rows ``matrix`` and the host's ``part`` for the same rows.
        ``own``: the guest's partial scores, when already computed (LR only)."""
        self._require("guest")
        n = matrix.shape[0]
        if not isinstance(part, dict):
            raise ProtocolError("the partner's answer is not an object")
        if self.component == LR:
            from engine.ml import logistic

            u_h = part.get("u")
            if not (isinstance(u_h, list) and len(u_h) == n
                    and all(isinstance(v, float | int) and not isinstance(v, bool) for v in u_h)):
                raise ProtocolError("the partner's answer does not hold one partial score per row")
            u_h = np.asarray(u_h, dtype=np.float64)
            if not np.isfinite(u_h).all():
                raise ProtocolError("the partner's partial scores hold non-finite values")
            u_g = self.guest_margin_part(matrix) if own is None else own
            return logistic.sigmoid(u_g + u_h)
        return self._tree_probability(matrix, part.get("routes"), n)

    def _tree_probability(self, matrix: np.ndarray, routes: Any, n: int) -> np.ndarray:
        from engine.components.secureboost.common import guest_margin
        from engine.ml import tree as T

        host_ids = self._host_ids
        if not isinstance(routes, dict) or not set(host_ids) <= set(routes):
            raise ProtocolError("the partner's answer lacks the routes of some of its splits")

        def bits_of(sid: str) -> bytes:
            try:
                bits = base64.b64decode(routes[sid], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise ProtocolError(f"the partner's route of split {sid!r} is not base64") from None
            if len(bits) != (n + 7) // 8:
                raise ProtocolError(f"the partner's route of split {sid!r} does not describe {n} rows")
            return bits

        if n <= FEW_ROWS:
            # A few rows (online scoring): walk each row down each tree in plain Python, decoding
            # only the host splits on its path. The margins are the same float additions, in the
            # same order, as the vectorised routing; the same sigmoid follows.
            return T.sigmoid(np.array([self._walk(matrix[r], r, bits_of) for r in range(n)], dtype=np.float64))
        masks = {sid: np.unpackbits(np.frombuffer(bits_of(sid), dtype=np.uint8), count=n).astype(bool)
                 for sid in host_ids}
        return T.sigmoid(guest_margin(self._body, matrix, masks))

    def _walk(self, row: np.ndarray, r: int, bits_of) -> float:
        if self._trees is None:
            index = {name: j for j, name in enumerate(self.features)}
            self._trees = [{nd["id"]: (nd, index.get(nd.get("split", {}).get("feature"))) for nd in nodes}
                           for nodes in self._body["trees"]]
        decoded: dict[str, bytes] = {}
        margin = float(self._body["base_margin"])
        for tree in self._trees:
            nd, j = tree[0]
            while "leaf" not in nd:
                split = nd["split"]
                if split["owner"] == "guest":
                    x = float(row[j])
                    left = x == x and (split["threshold"] is None or x <= split["threshold"])  # NaN goes right
                else:
                    sid = split["split_id"]
                    if sid not in decoded:
                        decoded[sid] = bits_of(sid)
                    left = bool(decoded[sid][r >> 3] & (0x80 >> (r & 7)))  # np.packbits' bit order
                nd, j = tree[nd["left"] if left else nd["right"]]
            margin = margin + float(nd["leaf"])
        return margin

    def _require(self, role: str) -> None:
        if self.role != role:
            raise ServingError(f"this is the {self.role}'s half of the model, not the {role}'s")


class ServingTable:
    """A table prepared for scoring by id: features in the half's order, an index of ids,
    and (for logistic regression) every row's partial score computed once."""

    def __init__(self, half: Half, frame: pd.DataFrame, id_column: str):
        if id_column not in frame.columns:
            raise ServingError(f"the serving table has no column {id_column!r} (its columns: "
                               f"{', '.join(map(str, frame.columns[:20]))})")
        ids = frame[id_column].astype(str).tolist()
        self.position: dict[str, int] = {}
        for i, value in enumerate(ids):
            self.position.setdefault(value, i)  # the first row of a repeated id, as PSI keeps
        self.half = half
        self.rows = len(ids)
        self.matrix = half.matrix(frame, input="serving table")
        self.partial = half.guest_margin_part(self.matrix) if half.role == "guest" and half.component == LR else None

    def locate(self, ids: Sequence[str]) -> tuple[list[int], list[str]]:
        """Row positions of the ids found, and the ids not in the table."""
        found, missing = [], []
        for value in ids:
            position = self.position.get(value)
            if position is None:
                missing.append(value)
            else:
                found.append(position)
        return found, missing

    def host_part(self, positions: list[int]) -> dict:
        return self.half.host_part(self.matrix[positions])

    def combine(self, positions: list[int], part: Any) -> np.ndarray:
        own = self.partial[positions] if self.partial is not None else None
        return self.half.combine(self.matrix[positions], part, own=own)


def score_rows(half: Half, frame: pd.DataFrame, part: Any) -> np.ndarray:
    """The guest's probabilities for rows given in a request (not looked up in a table)."""
    return half.combine(half.matrix(frame, input="request"), part)
