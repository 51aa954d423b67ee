"""The two entry points the upload task calls: ``inspect_csv`` and ``ingest_csv``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from .decode import LineReader, check_magic, detect_encoding, resolve_encoding
from .errors import CsvError
from .parse import (
    DEFAULT_BATCH_ROWS,
    csv_to_text_parquet,
    parse_csv,
    resolve_delimiter,
    sniff_delimiter,
)
from .schema import (
    Schema,
    SchemaReport,
    apply_schema,
    guess_schema,
    parquet_is_unique,
    profile_table,
)
from .stats import column_stats

SNIFF_ROWS = 1_000  # data rows read by inspect_csv for its guesses
SAMPLE_ROWS = 10  # rows returned to show the user
_SNIFF_LINES = 200
_SNIFF_CHARS = 256 * 1024


@dataclass
class CsvSniff:
    """What ``inspect_csv`` found, to show the user before (or while) importing."""

    encoding: str  # Python codec name, e.g. "utf-8", "gb18030", "utf-16", "iso8859-1"
    bom: bool  # the file starts with a byte order mark (stripped, never part of a name)
    encoding_detected: bool  # False if the caller named the encoding
    delimiter: str
    delimiter_detected: bool
    header: list[str]
    sample_rows: list[list[str]]  # the first rows, values exactly as written
    schema: Schema  # guessed from the first SNIFF_ROWS rows
    columns: list[dict]  # schema.columns(header): [{"name", "role", "type"}]
    rows_sampled: int
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    """A successful import. ``report`` and ``stats`` are JSON-ready dicts."""

    encoding: str
    bom: bool
    delimiter: str
    header: list[str]
    row_count: int
    text_parquet: str  # every column as text exactly as written (+ line numbers)
    typed_parquet: str  # id/label/features typed by ``schema``
    schema: Schema
    columns: list[dict]  # schema.columns(header)
    report: dict  # SchemaReport.as_dict() + blank lines + notes
    stats: dict  # column_stats(typed_parquet, schema)
    blank_lines: int = 0
    blank_line_numbers: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _encoding(path, encoding: str | None) -> tuple[str, bool, bool]:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        if os.path.exists(path):
            raise CsvError("empty_file")
        raise FileNotFoundError(path)
    if encoding:
        resolved = resolve_encoding(encoding)
        check_magic(path)
        with open(path, "rb") as fh:
            head = fh.read(4)
        bom = head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))
        return resolved, bom, False
    name, bom = detect_encoding(path)
    return name, bom, True


def _delimiter(path, encoding: str, delimiter: str | None) -> tuple[str, bool]:
    if delimiter:
        return resolve_delimiter(delimiter), False
    lines: list[str] = []
    chars = 0
    complete = True
    reader = iter(LineReader(path, encoding))
    for line in reader:
        lines.append(line)
        chars += len(line)
        if len(lines) >= _SNIFF_LINES or chars >= _SNIFF_CHARS:
            complete = next(reader, None) is None
            break
    return sniff_delimiter(lines, complete), True


def inspect_csv(path: str | Path, encoding: str | None = None, delimiter: str | None = None) -> CsvSniff:
    """Detect encoding and delimiter, read the header and the first rows, guess roles.

    Reads the first ``SNIFF_ROWS`` data rows strictly, so problems there raise the
    same CsvError as ``ingest_csv`` would; problems further down are only found by
    ``ingest_csv``. (Encoding detection does scan the whole file.)
    """
    enc, bom, enc_detected = _encoding(path, encoding)
    delim, delim_detected = _delimiter(path, enc, delimiter)
    got: list[str] = []

    def on_batch(cells, lines):
        got.extend(cells)

    summary = parse_csv(path, enc, delim, on_batch, batch_rows=SNIFF_ROWS, stop_after=SNIFF_ROWS)
    header = summary.header
    width = len(header)
    rows = [got[i : i + width] for i in range(0, len(got), width)]
    table = pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(header)})
    profiles = profile_table(table, header)

    def is_unique(name):
        column = table.column(name)
        return len(set(column.to_pylist())) == len(column)

    schema, notes = guess_schema(header, profiles, is_unique)
    return CsvSniff(
        encoding=enc,
        bom=bom,
        encoding_detected=enc_detected,
        delimiter=delim,
        delimiter_detected=delim_detected,
        header=header,
        sample_rows=rows[:SAMPLE_ROWS],
        schema=schema,
        columns=schema.columns(header),
        rows_sampled=len(rows),
        notes=notes,
    )


def ingest_csv(
    path: str | Path,
    parquet_path: str | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    max_rows: int | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    features: dict[str, str] | None = None,
    typed_parquet_path: str | Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    check_header: Callable[[list[str]], None] | None = None,
) -> IngestResult:
    """Parse the whole CSV strictly into ``parquet_path`` (text) and type it into
    ``typed_parquet_path`` (default: ``<parquet_path stem>.typed.parquet`` beside it).

    ``encoding``/``delimiter`` None → detected. ``id_column``/``label_column`` None →
    guessed from the whole file (among columns not given another role); ``features``
    None → every other column, typed by guess. With all three given, ``label_column``
    "" means no label. ``check_header`` may refuse the header (e.g. a new version whose
    columns differ from the previous one's, see ``same_columns``) before any row is read.
    Raises CsvError; when it does, neither Parquet file exists afterwards.
    """
    parquet_path = Path(parquet_path)
    typed = (
        Path(typed_parquet_path) if typed_parquet_path else parquet_path.with_name(parquet_path.stem + ".typed.parquet")
    )
    enc, bom, _ = _encoding(path, encoding)
    delim, _ = _delimiter(path, enc, delimiter)
    summary = csv_to_text_parquet(path, parquet_path, enc, delim, max_rows=max_rows, batch_rows=batch_rows,
                                  check_header=check_header)
    header = summary.header
    try:
        notes: list[str] = []
        if id_column is None or label_column is None or features is None:
            Schema(id_column, label_column, dict(features or {})).validate(header)
            profiles = summary.profiles
            schema, notes = guess_schema(
                header,
                profiles,
                parquet_is_unique(parquet_path),
                id_column=id_column,
                label_column=label_column,
                features=features,
            )
        else:
            schema = Schema(id_column, label_column or None, dict(features))
        report: SchemaReport = apply_schema(parquet_path, typed, schema)
        stats = column_stats(typed, schema)
    except BaseException:
        for p in (parquet_path, typed):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        raise
    warnings = list(notes) + list(report.warnings)
    if summary.blank_lines:
        shown = ", ".join(str(n) for n in summary.blank_line_numbers[:10])
        more = "…" if summary.blank_lines > 10 else ""
        warnings.append(
            f"{summary.blank_lines:,} blank line{'s were' if summary.blank_lines != 1 else ' was'} skipped "
            f"(line{'s' if summary.blank_lines != 1 else ''} {shown}{more})."
        )
    report_dict = report.as_dict()
    report_dict.update(
        {
            "blank_lines": summary.blank_lines,
            "blank_line_numbers": summary.blank_line_numbers,
            "warnings": warnings,
        }
    )
    return IngestResult(
        encoding=enc,
        bom=bom,
        delimiter=delim,
        header=header,
        row_count=summary.row_count,
        text_parquet=str(parquet_path),
        typed_parquet=str(typed),
        schema=schema,
        columns=schema.columns(header),
        report=report_dict,
        stats=stats,
        blank_lines=summary.blank_lines,
        blank_line_numbers=summary.blank_line_numbers,
        warnings=warnings,
    )
