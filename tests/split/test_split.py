"""holdout_split and make_folds: partitions, stratification, sizes, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsmith.errors import ConfigError, DataError
from mlsmith.split import MIN_ROWS_PER_FOLD, holdout_split, make_folds


def _is_partition(parts: list[np.ndarray], n: int) -> bool:
    joined = np.concatenate(parts)
    return len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


# --- holdout_split -----------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(labels=st.lists(st.integers(0, 6), min_size=10, max_size=120),
       test_size=st.floats(0.05, 0.3), seed=st.integers(0, 2**16))
def test_classification_holdout_properties(labels: list[int], test_size: float, seed: int) -> None:
    y = np.array(labels)
    train, test = holdout_split(y, True, test_size, seed)
    assert _is_partition([train, test], len(y))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert len(test) >= 1
    values, counts = np.unique(y, return_counts=True)
    # the test share is respected up to one row per class (each class needs a test row)
    assert abs(len(test) - test_size * len(y)) <= len(values) + 1
    for v, c in zip(values, counts, strict=True):
        if c >= 2:
            assert np.any(y[train] == v), f"class {v} ({c} rows) has no training row"
        else:
            assert not np.any(y[test] == v), f"singleton class {v} landed in the test set"
    # same seed, same split
    again = holdout_split(y, True, test_size, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(10, 400), test_size=st.floats(0.05, 0.5), seed=st.integers(0, 2**16))
def test_regression_holdout_size(n: int, test_size: float, seed: int) -> None:
    y = np.random.default_rng(seed).normal(size=n)
    train, test = holdout_split(y, False, test_size, seed)
    assert _is_partition([train, test], n)
    assert len(test) == int(np.ceil(n * test_size))


def test_stratified_proportions() -> None:
    y = np.array([0] * 800 + [1] * 200)
    train, test = holdout_split(y, True, 0.2, seed=0)
    assert len(test) == 200
    assert np.mean(y[test]) == pytest.approx(0.2)
    assert np.mean(y[train]) == pytest.approx(0.2)


def test_zero_test_size() -> None:
    train, test = holdout_split(np.arange(7), False, 0.0, 0)
    assert train.tolist() == list(range(7)) and test.size == 0


@pytest.mark.parametrize("size", [-0.1, 1.0, 1.5])
def test_invalid_test_size(size: float) -> None:
    with pytest.raises(ConfigError, match="--test-size"):
        holdout_split(np.arange(10), False, size, 0)


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match="only 2 rows"):
        holdout_split(np.array([0.0, 1.0]), False, 0.2, 0)


def test_all_singleton_classes_give_a_data_error() -> None:
    with pytest.raises(DataError):
        holdout_split(np.array(["a", "b", "c"]), True, 0.2, 0)


def test_tiny_table_large_test_share_keeps_classes_in_train() -> None:
    y = np.array([0, 0, 1, 1, 2])
    train, test = holdout_split(y, True, 0.5625, 0)
    assert {0, 1} <= set(y[train].tolist())


# --- make_folds -----------------------------------------------------------------------------------
def test_folds_are_stratified() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 15)
    folds = make_folds(y, True, 5, seed=0)
    assert len(folds) == 5
    assert _is_partition([va for _, va in folds], len(y))
    for tr, va in folds:
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
        assert np.bincount(y[va], minlength=3).tolist() == [12, 6, 3]


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(0, 3), min_size=12, max_size=80), k=st.integers(2, 5),
       classification=st.booleans(), seed=st.integers(0, 1000))
def test_folds_partition_rows(labels: list[int], k: int, classification: bool, seed: int) -> None:
    y = np.array(labels)
    folds = make_folds(y, classification, k, seed)
    assert len(folds) == k
    assert _is_partition([va for _, va in folds], len(y))
    for tr, va in folds:
        assert _is_partition([tr, va], len(y))
    again = make_folds(y, classification, k, seed)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_fewer_rows_than_folds() -> None:
    with pytest.raises(DataError, match="only 3 training rows.*needs at least 10"):
        make_folds(np.array([0, 1, 0]), True, 5, 0)
    assert MIN_ROWS_PER_FOLD * 5 == 10


def test_at_least_two_folds() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        make_folds(np.arange(20), False, 1, 0)
