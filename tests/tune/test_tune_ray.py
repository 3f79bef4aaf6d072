"""The Ray Tune backend: trials as Ray Tune trials, ASHA over the folds, on a local Ray instance."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import ConfigError, MissingDependencyError
from mlsmith.select._tasks import run_cv
from mlsmith.tune import (
    add_tune_arguments,
    cmd_tune,
    prepare_bundle,
    to_results,
    to_results_ray,
    tune,
)

GOOD = [{"alpha": a} for a in (1e-3, 3e-3, 1e-2, 3e-2)]
BAD = {"alpha": 1e3}  # shrinks the coefficients to a sixth: an RMSE ten times the others'


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.uniform(0, 10, size=n)
    return pd.DataFrame({"x": x, "z": z, "y": 3.0 * x + 0.5 * z + rng.normal(scale=0.3, size=n)})


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    path = tmp_path / "regression.joblib"
    prepare_bundle(_frame(), "y", path, folds=3, seed=0)
    return str(path)


def _ray():
    try:
        import ray
        import ray.tune  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the [scale] extra is not installed
        pytest.skip(f"ray[tune] is not installed ({exc}): pip install 'mlsmith[scale]'")
    return ray


def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError


def test_without_ray_the_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _no_ray(monkeypatch)
    hint = r"pip install 'mlsmith\[scale\]'"
    with pytest.raises(MissingDependencyError, match=hint):
        tune(str(tmp_path / "none.joblib"), ["linear"], backend="ray", n_trials=2)
    # the command fails before it writes anything
    p = argparse.ArgumentParser()
    add_tune_arguments(p)
    out = tmp_path / "run"
    args = p.parse_args(["train.csv", "--target", "y", "--backend", "ray", "--trials", "8",
                         "--ray-address", "auto", "--out", str(out)])
    assert (args.backend, args.ray_address, args.jobs) == ("ray", "auto", None)
    with pytest.raises(MissingDependencyError, match=hint):
        cmd_tune(args)
    assert not out.exists()


def test_backend_options_are_checked(bundle: str) -> None:
    with pytest.raises(ConfigError, match="unknown backend 'spark'"):
        tune(bundle, ["linear"], backend="spark", n_trials=2)
    _ray()
    with pytest.raises(ConfigError, match=r"\(--storage\) is for the Optuna backend"):
        tune(bundle, ["linear"], backend="ray", n_trials=2, storage="journal.log")


def test_ray_trials_report_each_fold_and_asha_stops_a_bad_one(bundle: str,
                                                             tmp_path: Path) -> None:
    ray = _ray()
    if ray.is_initialized():  # pragma: no cover - another test left Ray running
        ray.shutdown()
    events: list[tuple[str, dict]] = []
    # the bad configuration is queued after four good ones: with two trials at a time it starts
    # once two of them have ended, so ASHA has scores at fold 1 to compare it with
    table = tune(bundle, ["linear"], backend="ray", strategy="tpe", n_trials=6, n_jobs=2,
                 seed=0, initial=[*GOOD, BAD], oof_dir=tmp_path / "oof",
                 workdir=tmp_path / "work", on_event=lambda e, d: events.append((e, d)))
    assert not ray.is_initialized()  # the local instance tune started is shut down

    assert len(table) == 6 and list(table["trial"]) == list(range(6))
    assert list(table["origin"]) == ["initial/ray"] * 5 + ["search:tpe/ray"]
    params = [json.loads(p) for p in table["params"]]
    assert params[:5] == [*GOOD, BAD]
    assert set(table["status"]) <= {"ok", "pruned"}

    bad = table.iloc[4]
    assert (bad["status"], bad["state"], bad["folds_done"]) == ("pruned", "PRUNED", 1)
    assert "ASHA" in bad["note"] and pd.isna(bad["oof_path"])
    assert bad["cv_rmse"] > 5 * table["cv_rmse"].iloc[:4].max()

    data = joblib.load(bundle)
    done = table[table["status"] == "ok"]
    assert len(done) >= 1
    for _, row in done.iterrows():
        scores = json.loads(row["fold_scores"])
        assert row["folds_done"] == 3 and len(scores) == 3
        assert row["cv_rmse"] == pytest.approx(np.mean(scores))
        # the fold scores and predictions are those of the configuration's cross-validation
        full = run_cv({"kind": "cv", "family": "linear", "params": json.loads(row["params"]),
                       "metric": "rmse", "seed": 0, "n_jobs": 1}, data)
        assert scores == pytest.approx([-s for s in full["fold_scores"]], rel=1e-8)
        assert Path(row["oof_path"]).name == f"trial_{row['trial']}.npy"
        oof = np.load(row["oof_path"])
        assert oof.shape == (300,) and np.allclose(oof, full["oof"])
    for _, row in table[table["status"] == "pruned"].iterrows():
        assert 1 <= row["folds_done"] < 3
        assert len(json.loads(row["fold_scores"])) == row["folds_done"]

    ends = {d["trial"]: d["row"]["status"] for e, d in events if e == "trial_end"}
    starts = [d["trial"] for e, d in events if e == "trial_start"]
    assert sorted(starts) == list(range(6)) and ends == dict(enumerate(table["status"]))

    results = to_results(table)  # what the fit's ensemble reads
    assert [r.candidate.model_id for r in results] == list(done["model"])
    for r, (_, row) in zip(results, done.iterrows(), strict=True):
        assert r.status == "ok" and r.candidate.origin == row["origin"]
        assert r.candidate.params == json.loads(row["params"])
        assert r.cv_scores == pytest.approx([-s for s in json.loads(row["fold_scores"])])
        assert r.oof.shape == (300,)
    table.to_csv(tmp_path / "trials.csv", index=False)  # attrs are lost: the metric is the column's
    again = to_results_ray(pd.read_csv(tmp_path / "trials.csv"), task="regression")
    assert [r.cv_scores for r in again] == [r.cv_scores for r in results]


def test_rows_name_failed_stopped_and_pruned_trials() -> None:
    from mlsmith.tune._ray import _row
    from mlsmith.tune._tune import search_spaces

    ctx = {"metric": "rmse", "spaces": search_spaces(["linear"], "regression"), "points": [],
           "n_folds": 3, "origins": [], "origin": "search:tpe/ray", "scheduler": "ASHA"}
    one = {"fold_scores": "[0.5]", "train_scores": "[0.4]", "pid": 1, "hostname": "h",
           "started_at": 100.0, "reported_at": 101.0, "cv_seconds": 1.0}
    cfg = {"alpha": 0.1}
    pruned = _row(2, "t2", cfg, one, None, stopped_early=True, ctx=ctx)
    assert (pruned["status"], pruned["state"], pruned["cv_rmse"]) == ("pruned", "PRUNED", 0.5)
    assert pruned["model"] == "linear_trial2" and pruned["owner"] == "h:1"
    late = _row(3, "t3", cfg, one, None, stopped_early=False, ctx=ctx)
    assert (late["status"], late["note"]) == ("stopped", "stopped after 1 of 3 folds (out of time)")
    failed = _row(4, "t4", cfg, {"pid": 1}, RuntimeError("boom\nValueError: bad input"),
                  stopped_early=False, ctx=ctx)
    assert (failed["status"], failed["state"]) == ("failed", "FAIL")
    assert failed["note"] == "failed: ValueError: bad input" and failed["folds_done"] == 0
    assert _row(5, "t5", cfg, {}, None, stopped_early=False, ctx=ctx) is None  # never started


def test_grid_and_seeded_random_on_a_running_ray(bundle: str, tmp_path: Path) -> None:
    ray = _ray()
    if ray.is_initialized():  # pragma: no cover
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        grid = tune(bundle, ["linear"], backend="ray", strategy="grid", grid_points=3,
                    pruner="none", oof_dir=tmp_path / "grid")
        assert [json.loads(p)["alpha"] for p in grid["params"]] == pytest.approx([1e-3, 1.0, 1e3])
        assert list(grid["status"]) == ["ok"] * 3 and set(grid["folds_done"]) == {3}
        assert set(grid["origin"]) == {"search:grid/ray"}
        runs = [tune(bundle, ["linear", "knn"], backend="ray", strategy="random", n_trials=3,
                     seed=7, n_jobs=1, pruner="none") for _ in range(2)]
        assert list(runs[0]["params"]) == list(runs[1]["params"])
        assert list(runs[0]["family"]) == list(runs[1]["family"])
        assert np.allclose(runs[0]["cv_rmse"], runs[1]["cv_rmse"])
        assert ray.is_initialized()  # a Ray instance tune did not start is left running
    finally:
        ray.shutdown()
