"""Local preprocessing: fitted on training rows, stored in the model, applied unchanged later."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from engine.components.preprocess import preprocess
from engine.errors import AllMissingColumn, ConstantColumn, InvalidParameters, MissingColumn, NotNumeric
from engine.federation import InMemoryTransport, run_local
from engine.ml import model_io
from engine.ml import preprocessing as prep
from engine.ml.columns import numeric_values
from engine.samples import credit_table


def document(body, role="guest"):
    return model_io.build(component="preprocess", component_version="1.0.0", role=role, model_id="m",
                          params={}, body=body)


@pytest.fixture(scope="module")
def credit():
    return credit_table(2000, seed=5)


# ----------------------------------------------------------------- functions


def test_text_columns_whose_values_all_parse_as_numbers_are_numeric_and_blanks_are_missing(credit):
    assert credit["income"].dtype == object  # "" marks the gaps
    assert prep.infer_numeric(credit["income"]) and not prep.infer_numeric(credit["region"])
    values = numeric_values(credit["income"])
    assert np.isnan(values).sum() == credit["income"].eq("").sum() > 0


def test_mean_filling_and_standard_scaling_match_scikit_learn(credit):
    frame = credit[["id", "income", "age"]]
    body = prep.fit(frame, scaling="standard")
    out = prep.transform(body, frame)
    numbers = np.column_stack([numeric_values(credit["income"]), credit["age"].astype(float)])
    expected = StandardScaler().fit_transform(SimpleImputer(strategy="mean").fit_transform(numbers))
    assert np.allclose(out[["income", "age"]].to_numpy(), expected, rtol=0, atol=1e-12)
    assert list(out.columns) == ["id", "income", "age"] and out["id"].tolist() == credit["id"].tolist()


def test_median_filling_quantile_clipping_and_min_max_scaling_match_numpy_and_scikit_learn(credit):
    frame = credit[["id", "income"]]
    body = prep.fit(frame, numeric_fill="median", clip_quantiles=(0.05, 0.95), scaling="minmax")
    spec = body["columns"][0]
    observed = numeric_values(credit["income"])
    observed = observed[~np.isnan(observed)]
    assert spec["fill"] == np.median(observed)
    assert spec["clip"] == [np.quantile(observed, 0.05), np.quantile(observed, 0.95)]
    filled = np.where(np.isnan(numeric_values(credit["income"])), spec["fill"], numeric_values(credit["income"]))
    expected = MinMaxScaler().fit_transform(np.clip(filled, *spec["clip"]).reshape(-1, 1)).ravel()
    assert np.allclose(prep.transform(body, frame)["income"], expected, rtol=0, atol=1e-12)


def test_one_hot_encoding_keeps_the_most_frequent_categories_and_sends_the_rest_and_unseen_ones_to_other():
    train = pd.DataFrame({"id": list("abcdefg"), "city": ["x", "y", "x", "z", "x", "y", None]})
    body = prep.fit(train, max_categories=2)
    spec = body["columns"][0]
    assert spec["categories"] == ["x", "y"] and spec["fill"] == "x"
    assert body["output_columns"] == ["id", "city=x", "city=y", "city=__other__"]
    scoring = pd.DataFrame({"id": ["p", "q", "r", "s"], "city": ["y", "z", "never-seen", None]})
    out = prep.transform(body, scoring)
    assert out[["city=x", "city=y", "city=__other__"]].to_numpy().tolist() == [
        [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0]]
    no_other = prep.transform(prep.fit(train, max_categories=2, other_bucket=False, categorical_fill="none"),
                              scoring)
    assert no_other.drop(columns="id").to_numpy().tolist() == [[0, 1], [0, 0], [0, 0], [0, 0]]


def test_a_constant_fill_value_becomes_a_category_of_its_own():
    train = pd.DataFrame({"id": ["1", "2", "3"], "c": ["a", None, "a"]})
    body = prep.fit(train, categorical_fill="constant", categorical_fill_value="unknown")
    assert body["output_columns"] == ["id", "c=a", "c=unknown", "c=__other__"]


def test_apply_model_gives_the_fit_time_columns_in_order_even_when_the_scoring_table_differs(credit):
    train = credit.rename(columns={"default": "y"})
    body = prep.fit(train, passthrough=["y"], scaling="standard", max_categories=3)
    fitted = document(body)
    reloaded = model_io.loads(model_io.dumps(fitted), component="preprocess")
    scoring = train.drop(columns="y").iloc[::-1].assign(extra=1)[list(reversed(train.columns.drop("y")))]
    out = prep.apply_model(reloaded, scoring.assign(extra=1))
    assert list(out.columns) == [c for c in body["output_columns"] if c != "y"]
    same_rows = prep.apply_model(fitted, train).set_index("id").loc[out["id"]].drop(columns="y")
    assert np.array_equal(out.drop(columns="id").to_numpy(), same_rows.to_numpy())  # exact, bit for bit


def test_apply_model_names_a_missing_column_and_refuses_other_models(credit):
    body = prep.fit(credit[["id", "age", "region"]])
    with pytest.raises(MissingColumn, match="'region'"):
        prep.apply_model(document(body), credit[["id", "age"]])
    other = model_io.build(component="hetero_lr", component_version="1", role="guest", model_id="m", params={},
                           body={})
    with pytest.raises(model_io.ModelFormatError, match="hetero_lr model, not preprocess"):
        prep.apply_model(other, credit)


def test_all_missing_and_constant_columns_are_refused_by_name_unless_dropped_or_kept():
    frame = pd.DataFrame({"id": ["1", "2", "3"], "gone": [np.nan] * 3, "flat": [2.0] * 3, "ok": [1.0, 2.0, 4.0]})
    with pytest.raises(AllMissingColumn, match="'gone'"):
        prep.fit(frame)
    with pytest.raises(ConstantColumn, match="'flat' of input 'data' is constant"):
        prep.fit(frame.drop(columns="gone"), scaling="standard")
    assert prep.fit(frame.drop(columns="gone"))["columns"][0]["fill"] == 2.0  # constant is fine unscaled
    dropped = prep.fit(frame, scaling="standard", degenerate_columns="drop")
    assert dropped["output_columns"] == ["id", "ok"]
    assert [d["name"] for d in dropped["dropped"]] == ["gone", "flat"]
    kept = prep.transform(prep.fit(frame, scaling="standard", degenerate_columns="keep"), frame)
    assert kept["flat"].tolist() == [0.0, 0.0, 0.0] and kept["gone"].isna().all()


def test_a_column_forced_numeric_must_parse_and_a_forced_categorical_is_one_hot_encoded():
    frame = pd.DataFrame({"id": ["1", "2"], "code": [10, 20], "text": ["a", "b"]})
    with pytest.raises(NotNumeric, match="'text'"):
        prep.fit(frame, numeric_columns=["text"])
    assert prep.fit(frame, categorical_columns=["code"])["output_columns"][1:3] == ["code=10", "code=20"]


# ----------------------------------------------------------------- component


def test_each_party_fits_on_its_own_columns_and_no_message_crosses(credit):
    transport = InMemoryTransport()
    pushed = []
    original = transport.push
    transport.push = lambda *args: (pushed.append(args[3]), original(*args))
    guest = credit[["id", "default", "age", "income", "region"]]
    host = credit[["id", "education", "debt_ratio"]]
    out = run_local(preprocess, {"label_column": "default", "scaling": "standard", "max_categories": 3},
                    {"guest": {"data": guest}, "host": {"data": host}}, transport=transport)
    assert pushed == []
    assert list(out["guest"]["data"].columns)[:3] == ["id", "default", "age"]
    assert out["guest"]["data"]["default"].tolist() == guest["default"].tolist()
    assert list(out["host"]["data"].columns) == ["id", "education=bachelor", "education=secondary",
                                                 "education=master", "education=__other__", "debt_ratio"]
    for role in ("guest", "host"):
        model = model_io.loads(model_io.dumps(out[role]["model"]), component="preprocess", role=role)
        assert model["body"]["output_columns"] == list(out[role]["data"].columns)
        json.dumps(out[role]["metrics"], allow_nan=False)


def test_a_model_input_applies_the_training_fit_unchanged_to_validation_rows(credit):
    train, valid = credit.iloc[:1500], credit.iloc[1500:]
    params = {"label_column": "default", "scaling": "minmax", "numeric_fill": "median"}
    fitted = run_local(preprocess, params, {"guest": {"data": train}, "host": {"data": train[["id", "age"]]}})
    # Different parameters at scoring time are ignored: the model decides.
    scored = run_local(preprocess, {**params, "scaling": "standard"},
                       {"guest": {"data": valid, "model": fitted["guest"]["model"]},
                        "host": {"data": valid[["id", "age"]], "model": fitted["host"]["model"]}})
    expected = prep.apply_model(fitted["guest"]["model"], valid)
    assert scored["guest"]["data"].equals(expected)
    assert scored["guest"]["model"] == fitted["guest"]["model"] and scored["guest"]["metrics"]["fitted"] is False
    with pytest.raises(model_io.ModelFormatError, match="host's half"):
        run_local(preprocess, params, {"guest": {"data": valid, "model": fitted["host"]["model"]},
                                       "host": {"data": valid[["id", "age"]]}})


def test_clipping_needs_both_quantiles():
    with pytest.raises(InvalidParameters, match="clip_upper_quantile"):
        preprocess.validate_params({"clip_lower_quantile": 0.01})
