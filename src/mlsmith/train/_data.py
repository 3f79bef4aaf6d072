"""Getting data into batches: fast slicing of in-memory tensors, or a torch DataLoader.

Arrays, tensors and DataFrames are converted once to tensors on the training device and batched
by indexing whole tensors with a seeded permutation (no per-row ``__getitem__`` and ``collate``).
A torch ``Dataset`` goes through a ``DataLoader`` driven by the same seeded, sharded batch
order; a ``DataLoader`` the caller built is used as it is.

Batch order: epoch ``e`` of a run with seed ``s`` shuffles with a generator seeded by
``(s, e)`` alone, so no sampler state needs saving and every process of a distributed run draws
the same permutation. Step ``k`` takes the ``k``-th slice of ``batch_size x world_size`` rows
from it (the global batch); each rank takes its contiguous share of that slice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mlsmith.train._errors import ShapeMismatchError

__all__ = ["TensorBatches", "DatasetBatches", "LoaderBatches", "make_batches", "to_tensor",
           "as_tensors", "epoch_seed"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s permutation: a function of the run's seed and the epoch only."""
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1)


def to_tensor(data: Any, role: str = "x") -> torch.Tensor:
    """One array-like (numpy, tensor, pandas, list) as a tensor.

    Inputs (``role="x"``) become float32 unless they are already a floating or integer tensor of
    the caller's choice; targets (``role="y"``) keep integers as int64 class labels (the default
    loss is then cross-entropy) and make other numbers float32 (mean squared error).
    """
    if isinstance(data, torch.Tensor):
        t = data.detach()
        if role == "x" and t.dtype == torch.float64:
            t = t.float()
        elif role == "y" and t.dtype == torch.float64:
            t = t.float()
        elif role == "y" and t.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8):
            t = t.long()
        elif t.dtype == torch.bool:
            t = t.float()
        return t
    if hasattr(data, "to_numpy"):  # pandas / polars
        data = data.to_numpy()
    arr = np.asarray(data)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ShapeMismatchError(
                f"the {'inputs' if role == 'x' else 'targets'} hold values that are not numbers "
                f"(dtype object): {exc}. Encode them as numbers first.") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ShapeMismatchError("complex numbers cannot be trained on; pass real numbers.")
    dtype = np.int64 if role == "y" and np.issubdtype(arr.dtype, np.integer) else np.float32
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not arr.flags.writeable:  # pandas may hand out read-only views; torch wants to own them
        arr = arr.copy()
    return torch.from_numpy(arr)


def as_tensors(data: Any, what: str) -> tuple[torch.Tensor, ...]:
    """``(X, y)`` (or ``(X1, X2, ..., y)``) of array-likes as tensors; rows checked to agree."""
    if not isinstance(data, tuple | list) or len(data) < 2:
        raise ShapeMismatchError(
            f"{what} must be a tuple (X, y), a torch Dataset or a DataLoader; got "
            f"{type(data).__name__}{'' if not isinstance(data, tuple | list) else f' of length {len(data)}'}.")
    tensors = tuple(to_tensor(d, "x") for d in data[:-1]) + (to_tensor(data[-1], "y"),)
    rows = [len(t) if t.ndim else 0 for t in tensors]
    if len(set(rows)) != 1:
        names = [f"X{i}" if len(tensors) > 2 else "X" for i in range(len(tensors) - 1)] + ["y"]
        got = ", ".join(f"{n} has {r}" for n, r in zip(names, rows, strict=True))
        raise ShapeMismatchError(f"{what}: the arrays must have the same number of rows ({got}).")
    if rows[0] == 0:
        raise ShapeMismatchError(f"{what} has no rows.")
    return tensors


def _shard(total: int, world_size: int, rank: int) -> tuple[int, int]:
    """Start and length of ``rank``'s contiguous share of ``total`` rows (as ``np.array_split``)."""
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, base + (1 if rank < extra else 0)


