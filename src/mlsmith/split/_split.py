"""The honest split: a held-out test set cut first, then cross-validation folds on the rest."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from mlsmith.errors import ConfigError, DataError

__all__ = ["holdout_split", "make_folds", "time_holdout_split", "make_time_folds",
           "MIN_ROWS_PER_FOLD"]

MIN_ROWS_PER_FOLD = 2


def holdout_split(y: np.ndarray, classification: bool, test_size: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test rows.

    Classification splits are stratified; classes too rare to appear on both sides (fewer than
    two rows) stay entirely in the training part. ``test_size=0`` gives no test rows.
    """
    n = len(y)
    if not 0.0 <= test_size < 1.0:
        raise ConfigError(f"--test-size must be in [0, 1): got {test_size}.")
    idx = np.arange(n)
    if test_size == 0.0:
        return idx, np.array([], dtype=int)
    n_test = int(np.ceil(n * test_size))
    if n_test < 1 or n - n_test < 2:
        raise DataError(f"only {n} rows: too few to hold out a test set of {test_size:.0%}. "
                        f"Add rows or use --test-size 0.")
    if not classification:
        train, test = train_test_split(idx, test_size=test_size, random_state=seed, shuffle=True)
        return np.sort(train), np.sort(test)
    values, counts = np.unique(y, return_counts=True)
    if counts.max() < 2:
        raise DataError(f"every class of the target has a single row ({len(values)} classes in "
                        f"{n} rows): nothing can be learned. Check the target column.")
    rare = values[counts < 2]
    keep = ~np.isin(y, rare)
    strat_idx = idx[keep]
    strat_y = y[keep]
    n_classes = len(np.unique(strat_y))
    n_test_target = int(np.ceil(len(strat_idx) * test_size))
    if n_test_target >= n_classes and len(strat_idx) - n_test_target >= n_classes:
        train, test = train_test_split(strat_idx, test_size=n_test_target, random_state=seed,
                                       stratify=strat_y)
    else:
        # too few rows for sklearn's stratification: cut each class by hand, keeping at least
        # one row of every class in the training part
        rng = np.random.default_rng(seed)
        classes = np.unique(strat_y)
        sizes = np.array([np.sum(strat_y == c) for c in classes])
        exact = sizes * test_size
        take = np.minimum(np.floor(exact).astype(int), sizes - 1)
        # hand out the remaining test rows by largest remainder, never a class's last row
        for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
            if take.sum() >= max(n_test_target, 1):
                break
            if take[i] < sizes[i] - 1:
                take[i] += 1
        test_parts = [rng.choice(strat_idx[strat_y == c], size=k, replace=False)
                      for c, k in zip(classes, take, strict=True) if k > 0]
        if not test_parts:
            raise DataError(f"only {n} rows: too few to hold out a test set of {test_size:.0%} "
                            f"while keeping every class in training. Add rows or use --test-size 0.")
        test = np.concatenate(test_parts)
        train = np.setdiff1d(strat_idx, test)
    train = np.concatenate([train, idx[~keep]])
    return np.sort(train), np.sort(test)


