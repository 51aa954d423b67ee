"""Local preprocessing of one party's table: fit on training rows, apply unchanged later.

Pure functions (no federation): the ``preprocess`` component calls them, and every
model that scores new rows calls :func:`apply_model` with the fitted document so that
scoring sees exactly the transformation training saw.

Steps, in this order, per column:

1. **Type.** A column is *numeric* when its dtype is numeric or boolean, or when it is
   text whose every non-empty value parses as a number (exports often hold ``""`` for a
   gap); otherwise it is *categorical*. Parameters can force either. At apply time the
   fitted type is used: a numeric column's text that does not parse counts as missing.
2. **Missing values.** ``None``, ``NaN`` and empty/blank text are missing. Numeric: fill
   with the training ``mean``/``median``/``most_frequent`` value or a ``constant``, or
   ``none`` (leave NaN: binning gives missing values their own bin). Categorical:
   ``most_frequent``, ``constant`` (a category of its own), or ``none`` (all one-hot
   columns 0 for that row).
3. **Clipping** (numeric, optional): to the training ``[q_low, q_high]`` quantiles of the
   observed values.
4. **Scaling** (numeric, optional): ``standard`` ``(x - mean) / std`` (population std) or
   ``minmax`` ``(x - min) / (max - min)``, statistics of the filled, clipped training
   values. A constant column has no spread: see *degenerate columns*.
5. **One-hot encoding** (categorical): one column ``<name>=<category>`` per training
   category, most frequent first (ties by name), at most ``max_categories`` of them; the
   rarer training categories and every category first seen at apply time go to
   ``<name>=__other__`` when ``other_bucket`` is on, else the row's one-hot columns are
   all 0. Values are compared as text.

The id column and the passthrough columns (typically the label) are copied unchanged,
first, in their input order. The output always has exactly the columns recorded at fit
time (``output_columns``), in that order, features as float64.

Degenerate columns (``degenerate_columns``): an *all-missing* column cannot be fitted
(no mean, no category); a *constant* column cannot be scaled (a constant column is
fine when not scaling). ``"error"`` (default) raises :class:`~engine.errors.AllMissingColumn`
/ :class:`~engine.errors.ConstantColumn` naming the column, ``"drop"`` leaves the column out
of the output (listed in ``dropped``), ``"keep"`` keeps it: a constant column is shifted by
its value and divided by 1 (training rows -> 0); an all-missing numeric column gets the
``constant`` fill value or stays missing; an all-missing categorical column keeps only
its ``__other__`` column (all zeros in training).

The document is an :mod:`engine.ml.model_io` model (component ``"preprocess"``); its
``body``::

    {"id_column": "id", "passthrough": ["y"],
     "columns": [{"name": "age", "type": "numeric", "fill": 41.5, "clip": [18.0, 75.0],
                  "scale": {"method": "standard", "offset": 41.5, "divisor": 16.7}},
                 {"name": "region", "type": "categorical", "fill": "north",
                  "categories": ["north", "south"], "other": true,
                  "outputs": ["region=north", "region=south", "region=__other__"]}],
     "dropped": [{"name": "c", "reason": "constant"}],
     "output_columns": ["id", "y", "age", "region=north", "region=south", "region=__other__"]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import AllMissingColumn, ConstantColumn, InvalidInput, NotNumeric
from engine.ml import model_io
from engine.ml.columns import is_missing, numeric_values, require_columns

__all__ = [
    "COMPONENT",
    "OTHER",
    "apply_model",
    "fit",
    "infer_numeric",
    "transform",
]

COMPONENT = "preprocess"
OTHER = "__other__"


# ----------------------------------------------------------- column helpers


def infer_numeric(values: pd.Series) -> bool:
    """True when every non-missing value is a number (or the column is numeric/bool)."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return True
    present = ~is_missing(values)
    if not present.any():
        return True  # nothing says otherwise; an all-missing column is reported separately
    parsed = numeric_values(values[present])
    return bool(np.isfinite(parsed).all())


