"""Column roles and the learning task, inferred from a table.

``infer_schema`` looks at each column and gives it one role:

* ``numeric``: numbers (integers with many distinct values, floats);
* ``categorical``: strings, booleans, integers with few distinct values;
* ``datetime``: parsed dates, later expanded into year, month, day, weekday and hour;
* ``id``: unique per row (a row number, a key) - dropped;
* ``constant``: a single value - dropped;
* ``text``: free text - dropped for now.

Everything it decides is recorded with a reason, so the audit and the report can show it, and the
schema is stored in the run directory so that prediction sees the same columns the same way.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.data._load import row_name
from mlsmith.errors import ColumnNotFoundError, ConfigError, DataError, TargetError, did_you_mean

__all__ = ["ColumnInfo", "Schema", "Task", "infer_schema", "infer_task", "TASKS", "coerce_frame"]

TASKS = ("binary", "multiclass", "regression")
ROLES = ("numeric", "categorical", "datetime", "id", "constant", "text")
USED_ROLES = ("numeric", "categorical", "datetime")

#: integers with at most this many distinct values are categorical features
LOW_CARDINALITY_INT = 10
#: an integer target with at most this many distinct values is a class label
CLASS_INT_MAX = 30
#: keep at most this many category values per column in the schema
MAX_STORED_CATEGORIES = 5000

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index|idx|row)$|^unnamed: ?\d+$", re.IGNORECASE)


@dataclass
class ColumnInfo:
    """What mlsmith learned about one input column."""

    name: str
    role: str
    dtype: str
    n_missing: int = 0
    n_unique: int = 0
    categories: list[Any] | None = None
    numeric_codes: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Task:
    """The learning task: its kind, the classes (for classification) and the default metric."""

    kind: str
    classes: list[Any] = field(default_factory=list)
    reason: str = ""

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

    @property
    def default_metric(self) -> str:
        return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[self.kind]


@dataclass
class Schema:
    """Roles of every column, the target and the task; serialisable to ``schema.json``."""

    target: str
    task: Task
    columns: list[ColumnInfo]
    target_dtype: str = ""
    n_rows: int = 0

    def of_role(self, *roles: str) -> list[str]:
        return [c.name for c in self.columns if c.role in roles]

    @property
    def features(self) -> list[str]:
        """Columns the models use, in input order."""
        return self.of_role(*USED_ROLES)

    @property
    def dropped(self) -> list[ColumnInfo]:
        return [c for c in self.columns if c.role not in USED_ROLES]

    def column(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_dtype": self.target_dtype,
            "task": {"kind": self.task.kind, "classes": [_jsonable(c) for c in self.task.classes],
                     "reason": self.task.reason, "default_metric": self.task.default_metric},
            "n_rows": self.n_rows,
            "columns": [{**c.to_dict(),
                         "categories": None if c.categories is None
                         else [_jsonable(v) for v in c.categories]} for c in self.columns],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        task = Task(kind=d["task"]["kind"], classes=list(d["task"]["classes"]),
                    reason=d["task"].get("reason", ""))
        cols = [ColumnInfo(**c) for c in d["columns"]]
        return cls(target=d["target"], task=task, columns=cols,
                   target_dtype=d.get("target_dtype", ""), n_rows=d.get("n_rows", 0))


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


def _is_stringish(s: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)
            or isinstance(s.dtype, pd.CategoricalDtype))


def _numeric_share(values: pd.Series) -> tuple[pd.Series, float]:
    """Parse values as numbers; return the parsed series and the share that parsed."""
    parsed = pd.to_numeric(values, errors="coerce")
    nonmissing = values.notna()
    n = int(nonmissing.sum())
    if n == 0:
        return parsed, 0.0
    ok = int((parsed.notna() & nonmissing).sum())
    return parsed, ok / n


def _try_datetime(values: pd.Series) -> pd.Series | None:
    sample = values.dropna().astype(str)
    if sample.empty:
        return None
    head = sample.head(200)
    # dates contain digits and a separator; plain numbers are not dates
    if not head.str.contains(r"\d[-/:.T ]\d|\d{4}-\d", regex=True).mean() > 0.9:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        except (ValueError, TypeError):
            return None
    share = parsed.notna().sum() / max(values.notna().sum(), 1)
    return parsed if share >= 0.95 else None


def coerce_frame(df: pd.DataFrame, exclude: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Give every column a usable dtype: numbers stored as text become numbers.

    Returns the new frame and warnings. A column that is almost entirely numeric but holds a few
    text values raises :class:`DataError` naming the column and the first bad row.
    """
    out = {}
    notes: list[str] = []
    for col in df.columns:
        s = df[col]
        if col in exclude or not _is_stringish(s) or isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s
            continue
        nonmissing = s.dropna()
        if nonmissing.empty:
            out[col] = s
            continue
        types = {type(v) for v in nonmissing.head(1000)}
        mixed_python = len(types & {int, float, np.int64, np.float64}) > 0 and str in types
        parsed, share = _numeric_share(s)
        if share == 1.0:
            out[col] = parsed
            continue
        n_distinct_text = nonmissing[pd.to_numeric(nonmissing, errors="coerce").isna()].nunique()
        if share >= 0.95 and n_distinct_text <= 3 and len(nonmissing) >= 20:
            bad_pos = np.flatnonzero((parsed.isna() & s.notna()).to_numpy())[0]
            bad_val = s.iloc[bad_pos]
            raise DataError(
                f"column {col!r} is numeric but {row_name(df.index, bad_pos)} holds the text {bad_val!r}: "
                f"fix the value, or leave the cell empty to mark it missing.")
        if mixed_python or share >= 0.2:
            notes.append(f"column {col!r} mixes numbers and text ({share:.0%} numeric): "
                         f"treated as categorical")
            out[col] = s.map(lambda v: v if pd.isna(v) else str(v))
            continue
        out[col] = s
    return pd.DataFrame(out, index=df.index), notes


