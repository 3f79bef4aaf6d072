"""Batching: seeded permutations of whole tensors, sharded for distributed runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from mlsmith.errors import MlsmithError  # noqa: E402
from mlsmith.train import ShapeMismatchError  # noqa: E402
from mlsmith.train._data import DatasetBatches, TensorBatches, as_tensors, to_tensor  # noqa: E402


def rows_of(batches, epoch: int) -> list[list[int]]:
    batches.set_epoch(epoch)
    return [b[0][:, 0].long().tolist() for b in batches]


def ids(n: int) -> tuple:
    return (torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n))


def test_each_epoch_is_a_seeded_permutation() -> None:
    b = TensorBatches(ids(10), batch_size=4, seed=3)
    assert len(b) == 3
    e1 = rows_of(b, 1)
    assert [len(x) for x in e1] == [4, 4, 2]
    assert sorted(sum(e1, [])) == list(range(10))              # every row once
    assert rows_of(b, 1) == e1                                   # same epoch, same order
    assert rows_of(b, 2) != e1                                   # a new order each epoch
    assert rows_of(TensorBatches(ids(10), 4, seed=3), 1) == e1   # a function of (seed, epoch)
    assert rows_of(TensorBatches(ids(10), 4, seed=4), 1) != e1
    # targets travel with their rows
    b.set_epoch(5)
    for x, y in b:
        assert torch.equal(x[:, 0].long(), y)


def test_without_shuffle_batches_are_views_in_order() -> None:
    b = TensorBatches(ids(5), batch_size=2, shuffle=False)
    assert rows_of(b, 1) == [[0, 1], [2, 3], [4]]


def test_ranks_share_each_global_batch() -> None:
    n, batch, world = 23, 4, 2
    single = rows_of(TensorBatches(ids(n), batch * world, seed=0), 1)
    ranks = [TensorBatches(ids(n), batch, seed=0, rank=r, world_size=world) for r in range(world)]
    per_rank = [rows_of(r, 1) for r in ranks]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 3
    for step, rows in enumerate(single):
        assert per_rank[0][step] + per_rank[1][step] == rows
    # last global batch: 7 rows, split 4 + 3; the weights make the averaged gradient exact
    assert [ranks[0].rank_weight(2), ranks[1].rank_weight(2)] == pytest.approx([8 / 7, 6 / 7])
    assert ranks[0].rank_weight(0) == 1.0


def test_a_last_batch_smaller_than_the_world_is_dropped() -> None:
    ranks = [TensorBatches(ids(9), 4, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 1  # 8 rows in step 0; the 9th row alone is dropped


def test_dataset_batches_follow_the_same_order() -> None:
    tensors = ids(10)
    ds = torch.utils.data.TensorDataset(*tensors)
    a = DatasetBatches(ds, batch_size=4, seed=3)
    b = TensorBatches(tensors, batch_size=4, seed=3)
    assert rows_of(a, 2) == rows_of(b, 2)


def test_conversions() -> None:
    assert to_tensor(np.arange(3), "y").dtype == torch.int64
    assert to_tensor(np.arange(3.0), "y").dtype == torch.float32
    assert to_tensor(np.arange(3), "x").dtype == torch.float32
    assert to_tensor(torch.ones(2, dtype=torch.float64)).dtype == torch.float32
    assert to_tensor(pd.Series([1, 2]), "y").dtype == torch.int64
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    assert to_tensor(df).shape == (2, 2)
    with pytest.raises(ShapeMismatchError, match="not numbers"):
        to_tensor(np.array(["a", "b"], dtype=object))


def test_rows_must_agree() -> None:
    with pytest.raises(ShapeMismatchError, match="X has 5, y has 4") as info:
        as_tensors((np.zeros((5, 2)), np.zeros(4)), "train")
    assert isinstance(info.value, MlsmithError) and isinstance(info.value, ValueError)
    with pytest.raises(ShapeMismatchError, match="tuple"):
        as_tensors(np.zeros((5, 2)), "train")
