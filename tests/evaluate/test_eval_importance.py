"""Permutation importance and SHAP on raw columns, through a prediction function."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlsmith.errors import ColumnNotFoundError, DataError
from mlsmith.evaluate import permutation_importance, shap_importance
from mlsmith.evaluate._importance import _Codec, permutation_shapley


@pytest.fixture(scope="module")
def fitted() -> tuple[object, pd.DataFrame, np.ndarray]:
    """A model of a frame where ``signal`` decides, ``colour`` helps and ``noise`` is unused."""
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame({"noise": rng.normal(size=n), "signal": rng.normal(size=n),
                      "colour": rng.choice(["red", "blue", "green"], n),
                      "weak": rng.normal(size=n)})
    logit = 3 * X["signal"] + np.where(X["colour"] == "red", 1.5, 0.0) + 0.3 * X["weak"]
    y = (logit + rng.logistic(size=n) > 0.5).astype(np.int64).to_numpy()
    prep = ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough")
    model = make_pipeline(prep, LogisticRegression()).fit(X.iloc[:1000], y[:1000])
    return model, X.iloc[1000:].reset_index(drop=True), y[1000:]


def test_permutation_ranks_the_planted_column_first(fitted) -> None:
    model, X, y = fitted
    out = permutation_importance(model.predict_proba, X, y, "binary", "roc_auc", n_repeats=5)
    names = [f["feature"] for f in out["features"]]
    assert names[:2] == ["signal", "colour"]
    by = {f["feature"]: f for f in out["features"]}
    assert by["signal"]["mean"] > 0.2
    assert abs(by["noise"]["mean"]) < 0.01 and by["noise"]["std"] < 0.01
    assert out["n_rows"] == 500 and out["n_repeats"] == 5 and out["method"] == "permutation"
    from sklearn.metrics import roc_auc_score

    assert out["baseline_score"] == pytest.approx(
        roc_auc_score(y, model.predict_proba(X)[:, 1]))
    json.dumps(out, allow_nan=False)


def test_permutation_with_a_loss_counts_a_rise_as_importance(fitted) -> None:
    model, X, y = fitted
    out = permutation_importance(model.predict_proba, X, y, "binary", "log_loss", n_repeats=3)
    assert out["features"][0]["feature"] == "signal" and out["features"][0]["mean"] > 0.1
    assert out["greater_is_better"] is False and out["baseline_score"] > 0


def test_permutation_is_seeded_and_samples_rows(fitted) -> None:
    model, X, y = fitted
    a = permutation_importance(model.predict_proba, X, y, "binary", "accuracy", seed=3,
                               max_rows=200)
    b = permutation_importance(model.predict_proba, X, y, "binary", "accuracy", seed=3,
                               max_rows=200)
    assert a["features"] == b["features"] and a["n_rows"] == 200


def test_permutation_respects_the_deadline(fitted) -> None:
    model, X, y = fitted

    def slow(frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.05 + len(frame) * 1e-5)
        return model.predict_proba(frame)

    out = permutation_importance(slow, X, y, "binary", "roc_auc", n_repeats=10,
                                 deadline=time.time() + 0.5)
    assert out["n_repeats"] < 10
    assert any("n_repeats lowered from 10" in n for n in out["notes"])
    assert len(out["features"]) + len(out.get("not_evaluated", [])) == 4


def test_regression_importance() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = 4 * X["a"].to_numpy() + rng.normal(scale=0.1, size=400)
    model = LinearRegression().fit(X, y)
    out = permutation_importance(model.predict, X, y, "regression", "rmse", n_repeats=3)
    assert [f["feature"] for f in out["features"]] == ["a", "b"]
    # shuffling a adds about 4 * sqrt(2) to the rmse
    assert out["features"][0]["mean"] == pytest.approx(4 * np.sqrt(2), rel=0.15)


def test_bad_frames(fitted) -> None:
    model, X, y = fitted
    with pytest.raises(DataError, match="pandas DataFrame"):
        permutation_importance(model.predict_proba, X.to_numpy(), y, "binary", "roc_auc")
    with pytest.raises(DataError, match="500 rows but y has 3"):
        permutation_importance(model.predict_proba, X, y[:3], "binary", "roc_auc")
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'signal'"):
        permutation_importance(model.predict_proba, X, y, "binary", "roc_auc",
                               columns=["signl"])


def test_shap_ranks_the_planted_column_first(fitted) -> None:
    model, X, y = fitted
    out = shap_importance(model.predict_proba, X, "binary", max_rows=30, background_rows=20)
    names = [f["feature"] for f in out["features"]]
    assert names[0] == "signal" and names[-1] in ("noise", "weak")
    by = {f["feature"]: f["mean_abs"] for f in out["features"]}
    assert by["signal"] > 5 * by["noise"]
    assert out["n_rows"] == 30 and out["n_background"] == 20
    json.dumps(out, allow_nan=False)


def test_shapley_values_are_exact_for_a_linear_model() -> None:
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(20, 4))
    background = rng.normal(size=(15, 4))
    w = np.array([2.0, -1.0, 0.0, 0.5])
    phi = permutation_shapley(lambda A: A @ w + 3.0, Z, background, rng)
    np.testing.assert_allclose(phi, w * (Z - background.mean(axis=0)), atol=1e-12)


def test_shapley_values_add_up_for_an_interacting_model() -> None:
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(10, 3))
    background = rng.normal(size=(8, 3))

    def f(A: np.ndarray) -> np.ndarray:  # two outputs, with an interaction
        return np.column_stack([A[:, 0] * A[:, 1], np.tanh(A[:, 2] + A[:, 0])])

    phi = permutation_shapley(f, Z, background, rng, n_pairs=2)
    assert phi.shape == (10, 3, 2)
    np.testing.assert_allclose(phi.sum(axis=1), f(Z) - f(background).mean(axis=0), atol=1e-12)
    # the product's third feature plays no part
    np.testing.assert_allclose(phi[:, 2, 0], 0.0, atol=1e-12)


def test_shap_engines_agree(fitted) -> None:
    pytest.importorskip("shap")
    model, X, _ = fitted
    ours = shap_importance(model.predict_proba, X, "binary", max_rows=15, background_rows=10,
                           n_pairs=3)
    lib = shap_importance(model.predict_proba, X, "binary", max_rows=15, background_rows=10,
                          n_pairs=3, engine="shap")
    assert lib["engine"] == "shap" and ours["engine"] == "mlsmith"
    a = {f["feature"]: f["mean_abs"] for f in ours["features"]}
    b = {f["feature"]: f["mean_abs"] for f in lib["features"]}
    assert a == pytest.approx(b, rel=0.1, abs=0.002)


def test_shap_is_skipped_without_time(fitted) -> None:
    model, X, _ = fitted
    out = shap_importance(model.predict_proba, X, "binary", deadline=time.time() - 1)
    assert set(out) == {"skipped"} and "no time for SHAP" in out["skipped"]


def test_codec_round_trips_raw_dtypes() -> None:
    X = pd.DataFrame({
        "f": [1.5, np.nan, 3.0], "i": [1, 2, 3], "b": [True, False, True],
        "s": ["x", None, "y"], "c": pd.Categorical(["u", "v", "u"]),
        "t": pd.to_datetime(["2021-01-01", None, "2022-06-30"]),
    })
    codec = _Codec(X)
    Z = codec.encode(X)
    assert Z.dtype == np.float64 and Z.shape == (3, 6)
    back = codec.decode(Z)
    pd.testing.assert_frame_equal(back, X, check_dtype=False)
    assert back["i"].dtype == X["i"].dtype and back["b"].dtype == bool
    assert isinstance(back["c"].dtype, pd.CategoricalDtype)
