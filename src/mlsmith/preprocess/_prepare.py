"""Bring a raw table into the exact shape and dtypes the schema promises."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlsmith.data._load import check_finite, row_name
from mlsmith.errors import ColumnNotFoundError, DataError, did_you_mean
from mlsmith.schema import Schema

__all__ = ["prepare_features", "InputWarning"]


class InputWarning(UserWarning):
    """Something in the input was fixed or ignored (extra columns, missing target rows)."""


def prepare_features(df: pd.DataFrame, schema: Schema, *, where: str = "the data",
                     warn_extra: bool = True) -> pd.DataFrame:
    """Select the schema's feature columns and cast them to their role's dtype.

    Numeric columns become float64 (text in them is an error naming the row), categorical
    columns become object (strings, or numbers for integer codes), datetime columns datetime64.
    Missing columns raise :class:`ColumnNotFoundError`; extra columns are ignored with a warning.
    """
    feats = schema.features
    missing = [c for c in feats if c not in df.columns]
    if missing:
        first = missing[0]
        raise ColumnNotFoundError(
            f"{where} lacks column {first!r} that the model needs"
            + (f" (and {len(missing) - 1} more: {', '.join(map(repr, missing[1:4]))})"
               if len(missing) > 1 else "")
            + "." + did_you_mean(first, [c for c in df.columns if c not in feats])
            + " Add the column (empty cells are fine).")
    known = {c.name for c in schema.columns} | {schema.target}
    extra = [c for c in df.columns if c not in known]
    if extra and warn_extra:
        warnings.warn(f"{where} has {len(extra)} column(s) the model does not use, ignored: "
                      f"{', '.join(map(repr, extra[:5]))}{' ...' if len(extra) > 5 else ''}",
                      InputWarning, stacklevel=2)
    out: dict[str, pd.Series] = {}
    for name in feats:
        info = schema.column(name)
        s = df[name]
        if info.role == "numeric" or (info.role == "categorical" and info.numeric_codes):
            if pd.api.types.is_bool_dtype(s.dtype):
                s = s.astype(float)
            if not pd.api.types.is_numeric_dtype(s.dtype):
                parsed = pd.to_numeric(s, errors="coerce")
                bad = parsed.isna() & s.notna()
                if bad.any():
                    pos = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(f"column {name!r} is numeric but {row_name(df.index, pos)} of {where} "
                                    f"holds the text {s.iloc[pos]!r}: fix the value, or leave "
                                    f"the cell empty to mark it missing.")
                s = parsed
            out[name] = pd.Series(s.to_numpy(dtype=np.float64, na_value=np.nan), index=df.index)
        elif info.role == "categorical":
            values = s.astype(object)
            mask = values.isna()
            values = values.map(str)
            values[mask] = np.nan
            out[name] = values
        elif info.role == "datetime":
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                out[name] = s
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[name] = pd.to_datetime(s, errors="coerce", format="mixed")
    frame = pd.DataFrame(out, index=df.index)
    check_finite(frame, where=where)
    return frame
