"""The honest split: a held-out test set cut first, then cross-validation folds on the rest."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from mlsmith.errors import ConfigError, DataError

__all__ = ["holdout_split", "make_folds", "MIN_ROWS_PER_FOLD"]

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
