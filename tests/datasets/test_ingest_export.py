"""Exporting datasets as CSV that is safe to open in Excel/WPS, and safe file names."""

from __future__ import annotations

import codecs
import csv
import io
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.ingest import (
    CsvError,
    export_csv,
    ingest_csv,
    iter_csv_bytes,
    neutralise,
    safe_label,
    storage_name,
)


def ingest(tmp_path, content, **kwargs):
    path = tmp_path / "upload.csv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return ingest_csv(path, tmp_path / "text.parquet", typed_parquet_path=tmp_path / "data.parquet", **kwargs)


def exported(parquet_path, **kwargs) -> bytes:
    return b"".join(iter_csv_bytes(parquet_path, **kwargs))


def read_back(data: bytes, encoding="utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


# --------------------------------------------------------------------------- formula injection


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("a=1", "a=1"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_text_cells_that_start_like_formulas_get_a_leading_quote(tmp_path, cell, written):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"note": [cell]}), path)
    assert read_back(exported(path)) == [["note"], [written]]
    assert neutralise(cell) == written


def test_formula_cells_from_an_uploaded_file_are_neutralised_on_export(tmp_path):
    content = 'id,comment\n1,=1+1\n2,+1\n3,-1\n4,@SUM(A1)\n5,"\tx"\n6,"\rx"\n7,ok\n'
    result = ingest(tmp_path, content, features={"comment": "categorical"})
    rows = read_back(exported(result.typed_parquet))
    assert [r[1] for r in rows[1:]] == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "ok"]


def test_negative_numbers_in_numeric_columns_stay_numbers(tmp_path):
    result = ingest(tmp_path, "id,amount\n1,-1.5\n2,+3\n3,-0\n4,NA\n")
    data = exported(result.typed_parquet).decode("utf-8-sig")
    assert data.splitlines()[1:] == ['"1",-1.5', '"2",3', '"3",-0', '"4",']  # unquoted, unprefixed


def test_numbers_kept_as_text_are_left_alone_only_in_the_columns_named_numeric(tmp_path):
    result = ingest(tmp_path, "id,amount,note\n-7,-1.5,-1.5\n8,=1,x\n")
    rows = read_back(exported(result.text_parquet, numeric_columns=["amount"]))
    assert rows[1] == ["'-7", "-1.5", "'-1.5"]
    assert rows[2] == ["8", "'=1", "x"]  # a non-number in a numeric column is still text


def test_missing_markers_in_numeric_columns_are_left_alone_but_not_in_text_columns(tmp_path):
    result = ingest(tmp_path, "id,amount,note\n1,-,-\n2,3,x\n")
    rows = read_back(exported(result.text_parquet, numeric_columns=["amount"]))
    assert rows[1] == ["1", "-", "'-"]


def test_header_cells_are_neutralised_too(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"=cmd": ["x"], "ok": ["y"]}), path)
    assert read_back(exported(path))[0] == ["'=cmd", "ok"]


# --------------------------------------------------------------------------- round trips


def test_ids_with_leading_zeros_na_and_spaces_survive_ingest_parquet_and_export(tmp_path):
    content = 'id,v\n0012345,1\nNA,2\n007 ,3\n" x ",4\n客户-1,5\n"a,""b""\nc",6\n'
    result = ingest(tmp_path, content)
    ids = ["0012345", "NA", "007 ", " x ", "客户-1", 'a,"b"\nc']
    assert pq.read_table(result.typed_parquet).column("id").to_pylist() == ids
    assert [r[0] for r in read_back(exported(result.typed_parquet))[1:]] == ids


def test_the_text_file_exports_back_to_the_values_that_were_uploaded(tmp_path):
    content = "id,amount,city,flag\n0012,-1.50,北京,NA\n0013,,上海,\n0014,1e3, x ,N/A\n0015,-,NA,NA\n"
    result = ingest(tmp_path, content)
    numeric = [name for name, kind in result.schema.features.items() if kind == "numeric"]
    rows = read_back(exported(result.text_parquet, numeric_columns=numeric))
    assert rows == list(csv.reader(io.StringIO(content)))


