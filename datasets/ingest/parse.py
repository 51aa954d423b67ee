"""Strict CSV parsing with exact line numbers, streamed to a text-only Parquet file.

Every value is stored exactly as written in the file (no trimming, no NA
conversion). The text Parquet also holds, per row, the physical line where the row
starts, so later steps (typing by the schema) can still name the line of a bad
value. Which column holds the line numbers is recorded in the file's metadata.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .decode import LineReader
from .errors import CsvError, kept
from .values import ColumnProfile

DEFAULT_BATCH_ROWS = 50_000
MAX_BATCH_CELLS = 2_000_000  # wide files get smaller batches so memory stays bounded
FIELD_LIMIT = csv.field_size_limit()  # 131,072 characters per value

LINE_COLUMN_KEY = b"fedweb.line_column"
KIND_KEY = b"fedweb.kind"

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_ALIASES = {"\\t": "\t", "tab": "\t", "TAB": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def resolve_delimiter(delimiter: str) -> str:
    d = _DELIMITER_ALIASES.get(delimiter, delimiter)
    if len(d) != 1 or d in '"\r\n\x00':
        raise CsvError("bad_delimiter")
    return d


@dataclass
class ParseSummary:
    header: list[str]
    header_line: int
    row_count: int
    blank_lines: int = 0
    blank_line_numbers: list[int] = field(default_factory=list)  # the first 20
    last_line: int = 0
    line_column: str = "__line__"
    profiles: dict[str, ColumnProfile] = field(default_factory=dict)  # filled by csv_to_text_parquet


def _reader(lines, delimiter: str):
    return csv.reader(
        lines,
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        escapechar=None,
        skipinitialspace=False,
        strict=True,
        quoting=csv.QUOTE_MINIMAL,
    )


def _check_header(header: list[str], line: int, delimiter: str) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name.strip():
            # The last name empty in a header of several: most likely a trailing delimiter.
            trailing = index == len(header) and len(header) > 1
            raise CsvError(
                "empty_column_name",
                {"index": index, "line": line, "trailing": trailing, "delimiter": delimiter},
                line=line,
                column=None,
            )
        if name in seen:
            raise CsvError(
                "duplicate_column_name",
                {"column": kept(name, 60), "line": line, "first": seen[name], "second": index},
                line=line,
                column=name,
            )
        seen[name] = index


def _line_column_name(header: list[str]) -> str:
    name = "__line__"
    taken = set(header)
    n = 0
    while name in taken:
        n += 1
        name = f"__line__{n}"
    return name


def _quote_problem(path, encoding: str, delimiter: str, start_line: int):
    """Rescan from a record's first line to locate a quoting problem.

    Returns ("unclosed", line_where_the_quote_opened, None),
    ("bad_quote", line, column_index_1_based) or (None, None, None).
    """
    reader = LineReader(path, encoding)
    in_quote = False
    quote_line = None
    field_start = True
    after_quote = False
    column = 1
    for number, line in enumerate(reader, start=1):
        if number < start_line:
            continue
        i, n = 0, len(line)
        while i < n:
            if in_quote:
                j = line.find('"', i)
                if j < 0:
                    i = n
                    break
                if j + 1 < n and line[j + 1] == '"':
                    i = j + 2
                    continue
                in_quote = False
                after_quote = True
                i = j + 1
                continue
            c = line[i]
            if after_quote:
                after_quote = False
                if c == delimiter:
                    field_start = True
                    column += 1
                    i += 1
                    continue
                if c in "\r\n":
                    i = n
                    break
                return "bad_quote", number, column
            if field_start and c == '"':
                in_quote = True
                quote_line = number
                field_start = False
                i += 1
                continue
            j = line.find(delimiter, i)
            if j < 0:
                i = n
                break
            column += 1
            field_start = True
            i = j + 1
        if not in_quote:
            # the record ended with this line: the next line starts a new record
            field_start, after_quote, column = True, False, 1
    if in_quote:
        return "unclosed", quote_line, None
    return None, None, None


def _column_params(index: int, header: list[str] | None) -> tuple[dict, str | None]:
    """A column for a message: by its header name when there is one, else by number."""
    if header is not None and index <= len(header):
        name = header[index - 1]
        return {"column": kept(name, 60)}, name
    return {"index": index}, None


def _long_value(path, encoding: str, delimiter: str, start_line: int, header: list[str] | None) -> CsvError | None:
    """Rescan the record that starts on ``start_line`` for the value the csv module found
    longer than ``FIELD_LIMIT``: its column, its length, and whether a quote made it long.

    A quote is worth mentioning only when one is open: a quoted value that runs over
    several lines (a stray quote swallowing the rows after it), or one never closed.
    A long value on one line is just long. None when the scan does not find the value
    (the csv module counts a little differently): the caller words it without details.
    """
    index, length, quoted, in_quote, field_start, field_line = 1, 0, False, False, True, start_line
    for number, line in enumerate(LineReader(path, encoding), start=1):
        if number < start_line:
            continue
        body = line.rstrip("\r\n")
        i, n = 0, len(body)
        while True:
            if field_start:
                field_start, length, field_line = False, 0, number
                quoted = in_quote = i < n and body[i] == '"'
                i += 1 if quoted else 0
            if in_quote:
                j = body.find('"', i)
                if j < 0:  # the value goes on over the line break, which is part of it
                    length += len(line) - i
                    break
                if j + 1 < n and body[j + 1] == '"':
                    length, i = length + j - i + 1, j + 2
                    continue
                length, in_quote, i = length + j - i, False, j + 1
                continue
            j = body.find(delimiter, i)
            stop = j if j >= 0 else n
            length += stop - i
            if length > FIELD_LIMIT:
                params, name = _column_params(index, header)
                params.update({"line": field_line, "limit": FIELD_LIMIT, "length": length,
                               "quoted": quoted, "end": number})
                return CsvError("value_too_long", params, line=field_line, column=name)
            if j < 0:
                return None  # the record ended and no value in it is too long
            index, field_start, i = index + 1, True, j + 1
    if in_quote:
        return CsvError("unbalanced_quote", {"line": field_line}, line=field_line)
    return None


def _csv_error(exc: csv.Error, path, encoding, delimiter, start_line: int, header: list[str] | None) -> CsvError:
    text = str(exc)
    if "field larger" in text:
        # Found first: a long value on line 3 is the problem even when a quote is left
        # open further down the file.
        found = _long_value(path, encoding, delimiter, start_line, header)
        if found is not None:
            return found
        return CsvError("value_too_long", {"line": start_line, "limit": FIELD_LIMIT}, line=start_line)
    kind, line, column_index = _quote_problem(path, encoding, delimiter, start_line)
    if kind == "unclosed":
        return CsvError("unbalanced_quote", {"line": line}, line=line)
    if kind == "bad_quote":
        # Named by the header when the header is read and has that column, else by number.
        name = None
        params = {"line": line, "index": column_index}
        if header is not None and column_index is not None and column_index <= len(header):
            name = header[column_index - 1]
            params = {"line": line, "column": kept(name, 60)}
        return CsvError("bad_quote", params, line=line, column=name)
    # Should not happen with strict parsing of newline-split input; keep it explainable.
    return CsvError("bad_quote", {"line": start_line, "detail": text}, line=start_line)


def parse_csv(
    path: str | Path,
    encoding: str,
    delimiter: str,
    on_batch: Callable[[list[str], list[int]], None] | None,
    *,
    max_rows: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stop_after: int | None = None,
    on_header: Callable[[list[str], int], None] | None = None,
) -> ParseSummary:
    """Parse the whole file strictly, calling ``on_batch(cells, lines)`` per batch.

    ``cells`` holds the batch's values row after row (``len(header)`` per row),
    ``lines`` the physical line where each row starts. ``stop_after`` (for
    sniffing) stops quietly after that many data rows.
    """
    lines = LineReader(path, encoding)
    reader = _reader(lines, delimiter)
    prev = 0
    header: list[str] | None = None
    blank = 0
    blank_numbers: list[int] = []
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if not row:
                blank += 1
                if len(blank_numbers) < 20:
                    blank_numbers.append(start)
                continue
            header = row
            break
        if header is None:
            raise CsvError("empty_file")
        header_line = start
        if not "".join(header).strip():
            # Only blank space so far: an "empty" file unless something else follows.
            for row in reader:
                prev = reader.line_num
                if "".join(row).strip():
                    break
            else:
                raise CsvError("empty_file", {"blank": True})
        _check_header(header, header_line, delimiter)
        if on_header is not None:
            on_header(header, header_line)
        ncols = len(header)
        if batch_rows * ncols > MAX_BATCH_CELLS:
            batch_rows = max(1_000, MAX_BATCH_CELLS // ncols)
        cells: list[str] = []  # the batch's values, row after row
        extend = cells.extend
        row_lines: list[int] = []
        add_line = row_lines.append
        total = 0
        limit = max_rows if max_rows is not None else -1
        if stop_after is not None:
            batch_rows = min(batch_rows, stop_after)
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if len(row) != ncols:
                if not row:
                    blank += 1
                    if len(blank_numbers) < 20:
                        blank_numbers.append(start)
                    continue
                raise _ragged(row, ncols, start, prev, delimiter)
            extend(row)
            add_line(start)
            if len(row_lines) >= batch_rows:
                total += len(row_lines)
                if 0 <= limit < total:
                    raise _too_many(max_rows, row_lines[len(row_lines) - (total - limit)])
                if on_batch is not None:
                    on_batch(cells, row_lines)
                if stop_after is not None and total >= stop_after:
                    break
                cells, row_lines = [], []
                extend, add_line = cells.extend, row_lines.append
    except csv.Error as exc:
        raise _csv_error(exc, path, encoding, delimiter, prev + 1, header) from None
    if row_lines and (stop_after is None or total < stop_after):
        total += len(row_lines)
        if 0 <= limit < total:
            raise _too_many(max_rows, row_lines[len(row_lines) - (total - limit)])
        if on_batch is not None:
            on_batch(cells, row_lines)
    if total == 0:
        raise CsvError("no_rows", {"line": header_line}, line=header_line)
    return ParseSummary(
        header=header,
        header_line=header_line,
        row_count=total,
        blank_lines=blank,
        blank_line_numbers=blank_numbers,
        last_line=prev,
        line_column=_line_column_name(header),
    )


def _ragged(row: list[str], ncols: int, start: int, end: int, delimiter: str) -> CsvError:
    # ``end`` differs from ``start`` when a quoted value spans lines; ``blank`` tells a
    # line of spaces from a line whose values are not separated as expected.
    params = {
        "line": start,
        "end": end,
        "values": len(row),
        "columns": ncols,
        "delimiter": delimiter,
        "blank": len(row) == 1 and not row[0].strip(),
    }
    return CsvError("ragged_row", params, line=start)


def _too_many(max_rows: int, line: int) -> CsvError:
    return CsvError("too_many_rows", {"limit": max_rows, "line": line}, line=line)


def split_cells(cells: list[str], ncols: int, nrows: int) -> list[pa.Array]:
    """Row-major values → one string array per column."""
    flat = pa.array(cells, type=pa.string())
    if ncols == 1:
        return [flat]
    index = np.arange(nrows * ncols, dtype=np.int64).reshape(nrows, ncols)
    return [flat.take(pa.array(index[:, j])) for j in range(ncols)]


class TextParquetWriter:
    """Writes batches of text rows (plus their line numbers) to a Parquet file.

    Each batch is profiled for the guesses (``profiles``), then encoded and
    compressed as a row group in one background thread (pyarrow releases the GIL),
    overlapping with parsing of the next batch; at most one batch waits, so memory
    stays bounded. The file appears at ``path`` only on ``close``.
    """

    def __init__(self, path: str | Path, header: list[str]):
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.header = header
        self.line_column = _line_column_name(header)
        fields = [pa.field(name, pa.string()) for name in header]
        fields.append(pa.field(self.line_column, pa.int64()))
        self.schema = pa.schema(fields, metadata={LINE_COLUMN_KEY: self.line_column.encode(), KIND_KEY: b"text"})
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="snappy", use_dictionary=False)
        self.profiles = {name: ColumnProfile(name) for name in header}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-parquet")
        self.pending: Future | None = None

    def write(self, cells: list[str], lines: list[int]) -> None:
        columns = split_cells(cells, len(self.header), len(lines))
        columns.append(pa.array(lines, type=pa.int64()))
        for name, arr in zip(self.header, columns):
            self.profiles[name].add(arr)
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self._wait()
        self.pending = self.pool.submit(self.writer.write_table, table, row_group_size=len(lines))

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self.pool.shutdown()
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            if self.pending is not None:
                self.pending.exception()
            self.pool.shutdown()
            self.writer.close()
        finally:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass


def csv_to_text_parquet(
    path: str | Path,
    parquet_path: str | Path,
    encoding: str,
    delimiter: str,
    *,
    max_rows: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    check_header: Callable[[list[str]], None] | None = None,
) -> ParseSummary:
    """``check_header`` may refuse the header (raising CsvError) before any row is read."""
    state: dict = {}

    def on_header(header, _line):
        if check_header is not None:
            check_header(header)
        state["writer"] = TextParquetWriter(parquet_path, header)

    def on_batch(cells, lines):
        state["writer"].write(cells, lines)

    try:
        summary = parse_csv(
            path, encoding, delimiter, on_batch, max_rows=max_rows, batch_rows=batch_rows, on_header=on_header
        )
    except BaseException:
        if "writer" in state:
            state["writer"].abort()
        raise
    writer = state["writer"]
    writer.close()
    summary.profiles = writer.profiles
    return summary


def sniff_delimiter(lines: list[str], complete: bool) -> str:
    """Pick among , ; tab | the delimiter that splits the sample most consistently.

    ``complete`` says the sample is the whole file (otherwise its last record may be
    cut and is ignored). A file that no candidate splits is a single-column file: ",".
    """
    best = None
    for priority, d in enumerate(CANDIDATE_DELIMITERS):
        try:
            rows = [r for r in csv.reader(lines, delimiter=d, quotechar='"', strict=False) if r]
        except csv.Error:
            continue
        if not complete and len(rows) > 1:
            rows = rows[:-1]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        same = sum(1 for r in rows if len(r) == width) / len(rows)
        score = (same, width, -priority)
        if best is None or score > best[0]:
            best = (score, d)
    return best[1] if best else ","
