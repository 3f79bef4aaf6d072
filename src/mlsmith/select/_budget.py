from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Budget"]


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
