"""The one exception this package raises for problems a user can fix, and its codes."""

from __future__ import annotations

# code -> what it means (for the lead's error pages / docs). The words of each message
# are in messages.py; where the problem is found only its parameters are gathered
# (always the line and/or column).
ERROR_CODES: dict[str, str] = {
    "empty_file": "the file has no content (0 bytes, or only blank space / a byte order mark)",
    "not_csv": "the file is an Excel workbook or another binary format, not CSV text",
    "unknown_encoding": "the encoding the user named is not a known text encoding",
    "encoding_not_detected": "the bytes are neither UTF-8 nor GBK/GB18030: the user must choose the encoding",
    "bad_encoding": "a line holds bytes that are not valid in the chosen or detected encoding",
    "bad_delimiter": "the delimiter the user named is not a single usable character",
    "nul_byte": "a line holds a NUL (zero) character",
    "no_rows": "the header is there but no data rows follow",
    "empty_column_name": "a header cell is empty",
    "duplicate_column_name": "two header cells have the same name",
    "ragged_row": "a row has more or fewer values than the header has columns",
    "unbalanced_quote": "a quoted value is opened and never closed",
    "bad_quote": "characters follow the closing quote of a quoted value",
    "value_too_long": "one value is longer than the per-value limit",
    "too_many_rows": "the file has more data rows than allowed",
    "empty_id": "a row has an empty id",
    "not_a_number": "a column set to numeric holds a value that is not a number",
    "unknown_column": "the schema names a column the file does not have",
    "column_role_conflict": "the schema gives one column two roles",
    "bad_column_type": "the schema gives a feature a type other than numeric/categorical",
    "no_columns": "the schema selects no column at all",
    "not_a_dataset": "a Parquet file given to apply_schema was not written by ingest_csv",
    "export_encoding": "a value cannot be written in the encoding chosen for export",
    "version_columns": "a new version's columns differ from the previous version's",
}


class CsvError(Exception):
    """A problem with the user's file or schema, explained in plain language.

    ``code`` is one of ``ERROR_CODES``; ``params`` are what its message says (line,
    column, counts, delimiter, encoding...: plain JSON values, so they can be stored
    and the message worded again later in the reader's language, see messages.py);
    ``message`` is that message in English; ``line`` is the 1-based physical line of
    the file as a text editor shows it; ``column`` is the column name as written in
    the header.
    """

    def __init__(self, code: str, params: dict | None = None, *, line: int | None = None, column: str | None = None):
        assert code in ERROR_CODES, code
        from .messages import english  # messages.py imports this module

        self.code = code
        self.params = dict(params or {})
        self.message = english(code, self.params)
        super().__init__(self.message)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CsvError({self.code!r}, {self.params!r}, line={self.line!r}, column={self.column!r})"

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "params": self.params,
            "line": self.line,
            "column": self.column,
        }


def kept(text: str, limit: int) -> str:
    """Enough of a user's value to show it later exactly as ``show_value(text, limit)``
    does now (the cut and its "…"), without storing a value that may be huge."""
    return text[: limit + 1]


def show_value(value: str, limit: int = 40) -> str:
    """A cell value as it may appear inside a message: quoted, control characters
    escaped, cut to ``limit`` characters."""
    out = []
    for ch in value[:limit]:
        if ch == " " or (ch.isprintable() and ch != "\\"):
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    text = "".join(out)
    if len(value) > limit:
        text += "…"
    return f"“{text}”"


def show_name(name: str) -> str:
    return show_value(name, 60)
