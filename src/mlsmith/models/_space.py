"""A small declarative language for search spaces.

Families declare their spaces with these types; the search engine translates them to Optuna
distributions (or a grid) when it runs. Declaring data rather than code keeps the families free
of any dependency on the search library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Float", "Int", "Choice", "Space", "sample_space"]


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(self.high, max(self.low, math.floor(v))))
        return int(rng.integers(self.low, self.high + 1))


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


Space = dict[str, Float | Int | Choice]


def sample_space(space: Space, rng: np.random.Generator) -> dict[str, Any]:
    """Draw one configuration uniformly (log-uniformly where declared) from ``space``."""
    return {name: dim.sample(rng) for name, dim in space.items()}
