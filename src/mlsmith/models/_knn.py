from __future__ import annotations

from typing import Any

from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._space import Choice, Int, Space

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


class KNNFamily(ModelFamily):
    """k-nearest neighbours on scaled features."""

    name = "knn"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="scaled", relative_cost=1.0,
                                cost_grows_with_rows_squared=True)

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        k = int(min(params.get("n_neighbors", 15), max(1, ctx.n_rows // 2)))
        kwargs = dict(n_neighbors=k, weights=params.get("weights", "distance"),
                      p=params.get("p", 2), n_jobs=ctx.n_jobs)
        if ctx.task == "regression":
            from sklearn.neighbors import KNeighborsRegressor

            return KNeighborsRegressor(**kwargs)
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(**kwargs)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [{"n_neighbors": 15, "weights": "distance"}]

    def search_space(self, task: str) -> Space:
        return {"n_neighbors": Int(1, 100, log=True), "weights": Choice(("uniform", "distance")),
                "p": Choice((1, 2))}
