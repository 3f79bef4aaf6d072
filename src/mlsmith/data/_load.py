"""Turn a user's source (a path or an in-memory table) into a pandas DataFrame, or say why not."""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.errors import DataError, DataFileNotFoundError

__all__ = ["load_table", "SUPPORTED_SUFFIXES", "check_finite"]

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")

# Strings that mean "missing" in exported tables, on top of pandas' own list.
_EXTRA_NA = ["?", "NaN", "nan", "NULL", "null", "None", "none", "N/A", "n/a", "NA", ""]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is fine.
        if exc.start < len(head) - 4:
            try:
                head.decode("latin-1")
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
                return True
            printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
            return printable / max(len(head), 1) < 0.85
    return False


def _read_delimited(path: Path, sep: str, compressed: bool) -> pd.DataFrame:
    opener: Any = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(65536)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}. Check that it is a valid "
                        f"{'gzip-compressed ' if compressed else ''}text table.") from None
    if not head.strip():
        raise DataError(f"{path} is empty: it needs a header row and at least one data row.")
    if _looks_binary(head):
        raise DataError(f"{path} is not a text table (it holds binary data). "
                        f"Give a .csv, .tsv or .parquet file.")
    text = head.decode("utf-8", errors="replace")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    header = next(csv.reader(io.StringIO(first_line), delimiter=sep), [])
    header = [h.strip() for h in header]
    seen: set[str] = set()
    dupes = []
    for h in header:
        if h in seen and h not in dupes:
            dupes.append(h)
        seen.add(h)
    if dupes:
        raise DataError(f"{path} has duplicate column names: {', '.join(map(repr, dupes))}. "
                        f"Rename them so every column name is unique.")
    try:
        df = pd.read_csv(path, sep=sep, compression="gzip" if compressed else None,
                         na_values=_EXTRA_NA, keep_default_na=True, skipinitialspace=True,
                         low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header row and at least one data row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot parse {path} as a {'TSV' if sep == chr(9) else 'CSV'} table: "
                        f"{msg}. Check the delimiter and quoting.") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: it needs a header row and at least one data row.")
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path} as Parquet: {msg}.") from None
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{path} has duplicate column names: {', '.join(map(repr, dupes))}. "
                        f"Rename them so every column name is unique.")
    return table.to_pandas()


def _from_object(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        df = data
    elif type(data).__module__.startswith("polars"):
        df = data.to_pandas()
    elif type(data).__module__.startswith("pyarrow"):
        df = data.to_pandas()
    elif isinstance(data, dict):
        df = pd.DataFrame(data)
    else:
        raise DataError(f"cannot use a {type(data).__name__} as data: give a file path, a pandas "
                        f"DataFrame, a polars DataFrame or a pyarrow Table.")
    dupes = df.columns[df.columns.duplicated()].unique().tolist()
    if dupes:
        raise DataError(f"the table has duplicate column names: {', '.join(map(repr, dupes))}. "
                        f"Rename them so every column name is unique.")
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)
        dupes = df.columns[df.columns.duplicated()].unique().tolist()
        if dupes:
            raise DataError(f"column names {dupes} collide once written as text; rename them.")
    return df.copy()


def load_table(source: Any) -> pd.DataFrame:
    """Read ``source`` into a DataFrame.

    ``source`` is a path (``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.parquet``) or a pandas
    DataFrame, polars DataFrame or pyarrow Table. Raises :class:`~mlsmith.errors.DataError` with a
    one-line explanation for anything that cannot be read.

    Examples
    --------
    >>> import pandas as pd
    >>> load_table(pd.DataFrame({"a": [1, 2]})).shape
    (2, 1)
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataFileNotFoundError(f"data file not found: {path}. Check the path.")
        if path.is_dir():
            raise DataError(f"{path} is a folder, not a data file. Give a .csv, .tsv or .parquet file.")
        suffix = _suffix(path)
        if suffix in (".csv", ".csv.gz"):
            df = _read_delimited(path, ",", suffix.endswith(".gz"))
        elif suffix in (".tsv", ".tsv.gz"):
            df = _read_delimited(path, "\t", suffix.endswith(".gz"))
        elif suffix in (".parquet", ".pq"):
            df = _read_parquet(path)
        else:
            raise DataError(f"unsupported file type {suffix or '(none)'!r} for {path}: "
                            f"use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    else:
        df = _from_object(source)
    if df.shape[1] == 0 or df.shape[0] == 0:
        what = "no columns" if df.shape[1] == 0 else "no data rows"
        raise DataError(f"the table has {what}: it needs a header row and at least one data row.")
    return df


def row_name(index: pd.Index, pos: int) -> str:
    """How an error names the row at position ``pos``: its 1-based number in the original table
    when the index is the default range (possibly with rows removed), else its index label."""
    label = index[pos]
    if isinstance(label, (int, np.integer)) and pd.api.types.is_integer_dtype(index.dtype):
        return f"row {int(label) + 1}"
    return f"row {label!r}"


def check_finite(df: pd.DataFrame, columns: list[str] | None = None,
                 where: str | None = None) -> None:
    """Raise :class:`DataError` naming the first column and row holding an infinite value."""
    for col in columns if columns is not None else df.columns:
        s = df[col]
        if pd.api.types.is_float_dtype(s.dtype):
            values = s.to_numpy(dtype=float, na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values))
            if bad.size:
                raise DataError(
                    f"column {col!r} holds an infinite value at {row_name(df.index, int(bad[0]))}"
                    f"{f' of {where}' if where else ''} ({bad.size} in all): replace infinities "
                    f"with a finite value, or leave the cells empty to mark them missing.")
