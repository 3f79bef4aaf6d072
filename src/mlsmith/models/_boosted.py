"""Common machinery for the gradient-boosting libraries (LightGBM, XGBoost, CatBoost).

Each wrapper is a scikit-learn estimator that holds out a stratified slice of the rows it is
given, boosts with early stopping on that slice, and stops by itself at a deadline. The slice is
cut from the training data it receives, so inside cross-validation it never sees the fold being
scored.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from mlsmith.models._base import BuildContext, ModelFamily

__all__ = ["BoostedClassifierMixin", "BoostedRegressorMixin", "BoostedBase", "BoostedFamily"]


class BoostedBase(BaseEstimator):
    """Shared fit logic; subclasses implement ``_fit_library`` and ``_predict_library``."""

    _is_classifier = False

    def __init__(self, params: dict[str, Any] | None = None,
                 categorical_features: tuple[int, ...] = (), n_estimators: int = 2000,
                 early_stopping_rounds: int = 50, validation_fraction: float = 0.1,
                 n_jobs: int = 1, random_state: int = 0, deadline: float | None = None) -> None:
        self.params = params
        self.categorical_features = categorical_features
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.deadline = deadline

    # --- helpers -----------------------------------------------------------------------------
    def _inner_split(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(y)
        frac = self.validation_fraction if n >= 2000 else max(self.validation_fraction, 0.15)
        n_val = int(round(n * frac))
        if self.early_stopping_rounds <= 0 or n_val < 20:
            return np.arange(n), None
        rng = np.random.default_rng(self.random_state)
        if self._is_classifier:
            val_parts = []
            for c in np.unique(y):
                idx = np.flatnonzero(y == c)
                if len(idx) < 2:
                    continue
                k = max(1, int(round(len(idx) * frac)))
                val_parts.append(rng.choice(idx, size=k, replace=False))
            val = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], dtype=int)
        else:
            val = np.sort(rng.choice(n, size=n_val, replace=False))
        mask = np.ones(n, dtype=bool)
        mask[val] = False
        return np.flatnonzero(mask), val

    def fit(self, X: Any, y: Any) -> BoostedBase:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if self._is_classifier:
            self.classes_, y_enc = np.unique(y, return_inverse=True)
            self.n_classes_ = len(self.classes_)
            if self.n_classes_ == 1:
                self.model_ = None
                self.n_features_in_ = X.shape[1]
                return self
        else:
            y_enc = y.astype(np.float64)
        train, val = self._inner_split(X, y_enc)
        t0 = time.time()
        self.model_ = self._fit_library(X[train], y_enc[train],
                                        None if val is None else X[val],
                                        None if val is None else y_enc[val])
        self.fit_seconds_ = time.time() - t0
        self.n_features_in_ = X.shape[1]
        return self

    def _stop_now(self) -> bool:
        return self.deadline is not None and time.time() > self.deadline

    def _fit_library(self, X: np.ndarray, y: np.ndarray, Xv: np.ndarray | None,
                     yv: np.ndarray | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_library(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class BoostedClassifierMixin(ClassifierMixin):
    _is_classifier = True

    def predict_proba(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.model_ is None:
            return np.ones((len(X), 1))
        p = self._predict_library(X)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        p = np.clip(p, 0.0, 1.0)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class BoostedRegressorMixin(RegressorMixin):
    _is_classifier = False

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self._predict_library(np.asarray(X, dtype=np.float64)), dtype=np.float64)


class BoostedFamily(ModelFamily):
    """A boosting library's family: ``build`` picks the classifier or regressor wrapper.

    Subclasses set ``classifier`` and ``regressor`` (wrappers derived from :class:`BoostedBase`)
    besides what every family declares.
    """

    classifier: type[BoostedBase]
    regressor: type[BoostedBase]

    def build(self, params: dict[str, Any], ctx: BuildContext) -> Any:
        cls = self.regressor if ctx.task == "regression" else self.classifier
        params = dict(params)
        n_estimators = params.pop("n_estimators", 3000)
        return cls(params=params, categorical_features=tuple(ctx.categorical_features),
                   n_estimators=n_estimators, n_jobs=ctx.n_jobs, random_state=ctx.seed,
                   deadline=ctx.deadline)
