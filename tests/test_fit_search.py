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


def test_a_search_against_the_clock_stops_once_it_converges(tmp_path: Path) -> None:
    run = mlsmith.fit(make_binary_frame(200, seed=1), "label", time_limit=40, patience=5,
                      out=tmp_path / "r", models=["linear"], seed=0, quiet=True, report=False)
    meta = run.metrics["search"]
    assert meta["patience"] == 5
    board = run.leaderboard()
    searched = board[board["origin"].str.startswith("search:")]
    # five trials in a row without a gain end the search, long before its time is up
    assert 5 <= len(searched) == meta["trials"]
    assert meta["seconds_used"] < meta["seconds"] / 2


def test_patience_defaults_to_the_clock_only() -> None:
    from mlsmith.pipeline import SEARCH_PATIENCE, FitConfig, _patience

    assert _patience(FitConfig(target="y", time_limit=60)) == SEARCH_PATIENCE
    assert _patience(FitConfig(target="y", time_limit=None, trials=10)) is None
    assert _patience(FitConfig(target="y", time_limit=60, patience=0)) is None
    assert _patience(FitConfig(target="y", time_limit=60, patience=7)) == 7


def test_fit_uses_the_cores_it_may_run_on(monkeypatch) -> None:
    from mlsmith.select._budget import available_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1}, raising=False)
    assert available_cores() == 1  # e.g. under `taskset -c 1`, whatever the machine has


def test_ctrl_c_during_a_timed_search_stops_at_once_and_resumes(tmp_path: Path) -> None:
    """Against a deadline the search samples the next trial in a second thread; Ctrl-C must
    still stop the fit at once, keep the finished trials and queue the running one again."""
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mlsmith.cli", "fit", str(EXAMPLES / "penguins.csv"),
           "--target", "species", "--out", str(out), "--time-limit", "40", "--models",
           ",".join(FAMILIES), "--seed", "2", "--no-report", "--patience", "0"]
    env = {**os.environ, "MLSMITH_FAULT": ""}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    done_before: list[str] = []
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            done_before += re.findall(r"model (\S+_trial\d+): cv", line)
            if len(done_before) >= 3:
                break
        assert len(done_before) >= 3, "".join(lines)
        proc.send_signal(signal.SIGINT)
        t0 = time.time()
        rest = proc.communicate(timeout=60)[1]
        stopped_in = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, rest
    assert stopped_in < 10, f"took {stopped_in:.1f}s to stop"
    assert not out.exists() and (tmp_path / ".run.partial").is_dir()
    resumed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming an interrupted fit" in resumed.stderr
    rerun = re.findall(r"model (\S+_trial\d+): cross-validating", resumed.stderr)
    assert not set(rerun) & set(done_before)  # finished trials were not run again
    board = mlsmith.load(out).leaderboard()
    assert set(done_before) <= set(board["model"])
