"""A fit logs itself to MLflow: one parent run, one nested run per candidate, the model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

import mlsmith

pytest.importorskip("mlflow")
ROOT = Path(__file__).resolve().parents[2]


def test_fit_is_an_mlflow_run_with_nested_trials(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    df = pd.read_csv(ROOT / "examples" / "penguins.csv")
    run = mlsmith.fit(df, "species", time_limit=40, out=out, quiet=True, track=True,
                      models=["linear", "hist_gradient_boosting"], strategy="none")
    record_path = out / "tracking.json"
    for _ in range(120):  # the logging finishes in a background process
        if record_path.exists() and json.loads(record_path.read_text()).get("status") != "running":
            break
        time.sleep(0.5)
    record = json.loads(record_path.read_text())
    assert record["status"] == "ok", record
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mlsmith")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_id == record["run_id"]
    board = run.leaderboard()
    candidates = set(board["model"]) - {"ensemble"}
    assert {r.data.tags["mlsmith.model"] if "mlsmith.model" in r.data.tags else r.info.run_name
            for r in children} == candidates
    assert parents[0].data.params["target"] == "species"
    assert parents[0].data.tags["mlsmith.task"] == "multiclass"


def test_network_trials_of_the_search_log_their_epochs_by_step(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    df = pd.read_csv(ROOT / "examples" / "penguins.csv")
    run = mlsmith.fit(df, "species", trials=2, out=out, quiet=True, track=True,
                      models=["linear", "neural"], report=False, seed=1)
    assert sorted(run.metrics["search"]["families"]) == ["linear", "neural"]
    record_path = out / "tracking.json"
    for _ in range(240):  # the logging finishes in a background process
        if record_path.exists() and json.loads(record_path.read_text()).get("status") != "running":
            break
        time.sleep(0.5)
    assert json.loads(record_path.read_text())["status"] == "ok"
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mlsmith")
    board = run.leaderboard()
    nets = set(board[(board["family"] == "neural")
                     & board["origin"].str.startswith("search:")]["model"])
    assert nets, "with this seed TPE picks a network in its two trials"
    logged = {}
    for r in client.search_runs([exp.experiment_id]):
        name = r.data.tags.get("mlsmith.model", r.info.run_name)
        if name in nets:
            logged[name] = client.get_metric_history(r.info.run_id, "fold1_epoch_score")
    assert set(logged) == nets
    for history in logged.values():
        steps = [m.step for m in history]
        assert len(steps) > 1 and steps == sorted(steps) and steps[0] >= 1
