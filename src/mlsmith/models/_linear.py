from __future__ import annotations

from typing import Any

from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._space import Choice, Float, Space

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


class LinearFamily(ModelFamily):
    """Logistic regression (classification) or ridge regression: the fast baseline."""

    name = "linear"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="scaled", relative_cost=1.0)

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        if ctx.task == "regression":
            from sklearn.linear_model import Ridge

            return Ridge(alpha=params.get("alpha", 1.0), random_state=ctx.seed)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=params.get("C", 1.0), max_iter=params.get("max_iter", 300),
                                  class_weight=params.get("class_weight"), random_state=ctx.seed)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [{"alpha": 1.0}] if task == "regression" else [{"C": 1.0}]

    def search_space(self, task: str) -> Space:
        if task == "regression":
            return {"alpha": Float(1e-3, 1e3, log=True)}
        return {"C": Float(1e-4, 1e2, log=True), "class_weight": Choice((None, "balanced"))}
