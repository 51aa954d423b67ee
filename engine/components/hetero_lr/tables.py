"""Reading a party's table into arrays, and writing checkpoints, for the hetero LR roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InvalidInput
from engine.ml import logistic, model_io
from engine.ml.columns import ID_COLUMN_HINT, require_columns


@dataclass
class PartyData:
    """One party's rows: ids (text), raw features (float64) and, at the guest, labels (0/1)."""

    ids: list[str]
    X: np.ndarray
    columns: list[str]
    y: np.ndarray | None = None


def as_frame(table: Any) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    return table.to_pandas()  # pyarrow.Table


def read_party(
    table: Any,
    *,
    id_column: str,
    input: str,
    label_column: str | None = None,
    requested: list[str] | None = None,
    columns: list[str] | None = None,
) -> PartyData:
    """Ids, features and labels of ``table``.

    ``columns`` fixes the feature columns (validation, scoring); otherwise
    they are ``requested`` or every column but the id (and label).
    """
    frame = as_frame(table)
    require_columns(frame, [id_column], input=input, hint=ID_COLUMN_HINT)
    ids = frame[id_column].astype(str).tolist()
    if len(set(ids)) != len(ids):
        raise InvalidInput(
            f"input {input!r} has duplicated ids in column {id_column!r}: align the parties with psi "
            "(one row per id) first",
            input=input,
            column=id_column,
        )
    exclude = [label_column] if label_column else []
    if columns is None:
        columns = logistic.feature_columns(frame, id_column=id_column, exclude=exclude, requested=requested,
                                           input=input)
    X = logistic.feature_matrix(frame, columns, input=input)
    y = logistic.binary_labels(frame, label_column, input=input) if label_column else None
    return PartyData(ids=ids, X=X, columns=list(columns), y=y)


def write_checkpoint(directory: str | None, role: str, epoch: int, document: dict[str, Any]) -> None:
    """``<directory>/<role>/epoch-<epoch>.json`` and ``latest.json``, each written atomically."""
    model_io.write_checkpoint(directory, role, "epoch", epoch, document)