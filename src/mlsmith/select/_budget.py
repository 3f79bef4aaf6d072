from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["Budget", "available_cores"]


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (``taskset``, a container's cpuset)
    where the platform says, else every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class Budget:
    """Wall-clock budget of a fit, measured from its start; the clock can be injected in tests."""

    def __init__(self, limit: float, start: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = float(limit)
        self.clock = clock
        self.start = clock() if start is None else start

    @property
    def deadline(self) -> float:
        return self.start + self.limit

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        return self.deadline - self.clock()
