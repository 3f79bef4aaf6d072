from __future__ import annotations

from typing import Any

from mlsmith.models._base import BuildContext, Capabilities, ModelFamily
from mlsmith.models._space import Float, Int, Space

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


class HistGradientBoostingFamily(ModelFamily):
    """scikit-learn's histogram gradient boosting, with native categorical support."""

    name = "hist_gradient_boosting"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="native", relative_cost=2.5,
                                cost_grows_with_classes=True)

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        from sklearn import ensemble

        cls = (ensemble.HistGradientBoostingRegressor if ctx.task == "regression"
               else ensemble.HistGradientBoostingClassifier)
        # unset parameters take scikit-learn's defaults, so the first portfolio entry is exactly
        # the "HistGradientBoosting with defaults" every user compares with
        extra = {} if ctx.task == "regression" else {"class_weight": params.get("class_weight")}
        return cls(
            **extra,
            learning_rate=params.get("learning_rate", 0.1),
            max_iter=params.get("max_iter", 100),
            max_leaf_nodes=params.get("max_leaf_nodes", 31),
            min_samples_leaf=params.get("min_samples_leaf", 20),
            l2_regularization=params.get("l2_regularization", 0.0),
            max_features=params.get("max_features", 1.0),
            early_stopping=params.get("early_stopping", "auto"),
            validation_fraction=0.1,
            n_iter_no_change=params.get("n_iter_no_change", 10),
            categorical_features=ctx.categorical_features or None,
            random_state=ctx.seed,
        )

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [
            {},  # scikit-learn's defaults
            {"learning_rate": 0.05, "max_iter": 1000, "early_stopping": True,
             "n_iter_no_change": 20, "min_samples_leaf": 10},
        ]

    def search_space(self, task: str) -> Space:
        return {
            "learning_rate": Float(0.01, 0.3, log=True),
            "max_leaf_nodes": Int(7, 255, log=True),
            "min_samples_leaf": Int(2, 100, log=True),
            "l2_regularization": Float(1e-6, 10.0, log=True),
            "max_features": Float(0.3, 1.0),
            "max_iter": Int(100, 2000, log=True),
        }
