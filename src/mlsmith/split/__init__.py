"""Held-out test split and cross-validation folds."""

from mlsmith.split._split import MIN_ROWS_PER_FOLD, holdout_split, make_folds

__all__ = ["holdout_split", "make_folds", "MIN_ROWS_PER_FOLD"]
