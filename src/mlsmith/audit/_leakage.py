"""Target leakage: columns that restate the target.

Three tests, each cheap enough for every column:

* **alone, in cross-validation**: the column is cut into bins (numbers: quantile bins; categories:
  their values) and each row is predicted from the target mean (or class shares) of its bin in
  the other folds. A column whose out-of-fold ROC AUC or R² exceeds ``CV_THRESHOLD`` restates
  the target. For regression the R² is also taken on the target's ranks (a monotone restatement
  with a long tail) and of a straight-line fit.
* **a fixed mapping**: every repeated value of the column has a single target value (or, for
  several classes, every class a single value of the column), and that is very unlikely by
  chance (``CHANCE_P``).
* **arithmetic** (regression): a least-squares fit on a few numeric columns, picked greedily,
  reconstructs the target with R² above ``ARITHMETIC_R2`` (``total = target + a + b``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CV_THRESHOLD", "ARITHMETIC_R2", "CHANCE_P", "encode_column", "oof_score",
           "mapping_evidence", "arithmetic_leak", "ColumnScore", "auc", "rankdata", "r2"]

#: out-of-fold ROC AUC or R² above this: the column alone restates the target
CV_THRESHOLD = 0.99
#: R² of a linear fit on a few columns above this: they reconstruct the target arithmetically
ARITHMETIC_R2 = 0.9999
#: a mapping this unlikely under shuffled targets is not chance
CHANCE_P = 1e-6
#: at most this many columns in an arithmetic reconstruction
MAX_ARITHMETIC_COLUMNS = 5
#: fewer rows than this: the leakage tests do not run
MIN_ROWS = 30


@dataclass
class ColumnScore:
    """How well one column alone predicts the target out of fold."""

    column: str
    metric: str  # "cv_auc" or "cv_r2"
    value: float
    extra: dict[str, Any] = field(default_factory=dict)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank (``scipy.stats.rankdata``)."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(new_group) - 1]
    return ranks


def auc(y_bin: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean labels ``y_bin`` (NaN when one side is empty)."""
    n_pos = int(y_bin.sum())
    n_neg = len(y_bin) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y_bin].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _as_numbers(s: pd.Series) -> np.ndarray | None:
    """A numeric view of ``s`` (datetimes as nanoseconds), or None for text."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        values = s.to_numpy().astype("datetime64[ns]")
        out = values.astype(np.int64).astype(np.float64)
        out[np.isnat(values)] = np.nan
        return out
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def encode_column(s: pd.Series, max_bins: int) -> tuple[np.ndarray, int]:
    """Integer codes ``0..B-1`` for a column: its values when few, else quantile bins.

    Missing values get a code of their own. Text columns are coded by value.
    """
    x = _as_numbers(s)
    if x is None:
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        return codes.astype(np.intp), max(len(uniques), 1)
    missing = np.isnan(x)
    finite = x[~missing]
    codes = np.zeros(len(x), dtype=np.intp)
    if finite.size:
        uniq, inverse = np.unique(finite, return_inverse=True)
        if len(uniq) <= max_bins:
            codes[~missing] = inverse
            n_codes = len(uniq)
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, max_bins + 1)[1:-1]))
            codes[~missing] = np.searchsorted(edges, finite, side="right")
            n_codes = len(edges) + 1
    else:
        n_codes = 0
    codes[missing] = n_codes
    return codes, n_codes + 1


def _oof_class_proba(codes: np.ndarray, n_codes: int, y: np.ndarray, n_classes: int,
                     fold: np.ndarray, k: int, alpha: float = 1.0) -> np.ndarray:
    """Out-of-fold class shares per code, smoothed towards the training fold's class shares."""
    flat = (fold * n_codes + codes) * n_classes + y
    counts = np.bincount(flat, minlength=k * n_codes * n_classes).reshape(k, n_codes, n_classes)
    train = counts.sum(axis=0)[None] - counts  # (k, B, K): counts outside each fold
    prior = train.sum(axis=1)  # (k, K)
    prior = prior / np.maximum(prior.sum(axis=1, keepdims=True), 1)
    row = train[fold, codes].astype(np.float64)  # (n, K)
    return (row + alpha * prior[fold]) / (row.sum(axis=1, keepdims=True) + alpha)