def _column_info(name: str, s: pd.Series, n_rows: int) -> ColumnInfo:
    dtype = str(s.dtype)
    n_missing = int(s.isna().sum())
    nonmissing = s.dropna()
    try:
        n_unique = int(nonmissing.nunique())
    except TypeError:  # unhashable cells (lists, dicts)
        return ColumnInfo(name, "constant", dtype, n_missing, 0,
                          reason="holds unhashable values (lists or dicts): dropped")
    info = ColumnInfo(name, "numeric", dtype, n_missing, n_unique)
    if n_unique <= 1:
        info.role = "constant"
        info.reason = "all values missing" if n_unique == 0 else "a single value"
        return info
    if pd.api.types.is_bool_dtype(s.dtype):
        info.role = "categorical"
        info.categories = sorted(nonmissing.unique().tolist())
        info.reason = "boolean"
        return info
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        info.role = "datetime"
        info.reason = "datetime dtype"
        return info
    unique_per_row = n_unique == len(nonmissing) and n_missing == 0 and n_rows >= 20
    if pd.api.types.is_numeric_dtype(s.dtype):
        is_int = pd.api.types.is_integer_dtype(s.dtype)
        if is_int and unique_per_row:
            values = nonmissing.to_numpy()
            monotonic = bool(np.all(np.diff(values) > 0) or np.all(np.diff(values) < 0))
            dense = (values.max() - values.min() + 1) == len(values)
            if monotonic or dense or _ID_NAME.search(name):
                info.role = "id"
                info.reason = "integer unique per row" + (" and monotonic" if monotonic else
                                                          " and consecutive" if dense else "")
                return info
        if is_int and n_unique <= LOW_CARDINALITY_INT:
            info.role = "categorical"
            info.numeric_codes = True
            info.categories = sorted(nonmissing.unique().tolist())
            info.reason = f"integer with {n_unique} distinct values"
            return info
        info.reason = "numbers"
        return info
    # strings / categories
    values = nonmissing.astype(str)
    parsed = _try_datetime(nonmissing)
    if parsed is not None:
        info.role = "datetime"
        info.reason = "text parsed as dates"
        return info
    # free text is checked before "unique per row": sentences are unique too, but are not keys
    mean_words = values.str.count(r"\s+").mean() + 1
    if mean_words >= 4 and n_unique > 0.5 * len(nonmissing) and values.str.len().mean() > 25 \
            and not _ID_NAME.search(name):
        info.role = "text"
        info.reason = f"free text ({mean_words:.1f} words per value on average)"
        return info
    if unique_per_row:
        mean_len = values.str.len().mean()
        if mean_len <= 40 or _ID_NAME.search(name):
            info.role = "id"
            info.reason = "text unique per row"
            return info
    info.role = "categorical"
    cats = pd.Series(values.unique())
    info.categories = sorted(cats.tolist())[:MAX_STORED_CATEGORIES]
    info.reason = f"text with {n_unique} distinct values"
    return info


