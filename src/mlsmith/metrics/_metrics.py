"""Metrics: one registry, computed from encoded labels and probabilities or predicted values.

Classification inputs are integer-encoded labels ``0..K-1`` and an ``(n, K)`` probability array;
regression inputs are two float arrays. ``score`` returns a value where higher is always better
(losses are negated), which is what model selection compares.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from mlsmith.errors import ConfigError, did_you_mean

__all__ = ["Metric", "METRICS", "get_metric", "score", "compute_all", "default_metric"]

EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    tasks: frozenset[str]
    description: str


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.argmax(proba, axis=1)


def _clip(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, EPS, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return float(skm.roc_auc_score(y, p[:, 1]))
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if len(present) == 2:
        # only two classes occur: score the second against the first
        sub2 = p[:, present]
        s = sub2[:, 1] / np.clip(sub2.sum(axis=1), EPS, None)
        return float(skm.roc_auc_score(y == present[1], s))
    sub = p[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), EPS, None)
    return float(skm.roc_auc_score(np.searchsorted(present, y), sub, multi_class="ovr",
                                   average="macro", labels=np.arange(len(present))))


def _roc_auc_weighted(y: np.ndarray, p: np.ndarray) -> float:
    """One-vs-rest ROC AUC weighted by class support (multiclass); classes absent from ``y``
    are left out and the remaining probability columns renormalised, as in :func:`_roc_auc`."""
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if len(present) == 2:
        return _roc_auc(y, p)
    sub = p[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), EPS, None)
    return float(skm.roc_auc_score(np.searchsorted(present, y), sub, multi_class="ovr",
                                   average="weighted", labels=np.arange(len(present))))


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared distance between the probability rows and the one-hot labels.

    Halved for two classes, so that binary values are the usual ``mean((p1 - y)^2)`` in [0, 1]
    (scikit-learn's ``brier_score_loss`` with ``scale_by_half="auto"``); multiclass in [0, 2].
    """
    onehot = np.eye(p.shape[1])[y]
    value = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    return value / 2.0 if p.shape[1] == 2 else value


def _pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return float(skm.average_precision_score(y, p[:, 1]))
    onehot = np.eye(p.shape[1])[y]
    present = onehot.sum(axis=0) > 0
    return float(skm.average_precision_score(onehot[:, present], p[:, present], average="macro"))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.log_loss(y, _clip(p), labels=np.arange(p.shape[1])))


def _cls(fn: Callable[..., float], **kw: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    def wrapped(y: np.ndarray, p: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fn(y, _labels(p), **kw))
    return wrapped


def _mape(y: np.ndarray, pred: np.ndarray) -> float:
    if np.any(y == 0):
        return float("nan")
    return float(skm.mean_absolute_percentage_error(y, pred))


BIN = frozenset({"binary"})
CLS = frozenset({"binary", "multiclass"})
MULTI = frozenset({"multiclass"})
REG = frozenset({"regression"})

METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("roc_auc", _roc_auc, True, CLS, "area under the ROC curve (one-vs-rest macro for multiclass)"),
    Metric("pr_auc", _pr_auc, True, CLS, "average precision (macro for multiclass)"),
    Metric("roc_auc_weighted", _roc_auc_weighted, True, MULTI, "one-vs-rest ROC AUC weighted by class support"),
    Metric("log_loss", _log_loss, False, CLS, "cross-entropy of the predicted probabilities"),
    Metric("brier", _brier, False, CLS, "Brier score: mean squared error of the probabilities (halved for binary)"),
    Metric("accuracy", _cls(skm.accuracy_score), True, CLS, "share of correct labels"),
    Metric("balanced_accuracy", _cls(skm.balanced_accuracy_score), True, CLS, "mean recall per class"),
    Metric("precision_macro", _cls(skm.precision_score, average="macro", zero_division=0), True, CLS, "precision, class mean"),
    Metric("recall_macro", _cls(skm.recall_score, average="macro", zero_division=0), True, CLS, "recall, class mean"),
    Metric("f1_macro", _cls(skm.f1_score, average="macro", zero_division=0), True, CLS, "F1, class mean"),
    Metric("precision_weighted", _cls(skm.precision_score, average="weighted", zero_division=0), True, CLS, "precision, weighted by support"),
    Metric("recall_weighted", _cls(skm.recall_score, average="weighted", zero_division=0), True, CLS, "recall, weighted by support"),
    Metric("f1_weighted", _cls(skm.f1_score, average="weighted", zero_division=0), True, CLS, "F1, weighted by support"),
    Metric("f1", _cls(skm.f1_score, zero_division=0), True, BIN, "F1 of the positive (last) class"),
    Metric("mcc", _cls(skm.matthews_corrcoef), True, CLS, "Matthews correlation coefficient"),
    Metric("rmse", lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))), False, REG, "root mean squared error"),
    Metric("mse", lambda y, p: float(skm.mean_squared_error(y, p)), False, REG, "mean squared error"),
    Metric("mae", lambda y, p: float(skm.mean_absolute_error(y, p)), False, REG, "mean absolute error"),
    Metric("r2", lambda y, p: float(skm.r2_score(y, p)), True, REG, "coefficient of determination"),
    Metric("mape", _mape, False, REG, "mean absolute percentage error (undefined when a target is 0)"),
    Metric("median_ae", lambda y, p: float(skm.median_absolute_error(y, p)), False, REG, "median absolute error"),
]}

_ALIASES = {"auc": "roc_auc", "logloss": "log_loss", "acc": "accuracy", "rmse": "rmse",
            "root_mean_squared_error": "rmse", "mean_absolute_error": "mae", "r_squared": "r2",
            "f1_score": "f1_macro", "matthews": "mcc",
            "brier_score": "brier", "brier_score_loss": "brier"}


def default_metric(task: str) -> str:
    """The AutoML Benchmark's default: ROC AUC, log loss, RMSE."""
    return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]


def get_metric(name: str, task: str | None = None) -> Metric:
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in METRICS:
        raise ConfigError(f"unknown metric {name!r}." + did_you_mean(name, METRICS)
                          + f" Known metrics: {', '.join(METRICS)}.")
    m = METRICS[key]
    if task is not None and task not in m.tasks:
        usable = [n for n, mm in METRICS.items() if task in mm.tasks]
        raise ConfigError(f"metric {m.name!r} does not apply to {task}: use one of {', '.join(usable)}.")
    return m


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """The metric's value signed so that higher is better."""
    m = get_metric(metric)
    value = m.fn(y, pred)
    return value if m.greater_is_better else -value


def compute_all(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Every metric that applies to ``task``; undefined ones are omitted."""
    out = {}
    for name, m in METRICS.items():
        if task not in m.tasks:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = m.fn(y, pred)
        except ValueError:
            continue
        if v == v:  # not NaN
            out[name] = float(v)
    return out
