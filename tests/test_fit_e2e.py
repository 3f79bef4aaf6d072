"""End to end through the Python API: fit, predict, evaluate, leaderboard, load, run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import EXAMPLES, make_binary_frame
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

import mlsmith
from mlsmith.errors import RunDirError

PENGUIN_CLASSES = ["Adelie", "Chinstrap", "Gentoo"]


def _test_rows(run, df: pd.DataFrame) -> pd.DataFrame:
    """The held-out rows of ``df`` (the fit dropped no rows for these datasets)."""
    assert run.metrics["rows"]["missing_target_dropped"] == 0
    test_index = np.load(Path(run.path) / "splits.npz")["test_index"]
    return df.iloc[test_index]


# --- multiclass: penguins ------------------------------------------------------------------------
def test_penguins_task_and_labels(penguins_run, penguins_df: pd.DataFrame) -> None:
    run = penguins_run
    assert (run.task, run.target, run.metric) == ("multiclass", "species", "log_loss")
    assert run.classes_ == PENGUIN_CLASSES
    test = _test_rows(run, penguins_df)
    pred = run.predict(test)
    assert pred.name == "prediction" and pred.index.equals(test.index)
    assert set(pred) <= set(PENGUIN_CLASSES)
    assert all(isinstance(v, str) for v in pred)
    assert (pred == test["species"]).mean() > 0.9


def test_penguins_proba(penguins_run, penguins_df: pd.DataFrame) -> None:
    proba = penguins_run.predict_proba(penguins_df)
    assert list(proba.columns) == PENGUIN_CLASSES
    assert proba.shape == (len(penguins_df), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # labels are the most probable class
    assert (proba.idxmax(axis=1) == penguins_run.predict(penguins_df)).all()


def test_penguins_evaluate_matches_the_test_metrics(penguins_run, penguins_df: pd.DataFrame) -> None:
    test = _test_rows(penguins_run, penguins_df)
    scores = penguins_run.evaluate(test)
    saved = penguins_run.metrics["test"]
    assert {"log_loss", "accuracy", "roc_auc", "f1_macro"} <= set(scores)
    assert set(scores) == set(saved)
    for k in scores:
        assert scores[k] == pytest.approx(saved[k], rel=1e-9, abs=1e-12), k
    assert scores["accuracy"] > 0.9 and scores["log_loss"] < 0.4


def test_penguins_metrics_json(penguins_run) -> None:
    doc = json.loads((Path(penguins_run.path) / "metrics.json").read_text())
    assert doc["metric"] == "log_loss" and doc["greater_is_better"] is False
    assert doc["rows"]["loaded"] == 344
    assert doc["rows"]["train"] + doc["rows"]["test"] == 344
    assert doc["rows"]["test"] == 69
    assert doc["test"]["log_loss"] > 0 and 0 <= doc["test"]["accuracy"] <= 1
    assert doc["cv"]["log_loss"] == pytest.approx(doc["chosen"]["cv_score"])
    weights = [m["weight"] for m in doc["chosen"]["members"]]
    assert sum(weights) == pytest.approx(1.0, abs=1e-5)


def test_penguins_leaderboard(penguins_run) -> None:
    board = penguins_run.leaderboard()
    for col in ("model", "status", "cv_log_loss", "cv_log_loss_std", "fit_time_s",
                "predict_time_s"):
        assert col in board.columns
    ok = board[(board["status"] == "ok") & (board["model"] != "ensemble")]
    assert {"constant_baseline", "linear_1", "lightgbm_1"} <= set(ok["model"])
    assert ok["cv_log_loss"].notna().all() and ok["cv_log_loss_std"].notna().all()
    assert (ok["fit_time_s"] >= 0).all() and (ok["predict_time_s"] >= 0).all()
    assert set(board["status"]) <= {"ok", "stopped", "skipped", "failed", "pruned"}
    # the models beat the class priors by far
    base = ok.set_index("model").loc["constant_baseline", "cv_log_loss"]
    assert ok.set_index("model").loc["linear_1", "cv_log_loss"] < base / 3


def test_penguins_oof_predictions(penguins_run) -> None:
    path = Path(penguins_run.path)
    oof = np.load(path / "oof_predictions.npz")
    n_train = penguins_run.metrics["rows"]["train"]
    board = penguins_run.leaderboard()
    ok_models = set(board.loc[(board["status"] == "ok") & (board["model"] != "ensemble"), "model"])
    assert {k for k in oof.files if k.startswith("model__")} == {f"model__{m}" for m in ok_models}
    for m in ok_models:
        arr = oof[f"model__{m}"]
        assert arr.shape == (n_train, 3)
        np.testing.assert_allclose(arr.sum(axis=1), 1.0, atol=1e-6)
    assert oof["y"].shape == (n_train,) and set(np.unique(oof["y"])) == {0, 1, 2}
    assert set(np.unique(oof["fold"])) == set(range(penguins_run.metrics["rows"]["folds"]))


def _pipelines(member: object) -> list[Pipeline]:
    """A member is a pipeline refitted on every training row, or a bag of fold pipelines."""
    return list(member.members) if hasattr(member, "members") else [member]


def test_penguins_every_transformation_is_in_the_pipeline(penguins_run) -> None:
    members = penguins_run.model.members
    assert members
    assert sum(w for _, _, w in members) == pytest.approx(1.0)
    for _, member, _ in members:
        for pipe in _pipelines(member):
            assert isinstance(pipe, Pipeline)
            assert list(pipe.named_steps) == ["prep", "model"]
            prep = pipe.named_steps["prep"]
            assert isinstance(prep, ColumnTransformer)
            assert hasattr(prep, "transformers_"), "the preprocessor was not fitted with the model"
            used = {c for _, _, cols in prep.transformers_
                    for c in (cols if isinstance(cols, list) else [])}
            assert used == {"island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                            "body_mass_g", "sex"}


def test_penguins_load_gives_the_same_predictions(penguins_run, penguins_df: pd.DataFrame) -> None:
    loaded = mlsmith.load(penguins_run.path)
    assert isinstance(loaded, mlsmith.Run)
    assert loaded.classes_ == PENGUIN_CLASSES
    pd.testing.assert_frame_equal(loaded.predict_proba(penguins_df),
                                  penguins_run.predict_proba(penguins_df))
    assert loaded.predict(str(EXAMPLES / "penguins.csv")).tolist() == \
        penguins_run.predict(penguins_df).tolist()
    assert "multiclass" in repr(loaded)


def test_session_fit_kept_its_time_limit(penguins_fit) -> None:
    assert penguins_fit.elapsed <= 15 * 1.05 + 5


# --- regression: tips ----------------------------------------------------------------------------
def test_tips_regression(tips_run, tips_df: pd.DataFrame) -> None:
    run = tips_run
    assert (run.task, run.metric, run.classes_) == ("regression", "rmse", [])
    test = _test_rows(run, tips_df)
    pred = run.predict(test.drop(columns=["tip"]))
    assert pred.dtype == np.float64 and len(pred) == len(test)
    scores = run.evaluate(test)
    assert scores["rmse"] == pytest.approx(np.sqrt(np.mean((pred - test["tip"]) ** 2)))
    assert scores["rmse"] == pytest.approx(run.metrics["test"]["rmse"])
    assert scores["rmse"] < test["tip"].std()  # better than predicting the mean
    assert {"rmse", "mae", "r2"} <= set(scores)
    with pytest.raises(RunDirError, match="predict_proba applies to classification"):
        run.predict_proba(test)
    oof = np.load(Path(run.path) / "oof_predictions.npz")
    assert oof["model__linear_1"].shape == (run.metrics["rows"]["train"],)


# --- binary: generated frame with integer labels -----------------------------------------------------
def test_binary_integer_labels(binary_run) -> None:
    run = binary_run
    assert (run.task, run.metric, run.classes_) == ("binary", "roc_auc", [0, 1])
    fresh = make_binary_frame(n=80, seed=7)
    pred = run.predict(fresh)
    assert set(pred) <= {0, 1} and np.issubdtype(pred.dtype, np.integer)
    proba = run.predict_proba(fresh)
    assert list(proba.columns) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = run.evaluate(fresh)
    assert scores["roc_auc"] > 0.85
    assert run.metrics["test"]["roc_auc"] > 0.8


# --- the time guarantee, with every installed family ------------------------------------------------
def test_time_limit_is_kept_with_every_family(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    run = mlsmith.fit(EXAMPLES / "penguins.csv", target="species", time_limit=8,
                      out=tmp_path / "all", quiet=True, seed=0)
    elapsed = time.perf_counter() - t0
    assert elapsed <= 8 * 1.05 + 5, f"fit took {elapsed:.1f}s for a budget of 8s"
    # the whole portfolio was considered (some maybe skipped) and the run is usable; how good
    # the model is depends on how loaded the machine is, so it is not asserted here
    assert len(run.leaderboard()) > 4
    assert run.predict_proba(EXAMPLES / "penguins.csv").shape == (344, 3)
    assert set(run.metrics["test"]) >= {"log_loss", "accuracy"}


# --- determinism, honest preprocessing, overwrite -------------------------------------------------------
@pytest.fixture(scope="module")
def linear_tips(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("linear") / "tips"
    return mlsmith.fit(EXAMPLES / "tips.csv", target="tip", time_limit=10, out=out, quiet=True,
                       models=["linear"], seed=3)


def test_preprocessing_is_fitted_on_training_rows_only(linear_tips, tips_df: pd.DataFrame) -> None:
    """The scaler saw exactly the rows its model was trained on: never the test rows."""
    (_, member, _), = linear_tips.model.members
    path = Path(linear_tips.path)
    train_index = np.load(path / "splits.npz")["train_index"]
    bill = tips_df["total_bill"].to_numpy()
    if hasattr(member, "members"):  # a bag of fold models: fold k was fitted without fold k
        fold = np.load(path / "oof_predictions.npz")["fold"]
        row_sets = [train_index[fold != k] for k in range(len(member.members))]
        pipes = list(member.members)
    else:
        row_sets, pipes = [train_index], [member]
    for rows, pipe in zip(row_sets, pipes, strict=True):
        scaler = pipe.named_steps["prep"].named_transformers_["num"].named_steps["standardscaler"]
        assert scaler.mean_[0] == pytest.approx(bill[rows].mean())
    assert abs(bill[train_index].mean() - bill.mean()) > 1e-6  # the test rows would show


def test_same_seed_same_predictions_and_overwrite(linear_tips, tips_df: pd.DataFrame,
                                                  tmp_path: Path) -> None:
    events: list[str] = []
    out = tmp_path / "again"
    again = mlsmith.fit(EXAMPLES / "tips.csv", target="tip", time_limit=10, out=out,
                        models=["linear"], seed=3, progress=lambda e, d: events.append(e))
    np.testing.assert_array_equal(again.predict(tips_df).to_numpy(),
                                  linear_tips.predict(tips_df).to_numpy())
    assert again.metrics["test"] == linear_tips.metrics["test"]
    assert events[0] == "start" and events[-1] == "done" and "stage" in events

    # fitting again into the same folder replaces the run in one step
    third = mlsmith.fit(tips_df, target="tip", time_limit=10, out=out, quiet=True,
                        models=["linear"], seed=4, test_size=0)
    assert third.metrics["test"] == {} and third.metrics["rows"]["test"] == 0
    rows = mlsmith.load(out).metrics["rows"]
    assert rows["removed_by_audit"] == 1  # tips holds one exact duplicate row
    assert rows["train"] == len(tips_df) - 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]
