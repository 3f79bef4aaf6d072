"""Shared fixtures: small generated frames, the shipped example tables, fitted runs, a CLI runner.

Fits are expensive next to everything else, so the runs that many tests read are fitted once per
session (tiny data, two model families; the budgets are short but roomy enough that a loaded
machine still fits every candidate: these fits finish early when the portfolio is done) and must not be modified by tests: a test
that tampers with a run copies it first (``copy_run``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# property tests draw the same examples on every run (and CI), and keep no example database
settings.register_profile("mlsmith", derandomize=True, database=None, deadline=None)
settings.load_profile("mlsmith")

# MLflow tracking is on by default when mlflow is installed; it costs seconds of CPU per fit in
# a background process. Tests of tracking ask for it explicitly (track=True).
os.environ.setdefault("MLSMITH_TRACKING", "0")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: keyword arguments for fits where the family list does not matter
FAST = {"models": ["linear", "lightgbm"], "quiet": True, "seed": 0}


# --- generated frames ---------------------------------------------------------------------------
def make_binary_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two informative numbers, a 3-level text category, an integer 0/1 target ``label``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    c = rng.choice(["u", "v", "w"], size=n)
    logit = 2.0 * x - 1.0 * z + np.where(c == "u", 1.0, 0.0)
    label = (logit + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
    return pd.DataFrame({"x": x, "z": z, "c": c, "label": label})


def make_regression_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.uniform(0, 10, size=n)
    c = rng.choice(["lo", "hi"], size=n)
    y = 3.0 * x + 0.5 * z + np.where(c == "hi", 2.0, 0.0) + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x": x, "z": z, "c": c, "y": y})


def make_multiclass_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    y = np.select([x < -0.4, x > 0.4], ["low", "high"], "mid")
    return pd.DataFrame({"x": x + rng.normal(scale=0.1, size=n), "z": z, "y": y})


@pytest.fixture
def seed() -> int:
    return 0


@pytest.fixture
def binary_df() -> pd.DataFrame:
    return make_binary_frame()


@pytest.fixture
def regression_df() -> pd.DataFrame:
    return make_regression_frame()


@pytest.fixture
def multiclass_df() -> pd.DataFrame:
    return make_multiclass_frame()


# --- shipped datasets ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def penguins_path() -> Path:
    return EXAMPLES / "penguins.csv"


@pytest.fixture(scope="session")
def tips_path() -> Path:
    return EXAMPLES / "tips.csv"


@pytest.fixture
def penguins_df(penguins_path: Path) -> pd.DataFrame:
    return pd.read_csv(penguins_path)


@pytest.fixture
def tips_df(tips_path: Path) -> pd.DataFrame:
    return pd.read_csv(tips_path)


# --- fitted runs (session scope: read-only for tests) --------------------------------------------
@dataclass
class TimedRun:
    run: Any
    elapsed: float


def _timed_fit(data: Any, target: str, out: Path, **kwargs: Any) -> TimedRun:
    import mlsmith

    opts = {**FAST, **kwargs}
    t0 = time.perf_counter()
    run = mlsmith.fit(data, target=target, out=out, **opts)
    return TimedRun(run, time.perf_counter() - t0)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def penguins_fit(runs_root: Path) -> TimedRun:
    return _timed_fit(EXAMPLES / "penguins.csv", "species", runs_root / "penguins", time_limit=15)


@pytest.fixture(scope="session")
def penguins_run(penguins_fit: TimedRun) -> Any:
    return penguins_fit.run


@pytest.fixture(scope="session")
def tips_run(runs_root: Path) -> Any:
    return _timed_fit(EXAMPLES / "tips.csv", "tip", runs_root / "tips", time_limit=15).run


@pytest.fixture(scope="session")
def binary_run(runs_root: Path) -> Any:
    return _timed_fit(make_binary_frame(), "label", runs_root / "binary", time_limit=12).run


@pytest.fixture
def copy_run(tmp_path: Path):
    """Copy a session run into ``tmp_path`` so a test may modify it."""

    def copy(run: Any) -> Path:
        dst = tmp_path / f"copy-{Path(run.path).name}"
        shutil.copytree(run.path, dst)
        return dst

    return copy


# --- the command line ---------------------------------------------------------------------------
@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(*args: Any, cwd: Path | None = None, timeout: float = 120) -> CliResult:
    """Run ``python -m mlsmith.cli ARGS`` in a subprocess."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env["COLUMNS"] = "200"
    proc = subprocess.run([sys.executable, "-m", "mlsmith.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def leftovers(folder: Path) -> list[str]:
    """Entries of ``folder`` (hidden ones too): used to prove a failed fit left nothing behind."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- CI: a skip is a failure ------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """With CI=true a skipped test fails: CI must have every package and service a test needs."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"
