"""Crash-safe fits: a fit killed with SIGKILL at any moment is continued by the same command.

The kill comes from inside, at a named point (``MLSMITH_FAULT``), so each moment is hit exactly:
while loading, after the second finished candidate, during the final refit, while saving.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest

import mlsmith

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "penguins.csv"


def _fit(out: Path, fault: str | None = None, limit: int = 40) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLSMITH_FAULT": fault or ""}
    cmd = [sys.executable, "-m", "mlsmith.cli", "fit", str(DATA), "--target", "species",
           "--out", str(out), "--time-limit", str(limit), "--models",
           "linear,hist_gradient_boosting,lightgbm", "--seed", "3", "--strategy", "none",
           "--no-report"]  # the search's own resume is tested in test_fit_search.py
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _cross_validated(stderr: str) -> list[str]:
    return re.findall(r"model (\S+): cross-validating", stderr)


@pytest.mark.parametrize("fault", ["load", "trial:2", "refit", "save"])
def test_killed_fit_resumes_with_finished_candidates_kept(tmp_path: Path, fault: str) -> None:
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    killed = _fit(out, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists() and partial.is_dir()
    finished = {p.stem: joblib.load(p) for p in (partial / "state" / "results").glob("*.joblib")}
    if fault == "load":
        assert finished == {}
    else:
        assert len(finished) >= 2

    resumed = _fit(out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming an interrupted fit" in resumed.stderr
    # finished candidates were not cross-validated again, and kept their scores
    assert not set(_cross_validated(resumed.stderr)) & set(finished)
    board = mlsmith.load(out).leaderboard().set_index("model")
    for model_id, r in finished.items():
        if r.status == "ok":
            assert board.loc[model_id, "cv_log_loss"] == pytest.approx(-r.cv_mean)
    # the run is complete and valid; the staging folder is gone; the earlier time was counted
    run = mlsmith.load(out)
    assert len(run.predict(pd.read_csv(DATA).head(5))) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_after_s"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert not any(name.startswith("state/") for name in manifest["files"])


def test_different_configuration_starts_afresh(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _fit(out, "trial:2").returncode == -signal.SIGKILL
    env = {**os.environ, "MLSMITH_FAULT": ""}
    cmd = [sys.executable, "-m", "mlsmith.cli", "fit", str(DATA), "--target", "species",
           "--out", str(out), "--time-limit", "30", "--models", "linear", "--seed", "4",
           "--strategy", "none"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" not in done.stderr
    assert _cross_validated(done.stderr) == ["linear_1"]


def test_a_live_fit_holds_its_folder(tmp_path: Path) -> None:
    from mlsmith.errors import RunDirError
    from mlsmith.run import RunWriter

    partial = tmp_path / ".run.partial"
    partial.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (partial / ".owner").write_text(str(sleeper.pid))
        with pytest.raises(RunDirError, match=f"another fit \\(process {sleeper.pid}\\)"):
            RunWriter(tmp_path / "run", fingerprint={"a": 1})
    finally:
        sleeper.kill()
        sleeper.wait()