def make_folds(y: np.ndarray, classification: bool, n_folds: int,
               seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (classification) or shuffled k-fold splits of ``0..len(y)-1``."""
    n = len(y)
    if n_folds < 2:
        raise ConfigError(f"--folds must be at least 2: got {n_folds}.")
    if n < MIN_ROWS_PER_FOLD * n_folds:
        raise DataError(f"only {n} training rows: cross-validation with {n_folds} folds needs at "
                        f"least {MIN_ROWS_PER_FOLD * n_folds}. Add rows or use fewer folds (--folds).")
    if classification:
        counts = np.unique(y, return_counts=True)[1]
        if counts.max() >= n_folds:
            cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # rare classes: reported by the audit
                return [(tr, va) for tr, va in cv.split(np.zeros(n), y)]
    cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(n))]


# --- time-ordered splits ------------------------------------------------------------------------
def _time_sort(order: np.ndarray) -> np.ndarray:
    """Row positions sorted by ``order`` (stable: equal times keep their row order)."""
    order = np.asarray(order)
    if order.ndim != 1:
        raise DataError(f"the time order must be one value per row: got an array of shape "
                        f"{order.shape}.")
    if np.issubdtype(order.dtype, np.datetime64):
        bad = np.isnat(order)
    elif np.issubdtype(order.dtype, np.number):
        bad = ~np.isfinite(order.astype(np.float64))
    else:
        raise DataError(f"the time order must be numbers or datetimes: got dtype {order.dtype}.")
    if bad.any():
        raise DataError(f"the time column is missing or not finite in {int(bad.sum())} rows "
                        f"(first at row {int(np.flatnonzero(bad)[0]) + 1}): fill those times or "
                        f"drop the rows.")
    return np.argsort(order, kind="stable")


def time_holdout_split(order: np.ndarray, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the latest rows: the test set is the last ``test_size`` share of rows by time.

    Parameters
    ----------
    order : numpy.ndarray
        One sortable time value per row (numbers or ``datetime64``), in row order.
    test_size : float
        Share of rows in the test set, in ``[0, 1)``. ``0`` gives no test rows.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray
        Row positions, each **sorted by time** (equal times keep their row order), so that
        ``X.iloc[train_idx]`` is in time order and :func:`make_time_folds` applies to it directly.
        Every test row is at least as late as every training row. Rows sharing the time at the
        cut go to the test set together when the training part keeps two rows, so no timestamp
        is on both sides.

    Examples
    --------
    >>> train, test = time_holdout_split(np.array([5, 1, 4, 2, 3]), 0.4)
    >>> train.tolist(), test.tolist()
    ([1, 3, 4], [2, 0])
    """
    if not 0.0 <= test_size < 1.0:
        raise ConfigError(f"--test-size must be in [0, 1): got {test_size}.")
    sorted_idx = _time_sort(order)
    n = len(sorted_idx)
    if test_size == 0.0:
        return sorted_idx, np.array([], dtype=np.intp)
    n_test = int(np.ceil(n * test_size))
    if n_test < 1 or n - n_test < 2:
        raise DataError(f"only {n} rows: too few to hold out the latest {test_size:.0%} as a test "
                        f"set. Add rows or use --test-size 0.")
    cut = n - n_test
    times = np.asarray(order)[sorted_idx]
    # keep a timestamp on one side: move the cut back to the first row of the tied group
    start = int(np.searchsorted(times, times[cut], side="left"))
    if start >= 2:
        cut = start
    else:  # the tied group reaches the start: give it to training instead
        cut = int(np.searchsorted(times, times[cut], side="right"))
        if n - cut < 1:
            raise DataError(f"every row shares the time {times[0]!r}: a time-ordered split needs "
                            f"at least two distinct times. Check the time column.")
    return sorted_idx[:cut], sorted_idx[cut:]


def make_time_folds(n_train: int, k: int,
                    order: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over rows already sorted by time.

    The rows ``0..n_train-1`` are cut into ``k + 1`` consecutive blocks; fold ``i`` trains on
    blocks ``0..i`` and validates on block ``i + 1``, so a model never validates on rows earlier
    than the ones it trained on. The first block is never validated on.

    Parameters
    ----------
    n_train : int
        Number of training rows, in time order (see :func:`time_holdout_split`).
    k : int
        Number of folds (at least 2).
    order : numpy.ndarray, optional
        The sorted time values of those rows. When given, a block boundary that would split
        rows sharing one time moves to the first of them, so a timestamp is never on both sides.

    Returns
    -------
    list of (train_idx, val_idx)
        Positions into the time-sorted training rows.

    Examples
    --------
    >>> [(tr.tolist(), va.tolist()) for tr, va in make_time_folds(6, 2)]
    [([0, 1], [2, 3]), ([0, 1, 2, 3], [4, 5])]
    """
    if k < 2:
        raise ConfigError(f"--folds must be at least 2: got {k}.")
    if n_train < MIN_ROWS_PER_FOLD * (k + 1):
        raise DataError(f"only {n_train} training rows: {k} time-ordered folds need at least "
                        f"{MIN_ROWS_PER_FOLD * (k + 1)} ({k + 1} blocks of "
                        f"{MIN_ROWS_PER_FOLD}). Add rows or use fewer folds (--folds).")
    bounds = [int(round(i * n_train / (k + 1))) for i in range(k + 2)]
    if order is not None:
        times = np.asarray(order)
        if len(times) != n_train:
            raise DataError(f"order has {len(times)} values for {n_train} training rows.")
        if len(times) > 1 and np.any(times[1:] < times[:-1]):
            raise DataError("order must be sorted: pass the training rows in time order "
                            "(time_holdout_split returns them so).")
        bounds[1:-1] = [int(np.searchsorted(times, times[b], side="left")) for b in bounds[1:-1]]
    idx = np.arange(n_train)
    folds = []
    for i in range(1, k + 1):
        lo, hi = bounds[i], bounds[i + 1]
        if lo < 1 or hi <= lo:
            raise DataError(f"the time column has too few distinct times for {k} time-ordered "
                            f"folds (block {i + 1} is empty once equal times stay together): "
                            f"use fewer folds (--folds).")
        folds.append((idx[:lo], idx[lo:hi]))
    return folds
