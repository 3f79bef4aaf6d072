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


class _CatBoostBase(BoostedBase):
    def _frame(self, X: np.ndarray) -> Any:
        import pandas as pd

        df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        for i in self.categorical_features:
            if i < X.shape[1]:
                col = df.iloc[:, i]
                df[f"f{i}"] = np.where(np.isnan(col.to_numpy()), -1, col.to_numpy()).astype(np.int64)
        return df

    def _fit_library(self, X, y, Xv, yv):  # type: ignore[no-untyped-def]
        import catboost

        params: dict[str, Any] = {"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0}
        params.update(self.params or {})
        if self._is_classifier:
            params["loss_function"] = "MultiClass" if self.n_classes_ > 2 else "Logloss"
            cls = catboost.CatBoostClassifier
        else:
            params["loss_function"] = "RMSE"
            cls = catboost.CatBoostRegressor
        owner = self

        class _Deadline:
            def after_iteration(self, info: Any) -> bool:
                return not owner._stop_now()

        cats = [i for i in self.categorical_features if i < X.shape[1]]
        model = cls(iterations=self.n_estimators, thread_count=(self.n_jobs if len(y) >= 5000 else 1),
                    random_seed=self.random_state, verbose=False, allow_writing_files=False,
                    cat_features=cats or None, **params)
        kwargs: dict[str, Any] = {}
        if Xv is not None:
            kwargs.update(eval_set=(self._frame(Xv), yv), use_best_model=True,
                          early_stopping_rounds=self.early_stopping_rounds)
        model.fit(self._frame(X), y, callbacks=[_Deadline()], **kwargs)
        self.best_iteration_ = model.get_best_iteration() or model.tree_count_
        return model

    def _predict_library(self, X: np.ndarray) -> np.ndarray:
        if self._is_classifier:
            return self.model_.predict_proba(self._frame(X))
        return self.model_.predict(self._frame(X))


class CatBoostClassifier(BoostedClassifierMixin, _CatBoostBase):
    """CatBoost classifier with inner early stopping and a deadline."""


class CatBoostRegressor(BoostedRegressorMixin, _CatBoostBase):
    """CatBoost regressor with inner early stopping and a deadline."""


class CatBoostFamily(BoostedFamily):
    """CatBoost ordered boosting with native categorical handling (``boost`` extra)."""

    name = "catboost"
    classifier = CatBoostClassifier
    regressor = CatBoostRegressor
    requires = "catboost"
    extra = "boost"
    capabilities = Capabilities(tasks=ALL_TASKS, preprocessing="native", relative_cost=10.0, stops_at_deadline=True,
                                cost_grows_with_classes=True)

    def portfolio(self, task: str) -> list[dict[str, Any]]:
        return [{"learning_rate": 0.08, "depth": 6}]

    def search_space(self, task: str) -> Space:
        return {
            "learning_rate": Float(0.01, 0.3, log=True),
            "depth": Int(3, 10),
            "l2_leaf_reg": Float(0.5, 30.0, log=True),
        }