def test_missing_values_export_as_empty_cells(tmp_path):
    result = ingest(tmp_path, "id,x,c\n1,NA,\n2,3,NA\n")
    assert read_back(exported(result.typed_parquet))[1:] == [["1", "", ""], ["2", "3", ""]]


# --------------------------------------------------------------------------- encodings and streaming


def test_the_default_export_is_utf8_with_a_bom_for_excel(tmp_path):
    result = ingest(tmp_path, "id,城市\n1,北京\n")
    data = exported(result.typed_parquet)
    assert data.startswith(codecs.BOM_UTF8)
    assert data.count(codecs.BOM_UTF8) == 1
    assert read_back(data) == [["id", "城市"], ["1", "北京"]]


def test_export_can_write_gb18030_for_old_excel(tmp_path):
    result = ingest(tmp_path, "id,城市\n1,北京\n")
    assert read_back(exported(result.typed_parquet, encoding="gb18030"), "gb18030") == [["id", "城市"], ["1", "北京"]]


def test_utf16_export_has_one_bom_across_chunks(tmp_path):
    rows = "".join(f"{i},北京\n" for i in range(30))
    result = ingest(tmp_path, "id,城市\n" + rows)
    data = exported(result.typed_parquet, encoding="utf-16", batch_rows=7)
    assert data.count(codecs.BOM_UTF16_LE) == 1
    assert len(read_back(data, "utf-16")) == 31


def test_a_character_the_export_encoding_cannot_hold_is_a_clear_error(tmp_path):
    result = ingest(tmp_path, "id,城市\n1,北京\n")
    with pytest.raises(CsvError) as caught:
        exported(result.typed_parquet, encoding="latin-1")
    assert caught.value.code == "export_encoding"
    assert "UTF-8" in caught.value.message


def test_streaming_yields_one_chunk_per_batch_and_equals_the_file_export(tmp_path):
    rows = "".join(f"{i},{i * 2}\n" for i in range(25))
    result = ingest(tmp_path, "id,x\n" + rows)
    chunks = list(iter_csv_bytes(result.typed_parquet, batch_rows=10))
    assert len(chunks) == 4  # header, then 10 + 10 + 5 rows
    out = tmp_path / "out.csv"
    assert export_csv(result.typed_parquet, out, batch_rows=10) == out.stat().st_size
    assert out.read_bytes() == b"".join(chunks)
    buffer = io.BytesIO()
    export_csv(result.typed_parquet, buffer)
    assert buffer.getvalue() == out.read_bytes()


def test_the_internal_line_column_is_never_exported(tmp_path):
    result = ingest(tmp_path, "id,x\n1,2\n")
    assert read_back(exported(result.text_parquet))[0] == ["id", "x"]


# --------------------------------------------------------------------------- file names


def test_storage_names_are_fresh_uuid_hex(tmp_path):
    names = {storage_name() for _ in range(100)}
    assert len(names) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", n) for n in names)
    assert re.fullmatch(r"[0-9a-f]{32}\.parquet", storage_name(".parquet"))
    with pytest.raises(ValueError):
        storage_name("/../x")


@pytest.mark.parametrize(
    ("client_name", "label"),
    [
        ("客户数据.csv", "客户数据.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\li\\Desktop\\loans.csv", "loans.csv"),
        ("evil\x00name\r\n.csv", "evilname .csv"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override removed
        ("  ", "dataset"),
        ("..", "dataset"),
        (None, "dataset"),
    ],
)
def test_client_file_names_become_display_labels_only(client_name, label):
    assert safe_label(client_name) == label


def test_long_client_file_names_are_cut_keeping_the_extension():
    label = safe_label("数" * 300 + ".csv", max_length=50)
    assert len(label) == 50 and label.endswith("….csv")
