from __future__ import annotations

from typing import Any

from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._space import Choice, Float, Int, Space

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


class _ForestFamily(ModelFamily):
    extra_trees = False

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        from sklearn import ensemble

        regression = ctx.task == "regression"
        kind = ("ExtraTrees" if self.extra_trees else "RandomForest") + (
            "Regressor" if regression else "Classifier")
        cls = getattr(ensemble, kind)
        max_features = params.get("max_features", 1.0 if regression else "sqrt")
        kwargs = dict(n_estimators=params.get("n_estimators", 300),
                      max_features=max_features,
                      min_samples_leaf=params.get("min_samples_leaf", 1),
                      max_depth=params.get("max_depth"),
                      n_jobs=ctx.n_jobs, random_state=ctx.seed)
        if not regression:
            kwargs["class_weight"] = params.get("class_weight")
            kwargs["criterion"] = params.get("criterion", "gini")
        return cls(**kwargs)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        if task == "regression":
            return [{"n_estimators": 300, "max_features": 0.6, "min_samples_leaf": 1}]
        return [{"n_estimators": 300, "max_features": "sqrt", "criterion": "entropy"}]

    def search_space(self, task: str) -> Space:
        space: Space = {
            "n_estimators": Int(100, 1000, log=True),
            "max_features": Float(0.1, 1.0),
            "min_samples_leaf": Int(1, 20, log=True),
        }
        if task != "regression":
            space["criterion"] = Choice(("gini", "entropy"))
            space["class_weight"] = Choice((None, "balanced"))
        return space


class RandomForestFamily(_ForestFamily):
    """Random forest (bootstrap samples, best split per feature subset)."""

    name = "random_forest"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="tree", relative_cost=17.0)


class ExtraTreesFamily(_ForestFamily):
    """Extremely randomised trees (random split thresholds, no bootstrap)."""

    name = "extra_trees"
    extra_trees = True
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="tree", relative_cost=15.0)
