"""Table handling for PSI: reading the id column, deduplicating, selecting rows.

Ids are compared exactly as text: the UTF-8 bytes of each Python ``str``, with
no normalisation of any kind ("0012345" != "12345", "a " != "a", "é"
precomposed != "é" decomposed). Non-text id columns are refused rather than
converted, because by the time an id is an integer its leading zeros are
already gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from engine.errors import InvalidInput

DuplicatePolicy = Literal["error", "first", "all"]

_TEXT_HINT = (
    "ids must be text so that e.g. '0012345' keeps its leading zeros; read files "
    "with dtype=str and keep_default_na=False for the id column"
)


@dataclass
class IdColumn:
    """The ids of one party's table, deduplicated for the protocol.

    Attributes:
        rows: number of rows in the table.
        unique: the distinct ids as UTF-8 bytes, in order of first appearance.
        codes: for each row, the index of its id in ``unique``.
    """

    rows: int
    unique: list[bytes]
    codes: np.ndarray

    @property
    def duplicate_rows(self) -> int:
        """Rows whose id already appeared on an earlier row."""
        return self.rows - len(self.unique)


def read_ids(table: Any, column: str, *, input_name: str = "data") -> IdColumn:
    """Extract and deduplicate the id column of a DataFrame or pyarrow Table.

    Raises :class:`InvalidInput` if the column is missing, not text, or has
    missing values. Messages never contain id values (they may be sent to
    the other party when this party fails).
    """
    if isinstance(table, pa.Table):
        values = _arrow_ids(table, column, input_name)
    elif isinstance(table, pd.DataFrame):
        values = _pandas_ids(table, column, input_name)
    else:
        raise InvalidInput(
            f"input {input_name!r} must be a pandas DataFrame or pyarrow Table", input=input_name
        )
    # A dict compares Python str objects with ==: exact, no normalisation. (Not
    # pd.factorize: its string hash table stops at NUL, so "a\x00b" == "a" there.)
    first_index: dict[str, int] = {}
    codes = np.fromiter(
        (first_index.setdefault(text, len(first_index)) for text in values),
        dtype=np.int64,
        count=len(values),
    )
    try:
        unique = [text.encode("utf-8") for text in first_index]
    except UnicodeEncodeError:
        raise InvalidInput(
            f"id column {column!r} of input {input_name!r} holds text that is not valid "
            "Unicode (lone surrogates)",
            input=input_name,
            column=column,
        ) from None
    return IdColumn(rows=len(values), unique=unique, codes=codes)


def _missing_column(table_columns: list[str], column: str, input_name: str) -> InvalidInput:
    shown = ", ".join(repr(c) for c in table_columns[:20])
    more = ", ..." if len(table_columns) > 20 else ""
    return InvalidInput(
        f"input {input_name!r} has no id column {column!r} (columns: {shown}{more})",
        input=input_name,
        column=column,
    )


def _pandas_ids(df: pd.DataFrame, column: str, input_name: str) -> np.ndarray:
    if column not in df.columns:
        raise _missing_column([str(c) for c in df.columns], column, input_name)
    selected = df[column]
    if isinstance(selected, pd.DataFrame):
        raise InvalidInput(
            f"input {input_name!r} has more than one column named {column!r}",
            input=input_name,
            column=column,
        )
    values = selected.to_numpy(dtype=object, na_value=None)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind in ("string", "empty"):
        return values
    if pd.isna(values).any():
        raise InvalidInput(
            f"id column {column!r} of input {input_name!r} has missing values; every row needs an id",
            input=input_name,
            column=column,
        )
    raise InvalidInput(
        f"id column {column!r} of input {input_name!r} holds {kind} values, not text: {_TEXT_HINT}",
        input=input_name,
        column=column,
    )


def _arrow_ids(table: pa.Table, column: str, input_name: str) -> np.ndarray:
    if column not in table.column_names:
        raise _missing_column(table.column_names, column, input_name)
    if table.column_names.count(column) > 1:
        raise InvalidInput(
            f"input {input_name!r} has more than one column named {column!r}",
            input=input_name,
            column=column,
        )
    col = table.column(column)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            or pa.types.is_string_view(col.type)):
        raise InvalidInput(
            f"id column {column!r} of input {input_name!r} has type {col.type}, not text: {_TEXT_HINT}",
            input=input_name,
            column=column,
        )
    if col.null_count:
        raise InvalidInput(
            f"id column {column!r} of input {input_name!r} has missing values; every row needs an id",
            input=input_name,
            column=column,
        )
    return np.asarray(col.to_pylist(), dtype=object)


def check_duplicates(ids: IdColumn, policy: DuplicatePolicy, column: str) -> None:
    """Refuse duplicated ids when the policy is ``"error"``."""
    if policy == "error" and ids.duplicate_rows:
        raise InvalidInput(
            f"id column {column!r} has {ids.duplicate_rows} rows whose id appears on an "
            "earlier row; deduplicate the data, or set duplicate_ids to 'first' (keep the "
            "first row of each id) or 'all' (keep every row)",
            column=column,
        )


def rows_for(ids: IdColumn, selected: np.ndarray, policy: DuplicatePolicy) -> np.ndarray:
    """Row positions for the selected unique ids, in the order of ``selected``.

    ``"error"``/``"first"``: one row per id, its first occurrence.
    ``"all"``: every row of each id, ids in the order of ``selected`` and
    rows of one id in input order.
    """
    selected = np.asarray(selected, dtype=np.int64)
    if policy == "all":
        rank = np.full(len(ids.unique), -1, dtype=np.int64)
        rank[selected] = np.arange(len(selected))
        row_rank = rank[ids.codes]
        rows = np.flatnonzero(row_rank >= 0)
        return rows[np.argsort(row_rank[rows], kind="stable")]
    # np.unique documents return_index as the first occurrence of each value.
    _, first_row = np.unique(ids.codes, return_index=True)
    return first_row[selected]


def take_rows(table: Any, rows: np.ndarray) -> Any:
    """The given rows of a DataFrame (fresh 0..n-1 index) or pyarrow Table."""
    if isinstance(table, pa.Table):
        return table.take(pa.array(rows, type=pa.int64()))
    return table.iloc[rows].reset_index(drop=True)
