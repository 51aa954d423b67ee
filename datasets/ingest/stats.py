"""Column statistics and a preview of a typed Parquet file, as plain JSON-ready data.

NaN and infinity are never emitted (``None`` instead), so the result can go through
``json.dumps(..., allow_nan=False)`` and into a JSONField.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .parse import LINE_COLUMN_KEY
from .schema import Schema
from .values import null_where

QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
MAX_BINS = 20
TOP_VALUES = 10
MAX_VALUE_CHARS = 200  # long text values are cut in top-value lists


def column_stats(typed_parquet: str | Path, schema: Schema) -> dict:
    """Statistics per column of a typed Parquet file written by ``apply_schema``.

    ``{"row_count": n, "columns": [{"name", "role", "type", "count", "missing",
    "missing_rate", "distinct", ...}]}`` in file order, where ``count`` is the number
    of non-missing values. Numeric columns (features and the label) add ``mean``,
    ``std`` (sample, ddof=1, like pandas), ``min``, ``max``, ``quantiles`` (p1 … p99,
    linear interpolation like numpy/pandas) and ``histogram`` (``edges``: bins+1
    floats, ``counts``: ≤ 20 bins, equal width between min and max); the label adds
    ``classes`` when it has ≤ 20 values. Categorical and id columns add
    ``top_values``: ``[{"value", "count"}]``, the 10 most frequent (ties by value).
    ``distinct`` is exact. Columns are read one at a time.
    """
    pf = pq.ParquetFile(typed_parquet)
    names = _visible_names(pf.schema_arrow)
    out: dict[str, Any] = {"row_count": pf.metadata.num_rows, "columns": []}
    for name in names:
        column = pq.read_table(typed_parquet, columns=[name]).column(0)
        out["columns"].append(_one_column(name, column, schema))
    return _clean(out)


def _visible_names(schema: pa.Schema) -> list[str]:
    """Column names without the line-number column of a text Parquet."""
    hidden = (schema.metadata or {}).get(LINE_COLUMN_KEY, b"").decode() or None
    return [name for name in schema.names if name != hidden]


def _one_column(name: str, column: pa.ChunkedArray, schema: Schema) -> dict:
    role = schema.role_of(name)
    rows = len(column)
    missing = column.null_count
    if pa.types.is_floating(column.type):
        # NaN (only possible in files not written by apply_schema) counts as missing.
        nan = pc.sum(pc.is_nan(column)).as_py() or 0
        missing += nan
    kind = "text" if role == "id" else ("numeric" if _is_numeric(column.type) else "categorical")
    info: dict[str, Any] = {
        "name": name,
        "role": role,
        "type": kind,
        "count": rows - missing,
        "missing": missing,
        "missing_rate": (missing / rows) if rows else 0.0,
    }
    if kind == "numeric":
        info.update(numeric_summary(column))
        if role == "label":
            info["classes"] = _classes(column)
    else:
        counts = pc.value_counts(pc.drop_null(column))
        info["distinct"] = len(counts)
        info["top_values"] = _top_values(counts)
    return info


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def numeric_summary(column: pa.ChunkedArray | pa.Array) -> dict:
    values = pc.drop_null(pc.cast(column, pa.float64())).to_numpy(zero_copy_only=False)
    values = values[np.isfinite(values)]
    n = values.size
    empty = {
        "distinct": 0,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "quantiles": {k: None for k in QUANTILES},
        "histogram": {"edges": [], "counts": []},
    }
    if n == 0:
        return empty
    qs = np.quantile(values, list(QUANTILES.values()))
    distinct = int(np.unique(values).size)
    counts, edges = np.histogram(values, bins=min(MAX_BINS, distinct))
    return {
        "distinct": distinct,
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if n > 1 else None,
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": {k: float(q) for k, q in zip(QUANTILES, qs)},
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _classes(column) -> list[dict] | None:
    counts = pc.value_counts(pc.drop_null(column))
    if len(counts) > 20:
        return None
    items = [
        {"value": _plain(v), "count": int(c)}
        for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
        if v is not None and math.isfinite(v)
    ]
    return sorted(items, key=lambda item: item["value"])


def _top_values(counts: pa.StructArray) -> list[dict]:
    if len(counts) == 0:
        return []
    table = pa.table({"v": counts.field("values"), "c": counts.field("counts")})
    order = pc.sort_indices(table, sort_keys=[("c", "descending"), ("v", "ascending")])
    top = table.take(order[:TOP_VALUES])
    out = []
    for v, c in zip(top.column("v").to_pylist(), top.column("c").to_pylist()):
        text = v if isinstance(v, str) else str(v)
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS] + "…"
        out.append({"value": text, "count": int(c)})
    return out


def _plain(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _clean(obj):
    """Plain Python only; NaN/inf → None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def format_column(arr: pa.Array) -> list[str]:
    """Values as display strings: numbers in shortest round-trip form, null → ""."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_floating(arr.type):
        arr = null_where(arr, pc.is_nan(arr))
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.fill_null(arr, "").to_pylist()


def preview(typed_parquet: str | Path, n: int = 20) -> dict:
    """The first ``n`` rows: ``{"columns": [names], "rows": [[str, ...], ...]}``.

    Every value is a string (missing → ""); HTML escaping is the template's job.
    """
    pf = pq.ParquetFile(typed_parquet)
    names = _visible_names(pf.schema_arrow)
    if n <= 0 or pf.metadata.num_rows == 0:
        return {"columns": names, "rows": []}
    batch = next(pf.iter_batches(batch_size=n, columns=names))
    columns = [format_column(batch.column(i)) for i in range(batch.num_columns)]
    return {"columns": names, "rows": [list(row) for row in zip(*columns)]}
