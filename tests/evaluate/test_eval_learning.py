"""Learning curve and the bias-variance verdict, on models actually fitted."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlsmith.errors import DataError
from mlsmith.evaluate import bias_variance, learning_curve, models_from_leaderboard
from mlsmith.metrics import get_metric


def _linear(n: int, seed: int, noise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = rng.integers(0, 2, n) if noise else (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=n) > 0)
    return X, np.asarray(y, dtype=np.int64)


def _scores(est, X, y, metric: str, tr: np.ndarray, va: np.ndarray) -> dict[str, float]:
    est.fit(X[tr], y[tr])
    m = get_metric(metric)
    return {"train": m.fn(y[tr], est.predict_proba(X[tr])),
            "validation": m.fn(y[va], est.predict_proba(X[va]))}


def test_learning_curve_grows_and_validation_improves() -> None:
    X, y = _linear(1500, seed=0)
    tr, va = np.arange(1000), np.arange(1000, 1500)
    out = learning_curve(lambda: DecisionTreeClassifier(max_depth=4, random_state=0), X, y,
                         "accuracy", train_idx=tr, val_idx=va, sizes=(0.02, 0.1, 0.5, 1.0))
    n_train = [p["n_train"] for p in out["points"]]
    assert n_train == [20, 100, 500, 1000]
    val = [p["validation"] for p in out["points"]]
    assert val[-1] > val[0] + 0.05
    assert val[-1] > 0.85
    assert all(0 < p["validation_std"] < 0.05 for p in out["points"])
    assert out["n_validation"] == 500 and out["metric"] == "accuracy"
    assert "stopped" not in out
    json.dumps(out, allow_nan=False)


def test_learning_curve_subsets_hold_every_class() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = np.where(rng.uniform(size=400) < 0.03, 2, (X[:, 0] > 0).astype(int))  # a rare class
    out = learning_curve(lambda: LogisticRegression(), X, y, "log_loss",
                         train_idx=np.arange(300), val_idx=np.arange(300, 400), sizes=(0.05, 1.0))
    assert [p["n_train"] for p in out["points"]] == [15, 300]
    # log loss is finite: the small subset's model still predicts all three classes
    assert all(np.isfinite(p["validation"]) for p in out["points"])


def test_learning_curve_stops_at_the_deadline() -> None:
    X, y = _linear(600, seed=2)
    calls = []

    class Slow(LogisticRegression):
        def fit(self, X, y):  # noqa: N803 - scikit-learn's signature
            calls.append(len(y))
            time.sleep(0.2 * len(y) / 100)
            return super().fit(X, y)

    out = learning_curve(Slow, X, y, "roc_auc", train_idx=np.arange(500),
                         val_idx=np.arange(500, 600), sizes=(0.2, 1.0),
                         deadline=time.time() + 0.6)
    # the first fit (100 rows) takes 0.2 s; the next (500 rows, about 1.3 s) is not started
    assert calls == [100]
    assert [p["n_train"] for p in out["points"]] == [100]
    assert "no time for n_train=500" in out["stopped"]
    past = learning_curve(Slow, X, y, "roc_auc", train_idx=np.arange(500),
                          val_idx=np.arange(500, 600), deadline=time.time() - 1)
    assert past["points"] == [] and calls == [100]


def test_learning_curve_rejects_empty_splits() -> None:
    X, y = _linear(50, seed=3)
    with pytest.raises(DataError, match="2 or more training and validation rows"):
        learning_curve(LogisticRegression, X, y, "accuracy", train_idx=np.arange(40),
                       val_idx=[])


def test_verdict_overfitting_for_a_deep_tree_on_noise() -> None:
    X, y = _linear(600, seed=4, noise=True)
    tr, va = np.arange(400), np.arange(400, 600)
    tree = _scores(DecisionTreeClassifier(random_state=0), X, y, "roc_auc", tr, va)
    out = bias_variance([{"model": "tree", **tree}], "roc_auc")
    assert tree["train"] == 1.0 and abs(tree["validation"] - 0.5) < 0.1
    assert out["verdict"] == "overfitting"
    assert "train roc_auc 1" in out["reason"] and out["chosen"] == "tree"
    assert out["models"][0]["gap"] == pytest.approx(1.0 - tree["validation"])


def test_verdict_underfitting_for_a_near_constant_model() -> None:
    X, y = _linear(600, seed=5)
    tr, va = np.arange(400), np.arange(400, 600)
    weak = _scores(LogisticRegression(C=1e-5), X, y, "log_loss", tr, va)
    base = _scores(DummyClassifier(strategy="prior"), X, y, "log_loss", tr, va)["validation"]
    out = bias_variance([{"model": "weak", **weak}], "log_loss", baseline=base)
    assert out["verdict"] == "underfitting", out["reason"]
    assert "baseline" in out["reason"]


def test_verdict_fine_for_a_linear_model_on_linear_data() -> None:
    X, y = _linear(800, seed=6)
    tr, va = np.arange(600), np.arange(600, 800)
    lin = _scores(LogisticRegression(), X, y, "roc_auc", tr, va)
    tree = _scores(DecisionTreeClassifier(random_state=0), X, y, "roc_auc", tr, va)
    models = [{"model": "linear", **lin}, {"model": "tree", **tree}]
    out = bias_variance(models, "roc_auc")
    assert out["chosen"] == "linear"  # the best validation score
    assert out["verdict"] == "fine", out["reason"]
    assert bias_variance(models, "roc_auc", chosen="tree")["verdict"] == "overfitting"


def test_verdict_for_an_ensemble_without_train_score_uses_a_stand_in() -> None:
    models = [{"model": "ensemble", "train": None, "validation": 0.95},
              {"model": "lgbm", "train": 0.96, "validation": 0.94},
              {"model": "knn", "train": float("nan"), "validation": 0.90}]
    out = bias_variance(models, "accuracy", baseline=0.5, chosen="ensemble")
    assert out["chosen"] == "lgbm" and out["verdict"] == "fine"
    assert "ensemble has no train score; judged on lgbm" in out["reason"]
    none = bias_variance([{"model": "a", "validation": 0.9}], "accuracy")
    assert none["verdict"] == "unknown"
    json.dumps(out, allow_nan=False)


def test_models_from_leaderboard() -> None:
    import pandas as pd

    board = pd.DataFrame({"model": ["ensemble", "lgbm", "constant_baseline", "knn"],
                          "status": ["ok", "ok", "ok", "timeout"],
                          "cv_rmse": [1.0, 1.1, 3.0, np.nan],
                          "train_rmse": [np.nan, 0.5, 3.0, np.nan]})
    rows = models_from_leaderboard(board, "rmse")
    assert rows == [{"model": "ensemble", "train": None, "validation": 1.0},
                    {"model": "lgbm", "train": 0.5, "validation": 1.1},
                    {"model": "constant_baseline", "train": 3.0, "validation": 3.0}]
    out = bias_variance(rows, "rmse", baseline=3.0)
    # rmse is a loss: the best validation is the lowest; lgbm stands in for the ensemble
    assert out["chosen"] == "lgbm"
    assert out["verdict"] == "overfitting"  # gap 0.6 > half of 1.1