def _category_text(values: pd.Series) -> np.ndarray:
    """Object array of stripped text, None where missing (categories compare as text)."""
    missing = is_missing(values)
    if pd.api.types.is_float_dtype(values.dtype):
        # 1.0 and 1 are the same category: write integral floats without ".0".
        def as_text(v: float) -> str:
            return repr(int(v)) if float(v).is_integer() else repr(float(v))

        return np.array([None if m else as_text(v) for v, m in zip(values.to_numpy(), missing)], dtype=object)
    text = values.astype("string").str.strip().to_numpy(dtype=object, na_value=None)
    text[missing] = None
    return text


# ---------------------------------------------------------------------- fit


def _fill_value(observed: np.ndarray, strategy: str, constant: float | None) -> float | None:
    if strategy == "none":
        return None
    if strategy == "constant":
        return float(constant if constant is not None else 0.0)
    if observed.size == 0:
        return None
    if strategy == "mean":
        return float(np.mean(observed))
    if strategy == "median":
        return float(np.median(observed))
    if strategy == "most_frequent":
        values, counts = np.unique(observed, return_counts=True)
        return float(values[np.argmax(counts)])  # np.unique sorts: ties go to the smallest
    raise ValueError(f"unknown fill strategy {strategy!r}")


def fit_numeric(values: np.ndarray, *, fill: str = "mean", fill_value: float | None = None,
                clip: tuple[float, float] | None = None, scale: str = "none",
                keep_degenerate: bool = False) -> dict[str, Any]:
    """Fit one numeric column (float64 with NaN for missing).

    Degenerate columns raise ``ValueError("all_missing")`` (no observed value) or
    ``ValueError("constant")`` (scaling a column with no spread); the caller names the
    column. With ``keep_degenerate`` they are fitted anyway: an all-missing column is
    filled with the ``constant`` fill value (else left missing) and not scaled; a
    constant column is shifted by its value and divided by 1, so training rows map to 0.
    """
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        if not keep_degenerate:
            raise ValueError("all_missing")
        constant = float(fill_value if fill_value is not None else 0.0) if fill == "constant" else None
        return {"type": "numeric", "fill": constant, "clip": None, "scale": None}
    spec: dict[str, Any] = {"type": "numeric", "fill": _fill_value(observed, fill, fill_value), "clip": None,
                            "scale": None}
    if clip is not None:
        low, high = np.quantile(observed, [clip[0], clip[1]])
        spec["clip"] = [float(low), float(high)]
    if scale != "none":
        prepared = _fill_clip(values, spec)
        prepared = prepared[~np.isnan(prepared)]
        if scale == "standard":
            offset, divisor = float(np.mean(prepared)), float(np.std(prepared))
        elif scale == "minmax":
            offset, divisor = float(np.min(prepared)), float(np.max(prepared) - np.min(prepared))
        else:
            raise ValueError(f"unknown scaling {scale!r}")
        if not divisor > 0:
            if not keep_degenerate:
                raise ValueError("constant")
            offset, divisor = float(prepared[0]), 1.0
        spec["scale"] = {"method": scale, "offset": offset, "divisor": divisor}
    return spec