def infer_task(y: pd.Series, task: str | None = None) -> Task:
    """Decide binary / multiclass / regression from the target values.

    Text, booleans and integers with at most 30 distinct values are class labels (whole numbers
    stored as floats because some cells are missing count as integers); other numbers are a
    regression target (a float column with exactly two values is binary). ``task`` forces the
    kind.
    """
    had_missing = bool(y.isna().any())
    y = y.dropna()
    n_unique = int(y.nunique())
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if had_missing and numeric and pd.api.types.is_float_dtype(y.dtype) and len(y) \
            and bool(np.all(np.isfinite(y.to_numpy()))) and bool((y % 1 == 0).all()) \
            and np.abs(y).max() < 2**53:
        # whole numbers stored as floats (pandas' dtype for integers with missing cells) are
        # treated like the integers they are, so a missing label does not change the task
        y = y.astype(np.int64)
    if task is not None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}: use one of {', '.join(TASKS)}."
                              + did_you_mean(task, TASKS))
        if task == "regression":
            if not numeric:
                raise TargetError(f"the target is not numeric (dtype {y.dtype}), so it cannot be "
                                  f"a regression target: use --task binary or multiclass.")
            return Task("regression", [], reason="given by --task")
        kind = task
        reason = "given by --task"
    elif not numeric:
        kind = "binary" if n_unique == 2 else "multiclass"
        reason = f"non-numeric target with {n_unique} classes"
    elif pd.api.types.is_integer_dtype(y.dtype) and n_unique <= CLASS_INT_MAX:
        kind = "binary" if n_unique == 2 else "multiclass"
        reason = f"integer target with {n_unique} distinct values (at most {CLASS_INT_MAX})"
    elif n_unique == 2:
        kind = "binary"
        reason = "numeric target with exactly 2 values"
    else:
        return Task("regression", [], reason=f"numeric target with {n_unique} distinct values")
    if n_unique < 2:
        raise TargetError(f"the target has a single class ({y.iloc[0]!r}): a classifier needs at "
                          f"least two. Check the target column or the rows you kept.")
    if kind == "binary" and n_unique > 2:
        raise TargetError(f"--task binary but the target has {n_unique} classes: "
                          f"use --task multiclass.")
    classes = sorted(y.unique().tolist(), key=lambda v: (str(type(v)), v))
    return Task(kind, classes, reason=reason)


def infer_schema(df: pd.DataFrame, target: str, task: str | None = None,
                 drop: tuple[str, ...] = ()) -> tuple[Schema, list[str]]:
    """Infer roles for every column of ``df`` and the task for ``target``.

    Returns the schema and a list of human-readable notes (warnings) about dropped columns.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5] * 10, "y": ["a", "b"] * 20})
    >>> schema, notes = infer_schema(df, "y")
    >>> schema.task.kind, schema.features
    ('binary', ['x'])
    """
    if target not in df.columns:
        raise ColumnNotFoundError(f"target column {target!r} not found." +
                                  did_you_mean(target, df.columns) +
                                  f" The table has {len(df.columns)} columns.")
    for d in drop:
        if d not in df.columns:
            raise ColumnNotFoundError(f"column {d!r} given to drop is not in the table." +
                                      did_you_mean(d, df.columns))
    y = df[target]
    if y.notna().sum() == 0:
        raise TargetError(f"the target column {target!r} has no values: every row is missing.")
    the_task = infer_task(y, task)
    notes: list[str] = []
    cols = []
    for name in df.columns:
        if name == target:
            continue
        if name in drop:
            cols.append(ColumnInfo(name, "id", str(df[name].dtype), reason="dropped by the user"))
            continue
        info = _column_info(name, df[name], len(df))
        cols.append(info)
        if info.role in ("id", "text", "constant"):
            notes.append(f"column {name!r} dropped: {info.role} ({info.reason})")
    schema = Schema(target=target, task=the_task, columns=cols, target_dtype=str(y.dtype),
                    n_rows=len(df))
    if not schema.features:
        raise DataError("no usable feature column: every column other than the target is an "
                        "identifier, constant or free text. Add feature columns.")
    return schema, notes