def _oof_mean(codes: np.ndarray, n_codes: int, y: np.ndarray, fold: np.ndarray,
              k: int) -> np.ndarray:
    """Out-of-fold target mean per code (the training fold's mean for unseen codes)."""
    flat = fold * n_codes + codes
    sums = np.bincount(flat, weights=y, minlength=k * n_codes).reshape(k, n_codes)
    cnts = np.bincount(flat, minlength=k * n_codes).reshape(k, n_codes)
    tr_sum = sums.sum(axis=0)[None] - sums
    tr_cnt = cnts.sum(axis=0)[None] - cnts
    fold_sum = np.bincount(fold, weights=y, minlength=k)
    fold_cnt = np.bincount(fold, minlength=k)
    fold_mean = (y.sum() - fold_sum) / np.maximum(len(y) - fold_cnt, 1)
    c = tr_cnt[fold, codes]
    return np.where(c > 0, tr_sum[fold, codes] / np.maximum(c, 1), fold_mean[fold])


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0:
        return float("nan")
    return 1.0 - float(np.sum((y - pred) ** 2)) / sst


def oof_score(name: str, s: pd.Series, y: np.ndarray, classification: bool, n_classes: int,
              fold: np.ndarray, k: int, max_bins: int,
              y_rank: np.ndarray | None = None) -> ColumnScore:
    """Out-of-fold score of the per-bin target model on one column (see the module doc)."""
    codes, n_codes = encode_column(s, max_bins)
    if classification:
        proba = _oof_class_proba(codes, n_codes, y, n_classes, fold, k)
        if n_classes == 2:
            value = auc(y == 1, proba[:, 1])
        else:
            aucs = [auc(y == c, proba[:, c]) for c in range(n_classes)]
            aucs = [a for a in aucs if not math.isnan(a)]
            value = float(np.mean(aucs)) if aucs else float("nan")
        return ColumnScore(name, "cv_auc", value, {"bins": n_codes})
    pred = _oof_mean(codes, n_codes, y, fold, k)
    value = r2(y, pred)
    extra: dict[str, Any] = {"bins": n_codes, "cv_r2_values": value}
    if y_rank is not None:
        rank_r2 = r2(y_rank, _oof_mean(codes, n_codes, y_rank, fold, k))
        extra["cv_r2_ranks"] = rank_r2
        value = max(value, rank_r2) if not math.isnan(value) else rank_r2
    x = _as_numbers(s)
    if x is not None:
        ok = ~np.isnan(x)
        if ok.sum() >= MIN_ROWS and np.ptp(x[ok]) > 0:
            lin = _linear_cv_r2(x[ok, None], y[ok], fold[ok], k)
            extra["cv_r2_linear"] = lin
            if not math.isnan(lin):
                value = max(value, lin) if not math.isnan(value) else lin
    return ColumnScore(name, "cv_r2", value, extra)


def _linear_cv_r2(X: np.ndarray, y: np.ndarray, fold: np.ndarray, k: int) -> float:
    """Out-of-fold R² of an ordinary least-squares fit with intercept."""
    A = np.column_stack([np.ones(len(X)), X])
    pred = np.empty(len(y))
    for f in range(k):
        va = fold == f
        if not va.any() or va.all():
            continue
        coef, *_ = np.linalg.lstsq(A[~va], y[~va], rcond=None)
        pred[va] = A[va] @ coef
    return r2(y, pred)


def _log_chance_all_pure(group_sizes: np.ndarray, shares: np.ndarray) -> float:
    """log P(every group holds a single label) when labels are drawn at random with ``shares``."""
    total = 0.0
    for m, cnt in zip(*np.unique(group_sizes, return_counts=True), strict=True):
        p_pure = float(np.sum(shares ** m))
        if p_pure <= 0:
            return -math.inf
        total += cnt * math.log(p_pure)
    return total


