"""load_table: every supported source becomes the same DataFrame, or a one-line DataError."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsmith.data import SUPPORTED_SUFFIXES, check_finite, load_table
from mlsmith.errors import DataError, DataFileNotFoundError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "num": [1.5, 2.5, np.nan, 4.0],
        "count": [1, 2, 3, 4],
        "name": ["a", "b", None, "d"],
        "y": ["yes", "no", "yes", "no"],
    })


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.shape == want.shape
    np.testing.assert_allclose(got["num"].to_numpy(dtype=float), want["num"].to_numpy(dtype=float))
    assert got["count"].tolist() == want["count"].tolist()
    assert got["name"].isna().tolist() == want["name"].isna().tolist()
    assert got["name"].dropna().tolist() == want["name"].dropna().tolist()
    assert got["y"].tolist() == want["y"].tolist()


def test_csv(tmp_path: Path, frame: pd.DataFrame) -> None:
    p = tmp_path / "t.csv"
    frame.to_csv(p, index=False)
    _assert_same(load_table(p), frame)
    _assert_same(load_table(str(p)), frame)


def test_csv_gz(tmp_path: Path, frame: pd.DataFrame) -> None:
    p = tmp_path / "t.csv.gz"
    with gzip.open(p, "wt") as fh:
        frame.to_csv(fh, index=False)
    _assert_same(load_table(p), frame)


def test_tsv(tmp_path: Path, frame: pd.DataFrame) -> None:
    p = tmp_path / "t.tsv"
    frame.to_csv(p, sep="\t", index=False)
    _assert_same(load_table(p), frame)


def test_parquet(tmp_path: Path, frame: pd.DataFrame) -> None:
    p = tmp_path / "t.parquet"
    frame.to_parquet(p, index=False)
    _assert_same(load_table(p), frame)


def test_pandas_frame_is_copied(frame: pd.DataFrame) -> None:
    got = load_table(frame)
    _assert_same(got, frame)
    got.loc[0, "num"] = 99.0
    assert frame.loc[0, "num"] == 1.5


def test_pyarrow_table(frame: pd.DataFrame) -> None:
    pa = pytest.importorskip("pyarrow")
    _assert_same(load_table(pa.Table.from_pandas(frame, preserve_index=False)), frame)


def test_polars_frame(frame: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    _assert_same(load_table(pl.from_pandas(frame)), frame)


def test_dict_and_non_string_column_names() -> None:
    df = load_table({"a": [1, 2], 3: ["x", "y"]})
    assert list(df.columns) == ["a", "3"]


def test_extra_missing_markers_and_header_spaces(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(" a , b\n1,?\n2,NULL\n3,x\n")
    df = load_table(p)
    assert list(df.columns) == ["a", "b"]
    assert df["b"].isna().tolist() == [True, True, False]


def test_supported_suffixes_are_documented() -> None:
    assert {".csv", ".csv.gz", ".tsv", ".parquet"} <= set(SUPPORTED_SUFFIXES)


# --- errors ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="data file not found") as exc:
        load_table(tmp_path / "nope.csv")
    assert isinstance(exc.value, FileNotFoundError)


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        load_table(tmp_path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    p = tmp_path / "e.csv"
    p.write_text(content)
    with pytest.raises(DataError, match="is empty"):
        load_table(p)


def test_header_only(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("a,b\n")
    with pytest.raises(DataError, match="no data rows"):
        load_table(p)


def test_random_bytes_named_csv(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError, match="not a text table"):
        load_table(p)


def test_random_bytes_named_csv_gz(tmp_path: Path) -> None:
    p = tmp_path / "r.csv.gz"
    p.write_bytes(np.random.default_rng(1).bytes(4000))
    with pytest.raises(DataError, match="cannot read"):
        load_table(p)


@pytest.mark.parametrize("content", [b"", b"PAR1 this is not really parquet"], ids=["empty", "corrupt"])
def test_corrupt_parquet(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "c.parquet"
    p.write_bytes(content)
    with pytest.raises(DataError, match="c.parquet"):
        load_table(p)


def test_unsupported_suffix(tmp_path: Path) -> None:
    p = tmp_path / "t.xlsx"
    p.write_text("a\n1\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        load_table(p)


def test_duplicate_columns_csv(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        load_table(p)


def test_duplicate_columns_frame() -> None:
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])
    with pytest.raises(DataError, match="duplicate column names: 'a'"):
        load_table(df)


def test_unsupported_object() -> None:
    with pytest.raises(DataError, match="cannot use a list"):
        load_table([1, 2, 3])


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    p = tmp_path / "c.parquet"
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(DataError) as exc:
        load_table(p)
    assert "\n" not in str(exc.value)


# --- check_finite -------------------------------------------------------------------------------------
def test_check_finite_names_column_and_row() -> None:
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "bad": [1.0, np.nan, -np.inf]})
    with pytest.raises(DataError, match=r"column 'bad' holds an infinite value at row 3"):
        check_finite(df)
    check_finite(df, columns=["ok"])
