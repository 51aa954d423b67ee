"""One party's half of a hetero LR model: the file format, scoring, export and import.

Each half is an :mod:`engine.ml.model_io` document (``component`` =
``"hetero_lr"``, JSON, no pickle) whose ``body`` is::

    {
      "kind": "model",                      # "checkpoint" for training states
      "format_version": 1,
      "id_column": "id",
      "label_column": "y",                  # guest only
      "features": ["f1", "f2", ...],        # this party's columns, in weight order
      "weights": [0.12, -0.5, ...],         # one per feature
      "intercept": 0.3,                     # guest only (0.0 without an intercept)
      "feature_bits": 32,
      "exponents": [28, 30, ...],           # fixed-point grid per feature: x -> round(x * 2**e) / 2**e
      "peer_weights": 21,                   # how many weights the other half has
      "training": {"epochs": 12, "best_epoch": 9, "stopped_early": true, "seed": 42, ...}
    }

``params`` holds the training parameters. A party's *partial score* for a
row is ``grid(x) . weights (+ intercept)``; the model's probability is
``sigmoid(guest partial + host partial)``.

Prediction-consistency check (seed 003): every half carries
``sample_check = {"ids": [...], "scores": [...]}``, the partial scores of a
few training rows computed when the model was made. :func:`import_half`
recomputes them from the importing party's rows and requires the exact same
floats (:func:`engine.ml.model_io.check_consistency`), else
:class:`~engine.ml.model_io.ModelFormatError`; ``hetero_lr_predict`` runs the
same check whenever the sample's ids are in the scoring table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.ml import logistic, model_io
from engine.ml.columns import ID_COLUMN_HINT, require_columns
from engine.ml.model_io import ModelFormatError

__all__ = [
    "COMPONENT",
    "VERSION",
    "Half",
    "build_half",
    "export_half",
    "import_half",
    "partial_scores",
    "read_half",
    "verify_sample",
]

COMPONENT = "hetero_lr"
VERSION = "1.0.0"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Half:
    """A validated model half."""

    document: dict[str, Any]
    role: str
    model_id: str
    id_column: str
    features: list[str]
    weights: np.ndarray
    exponents: np.ndarray
    intercept: float

    def scores(self, frame: pd.DataFrame, *, input: str = "data") -> np.ndarray:
        """This half's partial scores for the rows of ``frame``."""
        X = logistic.feature_matrix(frame, self.features, input=input)
        return partial_scores(X, self.weights, self.exponents, self.intercept)


def partial_scores(X: np.ndarray, weights: np.ndarray, exponents: np.ndarray, intercept: float = 0.0) -> np.ndarray:
    """``grid(X) . weights + intercept`` per row, bit-for-bit reproducible.

    Computed as an elementwise product summed along each row (numpy's
    pairwise sum over a contiguous row), not with BLAS ``gemv``, whose
    rounding for a row can depend on how many rows are scored together: the
    consistency check compares a few rows scored alone with the same rows
    scored in bulk.
    """
    products = np.ascontiguousarray(logistic.grid(X, exponents)) * np.asarray(weights, dtype=np.float64)
    return np.sum(products, axis=1) + float(intercept)


