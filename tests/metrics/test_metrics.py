"""Metrics agree with scikit-learn; ``score`` is signed so that higher is better."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlsmith.errors import ConfigError
from mlsmith.metrics import METRICS, compute_all, default_metric, get_metric, score


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0.01, 0.99)
    return y, np.column_stack([1 - p1, p1])


@pytest.fixture
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    raw = rng.uniform(0, 1, (300, 3)) + np.eye(3)[y] * 0.8
    return y, raw / raw.sum(axis=1, keepdims=True)


@pytest.fixture
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.normal(5, 2, 100)
    return y, y + rng.normal(0, 0.5, 100)


def test_binary_against_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    labels = p.argmax(axis=1)
    got = compute_all("binary", y, p)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert got["f1"] == pytest.approx(skm.f1_score(y, labels))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, labels))
    assert set(got) == {n for n, m in METRICS.items() if "binary" in m.tasks}


def test_multiclass_against_sklearn(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass
    labels = p.argmax(axis=1)
    got = compute_all("multiclass", y, p)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["f1_weighted"] == pytest.approx(skm.f1_score(y, labels, average="weighted"))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, labels, average="macro"))
    assert "f1" not in got  # binary only


def test_regression_against_sklearn(regression: tuple[np.ndarray, np.ndarray]) -> None:
    y, pred = regression
    got = compute_all("regression", y, pred)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert got["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))


def test_undefined_metrics_are_omitted() -> None:
    y = np.array([0.0, 1.0, 2.0])
    got = compute_all("regression", y, y + 0.1)
    assert "mape" not in got  # a zero target
    assert got["rmse"] == pytest.approx(0.1)


def test_log_loss_survives_zero_probabilities() -> None:
    y = np.array([0, 1])
    p = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert np.isfinite(get_metric("log_loss").fn(y, p))


def test_roc_auc_with_a_class_absent_from_the_fold(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass
    keep = y != 2
    v = get_metric("roc_auc").fn(y[keep], p[keep])
    sub = p[keep][:, :2] / p[keep][:, :2].sum(axis=1, keepdims=True)
    assert v == pytest.approx(skm.roc_auc_score(y[keep], sub[:, 1]))


@pytest.mark.parametrize(("task", "name"), [("binary", "roc_auc"), ("multiclass", "log_loss"),
                                            ("regression", "rmse")])
def test_default_metric(task: str, name: str) -> None:
    assert default_metric(task) == name


def test_score_higher_is_better(binary: tuple[np.ndarray, np.ndarray],
                                regression: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    assert score("roc_auc", y, p) == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert score("log_loss", y, p) == pytest.approx(-skm.log_loss(y, p))
    perfect = np.eye(2)[y] * 0.98 + 0.01
    assert score("log_loss", y, perfect) > score("log_loss", y, p)
    yr, pr = regression
    assert score("rmse", yr, pr) == pytest.approx(-np.sqrt(skm.mean_squared_error(yr, pr)))
    assert score("rmse", yr, yr) > score("rmse", yr, pr)
    assert score("r2", yr, yr) > score("r2", yr, pr)


def test_get_metric_aliases_and_errors() -> None:
    assert get_metric("AUC").name == "roc_auc"
    assert get_metric(" logloss ").name == "log_loss"
    with pytest.raises(ConfigError, match="unknown metric 'rocauc'. Did you mean 'roc_auc'"):
        get_metric("rocauc")
    with pytest.raises(ConfigError, match="'rmse' does not apply to binary"):
        get_metric("rmse", "binary")
    with pytest.raises(ConfigError, match="'f1' does not apply to multiclass"):
        get_metric("f1", "multiclass")
