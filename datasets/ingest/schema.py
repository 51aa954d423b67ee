"""The user's schema (id, label, typed features), guessing it, and applying it.

Typing rules (documented for users):

* A **missing** value is one of ``MISSING_VALUES`` exactly (case as listed) or a
  value made only of spaces/tabs. Missing numeric or categorical values become null.
* A **number** is written like ``12``, ``-3.5``, ``+7``, ``.5``, ``1e6``, ``0012``:
  digits with an optional sign, decimal point and exponent; no spaces, no thousands
  separators, no ``inf``. Numbers too large for a double (``1e999``) are refused.
* The **id** column always stays text exactly as written (``0012345``, ``NA``,
  ``007 `` are ids); an empty (or blank) id is an error, duplicates are reported.
* The **label** column is numeric (missing labels are allowed and counted).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import CsvError, kept, show_name
from .parse import KIND_KEY, LINE_COLUMN_KEY
from .values import (
    ColumnProfile,
    blank_mask,
    to_categorical,
    to_float,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)

SCHEMA_KEY = b"fedweb.schema"

# Normalised (lower case, no spaces/_/-/.) names that make a column the guessed id / label.
_ID_NAMES_FIRST = {
    "id",
    "uid",
    "userid",
    "customerid",
    "custid",
    "custno",
    "customerno",
    "clientid",
    "accountid",
    "acctid",
    "acctno",
    "accountno",
    "memberid",
    "key",
    "rowid",
    "recordid",
    "客户编号",
    "客户号",
    "客户id",
    "用户id",
    "用户编号",
    "用户号",
    "会员id",
    "账号",
    "账户",
    "编号",
    "序号",
}
_ID_NAMES_SECOND = {
    "phone",
    "phoneno",
    "phonenumber",
    "mobile",
    "mobileno",
    "mobilenumber",
    "msisdn",
    "tel",
    "imei",
    "imsi",
    "idcard",
    "idno",
    "idnumber",
    "certno",
    "certid",
    "手机号",
    "手机号码",
    "手机",
    "电话",
    "电话号码",
    "身份证",
    "身份证号",
    "身份证号码",
    "证件号",
    "证件号码",
}
_LABEL_NAMES = {
    "y",
    "label",
    "target",
    "isbad",
    "bad",
    "default",
    "isdefault",
    "flag",
    "class",
    "churn",
    "ischurn",
    "fraud",
    "isfraud",
    "overdue",
    "isoverdue",
    "response",
    "标签",
    "目标",
    "是否违约",
    "违约",
    "是否逾期",
    "逾期",
    "是否流失",
    "是否欺诈",
}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name).lower()


@dataclass
class Schema:
    """Roles and types of a dataset's columns.

    ``features`` maps column name to ``"numeric"`` or ``"categorical"``; columns of
    the file that are neither the id, the label nor a feature are ignored (left out
    of the typed Parquet).
    """

    id_column: str | None
    label_column: str | None = None
    features: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id_column": self.id_column, "label_column": self.label_column, "features": dict(self.features)}

    @classmethod
    def from_dict(cls, data: dict) -> Schema:
        return cls(data.get("id_column"), data.get("label_column"), dict(data.get("features") or {}))

    def columns(self, header: list[str]) -> list[dict]:
        """``[{"name", "role", "type"}]`` for every column of the file, in file order
        (role: id | label | feature | ignored; type: text | numeric | categorical)."""
        out = []
        for name in header:
            if name == self.id_column:
                out.append({"name": name, "role": "id", "type": "text"})
            elif name == self.label_column:
                out.append({"name": name, "role": "label", "type": NUMERIC})
            elif name in self.features:
                out.append({"name": name, "role": "feature", "type": self.features[name]})
            else:
                out.append({"name": name, "role": "ignored", "type": None})
        return out

    @classmethod
    def from_columns(cls, columns: list[dict]) -> Schema:
        """Inverse of ``columns()``."""
        schema = cls(None)
        for col in columns:
            role = col.get("role")
            if role == "id":
                schema.id_column = col["name"]
            elif role == "label":
                schema.label_column = col["name"]
            elif role == "feature":
                schema.features[col["name"]] = col.get("type")
        return schema

    def role_of(self, name: str) -> str:
        if name == self.id_column:
            return "id"
        if name == self.label_column:
            return "label"
        return "feature" if name in self.features else "ignored"

    def type_of(self, name: str) -> str | None:
        if name == self.id_column:
            return "text"
        if name == self.label_column:
            return NUMERIC
        return self.features.get(name)

    def selected(self, header: list[str]) -> list[str]:
        """The columns kept in the typed Parquet, in file order."""
        keep = {self.id_column, self.label_column, *self.features} - {None}
        return [name for name in header if name in keep]

    def validate(self, header: list[str]) -> None:
        known = set(header)
        named = [("id", self.id_column), ("label", self.label_column)] + [("feature", f) for f in self.features]
        for role, name in named:
            if name is not None and name not in known:
                raise CsvError("unknown_column", {"role": role, "column": kept(name, 60)}, column=name)
        if self.id_column is not None and self.id_column == self.label_column:
            raise CsvError(
                "column_role_conflict",
                {"conflict": "id_label", "column": kept(self.id_column, 60)},
                column=self.id_column,
            )
        for role, name in (("id", self.id_column), ("label", self.label_column)):
            if name is not None and name in self.features:
                raise CsvError(
                    "column_role_conflict", {"conflict": f"{role}_feature", "column": kept(name, 60)}, column=name
                )
        for name, kind in self.features.items():
            if kind not in FEATURE_TYPES:
                raise CsvError(
                    "bad_column_type", {"column": kept(name, 60), "type": kept(str(kind), 40)}, column=name
                )


# How many names of missing or extra columns a message lists (the counts are always given).
LISTED_COLUMNS = 20


def same_columns(expected: list[dict], version: int):
    """A ``check_header`` for ``ingest_csv``: the file must have exactly the columns of
    ``expected`` (a dataset's ``columns``, from version ``version``), in any order.

    Types are not compared here: the new file is typed by the old version's types, so a
    value that does not fit fails where it is, with its line.
    """
    names = [c["name"] for c in expected]
    id_column = next((c["name"] for c in expected if c.get("role") == "id"), None)
    label_column = next((c["name"] for c in expected if c.get("role") == "label"), None)

    def check(header: list[str]) -> None:
        have = set(header)
        missing = [n for n in names if n not in have]
        extra = [n for n in header if n not in set(names)]
        if not missing and not extra:
            return
        others = [n for n in missing if n not in (id_column, label_column)]
        params = {
            "version": version,
            "id_missing": kept(id_column, 60) if id_column in missing else None,
            "label_missing": kept(label_column, 60) if label_column in missing else None,
            "missing": [kept(n, 60) for n in others[:LISTED_COLUMNS]],
            "missing_count": len(others),
            "extra": [kept(n, 60) for n in extra[:LISTED_COLUMNS]],
            "extra_count": len(extra),
        }
        first = (missing or extra)[0]
        raise CsvError("version_columns", params, column=first)

    return check


# ---------------------------------------------------------------------------------------
# Guessing


def guess_schema(
    header: list[str],
    profiles: dict[str, ColumnProfile],
    is_unique,
    *,
    id_column: str | None = None,
    label_column: str | None = None,
    features: dict[str, str] | None = None,
) -> tuple[Schema, list[str]]:
    """Fill in what the caller left as None; returns the schema and notes for the user.

    id: the first column named like an id (id, uid, user_id, customer_id, 客户编号, …;
    then phone, mobile, 手机号, …) without empty values, else the first column whose
    values are all present and unique. label: the first numeric column named like a
    label (y, label, target, is_bad, default, 标签, …). Features: every other column,
    numeric if every non-missing value is a number, else categorical.
    """
    notes: list[str] = []
    taken = {id_column, label_column, *(features or {})} - {None}
    if id_column is None:
        id_column = _guess_id(header, profiles, is_unique, taken)
        if id_column is None:
            notes.append("No id column was found: choose the column that identifies each row.")
        else:
            taken.add(id_column)
    if label_column is None:
        for name in header:
            if name not in taken and _norm(name) in _LABEL_NAMES:
                if profiles[name].numeric:
                    label_column = name
                    taken.add(name)
                    break
                notes.append(
                    f"The column {show_name(name)} looks like a label but is not numeric, so it was not "
                    "chosen as the label."
                )
    if features is None:
        features = {}
        for name in header:
            if name not in taken:
                features[name] = NUMERIC if profiles[name].numeric else CATEGORICAL
    return Schema(id_column, label_column, dict(features)), notes


def _guess_id(header, profiles, is_unique, taken) -> str | None:
    for names in (_ID_NAMES_FIRST, _ID_NAMES_SECOND):
        for name in header:
            if name not in taken and _norm(name) in names and profiles[name].blank == 0:
                return name
    for name in header:
        if name not in taken and profiles[name].blank == 0 and is_unique(name):
            return name
    return None


def profile_table(table: pa.Table, header: list[str]) -> dict[str, ColumnProfile]:
    profiles = {name: ColumnProfile(name) for name in header}
    for name in header:
        col = table.column(name)
        for chunk in col.chunks:
            profiles[name].add(chunk)
    return profiles


def parquet_is_unique(text_parquet: str | Path):
    def is_unique(name: str) -> bool:
        col = pq.read_table(text_parquet, columns=[name]).column(0)
        return pc.count_distinct(col).as_py() == len(col)

    return is_unique


# ---------------------------------------------------------------------------------------
# Applying


@dataclass
class SchemaReport:
    """What applying a schema found (JSON-ready via ``as_dict``)."""

    row_count: int
    duplicate_ids: dict | None = None  # {"values", "extra_rows", "examples": [{"id", "count", "lines"}]}
    label_classes: list[dict] | None = None  # [{"value", "count"}] if the label has <= 20 values
    label_missing: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "row_count": self.row_count,
            "duplicate_ids": self.duplicate_ids,
            "label_classes": self.label_classes,
            "label_missing": self.label_missing,
            "warnings": list(self.warnings),
        }


def read_text_layout(text_parquet: str | Path) -> tuple[list[str], str]:
    """(header, line column name) of a text Parquet written by ``ingest_csv``."""
    schema = pq.read_schema(text_parquet)
    meta = schema.metadata or {}
    if meta.get(KIND_KEY) != b"text" or LINE_COLUMN_KEY not in meta:
        raise CsvError("not_a_dataset")
    line_column = meta[LINE_COLUMN_KEY].decode()
    return [name for name in schema.names if name != line_column], line_column


def apply_schema(
    text_parquet: str | Path, typed_parquet: str | Path, schema: Schema, *, batch_rows: int = 65_536
) -> SchemaReport:
    """Type the text Parquet by ``schema`` into ``typed_parquet`` (written atomically).

    Typed columns (file order, only id/label/features): id → string exactly as
    written; label and numeric features → float64 (missing → null); categorical →
    string (missing → null). Raises CsvError (unknown_column, column_role_conflict,
    bad_column_type, empty_id, not_a_number); nothing is written then.
    """
    header, line_column = read_text_layout(text_parquet)
    schema.validate(header)
    selected = schema.selected(header)
    if not selected:
        raise CsvError("no_columns")
    if Path(typed_parquet).resolve() == Path(text_parquet).resolve():
        raise ValueError("typed_parquet must not be the text Parquet file")
    fields = []
    for name in selected:
        kind = schema.type_of(name)
        fields.append(pa.field(name, pa.string() if kind in ("text", CATEGORICAL) else pa.float64()))
    out_schema = pa.schema(fields, metadata={SCHEMA_KEY: json.dumps(schema.to_dict()).encode(), KIND_KEY: b"typed"})

    typed_parquet = Path(typed_parquet)
    tmp = typed_parquet.with_name(typed_parquet.name + ".part")
    ids: list[pa.Array] = []
    id_lines: list[pa.Array] = []
    labels: list[pa.Array] = []
    rows = 0
    pf = pq.ParquetFile(text_parquet)
    writer = pq.ParquetWriter(tmp, out_schema, compression="snappy")
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=selected + [line_column]):
            lines = batch.column(line_column)
            out = []
            for name in selected:
                arr = batch.column(name)
                kind = schema.type_of(name)
                if kind == "text":
                    blank = blank_mask(arr)
                    if pc.any(blank).as_py():
                        index = pc.index(blank, True).as_py()
                        line = int(lines[index].as_py())
                        raise CsvError("empty_id", {"line": line, "column": kept(name, 60)}, line=line, column=name)
                    ids.append(arr)
                    id_lines.append(lines)
                    out.append(arr)
                elif kind == CATEGORICAL:
                    out.append(to_categorical(arr))
                else:
                    values = to_float(arr, name, lines)
                    if name == schema.label_column:
                        labels.append(values)
                    out.append(values)
            rows += batch.num_rows
            writer.write_table(pa.Table.from_arrays(out, schema=out_schema), row_group_size=batch.num_rows)
        writer.close()
        os.replace(tmp, typed_parquet)
    except BaseException:
        writer.close()
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

    report = SchemaReport(row_count=rows)
    if ids:
        report.duplicate_ids = _duplicates(pa.chunked_array(ids), pa.chunked_array(id_lines))
        if report.duplicate_ids:
            d = report.duplicate_ids
            report.warnings.append(
                f"{d['values']:,} id value{'s' if d['values'] != 1 else ''} appear more than once "
                f"({d['extra_rows']:,} extra row{'s' if d['extra_rows'] != 1 else ''})."
            )
    if labels:
        label = pa.chunked_array(labels)
        report.label_missing = label.null_count
        if report.label_missing:
            report.warnings.append(f"{report.label_missing:,} rows have no label value.")
        counts = pc.value_counts(pc.drop_null(label))
        if len(counts) <= 20:
            report.label_classes = sorted(
                (
                    {"value": _plain_number(v), "count": c}
                    for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
                ),
                key=lambda item: item["value"],
            )
    return report


def _plain_number(v: float) -> Any:
    if v is None or not np.isfinite(v):
        return None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v)


def _duplicates(ids: pa.ChunkedArray, lines: pa.ChunkedArray, examples: int = 5) -> dict | None:
    counts = pc.value_counts(ids)
    dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(dup) == 0:
        return None
    values = dup.field("values")
    numbers = dup.field("counts")
    order = pc.sort_indices(pa.table({"c": numbers, "v": values}), sort_keys=[("c", "descending"), ("v", "ascending")])
    top = []
    for i in order[:examples].to_pylist():
        value = values[i].as_py()
        where = pc.filter(lines, pc.equal(ids, value))
        top.append({"id": value, "count": int(numbers[i].as_py()), "lines": where.to_pylist()[:5]})
    total = int(pc.sum(numbers).as_py())
    return {"values": len(dup), "extra_rows": total - len(dup), "examples": top}
