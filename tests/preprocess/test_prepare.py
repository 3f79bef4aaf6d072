"""prepare_features brings raw rows to the schema's columns and dtypes, or names the bad cell."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import ColumnNotFoundError, DataError
from mlsmith.preprocess import InputWarning, prepare_features
from mlsmith.schema import infer_schema


@pytest.fixture
def schema_and_frame():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({
        "num": rng.normal(size=n),
        "code": rng.integers(1, 4, size=n),
        "flag": rng.choice([True, False], size=n),
        "cat": rng.choice(["a", "b"], size=n),
        "when": pd.date_range("2022-01-01", periods=n, freq="D").astype(str),
        "row_id": np.arange(n),
        "y": rng.integers(0, 2, size=n),
    })
    schema, _ = infer_schema(df, "y")
    return schema, df


def test_columns_and_dtypes(schema_and_frame) -> None:
    schema, df = schema_and_frame
    X = prepare_features(df, schema)
    assert list(X.columns) == ["num", "code", "flag", "cat", "when"]
    assert X["num"].dtype == np.float64
    assert X["code"].dtype == np.float64  # integer category codes stay numbers
    assert X["flag"].tolist()[:3] == [str(v) for v in df["flag"].tolist()[:3]]
    assert all(isinstance(v, str) for v in X["cat"])
    assert pd.api.types.is_datetime64_any_dtype(X["when"])


def test_text_numbers_and_missing_cells(schema_and_frame) -> None:
    schema, df = schema_and_frame
    raw = df.astype({"num": object}).copy()
    raw.loc[0, "num"] = "1.25"
    raw.loc[1, "num"] = None
    raw.loc[2, "cat"] = None
    X = prepare_features(raw, schema)
    assert X["num"].iloc[0] == 1.25 and np.isnan(X["num"].iloc[1])
    assert pd.isna(X["cat"].iloc[2])


def test_missing_column_is_named(schema_and_frame) -> None:
    schema, df = schema_and_frame
    with pytest.raises(ColumnNotFoundError, match="lacks column 'cat' that the model needs"):
        prepare_features(df.drop(columns=["cat"]), schema)
    renamed = df.rename(columns={"cat": "Cat"})
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'Cat'"):
        prepare_features(renamed, schema)


def test_extra_columns_are_ignored_with_a_warning(schema_and_frame) -> None:
    schema, df = schema_and_frame
    with pytest.warns(InputWarning, match=r"1 column\(s\) the model does not use, ignored: 'extra'"):
        X = prepare_features(df.assign(extra=1), schema)
    assert "extra" not in X.columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_features(df, schema)  # dropped (id) and target columns are known: no warning
        prepare_features(df.assign(extra=1), schema, warn_extra=False)


def test_text_in_numeric_column_names_column_and_row(schema_and_frame) -> None:
    schema, df = schema_and_frame
    raw = df.astype({"num": object}).copy()
    raw.loc[6, "num"] = "n/a?"
    raw.loc[9, "num"] = "later"
    with pytest.raises(DataError, match=r"column 'num' is numeric but row 7 of new rows holds "
                                        r"the text 'n/a\?'"):
        prepare_features(raw, schema, where="new rows")


def test_infinite_value_names_column_and_row(schema_and_frame) -> None:
    schema, df = schema_and_frame
    raw = df.copy()
    raw.loc[4, "num"] = -np.inf
    with pytest.raises(DataError, match=r"column 'num' holds an infinite value at row 5"):
        prepare_features(raw, schema)


def test_unseen_category_passes_through(schema_and_frame) -> None:
    schema, df = schema_and_frame
    X = prepare_features(df.assign(cat="never seen"), schema)
    assert set(X["cat"]) == {"never seen"}
