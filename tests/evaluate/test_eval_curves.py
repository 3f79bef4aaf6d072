"""Curves: the documented keys, downsampled lengths, values that agree with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mlsmith.evaluate import curves
from mlsmith.evaluate._curves import downsample_curve


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    raw = rng.dirichlet(np.ones(k), n) + 0.5 * np.eye(k)[y]
    return y, raw / raw.sum(axis=1, keepdims=True)


def test_binary_curves_have_the_documented_keys_and_bounded_lengths() -> None:
    y, p = _data(3000, 2, seed=0)
    out = curves("binary", y, p, ["no", "yes"], max_points=50)
    assert set(out) == {"roc", "pr", "calibration"}
    (roc,), (pr,), (cal,) = out["roc"], out["pr"], out["calibration"]
    assert roc["label"] == pr["label"] == cal["label"] == "yes"
    assert set(roc) == {"label", "fpr", "tpr", "auc"}
    assert {"label", "recall", "precision", "ap", "prevalence"} <= set(pr)
    assert {"label", "mean_predicted", "fraction_positive", "count"} <= set(cal)
    assert 2 < len(roc["fpr"]) == len(roc["tpr"]) <= 50
    assert 2 < len(pr["recall"]) == len(pr["precision"]) <= 50
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert pr["recall"][0] == 0 and pr["recall"][-1] == 1 and np.all(np.diff(pr["recall"]) >= 0)
    assert roc["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert pr["ap"] == pytest.approx(skm.average_precision_score(y, p[:, 1]))
    assert pr["prevalence"] == pytest.approx(y.mean())
    # the downsampled curve keeps points of the full one, spread along it
    fpr, tpr, _ = skm.roc_curve(y, p[:, 1])
    full = {(round(a, 5), round(b, 5)) for a, b in zip(fpr, tpr, strict=True)}
    assert all((a, b) in full for a, b in zip(roc["fpr"], roc["tpr"], strict=True))
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc["auc"], abs=0.01)


def test_calibration_bins_agree_with_sklearn() -> None:
    y, p = _data(2000, 2, seed=1)
    cal = curves("binary", y, p)["calibration"][0]
    frac, mean = __import__("sklearn.calibration", fromlist=["x"]).calibration_curve(
        y, p[:, 1], n_bins=10, strategy="uniform")
    assert cal["fraction_positive"] == pytest.approx(frac, abs=1e-5)
    assert cal["mean_predicted"] == pytest.approx(mean, abs=1e-5)
    assert sum(cal["count"]) == 2000


def test_multiclass_has_one_curve_per_class() -> None:
    y, p = _data(600, 4, seed=2)
    names = ["w", "x", "y", "z"]
    out = curves("multiclass", y, p, names, max_points=30)
    for key in ("roc", "pr", "calibration"):
        assert [c["label"] for c in out[key]] == names
    for c, roc in enumerate(out["roc"]):
        assert roc["auc"] == pytest.approx(skm.roc_auc_score(y == c, p[:, c]))
        assert len(roc["fpr"]) <= 30
    macro = np.mean([r["auc"] for r in out["roc"]])
    assert macro == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))


def test_absent_class_has_no_roc_curve() -> None:
    y, p = _data(300, 3, seed=3)
    y = np.where(y == 2, 0, y)
    out = curves("multiclass", y, p, list("abc"))
    assert [r["label"] for r in out["roc"]] == ["a", "b"]
    assert [r["label"] for r in out["calibration"]] == ["a", "b", "c"]


def test_regression_residuals_are_sampled() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=5000)
    pred = y + rng.normal(scale=0.1, size=5000)
    res = curves("regression", y, pred, max_scatter=1000)["residuals"]
    assert len(res["predicted"]) == len(res["actual"]) == len(res["residual"]) == 1000
    assert res["n_rows"] == 5000
    assert np.allclose(np.subtract(res["actual"], res["predicted"]), res["residual"], atol=1e-5)
    small = curves("regression", y[:50], pred[:50])["residuals"]
    assert small["actual"] == pytest.approx(y[:50], abs=1e-6)


def test_curves_are_strict_json_and_seeded() -> None:
    y, p = _data(800, 3, seed=5)
    a = curves("multiclass", y, p, list("abc"))
    json.dumps(a, allow_nan=False)
    assert a == curves("multiclass", y, p, list("abc"))


def test_downsample_keeps_ends() -> None:
    keep = downsample_curve(1000, 7)
    assert keep[0] == 0 and keep[-1] == 999 and len(keep) == 7
    assert list(downsample_curve(5, 7)) == [0, 1, 2, 3, 4]