def mapping_evidence(s: pd.Series, y: np.ndarray, classification: bool) -> dict[str, Any] | None:
    """Evidence that the column maps to the target deterministically, or None.

    Forward: every value of the column that occurs at least twice has a single target value,
    those rows are at least half the table, and random targets would make all those groups pure
    with probability below :data:`CHANCE_P`. Backward (three or more classes): every class with
    at least two rows has a single value of the column, which takes two or more values.
    """
    n = len(y)
    xc, xu = pd.factorize(s, use_na_sentinel=False)
    yc, yu = pd.factorize(pd.Series(y), use_na_sentinel=False)
    nx, ny = max(len(xu), 1), max(len(yu), 1)
    if ny < 2 or nx < 2:
        return None
    y_share = np.bincount(yc, minlength=ny) / n
    pairs = np.unique(xc.astype(np.int64) * ny + yc)
    size = np.bincount(xc, minlength=nx)
    labels_per_x = np.bincount(pairs // ny, minlength=nx)
    repeated = size >= 2
    covered = int(size[repeated].sum())
    if covered >= 0.5 * n and not np.any(labels_per_x[repeated] > 1):
        n_targets = len(np.unique(pairs[np.isin(pairs // ny, np.flatnonzero(repeated))] % ny))
        log_p = _log_chance_all_pure(size[repeated], y_share)
        if n_targets >= 2 and log_p < math.log(CHANCE_P):
            return {"direction": "column -> target", "n_values": int(nx),
                    "rows_in_repeated_values": covered,
                    "chance_probability": math.exp(log_p)}
    if classification and ny >= 3:
        x_share = size / n
        values_per_y = np.bincount(pairs % ny, minlength=ny)
        y_size = np.bincount(yc, minlength=ny)
        big = y_size >= 2
        if big.sum() >= 2 and not np.any(values_per_y[big] > 1):
            used = np.unique(pairs[np.isin(pairs % ny, np.flatnonzero(big))] // ny)
            log_p = _log_chance_all_pure(y_size[big], x_share)
            if len(used) >= 2 and log_p < math.log(CHANCE_P):
                return {"direction": "target -> column", "n_values": int(nx),
                        "n_classes": int(ny), "chance_probability": math.exp(log_p)}
    return None


def _fit_r2(X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    A = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return r2(y, A @ coef), coef


def arithmetic_leak(X: np.ndarray, names: list[str], y: np.ndarray, fold: np.ndarray,
                    k: int) -> dict[str, Any] | None:
    """A small set of columns whose linear combination reconstructs ``y``, or None.

    Forward selection adds the column that raises the in-sample R² most, up to
    :data:`MAX_ARITHMETIC_COLUMNS` columns, until R² exceeds :data:`ARITHMETIC_R2`; columns the
    fit does without are then removed, and the out-of-fold R² must agree. Rows with a missing
    value in a selected column are left out of that fit.
    """
    n, p = X.shape
    if p == 0 or n < MIN_ROWS:
        return None
    # standardise, so that the least-squares fits are well conditioned
    mu = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    usable = np.flatnonzero(np.isfinite(sd) & (sd > 0))
    Z = (X - mu) / np.where(sd > 0, sd, 1.0)
    ysd = y.std()
    if ysd == 0:
        return None
    yz = (y - y.mean()) / ysd

    def score(cols: list[int]) -> float:
        ok = ~np.isnan(Z[:, cols]).any(axis=1)
        if ok.sum() < max(MIN_ROWS, 10 * (len(cols) + 1)):
            return float("nan")
        return _fit_r2(Z[ok][:, cols], yz[ok])[0]

    chosen: list[int] = []
    best = -math.inf
    for _ in range(min(MAX_ARITHMETIC_COLUMNS, len(usable))):
        trials = [(score(chosen + [j]), j) for j in usable if j not in chosen]
        trials = [t for t in trials if not math.isnan(t[0])]
        if not trials:
            break
        value, j = max(trials)
        if value <= best + 1e-12:
            break
        chosen.append(j)
        best = value
        if best > ARITHMETIC_R2:
            break
    if best <= ARITHMETIC_R2 or len(chosen) < 2:
        return None
    for j in list(chosen):  # backward: drop what the fit does not need
        rest = [c for c in chosen if c != j]
        if len(rest) >= 1 and score(rest) > ARITHMETIC_R2:
            chosen = rest
    if len(chosen) < 2:
        return None
    ok = ~np.isnan(X[:, chosen]).any(axis=1)
    cv = _linear_cv_r2(X[ok][:, chosen], y[ok], fold[ok], k)
    if not cv > ARITHMETIC_R2:
        return None
    in_sample, coef = _fit_r2(X[ok][:, chosen], y[ok])
    # lead with the column that tracks the target most closely on its own
    corr = [abs(np.corrcoef(X[ok][:, j], y[ok])[0, 1]) for j in chosen]
    order = [chosen[i] for i in np.argsort(corr)[::-1]]
    coefs = dict(zip([names[j] for j in chosen], coef[1:], strict=True))
    terms = " ".join(f"{'+' if coefs[names[j]] >= 0 else '-'} {abs(coefs[names[j]]):.4g}*"
                     f"{names[j]}" for j in order)
    intercept = float(coef[0]) if abs(coef[0]) > 1e-9 * max(1.0, float(np.abs(y).max())) else 0.0
    formula = f"{intercept:.4g} {terms}".strip()
    return {"columns": [names[j] for j in order], "r2": in_sample, "cv_r2": cv,
            "coefficients": {names[j]: coefs[names[j]] for j in order},
            "intercept": intercept, "formula": formula, "n_rows": int(ok.sum())}
