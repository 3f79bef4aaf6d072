"""fit with search: the portfolio first, then Optuna trials over the families that did best."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import EXAMPLES, make_binary_frame

import mlsmith
from mlsmith.pipeline import search_families
from mlsmith.select import Candidate, Result

FAMILIES = ["linear", "hist_gradient_boosting"]


def test_trials_without_time_limit_are_reproducible(tmp_path: Path) -> None:
    df = make_binary_frame(200, seed=1)
    runs = [mlsmith.fit(df, "label", trials=4, out=tmp_path / f"r{i}", models=FAMILIES, seed=7,
                        quiet=True, report=False) for i in range(2)]
    a, b = (r.predict_proba(df) for r in runs)
    pd.testing.assert_frame_equal(a, b)
    boards = [r.leaderboard() for r in runs]
    searched = [b[b["origin"].str.startswith("search:")] for b in boards]
    assert len(searched[0]) == 4  # exactly the trials asked for
    assert searched[0]["model"].tolist() == searched[1]["model"].tolist()
    np.testing.assert_allclose(searched[0]["cv_roc_auc"].to_numpy(dtype=float),
                               searched[1]["cv_roc_auc"].to_numpy(dtype=float))
    meta = runs[0].metrics["search"]
    assert meta["strategy"] == "tpe" and meta["trials"] == 4 and meta["seconds"] is None
    assert runs[0].config["time_limit"] is None
    assert (Path(runs[0].path) / "study" / "journal.log").is_file()


def test_strategy_none_is_the_portfolio_alone(tmp_path: Path) -> None:
    run = mlsmith.fit(make_binary_frame(150), "label", time_limit=20, out=tmp_path / "r",
                      models=FAMILIES, strategy="none", quiet=True, report=False)
    assert set(run.leaderboard()["origin"]) <= {"portfolio", "baseline", "ensemble"}
    assert not (Path(run.path) / "study").exists()
    assert run.metrics["search"] is None


def test_search_families_follow_the_portfolio_ranking() -> None:
    def res(mid: str, fam: str, score: float, status: str = "ok") -> Result:
        return Result(Candidate(mid, fam, {}), status, cv_scores=[score])

    results = [res("constant_baseline", "constant", 0.9), res("linear_1", "linear", 0.7),
               res("lightgbm_1", "lightgbm", 0.8), res("lightgbm_2", "lightgbm", 0.85),
               res("knn_1", "knn", 0.82), res("xgboost_1", "xgboost", 0.99, status="stopped")]
    assert search_families(results, "binary") == ["lightgbm", "knn"]
    assert search_families(results, "binary", n=1) == ["lightgbm"]


def test_parallel_trials_in_separate_processes(tmp_path: Path) -> None:
    run = mlsmith.fit(make_binary_frame(200), "label", trials=4, jobs=2, out=tmp_path / "r",
                      models=FAMILIES, seed=0, quiet=True, report=False)
    board = run.leaderboard()
    trials = board[board["origin"].str.startswith("search:")]
    assert len(trials) == 4 and trials["model"].is_unique


def _fit_cmd(out: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "mlsmith.cli", "fit", str(EXAMPLES / "penguins.csv"),
            "--target", "species", "--out", str(out), "--trials", str(trials), "--models",
            ",".join(FAMILIES), "--seed", "2", "--no-report"]


def test_killed_during_search_resumes_with_finished_trials(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "MLSMITH_FAULT": "search:2"}
    killed = subprocess.run(_fit_cmd(out, 5), capture_output=True, text=True, env=env,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done_before = re.findall(r"model (\S+_trial\d+): cv", killed.stderr)
    assert len(done_before) >= 2
    env["MLSMITH_FAULT"] = ""
    resumed = subprocess.run(_fit_cmd(out, 5), capture_output=True, text=True, env=env,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rerun = re.findall(r"model (\S+_trial\d+): cross-validating", resumed.stderr)
    assert not set(rerun) & set(done_before)  # finished trials were not run again
    board = mlsmith.load(out).leaderboard()
    trials = board[board["origin"].str.startswith("search:")]
    assert set(done_before) <= set(trials["model"])
    assert len(trials) == 5
    assert json.loads((out / "metrics.json").read_text())["resumed_after_s"] > 0
