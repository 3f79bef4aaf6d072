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


class _XGBoostBase(BoostedBase):
    def _fit_library(self, X, y, Xv, yv):  # type: ignore[no-untyped-def]
        import xgboost as xgb

        params: dict[str, Any] = {"eta": 0.05, "max_depth": 6, "subsample": 0.9,
                                  "colsample_bytree": 0.9, "min_child_weight": 1.0, "lambda": 1.0}
        params.update(self.params or {})
        if self._is_classifier:
            if self.n_classes_ > 2:
                params.update(objective="multi:softprob", num_class=self.n_classes_,
                              eval_metric="mlogloss")
            else:
                params.update(objective="binary:logistic", eval_metric="logloss")
        else:
            params.update(objective="reg:squarederror", eval_metric="rmse")
        params.update(tree_method="hist", nthread=(self.n_jobs if len(y) >= 5000 else 1), seed=self.random_state,
                      verbosity=0)
        types = ["c" if i in set(self.categorical_features) else "q" for i in range(X.shape[1])]
        has_cat = "c" in types
        dtrain = xgb.DMatrix(X, label=y, feature_types=types, enable_categorical=has_cat)
        evals = []
        kwargs: dict[str, Any] = {}
        if Xv is not None:
            dvalid = xgb.DMatrix(Xv, label=yv, feature_types=types, enable_categorical=has_cat)
            evals = [(dvalid, "valid")]
            kwargs["early_stopping_rounds"] = self.early_stopping_rounds
        owner = self

        class _Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return owner._stop_now()

        booster = xgb.train(params, dtrain, num_boost_round=self.n_estimators, evals=evals,
                            verbose_eval=False, callbacks=[_Deadline()], **kwargs)
        best = getattr(booster, "best_iteration", None)
        self.best_iteration_ = (best + 1) if best is not None else booster.num_boosted_rounds()
        self.feature_types_ = types
        return booster

    def _predict_library(self, X: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        d = xgb.DMatrix(X, feature_types=self.feature_types_,
                        enable_categorical="c" in self.feature_types_)
        return self.model_.predict(d, iteration_range=(0, self.best_iteration_))


class XGBoostClassifier(BoostedClassifierMixin, _XGBoostBase):
    """XGBoost classifier with inner early stopping and a deadline."""


class XGBoostRegressor(BoostedRegressorMixin, _XGBoostBase):
    """XGBoost regressor with inner early stopping and a deadline."""


class XGBoostFamily(BoostedFamily):
    """XGBoost gradient-boosted trees (``boost`` extra)."""

    name = "xgboost"
    classifier = XGBoostClassifier
    regressor = XGBoostRegressor
    requires = "xgboost"
    extra = "boost"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="native", relative_cost=3.0, stops_at_deadline=True,
                                cost_grows_with_classes=True)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [{"eta": 0.05, "max_depth": 6, "subsample": 0.9, "colsample_bytree": 0.9}]

    def search_space(self, task: str) -> Space:
        return {
            "eta": Float(0.005, 0.2, log=True),
            "max_depth": Int(2, 12),
            "min_child_weight": Float(0.5, 20.0, log=True),
            "subsample": Float(0.5, 1.0),
            "colsample_bytree": Float(0.3, 1.0),
            "lambda": Float(1e-3, 10.0, log=True),
        }