def build_half(
    *,
    role: str,
    model_id: str,
    params: dict[str, Any],
    id_column: str,
    features: Sequence[str],
    weights: np.ndarray,
    exponents: np.ndarray,
    intercept: float | None,
    feature_bits: int,
    peer_weights: int,
    training: dict[str, Any],
    label_column: str | None = None,
    sample: tuple[list[str], np.ndarray] | None = None,
    kind: str = "model",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A model_io document for one half (``kind="checkpoint"`` for a training state)."""
    body: dict[str, Any] = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "id_column": id_column,
        "features": list(features),
        "weights": [float(w) for w in weights],
        "feature_bits": int(feature_bits),
        "exponents": [int(e) for e in exponents],
        "peer_weights": int(peer_weights),
        "training": training,
    }
    if role == "guest":
        body["label_column"] = label_column
        body["intercept"] = float(intercept or 0.0)
    if extra:
        body.update(extra)
    sample_check = None
    if sample is not None:
        ids, scores = sample
        sample_check = {"ids": [str(i) for i in ids], "scores": [float(s) for s in scores]}
    return model_io.build(
        component=COMPONENT,
        component_version=VERSION,
        role=role,
        model_id=model_id,
        params=params,
        body=body,
        sample_check=sample_check,
    )


def read_half(document: Any, *, role: str | None = None, kind: str = "model") -> Half:
    """Validate a half (a dict, or model_io bytes/str) and return it; ModelFormatError otherwise."""
    if isinstance(document, (bytes, str)):
        document = model_io.loads(document, component=COMPONENT, role=role)
    elif isinstance(document, dict):
        # Round-trip through the file format so a dict gets exactly the checks a file does.
        document = model_io.loads(model_io.dumps(document), component=COMPONENT, role=role)
    else:
        raise ModelFormatError(f"a model must be a model_io document, got {type(document).__name__}")
    body = document["body"]
    if body.get("kind") != kind:
        raise ModelFormatError(f"this hetero_lr document is a {body.get('kind')!r}, not a {kind!r}")
    if body.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported hetero_lr body version {body.get('format_version')!r}")
    features, weights, exponents = body.get("features"), body.get("weights"), body.get("exponents")
    if not (isinstance(features, list) and all(isinstance(f, str) for f in features) and features):
        raise ModelFormatError("the model's features must be a non-empty list of column names")
    if not (isinstance(weights, list) and len(weights) == len(features)
            and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)):
        raise ModelFormatError("the model needs one numeric weight per feature")
    if not (isinstance(exponents, list) and len(exponents) == len(features)
            and all(isinstance(e, int) and not isinstance(e, bool) and abs(e) < 1100 for e in exponents)):
        raise ModelFormatError("the model needs one integer grid exponent per feature")
    intercept = body.get("intercept", 0.0) if document["role"] == "guest" else 0.0
    if not isinstance(intercept, (int, float)) or isinstance(intercept, bool):
        raise ModelFormatError("the model's intercept must be a number")
    id_column = body.get("id_column")
    if not isinstance(id_column, str) or not id_column:
        raise ModelFormatError("the model does not name its id column")
    return Half(
        document=document,
        role=document["role"],
        model_id=str(document["model_id"]),
        id_column=id_column,
        features=list(features),
        weights=np.array(weights, dtype=np.float64),
        exponents=np.array(exponents, dtype=np.int64),
        intercept=float(intercept),
    )


def verify_sample(half: Half, frame: pd.DataFrame, id_column: str, *, require: bool) -> str:
    """Recompute the half's sample partial scores from ``frame`` and compare them exactly.

    Returns ``"passed"``, or ``"skipped"`` when the sample's rows are not all
    in ``frame`` and ``require`` is false. Raises ModelFormatError on any
    difference (or on missing rows when ``require``).
    """
    check = half.document.get("sample_check")
    if not check:
        if require:
            raise ModelFormatError("the model carries no consistency sample")
        return "skipped"
    ids, expected = check.get("ids"), check.get("scores")
    if not (isinstance(ids, list) and isinstance(expected, list) and len(ids) == len(expected)):
        raise ModelFormatError("the model's consistency sample is malformed")
    require_columns(frame, [id_column], input="data", hint=ID_COLUMN_HINT)
    position = {}
    for i, value in enumerate(frame[id_column].astype(str).tolist()):
        position.setdefault(value, i)
    missing = sum(1 for i in ids if i not in position)
    if missing:
        if require:
            raise ModelFormatError(
                f"{missing} of the {len(ids)} consistency-sample rows are not in the data: "
                "import the model where its training rows are available"
            )
        return "skipped"
    rows = frame.iloc[[position[i] for i in ids]]
    model_io.check_consistency([float(s) for s in expected], half.scores(rows).tolist())
    return "passed"


def export_half(document: dict[str, Any]) -> bytes:
    """The half as model_io bytes (JSON), after validating it."""
    read_half(document)
    return model_io.dumps(document)


def import_half(data: bytes | str, frame: pd.DataFrame, *, role: str | None = None,
                transform: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load an exported half and check it scores its sample rows exactly as before.

    ``frame`` is this party's table holding the sample's rows (raw, if the
    preprocessing ``transform`` document is given: it is applied first).
    Raises :class:`~engine.ml.model_io.ModelFormatError` when the file is not
    a hetero_lr half, the sample rows are absent, or any recomputed partial
    score differs in the last bit.
    """
    half = read_half(data, role=role)
    if transform is not None:
        from engine.ml import preprocessing

        frame = preprocessing.apply_model(transform, frame)
    verify_sample(half, frame, half.id_column, require=True)
    return half.document
