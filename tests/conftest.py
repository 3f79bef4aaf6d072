"""Shared fixtures: small generated frames, the shipped example tables, fitted runs, a CLI runner.

Fits are expensive next to everything else, so the runs that many tests read are fitted once per
session (tiny data, two model families; the budgets are short but roomy enough that a loaded
machine still fits every candidate: these fits finish early when the portfolio is done) and must not be modified by tests: a test
that tampers with a run copies it first (``copy_run``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import settings

# property tests draw the same examples on every run (and CI), and keep no example database
settings.register_profile("mlsmith", derandomize=True, database=None, deadline=None)
settings.load_profile("mlsmith")

from helpers import (  # noqa: E402
    EXAMPLES,
    FAST,
    make_binary_frame,
    make_multiclass_frame,
    make_regression_frame,
    run_cli,
)

# MLflow tracking is on by default when mlflow is installed; it costs seconds of CPU per fit in
# a background process. Tests of tracking ask for it explicitly (track=True).
os.environ.setdefault("MLSMITH_TRACKING", "0")

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
@pytest.fixture
def cli():
    return run_cli


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """With CI=true a skipped test fails: CI must have every package and service a test needs."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true: {report.longrepr}"
