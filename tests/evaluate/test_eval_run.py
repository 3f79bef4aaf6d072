"""``evaluate_run`` on a model built the way the fit pipeline builds one."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from helpers import make_binary_frame, make_regression_frame

from mlsmith.errors import DataError
from mlsmith.evaluate import evaluate_run
from mlsmith.preprocess import prepare_features
from mlsmith.schema import infer_schema
from mlsmith.select import FittedModel
from mlsmith.select._tasks import build_pipeline


def _pieces(df: pd.DataFrame, target: str, family: str, params: dict) -> dict:
    schema, _ = infer_schema(df, target)
    X = prepare_features(df, schema, warn_extra=False)
    kind = schema.task.kind
    if kind == "regression":
        y = df[target].to_numpy(dtype=np.float64)
    else:
        y = df[target].map({c: i for i, c in enumerate(schema.task.classes)}).to_numpy()
    n_test = len(df) // 4
    tr, te = np.arange(n_test, len(df)), np.arange(n_test)
    X_tr, X_te = X.iloc[tr].reset_index(drop=True), X.iloc[te].reset_index(drop=True)

    def make() -> object:
        return build_pipeline(schema, family, params, len(tr), 0, 1, None)

    model = FittedModel(kind, schema.task.classes, [("m", make().fit(X_tr, y[tr]), 1.0)])
    return {"kind": kind, "classes": schema.task.classes, "X_tr": X_tr, "y_tr": y[tr],
            "X_te": X_te, "y_te": y[te], "model": model, "make": make}


def test_binary_run_has_every_section() -> None:
    p = _pieces(make_binary_frame(n=400, seed=1), "label", "linear", {"C": 1.0})
    pred = p["model"].predict_encoded(p["X_te"])
    board = pd.DataFrame({"model": ["m", "constant_baseline"], "status": ["ok", "ok"],
                          "cv_roc_auc": [0.93, 0.5], "cv_roc_auc_std": [0.02, 0.0],
                          "train_roc_auc": [0.95, 0.5]})
    t0 = time.perf_counter()
    doc = evaluate_run(p["kind"], p["y_te"], pred, p["classes"], "roc_auc",
                       cv_metrics={"roc_auc": 0.93, "accuracy": 0.86}, leaderboard=board,
                       chosen="m", predict=p["model"].predict_encoded, X_test=p["X_te"],
                       make_estimator=p["make"], X_train=p["X_tr"], y_train=p["y_tr"],
                       n_boot=300, time_budget=60)
    assert time.perf_counter() - t0 < 30
    for key in ("test", "curves", "cv_vs_test", "bias_variance", "importance",
                "learning_curve", "projection", "shap"):
        assert key in doc, (key, doc["skipped"])
    assert doc["version"] == 1 and doc["task"] == "binary" and doc["metric"] == "roc_auc"
    assert doc["classes"] == ["0", "1"]
    assert doc["test"]["n_boot"] == 300
    assert doc["cv_vs_test"][0]["metric"] == "roc_auc" and doc["cv_vs_test"][0]["cv_std"] == 0.02
    assert doc["bias_variance"]["baseline"] == 0.5 and doc["bias_variance"]["verdict"] == "fine"
    assert doc["importance"]["features"][0]["feature"] == "x"  # logit 2x - z + (c == u)
    assert doc["shap"]["features"][0]["feature"] == "x"
    assert doc["learning_curve"]["points"][-1]["n_train"] == 240  # 80% of the 300 rows
    assert doc["skipped"] == {} or set(doc["skipped"]) == {"tsne"}
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc


def test_regression_run_without_optional_inputs() -> None:
    p = _pieces(make_regression_frame(n=200, seed=2), "y", "linear", {"alpha": 1.0})
    pred = p["model"].predict_encoded(p["X_te"])
    doc = evaluate_run("regression", p["y_te"], pred, None, "rmse", n_boot=200)
    assert set(doc) >= {"test", "curves", "skipped"}
    assert "residuals" in doc["curves"]
    assert set(doc["skipped"]) == {"cv_vs_test", "bias_variance", "importance",
                                   "learning_curve", "projection", "shap"}
    assert doc["classes"] is None
    json.dumps(doc, allow_nan=False)


def test_a_short_budget_skips_the_slow_sections_with_reasons() -> None:
    p = _pieces(make_binary_frame(n=300, seed=3), "label", "linear", {"C": 1.0})
    pred = p["model"].predict_encoded(p["X_te"])
    t0 = time.perf_counter()
    doc = evaluate_run(p["kind"], p["y_te"], pred, p["classes"], "roc_auc",
                       predict=p["model"].predict_encoded, X_test=p["X_te"],
                       make_estimator=p["make"], X_train=p["X_tr"], y_train=p["y_tr"],
                       time_budget=0.3)
    assert time.perf_counter() - t0 < 3
    assert "test" in doc and "curves" in doc
    assert any("no time" in reason for reason in doc["skipped"].values())


def test_a_failing_optional_section_is_recorded_not_raised() -> None:
    p = _pieces(make_binary_frame(n=200, seed=4), "label", "linear", {"C": 1.0})
    pred = p["model"].predict_encoded(p["X_te"])

    def broken(frame: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("model file is corrupt")

    doc = evaluate_run(p["kind"], p["y_te"], pred, p["classes"], "roc_auc", predict=broken,
                       X_test=p["X_te"], n_boot=200)
    assert doc["skipped"]["importance"] == "failed: RuntimeError: model file is corrupt"
    assert "projection" in doc  # from the test frame


def test_invalid_test_predictions_raise() -> None:
    with pytest.raises(DataError, match="3 rows but the predictions have 2"):
        evaluate_run("binary", np.array([0, 1, 0]), np.full((2, 2), 0.5), None, "roc_auc")


def test_threshold_is_tuned_on_out_of_fold_predictions() -> None:
    from mlsmith.evaluate import best_threshold

    rng = np.random.default_rng(5)
    y_oof = rng.integers(0, 2, 300)
    p_oof = np.clip(0.35 * y_oof + rng.uniform(0, 0.65, 300), 0, 1)
    y = rng.integers(0, 2, 100)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, 100), 0, 1)
    doc = evaluate_run("binary", y, p, ["n", "y"], "roc_auc", oof=(y_oof, p_oof), n_boot=0)
    thr = doc["test"]["threshold"]
    assert thr["source"] == "given"
    assert thr["value"] == best_threshold(y_oof, p_oof)[0]
    own = evaluate_run("binary", y, p, ["n", "y"], "roc_auc", n_boot=0)["test"]["threshold"]
    assert own["source"] == "test" and own["score"] >= thr["score"]