class _BatchOrder:
    """Which rows each step of an epoch takes on this rank (shared by the two batchers below)."""

    def __init__(self, n_rows: int, batch_size: int, shuffle: bool, seed: int,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        g = batch_size * world_size
        full, rest = divmod(n_rows, g)
        # a last global batch too small to give every rank a row is dropped (distributed only)
        keep_rest = rest > 0 and not drop_last and rest >= world_size
        self.n_steps = full + (1 if keep_rest else 0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def permutation(self) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return torch.randperm(self.n_rows, generator=gen)

    def global_rows(self, step: int) -> int:
        g = self.batch_size * self.world_size
        return min(g, self.n_rows - step * g)

    def local_range(self, step: int) -> tuple[int, int]:
        """Positions (into the permutation) of this rank's rows at ``step``: start, length."""
        g = self.batch_size * self.world_size
        start, length = _shard(self.global_rows(step), self.world_size, self.rank)
        return step * g + start, length

    def rank_weight(self, step: int) -> float:
        """Factor that makes the ranks' averaged gradient equal the global batch's mean gradient."""
        if self.world_size == 1:
            return 1.0
        _, length = self.local_range(step)
        return length * self.world_size / self.global_rows(step)


class _Ordered:
    """Batches whose order a :class:`_BatchOrder` decides: the common accessors."""

    order: _BatchOrder

    @property
    def n_rows(self) -> int:
        return self.order.n_rows

    def set_epoch(self, epoch: int) -> None:
        self.order.set_epoch(epoch)

    def rank_weight(self, step: int) -> float:
        return self.order.rank_weight(step)

    def __len__(self) -> int:
        return self.order.n_steps


class TensorBatches(_Ordered):
    """Batches of in-memory tensors, cut by slicing whole tensors on the training device.

    Parameters
    ----------
    tensors : sequence of Tensor
        Inputs then targets, the same number of rows each; moved to ``device`` once.
    batch_size : int
        Rows per step on this process.
    shuffle : bool
        Draw a seeded permutation per epoch (training) or keep the order (evaluation).
    seed, rank, world_size, drop_last, device
        See the module docstring for how the order and the shards are chosen.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.tensors = tuple(t.to(self.device) for t in tensors)
        self.order = _BatchOrder(len(self.tensors[0]), batch_size, shuffle, seed, rank,
                                 world_size, drop_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        perm = self.order.permutation()
        if perm is not None:
            perm = perm.to(self.device)
        for step in range(self.order.n_steps):
            start, length = self.order.local_range(step)
            if perm is None:
                yield tuple(t.narrow(0, start, length) for t in self.tensors)
            else:
                idx = perm.narrow(0, start, length)
                yield tuple(t.index_select(0, idx) for t in self.tensors)


class _ShardedBatchSampler(Sampler[list[int]]):
    def __init__(self, order: _BatchOrder) -> None:
        self.order = order

    def __len__(self) -> int:
        return self.order.n_steps

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.order.permutation()
        for step in range(self.order.n_steps):
            start, length = self.order.local_range(step)
            if perm is None:
                yield list(range(start, start + length))
            else:
                yield perm[start:start + length].tolist()


class DatasetBatches(_Ordered):
    """A map-style torch ``Dataset`` batched by a ``DataLoader`` in the seeded, sharded order."""

    def __init__(self, dataset: Dataset[Any], batch_size: int, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 num_workers: int = 0, pin_memory: bool = False) -> None:
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise ShapeMismatchError(
                "the Dataset has no len(); pass a DataLoader for an iterable dataset.") from None
        self.order = _BatchOrder(n, batch_size, shuffle, seed, rank, world_size, drop_last)
        self.loader = DataLoader(dataset, batch_sampler=_ShardedBatchSampler(self.order),
                                 num_workers=num_workers, pin_memory=pin_memory)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)


class LoaderBatches:
    """A caller's ``DataLoader``, used as it is (its sampler's ``set_epoch`` is called if it has one)."""

    def __init__(self, loader: DataLoader[Any]) -> None:
        self.loader = loader
        try:
            self._len: int | None = len(loader)
        except TypeError:
            self._len = None

    @property
    def n_rows(self) -> int | None:
        try:
            return len(self.loader.dataset)  # type: ignore[arg-type]
        except TypeError:
            return None

    def set_epoch(self, epoch: int) -> None:
        for obj in (self.loader.sampler, self.loader.batch_sampler):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)

    def rank_weight(self, step: int) -> float:
        return 1.0

    def __len__(self) -> int:
        if self._len is None:
            raise TypeError("this DataLoader has no length")
        return self._len

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)


Batches = TensorBatches | DatasetBatches | LoaderBatches


def make_batches(data: Any, what: str, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0) -> Batches:
    """The batcher that fits ``data``: a DataLoader as is, a Dataset through one, else tensors."""
    if isinstance(data, DataLoader):
        return LoaderBatches(data)
    if isinstance(data, Dataset):
        return DatasetBatches(data, batch_size, shuffle, seed, rank, world_size,
                              num_workers=num_workers, pin_memory=device.type == "cuda")
    return TensorBatches(as_tensors(data, what), batch_size, shuffle, seed, rank, world_size,
                         device=device)
