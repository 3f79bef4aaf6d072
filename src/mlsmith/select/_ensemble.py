"""The shipped model, and greedy ensemble selection on out-of-fold predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlsmith.metrics import score

__all__ = ["FittedModel", "align_proba", "greedy_ensemble", "blend"]


def align_proba(estimator: Any, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Place an estimator's probability columns at their global class positions.

    A fold's training part may lack a rare class; the estimator then predicts fewer columns.
    """
    classes = np.asarray(getattr(estimator, "classes_", np.arange(proba.shape[1])), dtype=int)
    if proba.shape[1] == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, classes] = proba
    return out


def predict_encoded(estimator: Any, X: Any, task: str, n_classes: int) -> np.ndarray:
    """Probabilities ``(n, K)`` for classification, values ``(n,)`` for regression."""
    if task == "regression":
        return np.asarray(estimator.predict(X), dtype=np.float64)
    return align_proba(estimator, np.asarray(estimator.predict_proba(X), dtype=np.float64), n_classes)


def blend(preds: list[np.ndarray], weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out = np.zeros_like(preds[0], dtype=np.float64)
    for p, wi in zip(preds, w, strict=True):
        out += wi * p
    return out


def greedy_ensemble(preds: dict[str, np.ndarray], y: np.ndarray, metric: str,
                    rounds: int = 25, max_models: int = 12,
                    groups: dict[str, str] | None = None) -> tuple[dict[str, float], float]:
    """Caruana et al. (2004) ensemble selection with replacement.

    Starts from the best single model and repeatedly adds the model (possibly again) whose
    addition improves the metric of the averaged prediction most, and keeps the best blend seen.
    Returns the weights (summing to 1) and the ensemble's score (higher is better). The score is
    measured on the same out-of-fold predictions the weights were chosen on, so it is slightly
    optimistic.

    The pool holds at most ``max_models`` models. With ``groups`` (model to family) it takes the
    best model of every family first, then the best of the rest: a search adds dozens of close
    variants of two families, which would otherwise push the weaker but different models out
    (measured on wine_quality_red: extra trees and a random forest left the pool, the ensemble's
    out-of-fold log loss went from 0.954 to 0.965 and its test log loss from 0.80 to 0.88).
    """
    scored = sorted(((score(metric, y, p), name) for name, p in preds.items()), reverse=True)
    order = [name for _, name in scored]  # best first
    if groups:
        leaders: dict[str, str] = {}  # family -> its best model
        for name in order:
            leaders.setdefault(groups.get(name, name), name)
        pool = set(list(leaders.values())[:max_models])
        pool.update([n for n in order if n not in pool][:max_models - len(pool)])
        names = [n for n in order if n in pool]
    else:
        names = order[:max_models]
    if not names:
        raise ValueError("no predictions to ensemble")
    counts = {names[0]: 1}
    current = preds[names[0]].astype(np.float64).copy()
    best_score = scored[0][0]
    best_counts = dict(counts)
    n = 1
    for _ in range(rounds - 1):
        best_candidate, best_candidate_score = None, -np.inf
        for name in names:
            trial = (current * n + preds[name]) / (n + 1)
            s = score(metric, y, trial)
            if s > best_candidate_score + 1e-12:
                best_candidate, best_candidate_score = name, s
        if best_candidate is None:
            break
        current = (current * n + preds[best_candidate]) / (n + 1)
        n += 1
        counts[best_candidate] = counts.get(best_candidate, 0) + 1
        if best_candidate_score > best_score + 1e-12:
            best_score, best_counts = best_candidate_score, dict(counts)
    # the best blend seen along the way: never worse than the best single model
    total = sum(best_counts.values())
    weights = {k: v / total for k, v in best_counts.items()}
    return weights, best_score


class FittedModel:
    """What a fit ships: fitted member pipelines and their weights, plus the label mapping.

    ``predict_encoded`` returns probabilities over the encoded classes (classification) or values
    (regression) for a frame already prepared by :func:`mlsmith.preprocess.prepare_features`.
    """

    #: binary decision threshold on the second class's probability, tuned on out-of-fold
    #: predictions when the classes are imbalanced; None: the most probable class
    threshold: float | None = None

    def __init__(self, task: str, classes: list[Any], members: list[tuple[str, Any, float]]) -> None:
        self.task = task
        self.classes = list(classes)
        self.members = members  # (model id, fitted pipeline, weight)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def predict_encoded(self, X: Any) -> np.ndarray:
        preds = [predict_encoded(est, X, self.task, self.n_classes) for _, est, _ in self.members]
        return blend(preds, [w for _, _, w in self.members])

    def labels_encoded(self, proba: np.ndarray) -> np.ndarray:
        """Encoded class labels from probabilities, applying :attr:`threshold` when set."""
        if self.task == "binary" and self.threshold is not None:
            return (proba[:, 1] >= self.threshold).astype(np.int64)
        return np.argmax(proba, axis=1)

    def describe(self) -> list[dict[str, Any]]:
        return [{"model": mid, "weight": round(w, 4)} for mid, _, w in self.members]
