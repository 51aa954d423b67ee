"""Train/validation split agreed by id: the guest draws it, the host receives only membership.

Message table (``G`` = guest, ``H`` = host)
===========================================

=====  =====  ==============  ====================================================
step   dir    message         content
=====  =====  ==============  ====================================================
1      G->H   ``hello``       protocol id, the guest's row count, a fresh 32-byte nonce
2      H->G   ``hello``       protocol id, the host's row count, salted digest of its
                              id column in row order (see :mod:`.align`)
3      G->H   ``membership``  ``validate``: one bool per aligned row (True = validation)
=====  =====  ==============  ====================================================

The guest checks the digest before step 3 and stops (``RowsNotAligned``) when the
two tables do not hold the same ids in the same order.

What each party learns
======================
* The guest learns the host's row count and whether the host's rows are aligned with
  its own (one bit; see :mod:`.align`). Nothing about the host's features.
* The host learns which of its rows are in the validation set, and nothing else:
  no label, no class proportion. A stratified split does keep each class's share of
  validation rows within one row of ``validation_fraction``, so the split itself
  carries no label information beyond the fact that it is stratified.

Drawing (pure function :func:`draw_split`): ``numpy.random.default_rng(seed)``;
``random`` permutes all rows and puts the first ``round(fraction * rows)`` in
validation; ``stratified`` does the same within each class (classes in sorted order,
one permutation each). The same seed and table always give the same split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.components.split.align import (
    as_frame,
    check_aligned,
    id_column_texts,
    new_nonce,
    rows_digest,
)
from engine.errors import InvalidInput, ProtocolError
from engine.federation.context import Context
from engine.ml.columns import label_vector

PROTOCOL = "fedweb-split-v1"

__all__ = ["PROTOCOL", "draw_split", "guest", "host"]


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def draw_split(rows: int, fraction: float, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
    """Bool mask of validation rows: random (``labels`` None) or stratified by ``labels``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must lie strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    validate = np.zeros(rows, dtype=bool)
    if labels is None:
        order = rng.permutation(rows)
        validate[order[: _round_half_up(fraction * rows)]] = True
        return validate
    labels = np.asarray(labels)
    if labels.shape != (rows,):
        raise ValueError("one label per row is needed")
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        order = rng.permutation(members)
        validate[order[: _round_half_up(fraction * members.size)]] = True
    return validate


def _outputs(frame: pd.DataFrame, validate: np.ndarray, metrics: dict[str, Any]) -> dict[str, Any]:
    train = frame.loc[~validate].reset_index(drop=True)
    valid = frame.loc[validate].reset_index(drop=True)
    metrics.update({"rows": len(frame), "train_rows": len(train), "validate_rows": len(valid)})
    return {"train": train, "validate": valid, "metrics": metrics}


def guest(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    ids = id_column_texts(frame, params.id_column)
    stratified = params.method == "stratified"
    labels = label_vector(frame, params.label_column) if stratified else None
    validate = draw_split(len(frame), params.validation_fraction, params.seed, labels)
    if validate.all() or not validate.any():
        raise InvalidInput(
            f"a validation fraction of {params.validation_fraction} of {len(frame)} rows leaves the "
            f"{'training' if validate.all() else 'validation'} set empty",
            input="data",
        )
    nonce = new_nonce()
    peer = ctx.peer
    peer.send("hello", {"protocol": PROTOCOL, "rows": len(frame), "nonce": nonce})
    reply = peer.recv("hello")
    if not isinstance(reply, dict) or reply.get("protocol") != PROTOCOL:
        raise ProtocolError(f"split: the host does not run {PROTOCOL}")
    check_aligned(ids, nonce, reply.get("digest"), reply.get("rows"), "split")
    peer.send("membership", {"validate": validate})
    metrics: dict[str, Any] = {"method": params.method, "seed": params.seed,
                               "validation_fraction": params.validation_fraction}
    if params.label_column in frame.columns:
        y = label_vector(frame, params.label_column) if labels is None else labels
        metrics["train_event_rate"] = float(y[~validate].mean())
        metrics["validate_event_rate"] = float(y[validate].mean())
    return _outputs(frame, validate, metrics)


def host(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    ids = id_column_texts(frame, params.id_column)
    peer = ctx.peer
    hello = peer.recv("hello")
    if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL or not isinstance(hello.get("nonce"), bytes):
        raise ProtocolError(f"split: the guest does not run {PROTOCOL}")
    peer.send("hello", {"protocol": PROTOCOL, "rows": len(frame), "digest": rows_digest(ids, hello["nonce"])})
    message = peer.recv("membership")
    validate = message.get("validate") if isinstance(message, dict) else None
    if not isinstance(validate, np.ndarray) or validate.dtype != np.bool_ or validate.shape != (len(frame),):
        raise ProtocolError(f"split: the membership must be {len(frame)} booleans, one per aligned row")
    return _outputs(frame, validate, {})
