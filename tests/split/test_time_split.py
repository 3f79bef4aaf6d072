"""time_holdout_split and make_time_folds: the latest rows are tested, folds only look forward."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsmith.errors import ConfigError, DataError
from mlsmith.split import make_time_folds, time_holdout_split


def test_latest_rows_are_the_test_set() -> None:
    order = np.array([50, 10, 40, 20, 30, 60, 0, 90, 80, 70])
    train, test = time_holdout_split(order, 0.3)
    assert test.tolist() == [9, 8, 7]  # times 70, 80, 90, in time order
    assert train.tolist() == [6, 1, 3, 4, 2, 0, 5]  # times 0..60, in time order
    assert order[train].max() < order[test].min()


def test_datetimes_are_ordered_like_numbers() -> None:
    days = np.array(["2021-03-01", "2021-01-01", "2021-02-01", "2021-04-01"], dtype="datetime64[D]")
    train, test = time_holdout_split(days, 0.25)
    assert test.tolist() == [3] and train.tolist() == [1, 2, 0]


def test_equal_times_stay_on_one_side() -> None:
    order = np.array([1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    # 30% would cut inside the block of 3s: the whole block goes to the test set
    train, test = time_holdout_split(order, 0.3)
    assert sorted(test.tolist()) == [6, 7, 8, 9]
    # 50% cuts inside the 2s: all 2s and 3s are tested
    train, test = time_holdout_split(order, 0.5)
    assert sorted(test.tolist()) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert set(order[train]).isdisjoint(order[test])


def test_zero_test_size_keeps_every_row_in_time_order() -> None:
    train, test = time_holdout_split(np.array([3.0, 1.0, 2.0]), 0.0)
    assert train.tolist() == [1, 2, 0] and test.size == 0


@pytest.mark.parametrize("order, size, error", [
    (np.arange(10), 1.0, ConfigError),
    (np.arange(10), -0.1, ConfigError),
    (np.arange(2), 0.5, DataError),
    (np.array([1.0, np.nan, 3.0, 4.0]), 0.25, DataError),
    (np.ones(10), 0.2, DataError),  # a single time: nothing later to test on
    (np.array(["a", "b", "c"]), 0.3, DataError),
])
def test_bad_time_splits(order: np.ndarray, size: float, error: type) -> None:
    with pytest.raises(error):
        time_holdout_split(order, size)


def test_missing_time_names_the_row() -> None:
    with pytest.raises(DataError, match=r"1 rows \(first at row 2\)"):
        time_holdout_split(np.array([1.0, np.nan, 3.0, 4.0]), 0.25)


@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.integers(0, 30), min_size=6, max_size=80),
       test_size=st.floats(0.1, 0.4))
def test_time_holdout_properties(times: list[int], test_size: float) -> None:
    order = np.array(times)
    if len(np.unique(order)) < 2:
        return
    try:
        train, test = time_holdout_split(order, test_size)
    except DataError:
        # only when too few rows stay for training, or equal times at the cut reach from the
        # first two rows to the last one (no cut keeps them together)
        s = np.sort(order)
        cut = len(s) - int(np.ceil(len(s) * test_size))
        assert cut < 2 or (np.searchsorted(s, s[cut], "left") < 2
                           and np.searchsorted(s, s[cut], "right") == len(s))
        return
    joined = np.concatenate([train, test])
    assert np.array_equal(np.sort(joined), np.arange(len(order)))
    assert order[train].max() < order[test].min()  # strictly later: ties never straddle
    assert np.all(np.diff(order[train]) >= 0) and np.all(np.diff(order[test]) >= 0)
    assert len(train) >= 2 and len(test) >= 1


def test_time_folds_expand_forward() -> None:
    folds = make_time_folds(12, 3)
    assert [(tr.tolist(), va.tolist()) for tr, va in folds] == [
        ([0, 1, 2], [3, 4, 5]),
        ([0, 1, 2, 3, 4, 5], [6, 7, 8]),
        ([0, 1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11]),
    ]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(6, 300), k=st.integers(2, 8))
def test_time_fold_properties(n: int, k: int) -> None:
    if n < 2 * (k + 1):
        with pytest.raises(DataError):
            make_time_folds(n, k)
        return
    folds = make_time_folds(n, k)
    assert len(folds) == k
    previous = 0
    for train, val in folds:
        assert train.tolist() == list(range(len(train)))  # a prefix of the time order
        assert val.min() == train.max() + 1  # validation starts right after training
        assert len(train) > previous  # the window expands
        previous = len(train)
    assert folds[-1][1].max() == n - 1
    # validation blocks are disjoint and cover everything after the first block
    vals = np.concatenate([v for _, v in folds])
    assert np.array_equal(vals, np.arange(folds[0][0].size, n))


def test_time_folds_keep_equal_times_together() -> None:
    order = np.array([1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5])
    folds = make_time_folds(12, 3, order=order)
    for train, val in folds:
        assert order[train].max() < order[val].min()
    with pytest.raises(DataError, match="sorted"):
        make_time_folds(6, 2, order=np.array([2, 1, 3, 4, 5, 6]))
    with pytest.raises(DataError, match="too few distinct times"):
        make_time_folds(10, 3, order=np.array([1, 1, 2, 2, 2, 2, 3, 3, 3, 3]))


def test_time_folds_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        make_time_folds(10, 1)
    with pytest.raises(DataError, match="only 5 training rows"):
        make_time_folds(5, 3)
