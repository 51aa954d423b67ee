"""Reading and writing local tables and outputs for the runner.

The one rule that matters: **id columns are read as text, verbatim**. pandas
by default would turn ``"0012345"`` into the integer 12345 and ``"NA"``,
``"null"`` or an empty field into NaN, silently changing which ids match.
So the columns named in ``text_columns`` are read with ``dtype=str`` and no
missing-value detection, while every other column keeps pandas' usual
parsing (numbers become numbers, empty cells become NaN) for the modelling
components downstream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import EngineError, InvalidInput

__all__ = ["read_table", "write_table", "write_outputs", "TABLE_FORMATS"]

TABLE_FORMATS = ("csv", "parquet")

# pandas' default missing-value markers, applied to non-id columns only.
_DEFAULT_NA = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InvalidInput(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet")


def read_table(path: str | Path, *, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV (UTF-8, header row) or Parquet file into a DataFrame.

    ``text_columns`` (e.g. the id column) must exist and are kept exactly as
    written in the file. Raises :class:`InvalidInput` for a missing or
    unreadable file, an unsupported extension or a missing text column.
    """
    path = Path(path)
    text_columns = list(dict.fromkeys(text_columns))
    fmt = _format_of(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        if fmt == "csv":
            table = _read_csv(path, text_columns)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path).to_pandas()
    except InvalidInput:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        # One line: the first line of the parser's complaint is the useful part.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{path}: cannot read {fmt}: {detail}") from None
    for column in text_columns:
        if column not in table.columns:
            raise _missing(path, column, [str(c) for c in table.columns])
    return table


def _missing(path: Path, column: str, columns: list[str]) -> InvalidInput:
    shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
    return InvalidInput(f"{path}: no column {column!r} (columns: {shown})", column=column)


def _read_csv(path: Path, text_columns: list[str]) -> pd.DataFrame:
    # utf-8-sig drops the byte-order mark Excel writes, which would otherwise
    # become part of the first column's name.
    header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    columns = [str(c) for c in header.columns]
    for column in text_columns:
        if column not in columns:
            raise _missing(path, column, columns)
    return pd.read_csv(
        path,
        encoding="utf-8-sig",
        dtype={c: str for c in text_columns},
        keep_default_na=False,
        na_values={c: _DEFAULT_NA for c in columns if c not in text_columns},
    )


def write_table(table: Any, path: str | Path) -> Path:
    """Write a DataFrame or pyarrow Table as CSV or Parquet (by extension)."""
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
        pq.write_table(arrow, path)
    else:
        frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()
        frame.to_csv(path, index=False)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_outputs(outputs: Mapping[str, Any], directory: str | Path, *, fmt: str = "csv") -> dict[str, str]:
    """Write one role's outputs into ``directory``: tables as ``<name>.<fmt>``,
    everything else (metrics, models) as ``<name>.json``. Returns ``{name: path}``.
    """
    if fmt not in TABLE_FORMATS:
        raise EngineError(f"unknown output format {fmt!r} (formats: {', '.join(TABLE_FORMATS)})")
    import pyarrow as pa

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, value in outputs.items():
        if isinstance(value, (pd.DataFrame, pa.Table)):
            path = write_table(value, directory / f"{name}.{fmt}")
        else:
            path = directory / f"{name}.json"
            text = json.dumps(_json_safe(value), indent=2, default=_json_default, allow_nan=False)
            path.write_text(text + "\n", encoding="utf-8")
        written[name] = str(path)
    return written
