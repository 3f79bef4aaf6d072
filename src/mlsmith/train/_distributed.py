"""Distributed data parallel training when the process was started by ``torchrun``.

``torchrun`` (``python -m torch.distributed.run``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. When ``WORLD_SIZE`` is above 1 the trainer joins the process
group (``nccl`` on CUDA, ``gloo`` otherwise), wraps the model in ``DistributedDataParallel`` and
gives each rank its share of every global batch. A process group the caller started already is
used as it is and left open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "detect", "setup", "teardown", "wrap", "all_reduce_sum", "gather_objects"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a distributed run (rank 0 of 1 when there is none)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    started_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect() -> DistInfo:
    """Rank and world size from an initialised process group, else from torchrun's variables."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        return DistInfo()
    return DistInfo(rank, world, local) if world > 1 else DistInfo()


def setup(info: DistInfo, device: torch.device, timeout_s: float = 600.0) -> DistInfo:
    """Join the process group if torchrun asked for one and nobody has joined yet."""
    if not info.enabled or dist.is_initialized():
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistInfo(info.rank, info.world_size, info.local_rank, started_here=True)


def teardown(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if info.started_here and dist.is_initialized():
        # every rank reaches this point before any tears the group down: a rank that leaves
        # while another still talks to it aborts gloo ("terminate called without an active
        # exception")
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` in a distributed run, the model itself otherwise."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over the ranks in place (nothing to do without a process group)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