def fit_categorical(text: np.ndarray, *, fill: str = "most_frequent", fill_value: str | None = None,
                    max_categories: int | None = None, other_bucket: bool = True,
                    keep_degenerate: bool = False) -> dict[str, Any]:
    """Fit one categorical column (object array of text, None for missing); an all-missing
    column raises ``ValueError("all_missing")`` unless ``keep_degenerate``."""
    present = np.array([v is not None for v in text], dtype=bool)
    observed = text[present]
    if observed.size == 0:
        if not keep_degenerate:
            raise ValueError("all_missing")
        # Kept: no training category, only the __other__ column (if any) for values seen later.
        return {"type": "categorical", "fill": None, "categories": [], "other": bool(other_bucket), "rare": 0}
    counts = pd.Series(observed, dtype=object).value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    fill_text: str | None
    if fill == "most_frequent":
        fill_text = str(ranked[0][0])
    elif fill == "constant":
        fill_text = "missing" if fill_value is None else str(fill_value)
        if fill_text not in counts.index:
            n_missing = int((~present).sum())
            if n_missing:
                ranked = sorted([*ranked, (fill_text, n_missing)], key=lambda item: (-int(item[1]), str(item[0])))
    elif fill == "none":
        fill_text = None
    else:
        raise ValueError(f"unknown fill strategy {fill!r}")
    # (Rows filled with the most frequent category only strengthen its first rank.)
    categories = [str(c) for c, _ in ranked]
    rest = []
    if max_categories is not None and len(categories) > max_categories:
        categories, rest = categories[:max_categories], categories[max_categories:]
    other = bool(other_bucket)
    return {"type": "categorical", "fill": fill_text, "categories": categories, "other": other,
            "rare": len(rest)}


def fit(frame: pd.DataFrame, *, id_column: str = "id", passthrough: Sequence[str] = (),
        columns: Sequence[str] | None = None, exclude: Sequence[str] = (),
        categorical_columns: Sequence[str] = (), numeric_columns: Sequence[str] = (),
        numeric_fill: str = "mean", numeric_fill_value: float | None = None,
        categorical_fill: str = "most_frequent", categorical_fill_value: str | None = None,
        clip_quantiles: tuple[float, float] | None = None, scaling: str = "none",
        max_categories: int | None = 20, other_bucket: bool = True,
        degenerate_columns: str = "error") -> dict[str, Any]:
    """Fit the preprocessing of ``frame``; returns the model ``body`` (see module doc)."""
    require_columns(frame, [id_column])
    kept_through = [c for c in passthrough if c in frame.columns and c != id_column]
    skip = {id_column, *kept_through, *exclude}
    if columns is None:
        features = [c for c in frame.columns if c not in skip]
    else:
        require_columns(frame, columns)
        features = [c for c in columns if c not in skip]
    require_columns(frame, [*categorical_columns, *numeric_columns])
    both = set(categorical_columns) & set(numeric_columns)
    if both:
        name = min(both)
        raise InvalidInput(f"column {name!r} is listed as both numeric and categorical", input="data", column=name)
    for column in features:
        if not isinstance(column, str):
            raise InvalidInput(f"column names must be text, got {column!r}", input="data")

    specs, dropped = [], []
    keep = degenerate_columns == "keep"
    for column in features:
        series = frame[column]
        if column in categorical_columns:
            numeric = False
        elif column in numeric_columns:
            numeric = True
            if not infer_numeric(series):
                raise NotNumeric(column, hint="it is named in numeric_columns")
        else:
            numeric = infer_numeric(series)
        try:
            if numeric:
                values = numeric_values(series)
                spec = fit_numeric(values, fill=numeric_fill, fill_value=numeric_fill_value,
                                   clip=clip_quantiles, scale=scaling, keep_degenerate=keep)
            else:
                spec = fit_categorical(_category_text(series), fill=categorical_fill,
                                       fill_value=categorical_fill_value, max_categories=max_categories,
                                       other_bucket=other_bucket, keep_degenerate=keep)
        except ValueError as exc:
            reason = str(exc)
            if reason not in ("all_missing", "constant"):
                raise
            if degenerate_columns == "error":
                hint = "set degenerate_columns to 'drop' or 'keep', or leave the column out"
                if reason == "all_missing":
                    raise AllMissingColumn(column, hint=hint) from None
                raise ConstantColumn(column, hint="it cannot be scaled (" + hint + ")") from None
            dropped.append({"name": column, "reason": reason})
            continue
        spec["name"] = column
        if spec["type"] == "categorical":
            spec["outputs"] = [f"{column}={c}" for c in spec["categories"]] + (
                [f"{column}={OTHER}"] if spec["other"] else [])
        specs.append(spec)

    output_columns = [id_column, *kept_through]
    for spec in specs:
        output_columns.extend(spec["outputs"] if spec["type"] == "categorical" else [spec["name"]])
    if len(set(output_columns)) != len(output_columns):
        seen: set[str] = set()
        clash = next(c for c in output_columns if c in seen or seen.add(c))
        raise InvalidInput(f"output column {clash!r} would be produced twice (rename a column)", input="data",
                           column=clash)
    return {"id_column": id_column, "passthrough": kept_through, "columns": specs, "dropped": dropped,
            "output_columns": output_columns}


