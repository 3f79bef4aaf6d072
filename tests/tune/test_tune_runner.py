"""The search loop: folds in worker processes, pruning, seeds, grids, parallel trials, limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest

from mlsmith.select._tasks import run_cv
from mlsmith.tune import MemoryMonitor, open_storage, to_results, tree_rss_bytes, tune
from mlsmith.tune._study import consumed_numbers, trial_attrs

optuna = pytest.importorskip("optuna")

State = optuna.trial.TrialState


def _params(table) -> list[dict]:
    return [json.loads(p) for p in table["params"]]


def _load(storage: Path, name: str = "mlsmith") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def test_cv_task_runs_only_the_named_folds(binary_bundle: str) -> None:
    data = joblib.load(binary_bundle)
    task = {"kind": "cv", "data_path": binary_bundle, "family": "linear", "params": {"C": 0.5},
            "metric": "roc_auc", "seed": 0, "n_jobs": 1}
    full = run_cv(task, data)
    part = run_cv({**task, "fold_ids": [2, 0]}, data)
    assert part["fold_scores"] == pytest.approx([full["fold_scores"][2], full["fold_scores"][0]])
    rows = np.concatenate([data["folds"][2][1], data["folds"][0][1]])
    assert np.array_equal(part["oof_index"], rows)
    assert np.allclose(part["oof"], full["oof"][rows])
    assert part["kept_bags"] == [] and part["worker_pid"] == os.getpid()
    with pytest.raises(ValueError, match="fold_ids must name folds 0..3"):
        run_cv({**task, "fold_ids": [4]}, data)


def test_grid_strategy_evaluates_exactly_the_grid(binary_bundle: str, tmp_path: Path) -> None:
    table = tune(binary_bundle, ["linear"], strategy="grid", grid_points=2, seed=0,
                 pruner="none", cores_per_trial=2, oof_dir=tmp_path / "oof")
    seen = {(p["C"], p["class_weight"]) for p in _params(table)}
    assert len(table) == 4 and seen == {(c, w) for c in (1e-4, 100.0) for w in (None, "balanced")}
    assert list(table["status"]) == ["ok"] * 4
    assert set(table["origin"]) == {"search:grid"} and set(table["folds_done"]) == {4}
    # out-of-fold predictions of every trial, usable by the ensemble
    y = joblib.load(binary_bundle)["y"]
    for path, score in zip(table["oof_path"], table["cv_roc_auc"], strict=True):
        oof = np.load(path)
        assert oof.shape == (len(y), 2) and np.allclose(oof.sum(axis=1), 1.0)
        assert np.all(oof > 0)  # every row predicted
        assert 0.5 < score <= 1.0


def test_seeded_search_gives_the_same_trials_and_scores(regression_bundle: str) -> None:
    # 11 trials: TPE draws its first 10 at random, then models (trial 10)
    runs = [tune(regression_bundle, ["linear", "knn"], strategy="tpe", n_trials=11, seed=3,
                 pruner="none", cores_per_trial=2) for _ in range(2)]
    a, b = runs
    assert len(a) == 11 and list(a["status"]) == ["ok"] * 11
    assert _params(a) == _params(b)
    assert list(a["family"]) == list(b["family"]) and set(a["family"]) == {"linear", "knn"}
    assert np.array_equal(a["cv_rmse"].to_numpy(), b["cv_rmse"].to_numpy())
    assert a["fold_scores"].tolist() == b["fold_scores"].tolist()


def test_a_poor_configuration_is_pruned_after_its_first_fold(regression_bundle: str,
                                                              tmp_path: Path) -> None:
    good = [{"alpha": a} for a in (1e-3, 2e-3, 5e-3, 1e-2, 2e-2)]
    bad = [{"alpha": 1e3}, {"alpha": 500.0}]
    storage = tmp_path / "journal.log"
    table = tune(regression_bundle, ["linear"], strategy="random", n_trials=7,
                 initial=good + bad, pruner="median", cores_per_trial=1, seed=0,
                 storage=storage, oof_dir=tmp_path / "oof")
    assert list(table["status"]) == ["ok"] * 5 + ["pruned"] * 2
    assert list(table["folds_done"]) == [4] * 5 + [1] * 2
    assert set(table["origin"]) == {"initial"}
    assert table["oof_path"].iloc[5:].isna().all()  # no predictions saved for pruned trials
    trials = _load(storage).get_trials()
    assert list(trials[0].intermediate_values) == [1, 2, 3, 4]
    assert list(trials[6].intermediate_values) == [1]
    # intermediate values are the running mean of the fold scores, in natural units (RMSE)
    folds = json.loads(table["fold_scores"].iloc[0])
    assert trials[0].intermediate_values[2] == pytest.approx(np.mean(folds[:2]))
    assert trials[6].intermediate_values[1] > 5 * trials[0].intermediate_values[1]
    # completed trials feed the ensemble as select.Result objects; pruned ones do not
    results = to_results(storage)
    assert [r.candidate.model_id for r in results] == [f"linear_trial{i}" for i in range(5)]
    r = results[0]
    assert r.candidate.origin == "initial" and r.candidate.params == {"alpha": 1e-3}
    assert r.cv_mean == pytest.approx(-table["cv_rmse"].iloc[0])  # signed: higher is better
    assert np.array_equal(r.oof, np.load(table["oof_path"].iloc[0]))


def test_two_jobs_lose_and_duplicate_no_trial(binary_bundle: str, tmp_path: Path) -> None:
    storage = tmp_path / "study" / "journal.log"
    events: list[tuple[str, int]] = []
    table = tune(binary_bundle, ["linear"], strategy="random", n_trials=6, n_jobs=2,
                 cores_per_trial=1, pruner="none", seed=0, storage=storage,
                 oof_dir=tmp_path / "oof", on_event=lambda e, d: events.append((e, d["trial"])))
    assert sorted(table["trial"]) == list(range(6)) and list(table["status"]) == ["ok"] * 6
    study = _load(storage)
    assert len(consumed_numbers(study.get_trials())) == 6
    # two threads may race past the budget: such a trial is recorded as surplus and never run
    extra = [t for t in study.get_trials() if t.number not in set(table["trial"])]
    assert all(t.user_attrs.get("status") == "surplus" for t in extra) and len(extra) <= 1
    pids = {trial_attrs(t)["worker_pid"] for t in study.get_trials() if t.number in set(table["trial"])}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    assert sorted(n for e, n in events if e == "trial_end") == list(range(6))
    assert len(list((tmp_path / "oof").glob("trial_*.npy"))) == 6


def test_memory_monitor_counts_child_processes() -> None:
    own = tree_rss_bytes(os.getpid())
    child = subprocess.Popen([sys.executable, "-c",
                              "import time; x = bytearray(80 * 2**20); time.sleep(30)"])
    try:
        with MemoryMonitor(interval=0.02) as mem:
            end = time.monotonic() + 20
            while tree_rss_bytes() < own + 60 * 2**20 and time.monotonic() < end:
                time.sleep(0.05)
        assert mem.peak_bytes >= own + 60 * 2**20
        assert len(mem.samples) >= 2
    finally:
        child.kill()
        child.wait()


def test_a_trial_past_its_time_limit_is_stopped_and_the_search_goes_on(
        binary_bundle: str) -> None:
    slow = {"max_iter": 2000, "learning_rate": 0.01, "max_leaf_nodes": 255,
            "min_samples_leaf": 2}  # no early stopping on small data: 2000 trees per fold
    quick = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 7, "min_samples_leaf": 5}
    table = tune(binary_bundle, ["hist_gradient_boosting"], strategy="random", n_trials=2,
                 initial=[slow, quick], trial_time_limit=1.0, pruner="none", seed=0,
                 cores_per_trial=1)
    assert list(table["status"]) == ["stopped", "ok"]
    assert table["note"].iloc[0].startswith("stopped: ran past its time")
    assert table["state"].iloc[0] == "FAIL" and table["folds_done"].iloc[0] < 4
    assert 0.5 < table["cv_roc_auc"].iloc[1] <= 1.0
