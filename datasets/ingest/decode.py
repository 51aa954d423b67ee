"""Bytes to physical lines: encoding choice and detection, NUL and bad-byte checks.

Lines are split exactly where the ``csv`` module and a text editor split them:
at ``\\r\\n``, ``\\n`` or a lone ``\\r`` (``newline=""``), with the terminator kept,
so "line N" in a message is line N in the user's editor.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .errors import CsvError

_CHUNK = 1 << 20
_BLOCK_CHARS = 1 << 20

# Undecodable bytes are replaced by this marker instead of raising, so the line that
# holds them can be reported. A lone low surrogate never comes out of a strict decode
# of any real text encoding, so it cannot be confused with data.
_MARK = "\udfff"
_ERRORS = "fedweb.ingest.mark"


def _mark_bad_bytes(exc: UnicodeError):
    if isinstance(exc, UnicodeDecodeError):
        return (_MARK, exc.end)
    raise exc


codecs.register_error(_ERRORS, _mark_bad_bytes)

# What each file signature means, by the kind messages.py names.
_MAGIC = {
    b"PK\x03\x04": "xlsx",  # an Excel workbook or another ZIP archive
    b"\xd0\xcf\x11\xe0": "xls",  # an old Excel workbook or another Office file
    b"%PDF": "pdf",
    b"PAR1": "parquet",
}

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def display_encoding(name: str) -> str:
    return {
        "utf-8": "UTF-8",
        "gb18030": "GBK/GB18030",
        "gbk": "GBK",
        "utf-16": "UTF-16",
        "big5": "Big5",
        "iso8859-1": "Latin-1",
        "latin-1": "Latin-1",
    }.get(name, name)


def resolve_encoding(name: str) -> str:
    """The canonical Python codec name for a user-chosen encoding, or CsvError."""
    cleaned = (name or "").strip()
    try:
        info = codecs.lookup(cleaned)
    except (LookupError, TypeError, ValueError):
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise CsvError("unknown_encoding", {"encoding": cleaned[:40]})
    canonical = info.name
    if canonical == "utf-8-sig":  # the BOM is stripped for every encoding anyway
        canonical = "utf-8"
    return canonical


def check_magic(path: str | Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise CsvError("not_csv", {"kind": kind})


def _line_of_byte(path: str | Path, offset: int) -> int:
    """1-based line holding byte ``offset`` (for ASCII-compatible encodings)."""
    line = 1
    done = 0
    with open(path, "rb") as fh:
        while done < offset:
            chunk = fh.read(min(_CHUNK, offset - done))
            if not chunk:
                break
            line += chunk.count(b"\n")
            done += len(chunk)
    return line


def _first_bad_offset(path: str | Path, encoding: str) -> int | None:
    """Byte offset of the first byte that does not decode, or None if the file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    consumed = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                # exc.object is the decoder's pending bytes plus this chunk.
                pending = len(exc.object) - len(chunk)
                return max(0, consumed - pending + exc.start)
            consumed += len(chunk)
            if final:
                return None


_GB2312_CACHE: dict[str, bool] = {}


def _is_gb2312(ch: str) -> bool:
    hit = _GB2312_CACHE.get(ch)
    if hit is None:
        try:
            ch.encode("gb2312")
            hit = True
        except UnicodeEncodeError:
            hit = False
        if len(_GB2312_CACHE) < 50_000:
            _GB2312_CACHE[ch] = hit
    return hit


def _looks_chinese(path: str | Path) -> bool:
    """Do the non-ASCII characters decoded as GB18030 look like real Chinese text?

    Latin-1 or Big5 bytes often decode "cleanly" as GB18030 but land mostly outside
    GB2312 (the everyday simplified-Chinese set, which covers nearly all real text).
    """
    with open(path, "rb") as fh:
        head = fh.read(4 * _CHUNK)
    text = head.decode("gb18030", errors="ignore")
    counts = Counter(re.findall(r"[^\x00-\x7f]", text))
    total = sum(counts.values())
    if total == 0:
        return True
    common = sum(n for ch, n in counts.items() if _is_gb2312(ch))
    return common / total >= 0.8


def detect_encoding(path: str | Path) -> tuple[str, bool]:
    """``(encoding, has_bom)`` for a file whose encoding the user did not choose.

    UTF-8 (with or without BOM) if every byte decodes as UTF-8; UTF-16 if it starts
    with a UTF-16 BOM; GB18030 (the superset of GBK and GB2312) if it is not UTF-8
    but decodes cleanly as GB18030 and looks like Chinese; otherwise CsvError asking
    the user to choose.
    """
    check_magic(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    for bom, name in BOMS:
        if head.startswith(bom):
            return name, True
    bad_utf8 = _first_bad_offset(path, "utf-8")
    if bad_utf8 is None:
        return "utf-8", False
    utf8_line = _line_of_byte(path, bad_utf8)
    bad_gb = _first_bad_offset(path, "gb18030")
    if bad_gb is None and _looks_chinese(path):
        return "gb18030", False
    raise CsvError("encoding_not_detected", {"line": utf8_line}, line=utf8_line)


class LineReader:
    """Iterate the decoded physical lines of a file, checked for NUL and bad bytes.

    Iterating yields lines with their terminators (C-level speed: a chain over blocks
    of ~1M characters). A problem raises CsvError only after every line before the
    bad one has been handed out, so problems come in file order.
    """

    def __init__(self, path: str | Path, encoding: str):
        self.path = path
        self.encoding = encoding
        self.lines_read = 0  # lines handed out so far

    def _blocks(self) -> Iterator[list[str]]:
        with open(self.path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, errors=_ERRORS, newline="")
            first = True
            while True:
                block = text.readlines(_BLOCK_CHARS)
                if not block:
                    return
                if first:
                    first = False
                    if block[0].startswith("\ufeff"):
                        block[0] = block[0][1:]
                        if not block[0]:
                            del block[0]
                            if not block:
                                continue
                joined = "".join(block)
                if "\x00" in joined or _MARK in joined:
                    self._fail(block)
                self.lines_read += len(block)
                yield block

    def _fail(self, block: list[str]):
        for i, line in enumerate(block):
            nul = "\x00" in line
            if nul or _MARK in line:
                number = self.lines_read + i + 1
                # Hand out the good lines first, then fail.
                raise _Deferred(block[:i], self._error(number, nul))
        raise AssertionError("unreachable")

    def _error(self, number: int, nul: bool) -> CsvError:
        if nul:
            return CsvError("nul_byte", {"line": number}, line=number)
        return CsvError("bad_encoding", {"line": number, "encoding": display_encoding(self.encoding)}, line=number)

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._checked_blocks())

    def _checked_blocks(self) -> Iterator[list[str]]:
        try:
            yield from self._blocks()
        except _Deferred as deferred:
            if deferred.lines:
                self.lines_read += len(deferred.lines)
                yield deferred.lines
            raise deferred.error from None


class _Deferred(Exception):
    def __init__(self, lines: list[str], error: CsvError):
        super().__init__(error.message)
        self.lines = lines
        self.error = error
