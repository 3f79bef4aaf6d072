"""The contract every model family fulfils, and the context it is built in."""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from mlsmith.models._space import Space

__all__ = ["Capabilities", "BuildContext", "ModelFamily"]


@dataclass(frozen=True)
class Capabilities:
    """What a family is, declared once so nothing else special-cases it.

    ``preprocessing`` names the recipe the family needs:

    * ``"scaled"``: imputed, scaled numbers and one-hot / target-encoded categories (linear, kNN);
    * ``"tree"``: imputed numbers with missing indicators and ordinal categories (forests);
    * ``"native"``: raw numbers with missing values kept and ordinal-coded categories flagged
      as categorical for the library's own handling (gradient-boosting libraries).

    ``relative_cost`` is the cost of fitting the default configuration relative to a logistic
    regression on the same data (measured on the public suite); the scheduler uses it to guess
    whether a model fits in the time left. ``stops_at_deadline`` says the estimator ends its
    fit by itself at ``BuildContext.deadline`` (boosting with a time callback), so it may start
    with less time than it would like and return a shorter model.
    """

    tasks: frozenset[str]
    preprocessing: str
    relative_cost: float
    cost_grows_with_rows_squared: bool = False
    stops_at_deadline: bool = False
    cost_grows_with_classes: bool = False


@dataclass
class BuildContext:
    """Facts about the data an estimator is built for."""

    task: str
    n_rows: int
    n_features: int
    categorical_features: list[int] = field(default_factory=list)
    seed: int = 0
    n_jobs: int = 1
    deadline: float | None = None  # time.time() after which iterative fitting should stop


class ModelFamily(ABC):
    """One family of models (random forest, LightGBM, ...).

    Subclasses set ``name``, ``capabilities`` and, for optional libraries, ``requires`` (import
    name) and ``extra`` (the pip extra that installs it); they implement :meth:`build`,
    :meth:`portfolio` and :meth:`search_space`. Estimators follow the scikit-learn contract.
    Families hold no state: one instance serves every fit.
    """

    name: str = ""
    capabilities: Capabilities
    requires: str | None = None
    extra: str | None = None
    #: tried by default; False makes the family opt-in (``--models NAME``)
    in_default_portfolio: bool = True

    def available(self) -> bool:
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def supports(self, task: str) -> bool:
        return task in self.capabilities.tasks

    @abstractmethod
    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        """Return an unfitted scikit-learn estimator for ``params``."""

    @abstractmethod
    def portfolio(self, task: str) -> list[dict[str, Any]]:
        """A few strong configurations, best first, tried before any search."""

    @abstractmethod
    def search_space(self, task: str) -> Space:
        """The space the search engine explores for this family."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
