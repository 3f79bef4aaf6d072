"""FitTracker: a fit logged to MLflow and read back with MlflowClient."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import ConfigError, MissingDependencyError
from mlsmith.track import (
    FitTracker,
    default_tracking_uri,
    require_mlflow,
    tracking_available,
    trials_from_results,
)

TRIALS = [
    {"model": "logreg_1", "family": "linear", "origin": "portfolio", "status": "ok",
     "params": {"C": 1.0, "penalty": "l2"}, "fold_scores": [0.81, 0.84, 0.78],
     "train_scores": [0.90, 0.91, 0.89], "duration_s": 1.25, "value": 0.81},
    {"model": "hgb_7", "family": "hgb", "origin": "search:tpe", "status": "failed",
     "params": {"learning_rate": 0.1, "max_depth": None}, "fold_scores": [],
     "train_scores": [], "duration_s": 0.5, "value": None, "note": "MemoryError in fold 1"},
    {"model": "knn_2", "family": "knn", "origin": "portfolio", "status": "stopped",
     "params": {"n_neighbors": 15}, "fold_scores": [0.7], "train_scores": [0.75],
     "duration_s": 2.0, "value": 0.7},
]
CONFIG = {"target": "churn", "task": "binary", "metric": "roc_auc", "time_limit": 60.0,
          "folds": 3, "families": ["linear", "hgb", "knn"], "seed": 0}


def _table(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50.0, 12.0, n).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], n),
    })
    df.loc[[3, 17], "income"] = np.nan
    score = 0.06 * (df["age"] - 50) + (df["plan"] == "pro") * 1.5 + rng.normal(0, 1, n)
    df["churn"] = np.where(score > 0, "yes", "no")
    return df


def _fitted(df: pd.DataFrame, target: str, estimator: Any) -> tuple[Any, Any]:
    from mlsmith.preprocess import prepare_features
    from mlsmith.preprocess._transformers import build_preprocessor, make_model_pipeline
    from mlsmith.schema import infer_schema
    from mlsmith.select import FittedModel

    schema, _ = infer_schema(df, target)
    X = prepare_features(df.drop(columns=[target]), schema)
    if schema.task.is_classification:
        lookup = {str(c): i for i, c in enumerate(schema.task.classes)}
        y = np.array([lookup[str(v)] for v in df[target]])
    else:
        y = df[target].to_numpy(dtype=float)
    pipe = make_model_pipeline(build_preprocessor(schema, "scaled")[0], estimator).fit(X, y)
    return FittedModel(schema.task.kind, schema.task.classes, [("m", pipe, 1.0)]), schema


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    df = _table()
    model, schema = _fitted(df, "churn", LogisticRegression())
    run_dir = tmp_path_factory.mktemp("run")
    cwd = tmp_path_factory.mktemp("cwd")
    before = os.getcwd()
    os.chdir(cwd)  # MLflow must write nothing into the working directory
    try:
        tracker = FitTracker(run_dir)
        run_id = tracker.log_fit(
            CONFIG, TRIALS, final={"description": "logreg_1", "members": [{"model": "logreg_1"}]},
            metrics={"cv": {"roc_auc": 0.81, "log_loss": 0.45}, "test": {"roc_auc": 0.79}},
            model=model, schema=schema, input_example=df.drop(columns=["churn"]),
            tags={"team": "growth"}, start_time=1_700_000_000.0, end_time=1_700_000_060.0)
    finally:
        os.chdir(before)
    client = MlflowClient(tracker.tracking_uri)
    return {"run_id": run_id, "client": client, "tracker": tracker, "model": model,
            "schema": schema, "df": df, "run_dir": run_dir, "cwd": cwd}


def _children(logged: dict[str, Any]) -> dict[str, Any]:
    client, run_id = logged["client"], logged["run_id"]
    exp = client.get_run(run_id).info.experiment_id
    runs = client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    return {r.info.run_name: r for r in runs}


def test_the_store_is_one_sqlite_file_in_the_run_dir(logged: dict[str, Any]) -> None:
    run_dir: Path = logged["run_dir"]
    assert logged["tracker"].tracking_uri == default_tracking_uri(run_dir)
    assert logged["tracker"].tracking_uri == f"sqlite:///{run_dir.resolve().as_posix()}/mlflow.db"
    assert (run_dir / "mlflow.db").is_file() and (run_dir / "mlartifacts").is_dir()
    assert list(logged["cwd"].iterdir()) == []
    record = json.loads((run_dir / "tracking.json").read_text())
    assert record["status"] == "ok" and record["run_id"] == logged["run_id"]
    assert record["model_uri"].startswith("models:/") and record["n_trials"] == 3


def test_one_parent_run_with_config_metrics_and_tags(logged: dict[str, Any]) -> None:
    import mlsmith

    client, run_id = logged["client"], logged["run_id"]
    run = client.get_run(run_id)
    runs = client.search_runs([run.info.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [run_id] and len(runs) == 4
    assert run.info.status == "FINISHED"
    assert run.info.run_name == logged["run_dir"].name
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_000, 1_700_000_060_000)
    assert run.data.params["metric"] == "roc_auc" and run.data.params["folds"] == "3"
    assert json.loads(run.data.params["families"]) == ["linear", "hgb", "knn"]
    assert run.data.metrics["cv_roc_auc"] == pytest.approx(0.81)
    assert run.data.metrics["test_roc_auc"] == pytest.approx(0.79)
    assert run.data.metrics["n_trials"] == 3 and run.data.metrics["n_trials_ok"] == 1
    tags = run.data.tags
    assert tags["mlsmith.task"] == "binary" and tags["mlsmith.target"] == "churn"
    assert tags["mlsmith.version"] == mlsmith.__version__ and tags["team"] == "growth"
    assert tags["mlsmith.final_model"] == "logreg_1"
    final = json.loads(Path(client.download_artifacts(run_id, "final_model.json")).read_text())
    assert final["members"] == [{"model": "logreg_1"}]


def test_each_trial_is_a_nested_run_with_its_numbers_and_state(logged: dict[str, Any]) -> None:
    client = logged["client"]
    children = _children(logged)
    assert sorted(children) == ["hgb_7", "knn_2", "logreg_1"]
    expected_state = {"logreg_1": "FINISHED", "hgb_7": "FAILED", "knn_2": "KILLED"}
    for trial in TRIALS:
        run = children[trial["model"]]
        assert run.info.status == expected_state[trial["model"]]
        assert run.data.tags["mlsmith.status"] == trial["status"]
        assert run.data.tags["mlsmith.family"] == trial["family"]
        assert run.data.tags["mlsmith.origin"] == trial["origin"]
        assert run.info.end_time - run.info.start_time == round(1000 * trial["duration_s"])
        assert run.data.metrics["duration_s"] == pytest.approx(trial["duration_s"])
        history = client.get_metric_history(run.info.run_id, "fold_score")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (i, pytest.approx(v)) for i, v in enumerate(trial["fold_scores"])]
    ok = children["logreg_1"].data
    assert ok.params == {"C": "1.0", "penalty": "l2"}
    assert ok.metrics["cv_score"] == pytest.approx(0.81)
    assert ok.metrics["cv_score_std"] == pytest.approx(float(np.std([0.81, 0.84, 0.78])))
    failed = children["hgb_7"].data
    assert failed.params == {"learning_rate": "0.1", "max_depth": "null"}
    assert "cv_score" not in failed.metrics
    assert failed.tags["mlsmith.note"] == "MemoryError in fold 1"


def test_the_model_loads_and_predicts_like_the_original(logged: dict[str, Any]) -> None:
    import mlflow.pyfunc

    from mlsmith.preprocess import prepare_features

    client, run_id = logged["client"], logged["run_id"]
    record = json.loads((logged["run_dir"] / "tracking.json").read_text())
    model_id = record["model_uri"].removeprefix("models:/")
    logged_model = client.get_logged_model(model_id)
    assert logged_model.source_run_id == run_id and logged_model.status == "READY"
    assert logged_model.artifact_location.startswith((logged["run_dir"] / "mlartifacts").as_uri())
    loaded = mlflow.pyfunc.load_model(logged_model.artifact_location)

    df, schema, model = logged["df"], logged["schema"], logged["model"]
    rows = df.drop(columns=["churn"]).iloc[20:60]
    proba = model.predict_encoded(prepare_features(rows, schema))
    expected = np.asarray(schema.task.classes, dtype=object)[proba.argmax(axis=1)]
    got = loaded.predict(rows)
    assert got.tolist() == expected.tolist() and 0 < (got == "yes").sum() < len(rows)
    got_proba = loaded.predict(rows, params={"output": "proba"})
    assert list(got_proba.columns) == ["no", "yes"]
    np.testing.assert_allclose(got_proba.to_numpy(), proba, rtol=1e-12)

    requirements = Path(loaded.metadata.artifact_path.removeprefix("file://"), "requirements.txt")
    pins = requirements.read_text().split()
    assert any(p.startswith("scikit-learn==") for p in pins) and "mlsmith==0.1.0" in pins
    assert not any(p.startswith(("torch", "lightgbm")) for p in pins)


def test_the_signature_names_the_raw_columns(logged: dict[str, Any]) -> None:
    import mlflow.pyfunc

    record = json.loads((logged["run_dir"] / "tracking.json").read_text())
    location = logged["client"].get_logged_model(
        record["model_uri"].removeprefix("models:/")).artifact_location
    meta = mlflow.pyfunc.load_model(location).metadata
    inputs = meta.get_input_schema()
    assert inputs.input_names() == ["age", "income", "plan"] == logged["schema"].features
    types = {c.name: c.type.name for c in inputs.inputs}
    assert types == {"age": "long", "income": "double", "plan": "string"}
    assert meta.get_params_schema().params[0].name == "output"
    example = meta.load_input_example(location.removeprefix("file://"))
    assert list(example.columns) == ["age", "income", "plan"] and len(example) == 5


def test_trials_from_results_reports_natural_units() -> None:
    @dataclass
    class Cand:
        model_id: str
        family: str
        params: dict[str, Any]
        origin: str = "portfolio"

    @dataclass
    class Res:
        candidate: Cand
        status: str
        cv_scores: list[float] = field(default_factory=list)
        train_scores: list[float] = field(default_factory=list)
        fit_time: float = float("nan")
        predict_time: float = 0.1
        total_time: float = 2.5
        note: str = ""

    results = [Res(Cand("ridge_1", "linear", {"alpha": 1.0}), "ok", [-2.0, -4.0], [-1.0]),
               Res(Cand("knn_1", "knn", {}, "search:tpe"), "failed", note="boom")]
    loss = trials_from_results(results, greater_is_better=False)
    assert loss[0]["fold_scores"] == [2.0, 4.0] and loss[0]["value"] == 3.0
    assert loss[0]["train_scores"] == [1.0] and loss[0]["fit_time_s"] is None
    assert loss[0]["duration_s"] == 2.5 and loss[1]["value"] is None
    assert (loss[1]["origin"], loss[1]["status"], loss[1]["note"]) == ("search:tpe", "failed", "boom")
    assert trials_from_results(results[:1])[0]["value"] == -3.0


def test_background_logging_to_another_store(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """log_fit_async: the caller gets a job at once; the run lands in the given store."""
    import joblib
    from mlflow import MlflowClient
    from sklearn.linear_model import Ridge

    df = _table(seed=1).drop(columns=["churn"]).assign(spend=lambda d: d["age"] * 2.0 + 1.0)
    model, schema = _fitted(df, "spend", Ridge(alpha=1e-6))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    joblib.dump(model, run_dir / "model.joblib")
    uri = f"sqlite:///{(tmp_path / 'team.db').as_posix()}"
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # the process inherits it; MLflow must not use it
    job = FitTracker(run_dir, tracking_uri=uri, experiment="team").log_fit_async(
        {**CONFIG, "task": "regression", "metric": "rmse", "target": "spend"}, TRIALS[:2],
        metrics={"cv": {"rmse": 0.1}}, model=run_dir / "model.joblib",
        input_example=df.drop(columns=["spend"]), schema=schema)
    record = job.wait(timeout=240)
    assert record is not None, "the tracking process did not finish in 240 s"
    assert record["status"] == "ok", record
    assert not (run_dir / "mlflow.db").exists() and (tmp_path / "team.db").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []  # artifacts went beside team.db
    assert (tmp_path / "mlartifacts" / "models").is_dir()
    client = MlflowClient(uri)
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlsmith.task"] == "regression"
    assert client.get_experiment(run.info.experiment_id).name == "team"
    kids = client.search_runs([run.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{record['run_id']}'")
    assert sorted(k.info.status for k in kids) == ["FAILED", "FINISHED"]

    import mlflow.pyfunc

    location = client.get_logged_model(record["model_uri"].removeprefix("models:/"))
    rows = df.drop(columns=["spend"]).head(10)
    got = mlflow.pyfunc.load_model(location.artifact_location).predict(rows)
    np.testing.assert_allclose(got.to_numpy(), rows["age"].to_numpy() * 2.0 + 1.0, atol=1e-3)


def test_a_failure_is_recorded_and_raised(tmp_path: Path) -> None:
    tracker = FitTracker(tmp_path)
    with pytest.raises(ConfigError, match="input_example must be a pandas DataFrame"):
        tracker.log_fit(CONFIG, TRIALS, model=object(), task="regression",
                        input_example=[[1, 2]])
    record = json.loads((tmp_path / "tracking.json").read_text())
    assert record["status"] == "failed" and "input_example" in record["error"]
    assert not (tmp_path / "mlflow.db").exists()  # checked before any store was created


@pytest.mark.parametrize("kwargs, message", [
    ({"tracking_uri": "  "}, "tracking_uri must be an MLflow URI"),
    ({"experiment": ""}, "experiment must be a non-empty name"),
])
def test_bad_settings_are_config_errors(tmp_path: Path, kwargs: dict[str, Any],
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FitTracker(tmp_path, **kwargs)


def test_bad_trials_are_config_errors(tmp_path: Path) -> None:
    tracker = FitTracker(tmp_path)
    with pytest.raises(ConfigError, match="trial 1 must be a dict with a 'model'"):
        tracker.log_fit(CONFIG, [TRIALS[0], {"family": "hgb"}])
    with pytest.raises(ConfigError, match="trials must be a list"):
        tracker.log_fit(CONFIG, "logreg_1")  # type: ignore[arg-type]


def test_without_mlflow_explicit_tracking_fails_with_the_install_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracking_available()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    assert tracking_available() is False
    with pytest.raises(MissingDependencyError, match=r"pip install 'mlsmith\[track\]'"):
        FitTracker(tmp_path)
    with pytest.raises(MissingDependencyError, match="not installed"):
        require_mlflow()
    assert not (tmp_path / "mlflow.db").exists()


def test_an_old_mlflow_counts_as_missing(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    from mlsmith.track import _deps

    monkeypatch.setattr(_deps, "_installed_version", lambda: "2.10.2")
    assert tracking_available() is False
    with pytest.raises(MissingDependencyError, match=r"mlflow >= 3\.1, found 2\.10\.2"):
        FitTracker(tmp_path)


def test_check_connection_fails_fast_on_a_dead_server(tmp_path: Path) -> None:
    import http.server
    import socket
    import threading

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with pytest.raises(ConfigError, match=f"server http://127.0.0.1:{dead} does not answer"):
        FitTracker(tmp_path, tracking_uri=f"http://127.0.0.1:{dead}").check_connection(timeout=2)

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:  # any HTTP answer counts as reachable
        FitTracker(tmp_path, tracking_uri=f"http://127.0.0.1:{server.server_port}"
                   ).check_connection(timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    FitTracker(tmp_path).check_connection()  # the SQLite default is not checked
