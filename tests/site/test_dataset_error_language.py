"""A malformed upload's problem reads in the reader's language, on the page and in the API.

Validation runs in a worker whose language is the site's, not the reader's, so the
problem is stored as its code and parameters and worded when it is shown. Datasets
that failed before the parameters were kept still show the English they stored.
"""

import html
import re

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from datasets.ingest import CsvError
from datasets.ingest.messages import _WRITERS, describe, english

pytestmark = pytest.mark.django_db

BAD_CSV = "id,y\n1,0\n2\n"  # line 3 has one value, the header two columns
ENGLISH = "Line 3 has 1 value but the header has 2 columns. Check that the values are separated by the comma (,)."
CHINESE = "第 3 行有 1 个值，但表头有 2 列。请检查各个值是否用逗号（,）分隔。"


def _user(django_user_model, username, language):
    return django_user_model.objects.create_user(username=username, password="pw-不重要-123", role="admin",
                                                 language=language)


def _error_box(client, dataset) -> str:
    # The browser asks for English: the user's own language must win.
    page = client.get(f"/datasets/{dataset.pk}/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    box = re.search(r'<div class="error-box" role="alert" data-testid="error">(.*?)</div>', page, re.S)
    assert box, page
    return html.unescape(box.group(1))


def _api_error(dataset, language: str) -> dict:
    api = APIClient()
    api.force_authenticate(dataset.owner)
    body = api.get(f"/api/datasets/{dataset.pk}/", HTTP_ACCEPT_LANGUAGE=language).json()
    return body["error"]


def test_a_chinese_user_reads_the_problem_in_chinese(django_user_model, make_dataset, client_as):
    reader = _user(django_user_model, "李分析", "zh-hans")
    dataset = make_dataset(reader, BAD_CSV, name="坏文件")
    assert dataset.status == "failed" and dataset.error_code == "ragged_row"
    # English stays on the row for logs and old clients; the parameters word it again.
    assert dataset.error_message == ENGLISH
    assert dataset.error_params["line"] == 3 and dataset.error_params["delimiter"] == ","

    box = _error_box(client_as(reader), dataset)
    assert CHINESE in box
    assert ENGLISH not in box and "but the header has" not in box

    error = _api_error(dataset, "zh-Hans")
    assert error == {"code": "ragged_row", "message": CHINESE, "line": 3, "column": None}
    # A browser session is in the user's own language, whatever the browser asks for.
    session_body = client_as(reader).get(f"/api/datasets/{dataset.pk}/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert session_body["error"]["message"] == CHINESE


def test_an_english_user_reads_it_in_english_even_if_the_check_ran_in_chinese(django_user_model, make_dataset,
                                                                            client_as):
    reader = _user(django_user_model, "alice", "en")
    with translation.override("zh-hans"):  # the worker's language does not decide
        dataset = make_dataset(reader, BAD_CSV)
    assert dataset.error_message == ENGLISH

    box = _error_box(client_as(reader), dataset)
    assert ENGLISH in box and CHINESE not in box
    assert _api_error(dataset, "en")["message"] == ENGLISH


def test_an_old_dataset_without_parameters_shows_its_stored_english(django_user_model, make_dataset, client_as):
    from datasets.models import Dataset

    reader = _user(django_user_model, "王经理", "zh-hans")
    dataset = make_dataset(reader, BAD_CSV)
    old_text = "Line 3 has 1 value but the header has 2 columns."  # as an older version stored it
    Dataset.objects.filter(pk=dataset.pk).update(error_params=None, error_message=old_text)
    dataset.refresh_from_db()

    box = _error_box(client_as(reader), dataset)
    assert old_text in box
    assert _api_error(dataset, "zh-Hans")["message"] == old_text


def test_a_crashed_check_is_worded_for_the_reader_too(django_user_model, make_dataset, client_as):
    reader = _user(django_user_model, "赵查看", "zh-hans")
    dataset = make_dataset(reader, BAD_CSV)
    dataset.fail("internal_error")
    dataset.save()
    assert dataset.error_message.startswith("Something went wrong while checking this file.")
    assert "检查此文件时出了问题" in _error_box(client_as(reader), dataset)


# Parameters for every code a dataset can fail with, as the ingest code stores them.
SAMPLES = {
    "empty_file": {"blank": True},
    "not_csv": {"kind": "xlsx"},
    "unknown_encoding": {"encoding": "klingon"},
    "encoding_not_detected": {"line": 7},
    "bad_encoding": {"line": 2, "encoding": "GBK/GB18030"},
    "bad_delimiter": {},
    "nul_byte": {"line": 3},
    "no_rows": {"line": 1},
    "empty_column_name": {"index": 3, "line": 1, "trailing": True, "delimiter": "\t"},
    "duplicate_column_name": {"column": "城市", "line": 1, "first": 2, "second": 3},
    "ragged_row": {"line": 3, "end": 4, "values": 3, "columns": 2, "delimiter": ";", "blank": False},
    "unbalanced_quote": {"line": 2},
    "bad_quote": {"line": 2, "column": "a"},
    "value_too_long": {"line": 2, "limit": 131072},
    "too_many_rows": {"limit": 1_000_000, "line": 1_000_002},
    "empty_id": {"line": 3, "column": "id"},
    "not_a_number": {"line": 3, "column": "x", "value": "abc", "too_large": False},
    "unknown_column": {"role": "label", "column": "nope"},
    "column_role_conflict": {"conflict": "id_feature", "column": "id"},
    "bad_column_type": {"column": "x", "type": "float"},
    "no_columns": {},
    "not_a_dataset": {},
    "export_encoding": {"character": "𠀀", "encoding": "latin-1"},
    "internal_error": {},
    "version_columns": {"version": 2, "id_missing": None, "label_missing": "y", "missing": ["age"], "missing_count": 1,
                        "extra": ["年龄", "city"], "extra_count": 2},
}


def test_every_code_has_a_sample():
    assert set(SAMPLES) == set(_WRITERS)


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_every_problem_has_chinese_words(code):
    params = SAMPLES[code]
    with translation.override("en"):
        assert describe(code, params) == english(code, params)
    with translation.override("zh-hans"):
        chinese = describe(code, params)
    assert chinese != english(code, params)
    assert re.search(r"[\u4e00-\u9fff]", chinese), chinese
    assert "%(" not in chinese


# A value over the cell limit is worded three ways: found unquoted (or quoted on one line), found
# behind a quote that runs over many lines, or kept by an older version without the value's details.
TOO_LONG = [
    {"line": 3, "column": "text", "limit": 131072, "length": 3_000_000, "quoted": False, "end": 3},
    {"line": 3, "column": "text", "limit": 131072, "length": 600_000, "quoted": True, "end": 300_003},
    {"line": 2, "limit": 131072},
]


@pytest.mark.parametrize("params", TOO_LONG, ids=["unquoted", "quote-runs-on", "older"])
def test_a_value_over_the_cell_limit_states_the_limit_in_both_languages(params):
    with translation.override("en"):
        words = describe("value_too_long", params)
    assert "131,072" in words
    assert ("quote" in words) == (params.get("end", 0) > params["line"]), words
    with translation.override("zh-hans"):
        chinese = describe("value_too_long", params)
    assert "131,072" in chinese and re.search(r"[\u4e00-\u9fff]", chinese) and "%(" not in chinese, chinese
    assert ("引号" in chinese) == (params.get("end", 0) > params["line"]), chinese


def test_the_error_carries_its_parameters_and_its_english():
    error = CsvError("bad_quote", {"line": 4, "detail": "odd"}, line=4)
    assert error.params == {"line": 4, "detail": "odd"}
    assert error.message == str(error) == 'Line 4: the row could not be read (odd). Check the quotes (") on this line.'


def test_unknown_codes_and_unusable_parameters_fall_back_to_the_stored_text():
    with translation.override("zh-hans"):
        assert describe("from_a_newer_version", {"line": 1}, fallback="stored") == "stored"
        assert describe("ragged_row", {"line": 3}, fallback="stored") == "stored"
        assert describe("ragged_row", None, fallback="stored") == "stored"
