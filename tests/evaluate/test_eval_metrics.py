"""The ``test`` section's point values agree with scikit-learn; bad input is named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mlsmith.errors import ConfigError, DataError
from mlsmith.evaluate import best_threshold, evaluate_predictions


def _proba(y: np.ndarray, k: int, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.dirichlet(np.ones(k), len(y)) + strength * np.eye(k)[y]
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    y = np.random.default_rng(0).integers(0, 2, 300)
    return y, _proba(y, 2, 0.6, 1)


@pytest.fixture
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    y = np.random.default_rng(2).integers(0, 4, 400)
    return y, _proba(y, 4, 0.5, 3)


def _values(section: dict) -> dict[str, float]:
    return {k: v["value"] for k, v in section["metrics"].items()}


def test_binary_values_equal_sklearn(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    out = evaluate_predictions("binary", y, p, ["no", "yes"], n_boot=0)
    got = _values(out)
    lab = p.argmax(axis=1)
    expected = {
        "accuracy": skm.accuracy_score(y, lab),
        "balanced_accuracy": skm.balanced_accuracy_score(y, lab),
        "precision_macro": skm.precision_score(y, lab, average="macro"),
        "recall_weighted": skm.recall_score(y, lab, average="weighted"),
        "f1_macro": skm.f1_score(y, lab, average="macro"),
        "f1_weighted": skm.f1_score(y, lab, average="weighted"),
        "f1": skm.f1_score(y, lab),
        "roc_auc": skm.roc_auc_score(y, p[:, 1]),
        "pr_auc": skm.average_precision_score(y, p[:, 1]),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p[:, 1]),
        "mcc": skm.matthews_corrcoef(y, lab),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    assert out["confusion_matrix"] == skm.confusion_matrix(y, lab).tolist()
    assert out["metrics"]["log_loss"]["greater_is_better"] is False
    assert out["n_rows"] == 300 and out["n_boot"] == 0
    assert out["metrics"]["roc_auc"]["low"] is None


def test_multiclass_values_and_per_class(multiclass: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = multiclass
    names = ["a", "b", "c", "d"]
    out = evaluate_predictions("multiclass", y, p, names, n_boot=0)
    got = _values(out)
    lab = p.argmax(axis=1)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert got["roc_auc_weighted"] == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p, labels=[0, 1, 2, 3]))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, lab))
    assert got["precision_weighted"] == pytest.approx(
        skm.precision_score(y, lab, average="weighted"))
    assert "f1" not in got  # binary only
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, lab)
    assert [r["class"] for r in out["per_class"]] == names
    for i, row in enumerate(out["per_class"]):
        assert row["precision"] == pytest.approx(prec[i])
        assert row["recall"] == pytest.approx(rec[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == sup[i]
    assert out["confusion_matrix"] == skm.confusion_matrix(y, lab).tolist()
    assert "threshold" not in out


def test_regression_values_equal_sklearn() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(10, 3, 250)
    pred = y + rng.normal(0, 1.5, 250)
    got = _values(evaluate_predictions("regression", y, pred, n_boot=0))
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert got["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))


def test_mape_undefined_with_a_zero_target_is_null_and_noted() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    out = evaluate_predictions("regression", y, y + 0.5, n_boot=200)
    assert out["metrics"]["mape"]["value"] is None
    assert out["metrics"]["mape"]["low"] is None
    assert any("mape" in n for n in out["notes"])
    assert out["metrics"]["mae"]["value"] == pytest.approx(0.5)


def test_best_threshold_matches_brute_force(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    value, best = best_threshold(y, p[:, 1], "f1")
    brute = max((skm.f1_score(y, p[:, 1] >= t), t) for t in np.unique(p[:, 1]))
    assert best == pytest.approx(brute[0])
    assert skm.f1_score(y, p[:, 1] >= value) == pytest.approx(best)
    for objective, fn in (("mcc", skm.matthews_corrcoef),
                          ("balanced_accuracy", skm.balanced_accuracy_score)):
        v, s = best_threshold(y, p[:, 1], objective)
        assert fn(y, p[:, 1] >= v) == pytest.approx(s)
        assert s >= max(fn(y, p[:, 1] >= t) for t in np.unique(p[:, 1])[::7]) - 1e-12


def test_threshold_section(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = binary
    out = evaluate_predictions("binary", y, p, n_boot=0)["threshold"]
    assert out["source"] == "test"
    assert out["score_at_default"] == pytest.approx(skm.f1_score(y, p.argmax(axis=1)))
    assert out["score"] >= out["score_at_default"]
    given = evaluate_predictions("binary", y, p, n_boot=0, threshold=0.3)["threshold"]
    assert given["source"] == "given" and given["value"] == 0.3
    assert given["score"] == pytest.approx(skm.f1_score(y, p[:, 1] >= 0.3))


def test_one_dimensional_binary_probabilities_are_accepted(binary) -> None:
    y, p = binary
    a = evaluate_predictions("binary", y, p[:, 1], n_boot=0)
    b = evaluate_predictions("binary", y, p, n_boot=0)
    assert _values(a) == pytest.approx(_values(b), rel=1e-12)
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_single_class_test_set_gives_null_auc() -> None:
    y = np.zeros(20, dtype=int)
    p = np.column_stack([np.linspace(0.4, 0.9, 20), np.linspace(0.6, 0.1, 20)])
    out = evaluate_predictions("binary", y, p, n_boot=200)
    assert out["metrics"]["roc_auc"]["value"] is None
    assert out["metrics"]["accuracy"]["value"] == pytest.approx(0.8)  # p0 > 0.5 in 16 of 20
    json.dumps(out, allow_nan=False)


def test_output_is_strict_json(multiclass) -> None:
    y, p = multiclass
    out = evaluate_predictions("multiclass", y, p, list("abcd"), n_boot=200)
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out


@pytest.mark.parametrize(("kind", "y", "pred", "match"), [
    ("binary", [0, 1, 2], np.full((3, 2), 0.5), "outside 0..1"),
    ("binary", [0, 1], np.full((3, 2), 0.5), "2 rows but the predictions have 3"),
    ("multiclass", [0, 1, 1], np.full((3, 2), 0.5), "3 or more probability columns"),
    ("binary", [0, 1, 1], np.full((3, 3), 1 / 3), "need 2 probability columns"),
    ("binary", ["no", "yes"], np.full((2, 2), 0.5), "encoded labels"),
    ("binary", [0, 1], np.array([[0.5, np.nan], [0.5, 0.5]]), r"row 1\)"),
    ("regression", [1.0, 2.0], np.ones((2, 2)), "one value per row"),
    ("binary", [], np.zeros((0, 2)), "empty"),
    ("binary", [0, 1], np.array([[2.0, -1.0], [0.5, 0.5]]), "negative"),
])
def test_bad_input_raises_data_error(kind: str, y, pred, match: str) -> None:
    with pytest.raises(DataError, match=match):
        evaluate_predictions(kind, np.asarray(y), pred, n_boot=0)


def test_bad_options_raise_config_error(binary) -> None:
    y, p = binary
    with pytest.raises(ConfigError, match="did you mean 'roc_auc'|Did you mean 'roc_auc'"):
        evaluate_predictions("binary", y, p, metrics=["roc_acu"])
    with pytest.raises(ConfigError, match="does not apply to binary"):
        evaluate_predictions("binary", y, p, metrics=["rmse"])
    with pytest.raises(ConfigError, match="unknown task kind"):
        evaluate_predictions("classification", y, p)
    with pytest.raises(ConfigError, match="ci must be"):
        evaluate_predictions("binary", y, p, ci=95)
    with pytest.raises(DataError, match="3 class names for 2"):
        evaluate_predictions("binary", y, p, ["a", "b", "c"])
