"""CSV export of a Parquet file, safe to open in Excel/WPS (no formula injection).

Rule (OWASP "CSV injection"): a **text** cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is written with a leading single quote ``'``, so
spreadsheet programs show it as text instead of running it as a formula. Header
cells are text and follow the same rule.

Numbers are not text: columns with a numeric Parquet type are written as numbers
(shortest round-trip form, e.g. ``-1.5``, ``1e+20``; missing → empty) and are never
prefixed — a number cannot carry a formula. The same holds for string columns the
caller lists in ``numeric_columns`` (e.g. the numeric features when exporting the
text Parquet, which keeps every value as written): there a cell that is a plain
number (``-1.5``, ``+3``, ``-1e-5``, same rule as the schema's numbers) or a missing
marker (``-``, ``NA`` …) is written unchanged, and any other cell is treated as text.

Writing is streamed batch by batch with pyarrow's C++ CSV writer (quotes every
text cell, never a number); ``iter_csv_bytes`` yields bytes chunks for a Django
``StreamingHttpResponse``.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import CsvError
from .parse import LINE_COLUMN_KEY
from .values import NUMBER_PATTERN, missing_mask, null_where

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"


def neutralise(text: str) -> str:
    """One text cell made safe: ``'`` prepended when it starts like a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _neutralise_array(arr: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(arr, pattern=r"^([=+\-@\t\r])", replacement="'\\1", max_replacements=1)


def _cells(arr: pa.Array, numeric_text: bool) -> pa.Array:
    """One column made ready for the CSV writer: numbers stay numbers, text is neutralised."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return arr
    if pa.types.is_floating(t):
        return null_where(arr, pc.is_nan(arr))  # NaN → empty cell
    if pa.types.is_boolean(t):
        return arr
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = pc.cast(arr, pa.string())  # dates, timestamps, binary…: text
    safe = _neutralise_array(arr)
    if numeric_text:
        keep = pc.or_(pc.match_substring_regex(arr, NUMBER_PATTERN), missing_mask(arr))
        safe = pc.if_else(pc.fill_null(keep, False), arr, safe)
    return safe


def iter_csv_bytes(
    parquet_path: str | Path,
    *,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    numeric_columns: Iterable[str] = (),
    columns: list[str] | None = None,
    batch_rows: int = 50_000,
) -> Iterator[bytes]:
    """Yield the CSV as bytes chunks (header first, then one chunk per batch).

    ``encoding`` defaults to UTF-8 with a BOM, which Excel needs to show Chinese text
    correctly; "gb18030" suits old Excel/WPS set-ups. Text cells are always quoted,
    numbers never; missing values are empty cells; lines end with LF.
    The internal line-number column of a text Parquet is never exported.
    """
    pf = pq.ParquetFile(parquet_path)
    schema = pf.schema_arrow
    hidden = (schema.metadata or {}).get(LINE_COLUMN_KEY, b"").decode() or None
    names = [n for n in (columns or schema.names) if n != hidden]
    numeric_text = set(numeric_columns)
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError("delimiter must be one character other than a quote or a line break")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise CsvError("export_encoding", {"encoding": encoding}) from None
    # pyarrow writes UTF-8; other encodings are transcoded (incrementally, so a
    # UTF-16 BOM is written once).
    encoder = None if codec in ("utf-8", "utf-8-sig") else codecs.getincrementalencoder(codec)("strict")

    def encode(utf8: bytes) -> bytes:
        if encoder is None:
            return utf8
        try:
            return encoder.encode(utf8.decode("utf-8"))
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise CsvError("export_encoding", {"character": bad, "encoding": encoding}) from None

    head = io.StringIO()
    csv.writer(head, delimiter=delimiter, quotechar='"', lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(
        [neutralise(n) for n in names]
    )
    yield (codecs.BOM_UTF8 if codec == "utf-8-sig" else b"") + encode(head.getvalue().encode("utf-8"))
    if pf.metadata.num_rows == 0 or not names:
        return
    options = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed")
    for batch in pf.iter_batches(batch_size=batch_rows, columns=names):
        cells = [_cells(batch.column(i), names[i] in numeric_text) for i in range(batch.num_columns)]
        out = io.BytesIO()
        pacsv.write_csv(pa.Table.from_arrays(cells, names=[f"c{i}" for i in range(len(cells))]), out, options)
        yield encode(out.getvalue())


def export_csv(
    parquet_path: str | Path,
    out: str | os.PathLike | BinaryIO,
    *,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    numeric_columns: Iterable[str] = (),
    columns: list[str] | None = None,
    batch_rows: int = 50_000,
) -> int:
    """Write the CSV to a path or a binary file object; returns the bytes written."""
    chunks = iter_csv_bytes(
        parquet_path,
        encoding=encoding,
        delimiter=delimiter,
        numeric_columns=numeric_columns,
        columns=columns,
        batch_rows=batch_rows,
    )
    written = 0
    if isinstance(out, (str, os.PathLike)):
        with open(out, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
    else:
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
    return written
