"""Shared helpers: input checks, JSON-safe output, deadlines."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError, DataError, did_you_mean

__all__ = ["KINDS", "check_inputs", "jsonable", "remaining", "subsample", "class_names"]

KINDS = ("binary", "multiclass", "regression")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown task kind {kind!r}: use one of {', '.join(KINDS)}."
                          + did_you_mean(str(kind), KINDS))
    return kind


def class_names(classes: Sequence[Any] | None, n_classes: int) -> list[str]:
    """Display names of the encoded classes ``0..K-1``."""
    if classes is None:
        return [str(i) for i in range(n_classes)]
    names = [str(c) for c in classes]
    if len(names) != n_classes:
        raise DataError(f"got {len(names)} class names for {n_classes} probability columns: pass "
                        f"the classes in the order of the columns (schema.json's task.classes).")
    return names


def check_inputs(kind: str, y_true: Any, pred: Any,
                 classes: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate encoded targets and predictions; return ``(y, pred, class names)``.

    Classification: ``y`` holds integers ``0..K-1`` and ``pred`` is an ``(n, K)`` probability
    array (a binary ``(n,)`` array is read as the probability of class 1). Regression: two float
    arrays of one length. Raises :class:`~mlsmith.errors.DataError` naming the problem.
    """
    check_kind(kind)
    y = np.asarray(y_true)
    p = np.asarray(pred, dtype=np.float64)
    if y.ndim != 1:
        raise DataError(f"y_true must be one-dimensional: got shape {y.shape}. Pass one "
                        f"target value per row.")
    if len(y) == 0:
        raise DataError("y_true is empty: there is nothing to evaluate. Pass at least one row.")
    if len(p) != len(y):
        raise DataError(f"y_true has {len(y)} rows but the predictions have {len(p)}: pass one "
                        f"prediction per row, in the same order.")
    if not np.all(np.isfinite(p)):
        bad = int(np.flatnonzero(~np.isfinite(p).reshape(len(p), -1).all(axis=1))[0])
        raise DataError(f"the predictions hold a missing or infinite value (row {bad + 1}): "
                        f"predict every row before evaluating.")
    if kind == "regression":
        if p.ndim != 1:
            raise DataError(f"regression predictions must be one value per row: got shape "
                            f"{p.shape}.")
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError("a regression y_true must be numeric: encode the target as "
                            "numbers.") from None
        if not np.all(np.isfinite(y)):
            raise DataError("y_true holds a missing or infinite value: drop those rows first.")
        return y, p, []
    if p.ndim == 1 and kind == "binary":
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2:
        raise DataError(f"classification predictions must be an (n, K) probability array: got "
                        f"shape {p.shape}.")
    k = p.shape[1]
    if kind == "binary" and k != 2:
        raise DataError(f"binary predictions need 2 probability columns: got {k}. Use "
                        f"kind='multiclass' for more classes.")
    if kind == "multiclass" and k < 3:
        raise DataError(f"multiclass predictions need 3 or more probability columns: got {k}. "
                        f"Use kind='binary' for two classes.")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        as_float = np.asarray(y, dtype=object)
        try:
            yf = as_float.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError("classification y_true must hold the encoded labels 0..K-1, not the "
                            "class names: map each label to its position in `classes`.") from None
        if not np.all(yf == np.round(yf)):
            raise DataError("classification y_true must hold integer labels 0..K-1.")
        y = yf
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise DataError(f"y_true holds the label {int(y.min() if y.min() < 0 else y.max())}, "
                        f"outside 0..{k - 1} for {k} probability columns: encode the labels as "
                        f"positions in `classes`.")
    if np.any(p < 0):
        raise DataError("the probabilities hold a negative value: pass probabilities, not "
                        "scores or log-odds.")
    return y, p, class_names(classes, k)


def jsonable(obj: Any, digits: int | None = None) -> Any:
    """Recursively turn numpy values into Python ones and NaN/inf into ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v, digits) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            return None
        return round(f, digits) if digits is not None else f
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def rounded(values: np.ndarray, digits: int = 5) -> list[float | None]:
    """A float array as a short JSON list."""
    return jsonable(np.asarray(values, dtype=np.float64), digits)


def remaining(deadline: float | None) -> float:
    """Seconds to ``deadline`` (``time.time()`` based); infinite without one."""
    return math.inf if deadline is None else deadline - time.time()


def subsample(n: int, max_rows: int, rng: np.random.Generator,
              y: np.ndarray | None = None) -> np.ndarray:
    """Sorted row numbers of at most ``max_rows`` rows; stratified by ``y`` when given.

    Stratification keeps every class that has rows (at least one row each), so a metric such
    as ROC AUC stays defined on the sample.
    """
    if n <= max_rows:
        return np.arange(n)
    if y is None:
        return np.sort(rng.choice(n, size=max_rows, replace=False))
    order = stratified_order(y, rng)
    return np.sort(order[:max_rows])


def stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of the rows whose every prefix holds the classes in proportion.

    Each row gets the fraction ``rank within its class / class size``; sorting by it (ties in
    random order) interleaves the classes, so the prefix of length ``m`` holds about
    ``m * share`` rows of each class, and the first ``K`` rows hold one row of every class.
    """
    n = len(y)
    perm = rng.permutation(n)
    _, inverse, counts = np.unique(y[perm], return_inverse=True, return_counts=True)
    rank = np.empty(n)
    for c in range(len(counts)):
        where = np.flatnonzero(inverse == c)
        rank[where] = np.arange(len(where))
    frac = rank / counts[inverse]  # in the permuted order
    return perm[np.lexsort((np.arange(n), frac))]
