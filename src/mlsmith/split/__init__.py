"""Held-out test split and cross-validation folds (shuffled, or time-ordered)."""

from mlsmith.split._split import (
    MIN_ROWS_PER_FOLD,
    holdout_split,
    make_folds,
    make_time_folds,
    time_holdout_split,
)

__all__ = ["holdout_split", "make_folds", "time_holdout_split", "make_time_folds",
           "MIN_ROWS_PER_FOLD"]
