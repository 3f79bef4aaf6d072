from __future__ import annotations

from typing import Any

import numpy as np

from mlsmith.models._base import Capabilities
from mlsmith.models._boosted import (
    BoostedBase,
    BoostedClassifierMixin,
    BoostedFamily,
    BoostedRegressorMixin,
)
from mlsmith.models._space import Float, Int, Space

ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


class _LightGBMBase(BoostedBase):
    def _fit_library(self, X, y, Xv, yv):  # type: ignore[no-untyped-def]
        import lightgbm as lgb

        params: dict[str, Any] = {
            "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20,
            "feature_fraction": 0.9, "bagging_fraction": 1.0, "bagging_freq": 0,
            "lambda_l2": 0.0, "max_bin": 255,
        }
        params.update(self.params or {})
        if self._is_classifier:
            if self.n_classes_ > 2:
                params.update(objective="multiclass", num_class=self.n_classes_)
            else:
                params.update(objective="binary")
        else:
            params.setdefault("objective", "regression")
        if params.get("bagging_fraction", 1.0) < 1.0 and not params.get("bagging_freq"):
            params["bagging_freq"] = 1
        # threads only pay off on larger data; on small data they mostly wait for each other
        threads = self.n_jobs if len(y) >= 5000 else 1
        params.update(verbosity=-1, num_threads=threads, seed=self.random_state,
                      deterministic=True, force_row_wise=True)
        cats = [c for c in self.categorical_features if c < X.shape[1]]
        train = lgb.Dataset(X, label=y, categorical_feature=cats or "auto", free_raw_data=True)
        callbacks = [self._deadline_callback()]
        valid_sets = []
        if Xv is not None:
            valid = lgb.Dataset(Xv, label=yv, reference=train, categorical_feature=cats or "auto")
            valid_sets = [valid]
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        booster = lgb.train(params, train, num_boost_round=self.n_estimators,
                            valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = booster.best_iteration or booster.current_iteration()
        return booster

    def _deadline_callback(self):  # type: ignore[no-untyped-def]
        import lightgbm as lgb

        def stop_at_deadline(env: Any) -> None:
            if self._stop_now():
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

        stop_at_deadline.order = 40  # type: ignore[attr-defined]
        return stop_at_deadline

    def _predict_library(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, num_iteration=self.best_iteration_)


class LightGBMClassifier(BoostedClassifierMixin, _LightGBMBase):
    """LightGBM classifier with inner early stopping and a deadline."""


class LightGBMRegressor(BoostedRegressorMixin, _LightGBMBase):
    """LightGBM regressor with inner early stopping and a deadline."""


class LightGBMFamily(BoostedFamily):
    """LightGBM gradient-boosted trees with native categorical handling."""

    name = "lightgbm"
    classifier = LightGBMClassifier
    regressor = LightGBMRegressor
    requires = "lightgbm"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="native", relative_cost=4.0, stops_at_deadline=True,
                                cost_grows_with_classes=True)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [
            {"learning_rate": 0.1, "num_leaves": 31, "feature_fraction": 0.9},
            {"learning_rate": 0.03, "num_leaves": 128, "min_data_in_leaf": 3,
             "feature_fraction": 0.9, "lambda_l2": 1.0},
            {"learning_rate": 0.1, "num_leaves": 15, "extra_trees": True,
             "feature_fraction": 0.7, "min_data_in_leaf": 10},
        ]

    def search_space(self, task: str) -> Space:
        return {
            "learning_rate": Float(0.005, 0.2, log=True),
            "num_leaves": Int(4, 256, log=True),
            "min_data_in_leaf": Int(2, 100, log=True),
            "feature_fraction": Float(0.3, 1.0),
            "bagging_fraction": Float(0.5, 1.0),
            "lambda_l2": Float(1e-6, 10.0, log=True),
        }
