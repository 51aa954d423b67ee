"""Schema guessing and typing, and the statistics and preview shown to users."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets.ingest import (
    MISSING_VALUES,
    CsvError,
    Schema,
    apply_schema,
    column_stats,
    ingest_csv,
    preview,
)
from datasets.ingest.values import NUMBER_PATTERN, is_number, null_where


def ingest(tmp_path, content, **kwargs):
    path = tmp_path / "upload.csv"
    path.write_text(content, encoding="utf-8")
    return ingest_csv(path, tmp_path / "text.parquet", typed_parquet_path=tmp_path / "data.parquet", **kwargs)


def reapply(result, schema, tmp_path, name="retyped.parquet"):
    out = tmp_path / name
    report = apply_schema(result.text_parquet, out, schema)
    return report, pq.read_table(out)


def schema_failure(result, schema, tmp_path, code, *, line=None, column=None) -> CsvError:
    with pytest.raises(CsvError) as caught:
        apply_schema(result.text_parquet, tmp_path / "retyped.parquet", schema)
    error = caught.value
    assert (error.code, error.line, error.column) == (code, line, column), error
    if line is not None:
        assert f"Line {line}" in error.message
    if column is not None:
        assert column in error.message
    assert not (tmp_path / "retyped.parquet").exists()
    return error


BANK = "客户编号,age,income,city,is_bad\n0012345,30,5000.5,北京,0\nNA,NA,,上海,1\n007 ,41,-20,北京,0\nA9,-,1e3,,1\n"


# --------------------------------------------------------------------------- guesses


def test_guesses_id_by_name_label_by_name_and_feature_types_by_values(tmp_path):
    result = ingest(tmp_path, BANK)
    assert result.schema == Schema("客户编号", "is_bad", {"age": "numeric", "income": "numeric", "city": "categorical"})
    assert result.columns == [
        {"name": "客户编号", "role": "id", "type": "text"},
        {"name": "age", "role": "feature", "type": "numeric"},
        {"name": "income", "role": "feature", "type": "numeric"},
        {"name": "city", "role": "feature", "type": "categorical"},
        {"name": "is_bad", "role": "label", "type": "numeric"},
    ]


def test_without_an_id_like_name_the_first_unique_column_is_the_id(tmp_path):
    result = ingest(tmp_path, "grade,code,score\nA,x1,1\nA,x2,2\nB,x3,3\n")
    assert result.schema.id_column == "code"
    assert result.schema.label_column is None


def test_an_id_like_name_with_empty_values_is_not_guessed(tmp_path):
    result = ingest(tmp_path, "id,code\n1,a\n,b\n")
    assert result.schema.id_column == "code"


def test_when_no_column_can_be_the_id_the_user_is_told(tmp_path):
    result = ingest(tmp_path, "a,b\n1,2\n1,2\n")
    assert result.schema.id_column is None
    assert any("No id column" in w for w in result.warnings)


def test_a_label_named_column_that_is_not_numeric_stays_a_feature(tmp_path):
    result = ingest(tmp_path, "id,label\n1,good\n2,bad\n")
    assert result.schema.label_column is None
    assert result.schema.features == {"label": "categorical"}


def test_every_documented_missing_token_leaves_a_column_numeric(tmp_path):
    rows = "".join(f"{i},{token}\n" for i, token in enumerate(MISSING_VALUES)) + "99,1.5\n"
    result = ingest(tmp_path, "id,x\n" + rows)
    assert result.schema.features == {"x": "numeric"}
    values = pq.read_table(result.typed_parquet).column("x").to_pylist()
    assert values == [None] * len(MISSING_VALUES) + [1.5]


def test_a_column_of_only_missing_values_is_categorical(tmp_path):
    assert ingest(tmp_path, "id,x\n1,NA\n2,\n").schema.features == {"x": "categorical"}


def test_the_caller_can_fix_roles_and_types_at_ingest(tmp_path):
    result = ingest(tmp_path, BANK, id_column="客户编号", label_column=None, features={"age": "categorical"})
    assert result.schema == Schema("客户编号", "is_bad", {"age": "categorical"})  # label None → still guessed
    assert pq.read_table(result.typed_parquet).column_names == ["客户编号", "age", "is_bad"]


# --------------------------------------------------------------------------- typing


def test_ids_stay_text_exactly_as_written_and_features_are_typed(tmp_path):
    result = ingest(tmp_path, BANK)
    table = pq.read_table(result.typed_parquet)
    assert table.schema.field("客户编号").type == pa.string()
    assert table.column("客户编号").to_pylist() == ["0012345", "NA", "007 ", "A9"]
    assert table.schema.field("age").type == pa.float64()
    assert table.column("age").to_pylist() == [30.0, None, 41.0, None]
    assert table.column("income").to_pylist() == [5000.5, None, -20.0, 1000.0]
    assert table.column("city").to_pylist() == ["北京", "上海", "北京", None]
    assert table.column("is_bad").to_pylist() == [0.0, 1.0, 0.0, 1.0]


def test_a_non_number_in_a_numeric_column_names_line_column_and_value(tmp_path):
    result = ingest(tmp_path, BANK)
    error = schema_failure(
        result, Schema("客户编号", None, {"city": "numeric"}), tmp_path, "not_a_number", line=2, column="city"
    )
    assert "“北京”" in error.message


def test_the_offending_value_is_escaped_and_shortened_in_the_message(tmp_path):
    long_value = "x\t" + "y" * 100
    result = ingest(tmp_path, f'id,v\n1,2\n2,"{long_value}"\n', features={"v": "categorical"})
    error = schema_failure(result, Schema("id", None, {"v": "numeric"}), tmp_path, "not_a_number", line=3, column="v")
    assert "“x\\tyyyy" in error.message and "…”" in error.message
    assert "y" * 60 not in error.message


def test_a_number_too_large_for_a_double_is_not_a_number(tmp_path):
    result = ingest(tmp_path, "id,v\n1,1e999\n", features={"v": "categorical"})
    error = schema_failure(result, Schema("id", None, {"v": "numeric"}), tmp_path, "not_a_number", line=2, column="v")
    assert "too large" in error.message


@pytest.mark.parametrize("value", ["1,000", " 12", "12 ", "inf", "0x1F", "1e", "１２", "1_000"])
def test_values_that_only_look_like_numbers_are_not_numbers(tmp_path, value):
    result = ingest(tmp_path, f'id,v\n1,5\n2,"{value}"\n', features={"v": "categorical"})
    schema_failure(result, Schema("id", None, {"v": "numeric"}), tmp_path, "not_a_number", line=3, column="v")


def test_an_empty_id_is_an_error_naming_its_line(tmp_path):
    result = ingest(tmp_path, "id,code,x\n1,a,1\n2,,2\n3, ,3\n")
    error = schema_failure(result, Schema("code", None, {"x": "numeric"}), tmp_path, "empty_id", line=3, column="code")
    assert "match" in error.message  # says why: ids are how rows are matched


def test_an_empty_id_chosen_at_ingest_fails_the_import(tmp_path):
    with pytest.raises(CsvError) as caught:
        ingest(tmp_path, "id,x\n1,1\n\u3000,2\n", id_column="id")  # a full-width space is blank too
    assert (caught.value.code, caught.value.line) == ("empty_id", 3)


def test_duplicated_ids_are_reported_with_examples_not_fatal(tmp_path):
    rows = "a,1\nb,2\na,3\nc,4\na,5\nb,6\n"
    result = ingest(tmp_path, "id,x\n" + rows)
    assert result.row_count == 6
    assert result.report["duplicate_ids"] == {
        "values": 2,
        "extra_rows": 3,
        "examples": [{"id": "a", "count": 3, "lines": [2, 4, 6]}, {"id": "b", "count": 2, "lines": [3, 7]}],
    }
    assert any("2 id values appear more than once (3 extra rows)" in w for w in result.warnings)


def test_label_classes_and_missing_labels_are_reported(tmp_path):
    result = ingest(tmp_path, "id,y\n1,0\n2,1\n3,1\n4,NA\n")
    assert result.report["label_classes"] == [{"value": 0, "count": 1}, {"value": 1, "count": 2}]
    assert result.report["label_missing"] == 1


def test_a_schema_naming_an_unknown_column_is_refused(tmp_path):
    result = ingest(tmp_path, BANK)
    schema_failure(result, Schema("客户编号", None, {"salary": "numeric"}), tmp_path, "unknown_column", column="salary")


def test_a_column_cannot_be_both_id_and_label(tmp_path):
    result = ingest(tmp_path, BANK)
    schema_failure(result, Schema("age", "age", {}), tmp_path, "column_role_conflict", column="age")


def test_a_column_cannot_be_both_label_and_feature(tmp_path):
    result = ingest(tmp_path, BANK)
    schema_failure(
        result, Schema("客户编号", "is_bad", {"is_bad": "numeric"}), tmp_path, "column_role_conflict", column="is_bad"
    )


def test_a_feature_type_must_be_numeric_or_categorical(tmp_path):
    result = ingest(tmp_path, BANK)
    schema_failure(result, Schema("客户编号", None, {"age": "integer"}), tmp_path, "bad_column_type", column="age")


def test_a_schema_must_select_some_column(tmp_path):
    result = ingest(tmp_path, BANK)
    schema_failure(result, Schema(None, None, {}), tmp_path, "no_columns")


def test_an_id_only_dataset_is_fine_for_set_intersection(tmp_path):
    result = ingest(tmp_path, "phone\n13800000000\n13900000000\n")
    assert result.schema == Schema("phone", None, {})
    assert pq.read_table(result.typed_parquet).column_names == ["phone"]


def test_an_unknown_column_given_at_ingest_fails_before_any_work(tmp_path):
    with pytest.raises(CsvError) as caught:
        ingest(tmp_path, BANK, id_column="nope")
    assert (caught.value.code, caught.value.column) == ("unknown_column", "nope")


def test_changing_the_schema_later_retypes_from_the_text_file(tmp_path):
    result = ingest(tmp_path, BANK)
    schema = Schema("客户编号", None, {"age": "categorical", "is_bad": "categorical"})
    report, table = reapply(result, schema, tmp_path)
    assert table.column_names == ["客户编号", "age", "is_bad"]
    assert table.column("age").to_pylist() == ["30", None, "41", None]  # missing → null, text as written
    assert report.row_count == 4 and report.label_classes is None


def test_schema_round_trips_through_the_columns_list(tmp_path):
    result = ingest(tmp_path, BANK)
    assert Schema.from_columns(result.columns) == result.schema
    assert Schema.from_dict(json.loads(json.dumps(result.schema.to_dict()))) == result.schema


def test_nulling_values_works_on_sliced_string_arrays():
    # pyarrow 22's if_else with a null scalar corrupts sliced string arrays; null_where must not.
    values = pa.array(["a", "bb", "ccc", "dddd", "eeeee"]).slice(1, 3)
    out = null_where(values, pa.array([False, True, False]))
    out.validate(full=True)
    assert out.to_pylist() == ["bb", None, "dddd"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789+-.eEinfaINFA_, x٣１")), max_size=8))
def test_pyarrow_parses_finitely_exactly_the_strings_the_number_rule_accepts(text):
    # The column-type guess relies on pyarrow's cast; apply_schema on the number pattern.
    try:
        value = pc.cast(pa.array([text]), pa.float64())[0].as_py()
        parsed = math.isfinite(value)
    except pa.ArrowInvalid:
        parsed = False
    overflow = is_number(text) and not parsed and "e" in text.lower()
    assert parsed == is_number(text) or overflow
    assert pc.match_substring_regex(pa.array([text]), NUMBER_PATTERN)[0].as_py() == is_number(text)


# --------------------------------------------------------------------------- statistics


def numbers_file(tmp_path, n=2_000, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n).round(4)
    k = rng.integers(0, 5, n)
    lines = ["id,x,k,y"]
    for i in range(n):
        xv = "NA" if i % 37 == 0 else repr(float(x[i]))
        lines.append(f"u{i},{xv},{'abcde'[k[i]]},{i % 2}")
    result = ingest(tmp_path, "\n".join(lines) + "\n")
    frame = pd.read_csv(
        tmp_path / "upload.csv", dtype={"id": str, "k": str}, keep_default_na=False, na_values={"x": ["NA"]}
    )
    return result, frame


def col(stats, name):
    return next(c for c in stats["columns"] if c["name"] == name)


def test_numeric_statistics_equal_pandas(tmp_path):
    result, frame = numbers_file(tmp_path)
    x = frame["x"]
    got = col(result.stats, "x")
    assert got["type"] == "numeric" and got["role"] == "feature"
    assert got["count"] == x.count() and got["missing"] == x.isna().sum()
    assert got["missing_rate"] == pytest.approx(x.isna().mean())
    assert got["distinct"] == x.nunique()
    assert got["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert got["std"] == pytest.approx(x.std(), rel=1e-12)  # sample std, like pandas
    assert (got["min"], got["max"]) == (x.min(), x.max())
    for key, q in {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}.items():
        assert got["quantiles"][key] == pytest.approx(x.quantile(q), rel=1e-12)
    counts, edges = np.histogram(x.dropna(), bins=20)
    assert got["histogram"] == {"edges": pytest.approx(list(edges)), "counts": list(counts)}
    assert sum(got["histogram"]["counts"]) == got["count"]


def test_categorical_and_id_statistics_equal_pandas(tmp_path):
    result, frame = numbers_file(tmp_path)
    k = col(result.stats, "k")
    counts = frame["k"].value_counts()
    assert k["type"] == "categorical" and k["distinct"] == len(counts)
    assert {t["value"]: t["count"] for t in k["top_values"]} == counts.to_dict()
    assert [t["count"] for t in k["top_values"]] == sorted(counts.values, reverse=True)
    ident = col(result.stats, "id")
    assert (ident["role"], ident["type"], ident["distinct"], ident["missing"]) == ("id", "text", 2_000, 0)
    assert len(ident["top_values"]) == 10


def test_the_label_gets_numeric_statistics_and_classes(tmp_path):
    result, _ = numbers_file(tmp_path)
    y = col(result.stats, "y")
    assert y["role"] == "label" and y["mean"] == 0.5
    assert y["classes"] == [{"value": 0, "count": 1_000}, {"value": 1, "count": 1_000}]
    assert result.stats["row_count"] == 2_000


def test_top_values_are_at_most_ten_most_frequent_first(tmp_path):
    rows = "".join(f"{i},c{i % 15}\n" for i in range(150))
    stats = ingest(tmp_path, "id,c\n" + rows + "150,c3\n").stats
    top = col(stats, "c")["top_values"]
    assert len(top) == 10 and top[0] == {"value": "c3", "count": 11}


def test_statistics_never_contain_nan_or_infinity(tmp_path):
    result = ingest(tmp_path, "id,empty,one,c\n1,NA,5,\n2,,NA,\n")
    stats = result.stats
    text = json.dumps(stats, allow_nan=False)  # raises on NaN/inf
    assert "NaN" not in text
    empty = col(stats, "empty")
    assert empty["type"] == "categorical" and empty["missing_rate"] == 1.0 and empty["top_values"] == []
    one = col(stats, "one")
    assert one["mean"] == 5.0 and one["std"] is None  # one value: no sample std
    assert one["histogram"] == {"edges": [4.5, 5.5], "counts": [1]}


def test_stats_of_a_parquet_with_nan_and_infinity_stay_json_safe(tmp_path):
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "v": [1.0, float("nan"), float("inf"), None]}), path)
    stats = column_stats(path, Schema("id", None, {"v": "numeric"}))
    json.dumps(stats, allow_nan=False)
    v = col(stats, "v")
    assert v["missing"] == 2 and v["max"] == 1.0


def test_preview_gives_strings_only(tmp_path):
    result = ingest(tmp_path, BANK)
    shown = preview(result.typed_parquet, n=3)
    assert shown["columns"] == ["客户编号", "age", "income", "city", "is_bad"]
    assert shown["rows"] == [
        ["0012345", "30", "5000.5", "北京", "0"],
        ["NA", "", "", "上海", "1"],
        ["007 ", "41", "-20", "北京", "0"],
    ]
    assert all(isinstance(v, str) for row in shown["rows"] for v in row)


def test_preview_and_stats_of_the_text_file_hide_the_line_numbers(tmp_path):
    result = ingest(tmp_path, BANK)
    assert preview(result.text_parquet, n=1) == {
        "columns": ["客户编号", "age", "income", "city", "is_bad"],
        "rows": [["0012345", "30", "5000.5", "北京", "0"]],
    }
    assert [c["name"] for c in column_stats(result.text_parquet, result.schema)["columns"]] == result.header


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1, max_size=60))
def test_numeric_statistics_match_numpy_for_any_values(tmp_path_factory, values):
    tmp_path = tmp_path_factory.mktemp("stats")
    rows = "".join(f"{i},{v!r}\n" for i, v in enumerate(values))
    result = ingest(tmp_path, "id,v\n" + rows, features={"v": "numeric"})
    got = col(result.stats, "v")
    arr = np.array(values)
    assert got["mean"] == pytest.approx(arr.mean(), rel=1e-9, abs=1e-6)
    assert got["min"] == arr.min() and got["max"] == arr.max()
    assert got["quantiles"]["p50"] == pytest.approx(np.median(arr), rel=1e-9, abs=1e-6)
    assert sum(got["histogram"]["counts"]) == len(values)
    json.dumps(result.stats, allow_nan=False)
