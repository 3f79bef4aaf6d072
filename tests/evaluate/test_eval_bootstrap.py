"""Bootstrap intervals: exact per resample, seeded, shrinking with n, NaN-safe, time-budgeted;
and the CV-against-test flag."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlsmith.evaluate import (
    bootstrap_metrics,
    compare_cv_test,
    evaluate_predictions,
    percentile_interval,
)
from mlsmith.evaluate._bootstrap import classification_stats, regression_stats
from mlsmith.metrics import METRICS


def _data(n: int, k: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    raw = rng.uniform(0, 1, (n, k)) + 0.4 * np.eye(k)[y]
    if ties:  # many equal scores: the AUC's half-credit for ties is exercised
        raw = np.round(raw, 1) + 0.05
    return y, raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("k", "ties"), [(2, False), (2, True), (3, False), (5, True)])
def test_vectorised_values_equal_the_registry_on_each_resample(k: int, ties: bool) -> None:
    y, p = _data(60, k, seed=k + 10 * ties, ties=ties)
    kind = "binary" if k == 2 else "multiclass"
    names = [m for m, spec in METRICS.items() if kind in spec.tasks]
    if ties and k > 2:
        # the registry renormalises the columns for multiclass AUC: float noise breaks ties
        names = [m for m in names if m not in ("roc_auc", "roc_auc_weighted")]
    stats, covered = classification_stats(y, p, names)
    assert set(covered) == set(names)
    idx = np.random.default_rng(0).integers(0, len(y), (25, len(y)))
    got = stats(idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            for i, rows in enumerate(idx):
                try:
                    ref = METRICS[name].fn(y[rows], p[rows])
                except ValueError:
                    ref = np.nan
                if np.isnan(ref):
                    assert np.isnan(got[name][i]), (name, i)
                else:
                    assert got[name][i] == pytest.approx(ref, abs=1e-10), (name, i)


def test_vectorised_regression_equals_the_registry() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(5, 2, 80)
    pred = y + rng.normal(0, 1, 80)
    names = [m for m, spec in METRICS.items() if "regression" in spec.tasks]
    stats, covered = regression_stats(y, pred, names)
    assert set(covered) == set(names)
    idx = rng.integers(0, 80, (20, 80))
    got = stats(idx)
    for name in names:
        ref = [METRICS[name].fn(y[r], pred[r]) for r in idx]
        np.testing.assert_allclose(got[name], ref, rtol=1e-10, err_msg=name)


def test_intervals_contain_the_value_and_shrink_with_n() -> None:
    widths = []
    for n in (200, 2000, 20000):
        y, p = _data(n, 3, seed=1)
        out = evaluate_predictions("multiclass", y, p, n_boot=300, seed=0)
        for name, m in out["metrics"].items():
            assert m["low"] <= m["value"] <= m["high"], (n, name)
        widths.append(out["metrics"]["roc_auc"]["high"] - out["metrics"]["roc_auc"]["low"])
    assert widths[0] > 2 * widths[1] > 4 * widths[2]  # about 1/sqrt(n): 3.2x per step


def test_interval_width_matches_the_binomial_standard_error() -> None:
    y, p = _data(4000, 2, seed=5)
    out = evaluate_predictions("binary", y, p, metrics=["accuracy"], n_boot=1000, seed=0)
    acc = out["metrics"]["accuracy"]
    se = np.sqrt(acc["value"] * (1 - acc["value"]) / 4000)
    assert acc["high"] - acc["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_seeded_bootstrap_is_reproducible() -> None:
    y, p = _data(500, 2, seed=2)
    a = evaluate_predictions("binary", y, p, n_boot=300, seed=7)
    b = evaluate_predictions("binary", y, p, n_boot=300, seed=7)
    c = evaluate_predictions("binary", y, p, n_boot=300, seed=8)
    assert a == b
    assert a["metrics"]["roc_auc"]["low"] != c["metrics"]["roc_auc"]["low"]


def test_fewer_resamples_are_a_prefix_of_more() -> None:
    y, p = _data(3000, 2, seed=4)  # chunks of a few hundred: the prefix crosses a chunk edge
    short = bootstrap_metrics("binary", y, p, ["roc_auc", "accuracy"], n_boot=700, seed=3)
    full = bootstrap_metrics("binary", y, p, ["roc_auc", "accuracy"], n_boot=1000, seed=3)
    np.testing.assert_array_equal(short.values["roc_auc"], full.values["roc_auc"][:700])


def test_time_budget_lowers_n_boot_but_not_below_200() -> None:
    y, p = _data(20000, 10, seed=6)
    out = evaluate_predictions("multiclass", y, p, n_boot=100_000, time_budget=0.5)
    assert 200 <= out["n_boot"] < 100_000
    assert out["n_boot_requested"] == 100_000
    assert any("n_boot lowered from 100000" in n for n in out["notes"])
    none = evaluate_predictions("multiclass", y, p, n_boot=1000, time_budget=0.0)
    assert none["n_boot"] == 0 and none["metrics"]["accuracy"]["low"] is None


def test_resamples_missing_a_class_are_nan_safe() -> None:
    # one row of class 2: most resamples lack it, some lack it only among the predictions
    y = np.array([0] * 20 + [1] * 20 + [2])
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), len(y)) + 0.3 * np.eye(3)[y]
    p /= p.sum(axis=1, keepdims=True)
    out = evaluate_predictions("multiclass", y, p, list("abc"), n_boot=400, seed=0)
    for name, m in out["metrics"].items():
        assert m["low"] is not None and m["high"] is not None, name
        assert np.isfinite(m["low"]) and m["low"] <= m["high"], name
    rare = out["per_class"][2]
    assert rare["support"] == 1
    # recall of the rare class is undefined where it was not drawn (about 37% of resamples)
    res = bootstrap_metrics("multiclass", y, p, ["accuracy"], n_boot=400, seed=0,
                            per_class=True)
    missing = np.isnan(res.values["__recall_2"]).mean()
    assert 0.25 < missing < 0.5


def test_single_class_resamples_count_as_undefined() -> None:
    y = np.array([0] * 9 + [1])
    p = np.column_stack([np.linspace(0.9, 0.2, 10), np.linspace(0.1, 0.8, 10)])
    out = evaluate_predictions("binary", y, p, metrics=["roc_auc"], n_boot=500, seed=0)
    auc = out["metrics"]["roc_auc"]
    # the positive row is absent from a resample with probability 0.9**10
    assert auc["n_undefined"] == pytest.approx(500 * 0.9**10, rel=0.3)
    assert auc["low"] == auc["high"] == 1.0


def test_percentile_interval() -> None:
    values = np.r_[np.arange(1001.0), np.nan]
    assert percentile_interval(values, 0.95) == pytest.approx((25.0, 975.0))
    assert np.isnan(percentile_interval(np.full(5, np.nan), 0.95)[0])


def test_cv_vs_test_flags_disagreement_only() -> None:
    y, p = _data(1000, 2, seed=9)
    test = evaluate_predictions("binary", y, p, metrics=["roc_auc", "accuracy", "log_loss"],
                                n_boot=300)
    auc = test["metrics"]["roc_auc"]
    agree = compare_cv_test({"roc_auc": (auc["value"] + 0.001, 0.01)}, test)
    assert agree == [{"metric": "roc_auc", "cv": auc["value"] + 0.001, "cv_std": 0.01,
                      "test": auc["value"], "low": auc["low"], "high": auc["high"],
                      "agree": True, "difference": pytest.approx(-0.001)}]
    rows = compare_cv_test({"accuracy": 0.99, "roc_auc": auc["high"] + 0.02,
                            "log_loss": test["metrics"]["log_loss"]["value"], "rmse": 1.0},
                           test, first="roc_auc")
    assert [r["metric"] for r in rows] == ["roc_auc", "accuracy", "log_loss"]
    assert [r["agree"] for r in rows] == [False, False, True]
    assert rows[1]["cv_std"] is None
    no_interval = evaluate_predictions("binary", y, p, metrics=["accuracy"], n_boot=0)
    assert compare_cv_test({"accuracy": 0.5}, no_interval)[0]["agree"] is None
