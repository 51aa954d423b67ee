"""CSV import for FedWeb datasets: strict parsing, text + typed Parquet, statistics,
safe export. Plain Python + pyarrow + numpy; never imports Django (only
``messages.describe`` does, when it is called, to word a problem in the active language).

Flow: ``inspect_csv`` (encoding, delimiter, header, sample, guessed schema) →
``ingest_csv`` (whole file → text Parquet → typed Parquet + report + stats) →
later ``apply_schema`` again when the user changes the schema, then ``column_stats``.
Every problem a user can fix is a ``CsvError(code, params, line, column)``; messages.py
words it (in English for ``CsvError.message``, in the reader's language for pages).
"""

from .errors import ERROR_CODES, CsvError
from .export import FORMULA_START, export_csv, iter_csv_bytes, neutralise
from .paths import safe_label, storage_name
from .pipeline import CsvSniff, IngestResult, ingest_csv, inspect_csv
from .schema import CATEGORICAL, NUMERIC, Schema, SchemaReport, apply_schema, read_text_layout, same_columns
from .stats import column_stats, preview
from .values import MISSING_VALUES, NUMBER_PATTERN

__all__ = [
    "CATEGORICAL",
    "ERROR_CODES",
    "FORMULA_START",
    "MISSING_VALUES",
    "NUMBER_PATTERN",
    "NUMERIC",
    "CsvError",
    "CsvSniff",
    "IngestResult",
    "Schema",
    "SchemaReport",
    "apply_schema",
    "column_stats",
    "export_csv",
    "ingest_csv",
    "inspect_csv",
    "iter_csv_bytes",
    "neutralise",
    "preview",
    "read_text_layout",
    "safe_label",
    "same_columns",
    "storage_name",
]
