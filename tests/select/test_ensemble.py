"""Greedy ensemble selection (Caruana) on out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsmith.metrics import score
from mlsmith.select import FittedModel, greedy_ensemble
from mlsmith.select._ensemble import align_proba, blend


def _proba_models(seed: int, k: int, n: int, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    preds = {}
    for i in range(k):
        raw = rng.uniform(0, 1, (n, n_classes)) + np.eye(n_classes)[y] * rng.uniform(0, 1.5)
        preds[f"m{i}"] = raw / raw.sum(axis=1, keepdims=True)
    return y, preds


def _regression_models(seed: int, k: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, {f"m{i}": y + rng.normal(scale=rng.uniform(0.1, 2.0), size=n) + rng.normal()
               for i in range(k)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 5), n=st.integers(10, 60),
       kind=st.sampled_from(["log_loss-2", "log_loss-3", "rmse", "mae"]))
def test_weights_sum_to_one_and_never_worse_than_best_single(seed: int, k: int, n: int,
                                                             kind: str) -> None:
    if kind.startswith("log_loss"):
        y, preds = _proba_models(seed, k, n, int(kind[-1]))
        metric = "log_loss"
    else:
        y, preds = _regression_models(seed, k, n)
        metric = kind
    weights, ens = greedy_ensemble(preds, y, metric)
    assert set(weights) <= set(preds)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in weights.values())
    best = max(score(metric, y, p) for p in preds.values())
    assert ens >= best - 1e-9
    # the returned score is the score of the blend the weights describe
    assert ens == pytest.approx(score(metric, y, blend([preds[m] for m in weights],
                                                       list(weights.values()))))


def test_complementary_models_are_blended() -> None:
    y = np.array([0.0, 0.0, 1.0, 1.0])
    preds = {"high": y + 0.5, "low": y - 0.5, "noise": np.array([3.0, -3.0, 3.0, -3.0])}
    weights, ens = greedy_ensemble(preds, y, "rmse")
    assert set(weights) == {"high", "low"}
    assert weights["high"] == pytest.approx(0.5, abs=0.05)
    assert ens > -0.05  # the blend is almost exact; either alone is 0.5 off


def test_a_perfect_model_takes_all_the_weight() -> None:
    y, preds = _regression_models(3, 3, 30)
    preds["perfect"] = y.copy()
    weights, ens = greedy_ensemble(preds, y, "rmse")
    assert weights == {"perfect": 1.0}
    assert ens == pytest.approx(0.0, abs=1e-12)


def test_empty_input() -> None:
    with pytest.raises(ValueError, match="no predictions"):
        greedy_ensemble({}, np.zeros(3), "rmse")


def test_never_worse_than_best_single_with_roc_auc() -> None:
    rng = np.random.default_rng(128)
    n = 34
    y = rng.integers(0, 2, n)
    preds = {}
    for i in range(2):
        p = np.clip(y * rng.uniform(0, 1) + rng.uniform(0, 1, n), 0, None)
        p = p / p.max()
        p = np.clip(np.column_stack([1 - p, p]), 1e-3, 1)
        preds[f"m{i}"] = p / p.sum(axis=1, keepdims=True)
    _, ens = greedy_ensemble(preds, y, "roc_auc")
    best = max(score("roc_auc", y, p) for p in preds.values())
    assert ens >= best


def test_align_proba_places_missing_classes() -> None:
    class Est:
        classes_ = np.array([0, 2])

    out = align_proba(Est(), np.array([[0.25, 0.75]]), 3)
    assert out.tolist() == [[0.25, 0.0, 0.75]]


def test_fitted_model_blends_members() -> None:
    class Const:
        def __init__(self, p):
            self.p = np.asarray(p)
            self.classes_ = np.arange(len(p))

        def predict_proba(self, X):
            return np.tile(self.p, (len(X), 1))

    model = FittedModel("binary", ["no", "yes"], [("a", Const([1.0, 0.0]), 0.75),
                                                   ("b", Const([0.0, 1.0]), 0.25)])
    assert model.n_classes == 2
    np.testing.assert_allclose(model.predict_encoded(np.zeros((2, 1))), [[0.75, 0.25]] * 2)
    assert model.describe() == [{"model": "a", "weight": 0.75}, {"model": "b", "weight": 0.25}]


def test_the_pool_keeps_every_familys_best_model() -> None:
    # twelve close variants of one family (a search) all beat a different model alone, but
    # only the different one cancels their shared error
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    shared = rng.normal(scale=0.5, size=500)
    preds = {f"lightgbm_trial{i}": y + shared + rng.normal(scale=0.05, size=500)
             for i in range(12)}
    preds["extra_trees_1"] = y + rng.normal(scale=0.6, size=500)
    groups = {name: name.split("_trial")[0].rsplit("_", 1)[0] for name in preds}
    crowded, crowded_score = greedy_ensemble(preds, y, "rmse", max_models=12)
    diverse, diverse_score = greedy_ensemble(preds, y, "rmse", max_models=12, groups=groups)
    assert "extra_trees_1" not in crowded
    assert diverse.get("extra_trees_1", 0) > 0.2
    assert diverse_score > crowded_score + 0.05  # rmse is scored negated: higher is better