# ------------------------------------------------------------------ apply


def _fill_clip(values: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    out = values.astype(np.float64, copy=True)
    if spec.get("fill") is not None:
        out[np.isnan(out)] = spec["fill"]
    if spec.get("clip") is not None:
        low, high = spec["clip"]
        out = np.clip(out, low, high)  # NaN stays NaN
    return out


def apply_numeric(values: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    out = _fill_clip(values, spec)
    scale = spec.get("scale")
    if scale is not None:
        out = (out - scale["offset"]) / scale["divisor"]
    return out


def apply_categorical(text: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """(rows, len(outputs)) float64 one-hot block."""
    categories = spec["categories"]
    width = len(categories) + (1 if spec["other"] else 0)
    block = np.zeros((len(text), width), dtype=np.float64)
    if width == 0:
        return block
    filled = np.array([spec["fill"] if v is None else v for v in text], dtype=object)
    index = {c: i for i, c in enumerate(categories)}
    other = len(categories) if spec["other"] else -1
    codes = np.fromiter((-1 if v is None else index.get(v, other) for v in filled), dtype=np.int64,
                        count=len(filled))
    rows = np.nonzero(codes >= 0)[0]
    block[rows, codes[rows]] = 1.0
    return block


def transform(body: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Apply a fitted ``body`` to ``frame``: exactly ``body["output_columns"]`` out."""
    id_column = body["id_column"]
    require_columns(frame, [id_column])
    passthrough = [c for c in body["passthrough"] if c in frame.columns]
    require_columns(frame, [spec["name"] for spec in body["columns"]])
    parts: dict[str, Any] = {id_column: frame[id_column].astype(str).to_numpy(dtype=object)}
    for column in passthrough:
        parts[column] = frame[column].to_numpy()
    for spec in body["columns"]:
        series = frame[spec["name"]]
        if spec["type"] == "numeric":
            parts[spec["name"]] = apply_numeric(numeric_values(series), spec)
        else:
            block = apply_categorical(_category_text(series), spec)
            for j, name in enumerate(spec["outputs"]):
                parts[name] = block[:, j]
    out = pd.DataFrame(parts, index=range(len(frame)))
    out[id_column] = out[id_column].astype(object)
    # A passthrough column absent at scoring time (the label) is simply not output.
    columns = [c for c in body["output_columns"] if c in out.columns]
    return out[columns]


def apply_model(document: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply a fitted preprocessing model document (model_io format) to a table.

    Same feature columns out as at fit time, in the same order (the id column first,
    then passthrough columns present in ``frame``, then the features); unknown
    categories go to the ``__other__`` column (or all zeros without one). Raises
    :class:`~engine.ml.model_io.ModelFormatError` for a document that is not a
    preprocessing model and :class:`~engine.errors.MissingColumn` for a fitted column ``frame`` lacks.
    """
    if not isinstance(document, dict) or document.get("component") != COMPONENT:
        found = document.get("component") if isinstance(document, dict) else type(document).__name__
        raise model_io.ModelFormatError(f"this is a {found} model, not {COMPONENT}")
    body = document.get("body")
    if not isinstance(body, dict) or "columns" not in body or "output_columns" not in body:
        raise model_io.ModelFormatError("the preprocessing model has no columns")
    return transform(body, frame)
