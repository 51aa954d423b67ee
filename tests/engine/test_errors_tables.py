"""The same bad table gives the same error, whichever module reads it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import InvalidInput, MissingColumn, NotNumeric, SingleClass
from engine.ml import logistic
from engine.ml import preprocessing as prep
from engine.ml import tree as T
from engine.ml.columns import label_vector

TABLE = pd.DataFrame({
    "id": ["a", "b", "c", "d"],
    "age": [30.0, 41.0, 52.0, 29.0],
    "region": ["north", "south", "east", "north"],
    "y": [1, 1, 1, 1],
})

FEATURE_READERS = {
    "logistic": lambda frame, columns: logistic.feature_matrix(frame, columns, input="data"),
    "tree": lambda frame, columns: T.feature_matrix(frame, columns, input="data"),
    "preprocessing": lambda frame, columns: prep.fit(frame, columns=columns, numeric_columns=columns),
}

LABEL_READERS = {
    "logistic": lambda frame: logistic.binary_labels(frame, "y"),
    "logistic, central": lambda frame: logistic.fit(frame[["age"]].to_numpy(), frame["y"].to_numpy()),
    "tree, central": lambda frame: T.train(frame[["age"]], frame["y"].to_numpy(), T.BoostParams()),
    "shared": lambda frame: label_vector(frame, "y"),  # secureboost, split and binning read labels so
}


def raised(read) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        read()
    return info.value


@pytest.mark.parametrize("reader", FEATURE_READERS.values(), ids=FEATURE_READERS.keys())
def test_a_missing_column_is_the_same_error_everywhere(reader):
    error = raised(lambda: reader(TABLE, ["age", "salary"]))
    assert type(error) is MissingColumn
    assert (error.column, error.input) == ("salary", "data")
    assert str(error) == "input 'data' has no column 'salary'"


@pytest.mark.parametrize("reader", FEATURE_READERS.values(), ids=FEATURE_READERS.keys())
def test_a_text_column_is_the_same_error_everywhere(reader):
    error = raised(lambda: reader(TABLE, ["age", "region"]))
    assert type(error) is NotNumeric
    assert (error.column, error.input) == ("region", "data")
    assert str(error).startswith("column 'region' of input 'data' must hold numbers: ")


@pytest.mark.parametrize("reader", LABEL_READERS.values(), ids=LABEL_READERS.keys())
def test_a_one_class_label_is_the_same_error_everywhere(reader):
    error = raised(lambda: reader(TABLE))
    assert type(error) is SingleClass
    assert (error.column, error.input) == ("y", "data")
    assert str(error).startswith("label column 'y' of input 'data' holds a single class: ")


def test_labels_other_than_zero_and_one_are_refused_alike():
    bad = TABLE.assign(y=[0, 2, 1, 0])
    errors = [raised(lambda: read(bad)) for read in (LABEL_READERS["logistic"], LABEL_READERS["shared"])]
    assert {type(e) for e in errors} == {NotNumeric}
    assert all(str(e).startswith("column 'y' of input 'data' must hold 0/1 labels") for e in errors)
    assert np.array_equal(logistic.binary_labels(TABLE.assign(y=[0, 1, 1, 0]), "y"), [0, 1, 1, 0])
