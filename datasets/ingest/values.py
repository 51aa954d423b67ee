"""Value rules shared by parsing, guessing and typing (vectorised with pyarrow.compute).

* missing: exactly one of ``MISSING_VALUES``, or only white space (spaces, tabs,
  full-width spaces …);
* number: ``NUMBER_PATTERN`` — optional sign, digits with optional decimal point,
  optional exponent; no spaces, no thousands separators, no inf/nan; it must fit in a
  double (``1e999`` is refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .errors import CsvError, kept

MISSING_VALUES: tuple[str, ...] = ("", "NA", "N/A", "n/a", "#N/A", "null", "NULL", "Null", "NaN", "nan", "NAN", "-")
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN[1:-1])  # used with fullmatch
_MISSING_SET = pa.array(MISSING_VALUES, type=pa.string())


def blank_mask(arr: pa.Array) -> pa.Array:
    """True where a text value is empty or only white space (incl. full-width spaces)."""
    return pc.or_(pc.equal(arr, ""), pc.utf8_is_space(arr))


def missing_mask(arr: pa.Array, blank: pa.Array | None = None) -> pa.Array:
    """True where a text value counts as missing (text columns hold no nulls)."""
    if blank is None:
        blank = blank_mask(arr)
    return pc.or_(pc.is_in(arr, value_set=_MISSING_SET), blank)


def number_mask(arr: pa.Array) -> pa.Array:
    return pc.match_substring_regex(arr, NUMBER_PATTERN)


def is_number(text: str) -> bool:
    """The scalar form of the number rule."""
    return _NUMBER_RE.fullmatch(text) is not None


def is_missing(text: str) -> bool:
    return text in _MISSING_PY or text.isspace()


_MISSING_PY = frozenset(MISSING_VALUES)


def null_where(arr: pa.Array, mask: pa.Array) -> pa.Array:
    """``arr`` with the values where ``mask`` is true set to null.

    (Not ``pc.if_else(mask, <null scalar>, arr)``: in pyarrow 22 that returns an
    invalid array when ``arr`` is a sliced string array.)
    """
    return pc.if_else(mask, pa.nulls(len(arr), arr.type), arr)


def to_float(arr: pa.Array, column: str, lines: pa.Array | None) -> pa.Array:
    """Text → float64 (missing → null); CsvError("not_a_number") naming line and value."""
    missing = missing_mask(arr)
    ok = pc.or_(missing, number_mask(arr))
    if not pc.all(ok).as_py():
        index = pc.index(ok, False).as_py()
        _raise_not_a_number(column, arr[index].as_py(), lines, index, too_large=False)
    values = pc.cast(null_where(arr, missing), pa.float64())
    finite = pc.is_finite(values)
    if not pc.all(finite, skip_nulls=True).as_py():
        index = pc.index(pc.fill_null(finite, True), False).as_py()
        _raise_not_a_number(column, arr[index].as_py(), lines, index, too_large=True)
    return values


def _raise_not_a_number(column: str, value: str, lines, index: int, too_large: bool):
    line = int(lines[index].as_py()) if lines is not None else None
    raise CsvError(
        "not_a_number",
        {"line": line, "column": kept(column, 60), "value": kept(value, 40), "too_large": too_large},
        line=line,
        column=column,
    )


def to_categorical(arr: pa.Array) -> pa.Array:
    return null_where(arr, missing_mask(arr))


@dataclass
class ColumnProfile:
    """What the guesses need to know about one text column, built batch by batch."""

    name: str
    rows: int = 0
    missing: int = 0
    numbers: int = 0
    blank: int = 0  # values that are "" or only white space (would be empty ids)
    maybe_numeric: bool = True

    @property
    def numeric(self) -> bool:
        """Every non-missing value is a number, and there is at least one."""
        return self.maybe_numeric and self.numbers > 0

    def add(self, arr: pa.Array) -> None:
        self.rows += len(arr)
        blank = blank_mask(arr)
        self.blank += pc.sum(blank).as_py() or 0
        if not self.maybe_numeric:
            return
        missing = missing_mask(arr, blank)
        n_missing = pc.sum(missing).as_py() or 0
        self.missing += n_missing
        if n_missing == len(arr):
            return
        # A guess only, so pyarrow's fast cast decides here; it accepts exactly what
        # NUMBER_PATTERN accepts plus inf/nan spellings, which come out non-finite.
        # apply_schema checks NUMBER_PATTERN itself.
        try:
            values = pc.cast(null_where(arr, missing), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            self.maybe_numeric = False
            return
        if not pc.all(pc.is_finite(values), skip_nulls=True).as_py():
            self.maybe_numeric = False
            return
        self.numbers += len(arr) - n_missing
