"""infer_schema gives every column a role; coerce_frame fixes dtypes or names the bad cell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import ColumnNotFoundError, DataError, TargetError
from mlsmith.preprocess import DatetimeExpander
from mlsmith.schema import Schema, coerce_frame, infer_schema

WORDS = ("the quick brown fox jumps over a lazy dog while one cat sleeps on the warm sunny "
         "window sill").split()


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 50
    return pd.DataFrame({
        "num": rng.normal(size=n),
        "flag": rng.choice([True, False], size=n),
        "lowint": rng.integers(0, 4, size=n),
        "manyint": rng.integers(0, 1000, size=n),
        "when": pd.date_range("2021-01-01", periods=n, freq="37h").astype(str),
        "row_id": np.arange(n),
        "counter": np.arange(100, 100 + n)[::-1],
        "key": [f"k{i:04d}" for i in range(n)],
        "const": 7,
        "note": [" ".join(rng.choice(WORDS, size=8)) for _ in range(n)],
        "cat": rng.choice(["a", "b", "c"], size=n),
        "y": rng.normal(size=n),
    })


def roles(schema: Schema) -> dict[str, str]:
    return {c.name: c.role for c in schema.columns}


def test_roles(mixed_frame: pd.DataFrame) -> None:
    schema, notes = infer_schema(mixed_frame, "y")
    assert roles(schema) == {
        "num": "numeric",
        "flag": "categorical",
        "lowint": "categorical",
        "manyint": "numeric",
        "when": "datetime",
        "row_id": "id",
        "counter": "id",
        "key": "id",
        "const": "constant",
        "note": "text",
        "cat": "categorical",
    }
    assert schema.features == ["num", "flag", "lowint", "manyint", "when", "cat"]
    assert schema.target == "y" and "y" not in roles(schema)
    dropped = {c.name for c in schema.dropped}
    assert dropped == {"row_id", "counter", "key", "const", "note"}
    for name in dropped:
        assert any(f"column {name!r} dropped" in n for n in notes)


def test_categorical_details(mixed_frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(mixed_frame, "y")
    flag, lowint, cat = schema.column("flag"), schema.column("lowint"), schema.column("cat")
    assert flag.categories == [False, True] and flag.reason == "boolean"
    assert lowint.numeric_codes and lowint.categories == [0, 1, 2, 3]
    assert not cat.numeric_codes and cat.categories == ["a", "b", "c"]


def test_datetime_column_is_expanded(mixed_frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(mixed_frame, "y")
    assert schema.column("when").reason == "text parsed as dates"
    frame = mixed_frame[["when"]]
    exp = DatetimeExpander().fit(frame)
    out = exp.transform(frame)
    assert list(exp.get_feature_names_out()) == ["when_year", "when_month", "when_day",
                                                 "when_weekday", "when_hour"]
    stamp = pd.Timestamp(mixed_frame["when"].iloc[7])
    assert out[7].tolist() == [stamp.year, stamp.month, stamp.day, stamp.weekday(), stamp.hour]


def test_datetime_dtype_column() -> None:
    n = 30
    df = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=n, freq="D"),
                       "x": np.linspace(0, 1, n), "y": [0, 1] * 15})
    schema, _ = infer_schema(df, "y")
    assert schema.column("t").role == "datetime"


def test_small_tables_do_not_drop_unique_columns() -> None:
    # "unique per row" says nothing on a handful of rows
    df = pd.DataFrame({"a": [3, 1, 2, 5], "s": ["p", "q", "r", "s"], "y": [0, 1, 0, 1]})
    schema, _ = infer_schema(df, "y")
    assert schema.column("s").role == "categorical"


def test_all_missing_column_is_constant() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "m": [np.nan] * 4, "y": [0, 1, 0, 1]})
    schema, _ = infer_schema(df, "y")
    assert schema.column("m").role == "constant"
    assert schema.column("m").reason == "all values missing"


def test_user_drop() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "w": [4.0, 3.0, 2.0, 2.0], "y": [0, 1, 0, 1]})
    schema, _ = infer_schema(df, "y", drop=("w",))
    assert schema.features == ["x"]
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'w'"):
        infer_schema(df, "y", drop=("ww",))


def test_target_not_found_suggests_closest() -> None:
    df = pd.DataFrame({"species": ["a", "b"], "x": [1, 2]})
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'species'"):
        infer_schema(df, "specie")


def test_target_all_missing() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "y": [np.nan, np.nan]})
    with pytest.raises(TargetError, match="every row is missing"):
        infer_schema(df, "y")


def test_no_usable_feature() -> None:
    df = pd.DataFrame({"const": [1] * 30, "y": [0, 1] * 15})
    with pytest.raises(DataError, match="no usable feature column"):
        infer_schema(df, "y")


def test_schema_json_round_trip(mixed_frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(mixed_frame, "y")
    back = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert back.to_dict() == schema.to_dict()
    assert back.features == schema.features


# --- coerce_frame ---------------------------------------------------------------------------------
def test_numbers_stored_as_text_become_numbers() -> None:
    df = pd.DataFrame({"n": ["1", "2.5", None, "4"], "s": ["a", "b", "c", "d"]})
    out, notes = coerce_frame(df)
    assert out["n"].dtype == np.float64
    assert out["n"].tolist()[:2] == [1.0, 2.5]
    assert out["s"].tolist() == ["a", "b", "c", "d"]
    assert notes == []


def test_substantial_mix_is_categorical_with_note() -> None:
    values = [str(i) for i in range(20)] + ["red", "green", "blue", "red", "pink"] * 4
    df = pd.DataFrame({"m": values, "y": [0, 1] * 20})
    out, notes = coerce_frame(df)
    assert notes == ["column 'm' mixes numbers and text (50% numeric): treated as categorical"]
    assert all(isinstance(v, str) for v in out["m"])
    schema, _ = infer_schema(out, "y")
    assert schema.column("m").role == "categorical"


def test_single_stray_text_value_names_column_and_row() -> None:
    values = [str(float(i)) for i in range(40)]
    values[12] = "oops"
    df = pd.DataFrame({"n": values})
    with pytest.raises(DataError, match=r"column 'n' is numeric but row 13 holds the text 'oops'"):
        coerce_frame(df)


def test_excluded_columns_are_untouched() -> None:
    df = pd.DataFrame({"t": ["1", "2"]})
    out, _ = coerce_frame(df, exclude=("t",))
    assert out["t"].tolist() == ["1", "2"]
