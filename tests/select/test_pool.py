"""The Worker process: hard time limits per task, a fresh process after a kill."""

from __future__ import annotations

import os
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from mlsmith.preprocess import prepare_features
from mlsmith.schema import infer_schema
from mlsmith.select._pool import TaskFailed, TaskTimeout, Worker
from mlsmith.split import make_folds


@pytest.fixture
def worker_and_data(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "w": rng.normal(size=n)})
    df["y"] = 2.0 * df["x"] + rng.normal(scale=0.1, size=n)
    schema, _ = infer_schema(df, "y")
    y = df["y"].to_numpy()
    data_path = tmp_path / "data.joblib"
    joblib.dump({"schema": schema, "X": prepare_features(df, schema), "y": y,
                 "folds": make_folds(y, False, 3, 0)}, data_path)
    worker = Worker(tmp_path / "worker")
    yield worker, str(data_path)
    worker.kill()


def _cv_task(data_path: str, **kw) -> dict:
    return {"kind": "cv", "data_path": data_path, "family": "linear", "params": {},
            "metric": "rmse", "seed": 0, "n_jobs": 1, **kw}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_timeout_kills_the_process_and_the_next_task_works(worker_and_data) -> None:
    worker, data_path = worker_and_data
    quick = _cv_task(data_path)
    first = worker.run(quick, timeout=60)
    assert len(first["fold_scores"]) == 3 and first["oof"].shape == (60,)
    assert max(first["fold_scores"]) > -0.5  # a linear target: small RMSE
    pid = worker.proc.pid

    endless = _cv_task(data_path, family="lightgbm",
                       params={"n_estimators": 10**8, "learning_rate": 1e-6, "min_data_in_leaf": 1})
    t0 = time.perf_counter()
    with pytest.raises(TaskTimeout, match="stopped after 1.5s"):
        worker.run(endless, timeout=1.5)
    assert time.perf_counter() - t0 < 6.0
    assert worker.proc is None
    assert _gone(pid), "the worker process survived its timeout"

    again = worker.run(quick, timeout=60)
    assert worker.proc.pid != pid
    np.testing.assert_allclose(again["oof"], first["oof"])


def test_task_error_is_reported_and_the_worker_survives(worker_and_data) -> None:
    worker, data_path = worker_and_data
    with pytest.raises(TaskFailed, match="KeyError: 'no-such-kind'"):
        worker.run(_cv_task(data_path, kind="no-such-kind"), timeout=60)
    pid = worker.proc.pid
    with pytest.raises(TaskFailed, match="unknown model 'nope'"):
        worker.run(_cv_task(data_path, family="nope"), timeout=60)
    assert worker.proc.pid == pid
    assert len(worker.run(_cv_task(data_path), timeout=60)["fold_scores"]) == 3


def test_close_ends_the_process(worker_and_data) -> None:
    worker, data_path = worker_and_data
    worker.run(_cv_task(data_path), timeout=60)
    pid = worker.proc.pid
    worker.close()
    assert worker.proc is None and _gone(pid)
