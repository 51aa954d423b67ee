"""Reading columns of an input table into arrays, with the errors of :mod:`engine.errors`.

Shared by the table readers of :mod:`engine.ml.preprocessing`, :mod:`engine.ml.tree`
and :mod:`engine.ml.logistic`, so that a missing column, a text column or a
one-class label is refused the same way whichever component reads the table.

*Missing* here means ``None``, ``NaN`` or blank text: exports often hold ``""``
for a gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.errors import InvalidInput, MissingColumn, NotNumeric, SingleClass

__all__ = [
    "ID_COLUMN_HINT",
    "is_missing",
    "label_vector",
    "numeric_column",
    "numeric_values",
    "require_columns",
    "require_probabilities",
]

ID_COLUMN_HINT = "set id_column to the column that holds the ids"
ENCODE_FIRST = (
    "it holds text that is not a number; one-hot encode categorical columns first "
    "(the preprocessing component, passed as the 'transform' input)"
)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, input: str = "data", hint: str = "") -> None:
    """Raise :class:`MissingColumn` for the first of ``columns`` that ``frame`` lacks."""
    for column in columns:
        if column not in frame.columns:
            raise MissingColumn(column, input=input, hint=hint)


def is_missing(values: pd.Series) -> np.ndarray:
    """Missing as this module means it: None, NaN, or blank text."""
    missing = values.isna().to_numpy(dtype=bool)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string")
        blank = text.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        missing = missing | blank
    return missing


def numeric_values(values: pd.Series) -> np.ndarray:
    """float64 values; missing (and, for text, unparseable) entries become NaN."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype):
        return pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    text = values.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def numeric_column(frame: pd.DataFrame, column: str, *, input: str = "data") -> np.ndarray:
    """One column as float64, NaN where missing; refuses text that is not a number, and infinity."""
    series = frame[column]
    values = numeric_values(series)
    unparsed = np.isnan(values) & ~series.isna().to_numpy(dtype=bool)
    if unparsed.any():
        blank = series.astype("string").str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        if (unparsed & ~blank).any():
            raise NotNumeric(column, input=input, hint=ENCODE_FIRST)
    if np.isinf(values).any():
        raise NotNumeric(column, "finite numbers", input=input, hint="it holds infinite values")
    return values


def require_probabilities(values: np.ndarray, column: str, *, input: str = "data", hint: str = "") -> None:
    """Raise :class:`InvalidInput` unless every value of ``column`` lies in [0, 1]."""
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        message = f"column {column!r} of input {input!r} holds values outside [0, 1]"
        raise InvalidInput(f"{message}: {hint}" if hint else message, input=input, column=column)


def label_vector(frame: pd.DataFrame, column: str, *, input: str = "data",
                 allow_single_class: bool = False) -> np.ndarray:
    """The 0/1 label column as int64; refuses missing or other values and (unless allowed) a single class.

    An empty column counts as a single class: there is nothing to learn from it.
    """
    require_columns(frame, [column], input=input)
    series = frame[column]
    # True/False held as Python objects (a table built by hand) are labels 1/0 as well.
    if series.dtype == object and series.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        series = series.astype(bool)
    values = numeric_values(series)
    if np.isnan(values).any() or not np.isin(values, (0.0, 1.0)).all():
        raise NotNumeric(column, "0/1 labels", input=input, hint="it has other values or missing labels")
    y = values.astype(np.int64)
    if not allow_single_class and (y.size == 0 or y.min() == y.max()):
        raise SingleClass(column, input=input)
    return y
