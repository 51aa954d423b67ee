"""Reading users' CSV files: encodings, delimiters, every malformed case, exact text.

Each bad file must fail with one exact code, the right line (1-based, as a text
editor numbers lines) and/or column, and a message that names them.
"""

from __future__ import annotations

import codecs
import json

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.ingest import CsvError, ingest_csv, inspect_csv
from datasets.ingest.parse import FIELD_LIMIT, csv_to_text_parquet


def write(tmp_path, content, name="upload.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def ingest(tmp_path, content, **kwargs):
    path = write(tmp_path, content, encoding=kwargs.pop("file_encoding", "utf-8"))
    return ingest_csv(path, tmp_path / "text.parquet", typed_parquet_path=tmp_path / "data.parquet", **kwargs)


def text_rows(result) -> list[list[str]]:
    table = pq.read_table(result.text_parquet, columns=result.header)
    return [list(row.values()) for row in table.to_pylist()]


def failure(tmp_path, content, code, *, line=None, column=None, **kwargs) -> CsvError:
    with pytest.raises(CsvError) as caught:
        ingest(tmp_path, content, **kwargs)
    error = caught.value
    assert error.code == code, error
    assert error.line == line, error
    assert error.column == column, error
    if line is not None:
        assert f"line {line}" in error.message.lower(), error.message
    if column is not None:
        assert column in error.message, error.message
    # a failed import leaves nothing behind
    assert not (tmp_path / "text.parquet").exists()
    assert not (tmp_path / "data.parquet").exists()
    assert not list(tmp_path.glob("*.part"))
    return error


# --------------------------------------------------------------------------- encodings


def test_plain_utf8_is_detected_and_read_exactly(tmp_path):
    result = ingest(tmp_path, "id,name\n1,Zoë\n2,北京\n")
    assert (result.encoding, result.bom) == ("utf-8", False)
    assert text_rows(result) == [["1", "Zoë"], ["2", "北京"]]


def test_a_utf8_byte_order_mark_never_ends_up_in_the_first_column_name(tmp_path):
    result = ingest(tmp_path, codecs.BOM_UTF8 + "客户编号,x\nA1,1\n".encode())
    assert result.header == ["客户编号", "x"]
    assert (result.encoding, result.bom) == ("utf-8", True)


def test_a_byte_order_mark_is_stripped_even_when_the_user_names_utf8(tmp_path):
    result = ingest(tmp_path, codecs.BOM_UTF8 + b"id,x\n1,2\n", encoding="UTF-8")
    assert result.header == ["id", "x"]


def test_gbk_bytes_with_chinese_headers_are_detected_as_gb18030(tmp_path):
    content = "客户编号,城市,年龄\n0012,北京,30\n0013,上海,41\n".encode("gbk")
    result = ingest(tmp_path, content)
    assert result.encoding == "gb18030"
    assert result.header == ["客户编号", "城市", "年龄"]
    assert text_rows(result) == [["0012", "北京", "30"], ["0013", "上海", "41"]]


def test_gb18030_characters_outside_gbk_are_read(tmp_path):
    content = "编号,名字\n1,张䶮\n2,李𠀀\n3,王五\n".encode("gb18030")  # 䶮 and 𠀀 need 4-byte GB18030
    result = ingest(tmp_path, content)
    assert result.encoding == "gb18030"
    assert [r[1] for r in text_rows(result)] == ["张䶮", "李𠀀", "王五"]


def test_latin1_named_by_the_user_is_used_as_given(tmp_path):
    result = ingest(tmp_path, "id,name\n1,José Müller\n".encode("latin-1"), encoding="latin-1")
    assert result.encoding == "iso8859-1"
    assert text_rows(result) == [["1", "José Müller"]]


def test_big5_named_by_the_user_is_used_as_given(tmp_path):
    result = ingest(tmp_path, "編號,城市\n1,臺北\n".encode("big5"), encoding="big5")
    assert text_rows(result) == [["1", "臺北"]]


def test_utf16_named_by_the_user_is_read(tmp_path):
    result = ingest(tmp_path, "id\tname\n1\t客户\n".encode("utf-16"), encoding="utf-16")
    assert result.header == ["id", "name"]
    assert result.delimiter == "\t"
    assert text_rows(result) == [["1", "客户"]]


def test_utf16_with_a_byte_order_mark_is_detected(tmp_path):
    result = ingest(tmp_path, "id,name\n1,客户\n".encode("utf-16"))
    assert result.encoding == "utf-16"
    assert text_rows(result) == [["1", "客户"]]


def test_an_unknown_encoding_name_is_refused_clearly(tmp_path):
    error = failure(tmp_path, "id\n1\n", "unknown_encoding", encoding="klingon-8")
    assert "klingon-8" in error.message


def test_a_codec_that_is_not_a_text_encoding_is_refused(tmp_path):
    failure(tmp_path, "id\n1\n", "unknown_encoding", encoding="base64")


def test_bytes_that_are_neither_utf8_nor_chinese_ask_the_user_to_choose(tmp_path):
    content = b"id,name\n1,ok\n2,Jos\xe9 M\xfcller\n"  # Latin-1, and not valid GB18030 either
    error = failure(tmp_path, content, "encoding_not_detected", line=3)
    assert "choose" in error.message.lower()


def test_latin1_that_happens_to_decode_as_gb18030_is_not_taken_for_chinese(tmp_path):
    content = "id,name\n1,Müller\n2,Gómez\n3,Straße\n".encode("latin-1")
    content.decode("gb18030")  # decodes "cleanly" …
    failure(tmp_path, content, "encoding_not_detected", line=2)  # … but is not Chinese


def test_a_utf8_file_with_one_stray_byte_is_not_mistaken_for_chinese_gbk(tmp_path):
    content = "id,城市\n1,北京\n2,上海\n".encode() + b"3,\xff\xfe\n"
    failure(tmp_path, content, "encoding_not_detected", line=4)


def test_undecodable_bytes_in_the_chosen_encoding_name_the_line(tmp_path):
    content = "id,city\n1,北京\n2,上海\n".encode("gbk")
    error = failure(tmp_path, content, "bad_encoding", line=2, encoding="utf-8")
    assert "encoding" in error.message and "UTF-8" in error.message


def test_undecodable_bytes_after_a_utf8_byte_order_mark_name_the_line(tmp_path):
    failure(tmp_path, codecs.BOM_UTF8 + b"id,x\n1,a\n2,\xff\xfe\n", "bad_encoding", line=3)


def test_an_excel_workbook_is_recognised_as_not_csv(tmp_path):
    error = failure(tmp_path, b"PK\x03\x04" + bytes(100), "not_csv")
    assert "Excel" in error.message


# --------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_supported_delimiter_is_detected(tmp_path, delimiter):
    content = delimiter.join(["id", "a", "b"]) + "\n" + delimiter.join(["1", "x,y" if delimiter != "," else "x", "2"])
    result = ingest(tmp_path, content + "\n")
    assert result.delimiter == delimiter
    assert result.header == ["id", "a", "b"]


def test_semicolon_files_with_decimal_commas_are_split_on_semicolons(tmp_path):
    result = ingest(tmp_path, "id;amount\n1;1,5\n2;2,25\n")
    assert result.delimiter == ";"
    assert text_rows(result) == [["1", "1,5"], ["2", "2,25"]]


def test_a_delimiter_given_by_the_user_wins(tmp_path):
    result = ingest(tmp_path, "id|a;b\n1|x;y\n", delimiter=";")
    assert result.header == ["id|a", "b"]


def test_tab_can_be_named_as_a_word(tmp_path):
    assert ingest(tmp_path, "id\tx\n1\t2\n", delimiter="tab").delimiter == "\t"


def test_an_unusable_delimiter_is_refused(tmp_path):
    failure(tmp_path, "id\n1\n", "bad_delimiter", delimiter='"')


def test_a_single_column_file_is_fine(tmp_path):
    result = ingest(tmp_path, "phone\n13800000000\n13900000000\n")
    assert result.header == ["phone"]
    assert result.row_count == 2


# --------------------------------------------------------------------------- malformed files


def test_a_zero_byte_file_is_empty(tmp_path):
    failure(tmp_path, b"", "empty_file")


def test_a_file_of_blank_space_is_empty(tmp_path):
    failure(tmp_path, " \r\n\n  \t\n", "empty_file")


def test_a_file_holding_only_a_byte_order_mark_is_empty(tmp_path):
    failure(tmp_path, codecs.BOM_UTF8, "empty_file")


def test_a_header_without_rows_has_no_rows(tmp_path):
    failure(tmp_path, "id,x\n", "no_rows", line=1)


def test_a_header_followed_by_blank_lines_has_no_rows(tmp_path):
    failure(tmp_path, "id,x\n\n\n", "no_rows", line=1)


def test_an_empty_column_name_is_named_by_its_position(tmp_path):
    error = failure(tmp_path, "id,,x\n1,2,3\n", "empty_column_name", line=1)
    assert "Column 2" in error.message


def test_a_blank_column_name_counts_as_empty(tmp_path):
    error = failure(tmp_path, "id,  ,x\n1,2,3\n", "empty_column_name", line=1)
    assert "Column 2" in error.message


def test_a_header_ending_with_a_delimiter_gets_a_hint(tmp_path):
    error = failure(tmp_path, "id,x,\n1,2,\n", "empty_column_name", line=1)
    assert "Column 3" in error.message and "ends with an extra" in error.message


def test_duplicate_column_names_are_refused_not_renamed(tmp_path):
    error = failure(tmp_path, "id,a,a\n1,2,3\n", "duplicate_column_name", line=1, column="a")
    assert "columns 2 and 3" in error.message


def test_a_row_with_too_many_values_names_line_and_counts(tmp_path):
    error = failure(tmp_path, "id,x\n1,2\n2,3\n3,4,5\n", "ragged_row", line=4)
    assert "3 values" in error.message and "2 columns" in error.message


def test_a_row_with_too_few_values_names_line_and_counts(tmp_path):
    error = failure(tmp_path, "id,x,y\n1,2,3\n2,3\n", "ragged_row", line=3)
    assert "2 values" in error.message and "3 columns" in error.message


def test_a_line_of_spaces_is_a_ragged_row_not_a_blank_line(tmp_path):
    error = failure(tmp_path, "id,x\n1,2\n   \n3,4\n", "ragged_row", line=3)
    assert "only spaces" in error.message


def test_line_numbers_stay_right_after_a_multi_line_quoted_value(tmp_path):
    content = 'id,note\n1,"first\nsecond\nthird"\n2,ok\n3,bad,extra\n'
    failure(tmp_path, content, "ragged_row", line=6)


def test_a_ragged_row_that_spans_lines_says_where_it_ends(tmp_path):
    error = failure(tmp_path, 'id,x\n1,"a\nb",extra\n', "ragged_row", line=2)
    assert "line 2 to line 3" in error.message


def test_an_unclosed_quote_names_the_line_where_it_opens(tmp_path):
    content = 'id,note\n1,ok\n2,"never closed\n3,x\n4,y\n'
    error = failure(tmp_path, content, "unbalanced_quote", line=3)
    assert "closing quote" in error.message


def test_an_unclosed_quote_after_a_closed_multi_line_value_is_located(tmp_path):
    content = 'id,a,b\n1,"two\nlines","opens here\n2,x,y\n'
    failure(tmp_path, content, "unbalanced_quote", line=3)


def test_an_unclosed_quote_in_a_large_file_is_still_an_unclosed_quote(tmp_path):
    filler = "".join(f"{i},value {i}\n" for i in range(20_000))  # > FIELD_LIMIT characters after the quote
    assert len(filler) > FIELD_LIMIT
    failure(tmp_path, 'id,x\n1,"oops\n' + filler, "unbalanced_quote", line=2)


def test_a_huge_value_whose_quote_closes_far_away_is_too_long(tmp_path):
    filler = "".join(f"{i},value {i}\n" for i in range(20_000))
    error = failure(tmp_path, 'id,x\n1,"oops\n' + filler + 'end"\n', "value_too_long", line=2, column="x")
    # The quote is what made the value long, so the message says where it opens and closes.
    assert "closing quote" in error.message and "line 20003" in error.message, error.message
    assert "131,072" in error.message


def test_a_huge_unquoted_value_states_the_limit_and_says_nothing_of_quotes(tmp_path):
    error = failure(tmp_path, "id,text\n1,hello\n2," + "x" * 3_000_000 + "\n3,z\n", "value_too_long", line=3, column="text")
    assert error.params["length"] == 3_000_000
    assert "3,000,000 characters" in error.message and "131,072 characters a cell may hold" in error.message
    assert "quote" not in error.message, error.message


def test_a_huge_quoted_value_on_one_line_is_just_too_long(tmp_path):
    error = failure(tmp_path, 'id,a,text\n1,2,"' + "y" * (FIELD_LIMIT + 5) + '"\n', "value_too_long", line=2, column="text")
    assert error.params["length"] == FIELD_LIMIT + 5
    assert "quote" not in error.message, error.message


def test_a_huge_value_is_found_before_a_quote_left_open_further_down(tmp_path):
    content = "id,text\n1," + "x" * (FIELD_LIMIT + 1) + '\n2,"never closed\n'
    failure(tmp_path, content, "value_too_long", line=2, column="text")


def test_a_huge_value_in_a_file_without_header_names_is_named_by_number(tmp_path):
    from datasets.ingest.parse import _long_value

    path = write(tmp_path, "1,2," + "z" * (FIELD_LIMIT + 1) + "\n")
    error = _long_value(path, "utf-8", ",", 1, None)
    assert error.params["index"] == 3 and error.column is None
    assert "Line 1, column 3" in error.message


def test_characters_after_a_closing_quote_name_line_and_column(tmp_path):
    error = failure(tmp_path, 'id,size,x\n1,"12" wide,3\n', "bad_quote", line=2, column="size")
    assert '""' in error.message


def test_a_nul_byte_names_its_line(tmp_path):
    error = failure(tmp_path, b"id,x\n1,2\n3,a\x00b\n", "nul_byte", line=3)
    assert "UTF-16" in error.message


def test_utf16_without_a_byte_order_mark_shows_up_as_nul_bytes(tmp_path):
    failure(tmp_path, "id,x\n1,2\n".encode("utf-16-le"), "nul_byte", line=1)


def test_more_rows_than_allowed_names_the_first_extra_row(tmp_path):
    content = "id\n" + "".join(f"{i}\n" for i in range(10))
    error = failure(tmp_path, content, "too_many_rows", line=7, max_rows=5)
    assert "5" in error.message


def test_more_rows_than_allowed_is_found_across_batches(tmp_path):
    content = "id\n" + "".join(f"{i}\n" for i in range(2_500))
    failure(tmp_path, content, "too_many_rows", line=2_002, max_rows=2_000, batch_rows=1_000)


def test_exactly_the_allowed_number_of_rows_is_fine(tmp_path):
    assert ingest(tmp_path, "id\n1\n2\n3\n", max_rows=3).row_count == 3


# --------------------------------------------------------------------------- what is accepted


def test_blank_lines_are_skipped_and_reported_not_silently_dropped(tmp_path):
    result = ingest(tmp_path, "\nid,x\n1,2\n\n\n2,3\n\n")
    assert text_rows(result) == [["1", "2"], ["2", "3"]]
    assert result.blank_lines == 4
    assert result.blank_line_numbers == [1, 4, 5, 7]
    assert result.report["blank_lines"] == 4
    assert any("4 blank lines were skipped (lines 1, 4, 5, 7)" in w for w in result.warnings)


def test_crlf_and_lf_files_read_the_same(tmp_path):
    lf = ingest(tmp_path, "id,x\n1,a\n2,b\n")
    crlf_dir = tmp_path / "crlf"
    crlf_dir.mkdir()
    crlf = ingest(crlf_dir, "id,x\r\n1,a\r\n2,b\r\n")
    assert text_rows(lf) == text_rows(crlf) == [["1", "a"], ["2", "b"]]


def test_a_missing_final_newline_is_fine(tmp_path):
    assert text_rows(ingest(tmp_path, "id,x\n1,a\n2,b")) == [["1", "a"], ["2", "b"]]


def test_quoted_values_keep_delimiters_quotes_and_line_breaks(tmp_path):
    content = 'id,note\n1,"a,b"\n2,"say ""hi"""\n3,"two\r\nlines"\n4,"x\ny"\n'
    assert text_rows(ingest(tmp_path, content)) == [
        ["1", "a,b"],
        ["2", 'say "hi"'],
        ["3", "two\r\nlines"],
        ["4", "x\ny"],
    ]


def test_values_are_stored_exactly_as_written(tmp_path):
    content = 'id,v\n0012345,NA\n007 ,\n" x ", x \nN/A,-\n'
    result = ingest(tmp_path, content)
    assert text_rows(result) == [["0012345", "NA"], ["007 ", ""], [" x ", " x "], ["N/A", "-"]]
    assert pq.read_schema(result.text_parquet).field("v").type == "string"


def test_each_stored_row_knows_the_line_it_came_from(tmp_path):
    result = ingest(tmp_path, 'id,x\n1,"a\nb"\n\n2,c\n')
    lines = pq.read_table(result.text_parquet).column("__line__").to_pylist()
    assert lines == [2, 5]


def test_a_file_with_a_column_called_line_keeps_it(tmp_path):
    result = ingest(tmp_path, "id,__line__\n1,x\n")
    assert text_rows(result) == [["1", "x"]]


def test_inspect_returns_encoding_delimiter_header_samples_and_guesses(tmp_path):
    content = "客户编号;年龄;城市;y\n" + "".join(f"{i:05d};{20 + i};北京;{i % 2}\n" for i in range(30))
    path = write(tmp_path, content, encoding="gbk")
    sniff = inspect_csv(path)
    assert (sniff.encoding, sniff.encoding_detected) == ("gb18030", True)
    assert (sniff.delimiter, sniff.delimiter_detected) == (";", True)
    assert sniff.header == ["客户编号", "年龄", "城市", "y"]
    assert sniff.sample_rows[0] == ["00000", "20", "北京", "0"]
    assert len(sniff.sample_rows) == 10 and sniff.rows_sampled == 30
    assert sniff.columns == [
        {"name": "客户编号", "role": "id", "type": "text"},
        {"name": "年龄", "role": "feature", "type": "numeric"},
        {"name": "城市", "role": "feature", "type": "categorical"},
        {"name": "y", "role": "label", "type": "numeric"},
    ]


def test_inspect_uses_the_encoding_and_delimiter_it_is_given(tmp_path):
    path = write(tmp_path, "a;b\n1;2\n".encode("latin-1"))
    sniff = inspect_csv(path, encoding="latin-1", delimiter=",")
    assert (sniff.encoding_detected, sniff.delimiter_detected) == (False, False)
    assert sniff.header == ["a;b"]


def test_inspect_reports_the_same_errors_as_ingest(tmp_path):
    path = write(tmp_path, "id,a,a\n1,2,3\n")
    with pytest.raises(CsvError) as caught:
        inspect_csv(path)
    assert caught.value.code == "duplicate_column_name"


def test_a_100k_row_file_ingests_correctly(tmp_path):
    lines = ["id,amount,city,y"] + [f"{i:07d},{i * 0.5},{'沪京粤'[i % 3]},{i % 2}" for i in range(100_000)]
    result = ingest(tmp_path, "\n".join(lines) + "\n")
    assert result.row_count == 100_000
    assert result.schema.id_column == "id" and result.schema.label_column == "y"
    assert result.schema.features == {"amount": "numeric", "city": "categorical"}
    table = pq.read_table(result.typed_parquet)
    assert table.column("id")[99_999].as_py() == "0099999"
    assert table.column("amount")[12_345].as_py() == 6172.5
    assert result.stats["row_count"] == 100_000
    assert pq.ParquetFile(result.text_parquet).metadata.num_row_groups == 2  # written in 50k batches
    json.dumps(result.stats, allow_nan=False)


# --------------------------------------------------------------------------- properties

_cell = st.text(alphabet=st.sampled_from(list('ab 0-=",;|\t\r\n客"')), max_size=6)


def to_csv(rows, delimiter=",", newline="\n") -> str:
    """RFC 4180 writing (csv.writer leaves a lone \r unquoted when lineterminator is \n)."""

    def cell(value):
        if any(c in value for c in (delimiter, '"', "\r", "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(delimiter.join(cell(v) for v in row) + newline for row in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_anything_csv_writer_writes_comes_back_exactly(tmp_path_factory, rows, delimiter, newline):
    tmp_path = tmp_path_factory.mktemp("prop")
    path = write(tmp_path, to_csv([["id", "a", "b"], *rows], delimiter, newline))
    summary = csv_to_text_parquet(path, tmp_path / "t.parquet", "utf-8", delimiter)
    assert summary.row_count == len(rows)
    table = pq.read_table(tmp_path / "t.parquet", columns=["id", "a", "b"])
    assert [list(r.values()) for r in table.to_pylist()] == rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_cell, min_size=2, max_size=2), min_size=1, max_size=8),
    bad_at=st.integers(min_value=0, max_value=8),
)
def test_a_ragged_row_is_reported_at_the_line_an_editor_shows(tmp_path_factory, rows, bad_at):
    tmp_path = tmp_path_factory.mktemp("prop")
    bad_at = min(bad_at, len(rows))
    before = to_csv([["id", "a"], *rows[:bad_at]])
    # lines end at \n, \r\n or a lone \r (inside quoted values too), as in editors
    expected_line = before.replace("\r\n", "\n").count("\n") + before.replace("\r\n", "\n").count("\r") + 1
    path = write(tmp_path, before + to_csv([["x", "y", "z"], *rows[bad_at:]]))
    with pytest.raises(CsvError) as caught:
        csv_to_text_parquet(path, tmp_path / "t.parquet", "utf-8", ",")
    assert (caught.value.code, caught.value.line) == ("ragged_row", expected_line)


def test_the_ingest_package_never_imports_django():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "import sys, datasets.ingest; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env={"PATH": ""}, check=False).returncode == 0
