"""Every fit runs the engineer's review: audit first, evaluation and report at the end; imbalanced
classes bring class weights, SMOTE inside the folds and a tuned decision threshold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlsmith


def _imbalanced(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    noise = rng.normal(size=n)
    logit = 2.5 * x + 1.5 * z - 4.0
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return pd.DataFrame({"x": x, "z": z, "noise": noise, "y": np.where(y == 1, "fraud", "ok")})


@pytest.fixture(scope="module")
def imbalanced_run(tmp_path_factory: pytest.TempPathFactory) -> mlsmith.Run:
    out = tmp_path_factory.mktemp("review") / "run"
    return mlsmith.fit(_imbalanced(), "y", time_limit=60, out=out, quiet=True, seed=0,
                       models=["linear", "hist_gradient_boosting", "lightgbm"], strategy="none")


def test_imbalance_is_found_and_acted_on(imbalanced_run: mlsmith.Run) -> None:
    path = Path(imbalanced_run.path)
    audit = json.loads((path / "audit.json").read_text())
    finding = [f for f in audit["findings"] if f["check"] == "class_imbalance"]
    assert finding and finding[0]["severity"] == "warning"
    assert audit["recommendations"]["smote"] and audit["recommendations"]["threshold_tuning"]
    board = imbalanced_run.leaderboard().set_index("model")
    for model_id in ("hist_gradient_boosting_balanced", "linear_balanced", "lightgbm_smote"):
        assert board.loc[model_id, "status"] == "ok"
        assert board.loc[model_id, "origin"] == "imbalance"
    thr = imbalanced_run.metrics["threshold"]
    assert thr["objective"] == "f1" and 0.0 < thr["value"] < 1.0
    assert thr["score"] >= thr["score_at_default"]


def test_shipped_labels_use_the_tuned_threshold(imbalanced_run: mlsmith.Run) -> None:
    df = _imbalanced(300, seed=5)
    proba = imbalanced_run.predict_proba(df)
    labels = imbalanced_run.predict(df)
    thr = imbalanced_run.metrics["threshold"]
    positive = imbalanced_run.classes_[1]
    cut = thr["value"] if thr["applied"] else None
    expected = (proba[positive] >= cut) if cut is not None else (proba[positive] > 0.5)
    if cut is None:  # argmax
        expected = proba.idxmax(axis=1) == positive
    assert ((labels == positive) == expected).all()


def test_smote_runs_inside_the_pipeline_only() -> None:
    from mlsmith.schema import infer_schema
    from mlsmith.select._tasks import build_pipeline

    df = _imbalanced(400)
    schema, _ = infer_schema(df, "y")
    pipe = build_pipeline(schema, "lightgbm", {"resample": "smote"}, 400, 0, 1, None)
    assert list(pipe.named_steps) == ["prep", "smote", "model"]
    y = (df["y"] == "fraud").astype(int).to_numpy()
    pipe.fit(df.drop(columns="y"), y)
    assert pipe.predict_proba(df.drop(columns="y")).shape == (400, 2)  # no rows added at predict


def test_evaluation_report_and_card_are_written(imbalanced_run: mlsmith.Run) -> None:
    path = Path(imbalanced_run.path)
    ev = json.loads((path / "evaluation.json").read_text())
    roc = ev["test"]["metrics"]["roc_auc"]
    assert roc["low"] <= roc["value"] <= roc["high"]
    assert roc["value"] == pytest.approx(imbalanced_run.metrics["test"]["roc_auc"])
    assert ev["bias_variance"]["verdict"] in {"underfitting", "fine", "overfitting"}
    assert [p["n_train"] for p in ev["learning_curve"]["points"]] == \
        sorted(p["n_train"] for p in ev["learning_curve"]["points"])
    top = ev["importance"]["features"][0]["feature"]
    assert top in {"x", "z"}  # the planted signal, not the noise column
    html = (path / "report.html").read_text()
    assert "Audit findings" in html and "class_imbalance" in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*https?:", html)  # nothing from the network
    card = (path / "model_card.md").read_text()
    assert "roc\\_auc" in card or "roc_auc" in card
    manifest = json.loads((path / "manifest.json").read_text())
    assert {"report.html", "model_card.md", "evaluation.json", "audit.json"} <= set(manifest["files"])


def test_leaking_column_stops_the_fit_and_allow_lets_it_go_on(tmp_path: Path) -> None:
    from mlsmith.errors import AuditError

    df = _imbalanced(400)
    df["y_code"] = (df["y"] == "fraud").astype(int)  # restates the target
    with pytest.raises(AuditError, match="y_code"):
        mlsmith.fit(df, "y", time_limit=20, out=tmp_path / "r", quiet=True, models=["linear"])
    assert list(tmp_path.iterdir()) == []  # nothing written
    run = mlsmith.fit(df, "y", time_limit=20, out=tmp_path / "r", quiet=True, models=["linear"],
                      allow=["target_leakage"], strategy="none", report=False)
    audit = json.loads((Path(run.path) / "audit.json").read_text())
    assert audit["allowed"] == ["target_leakage"]


def test_time_column_gives_a_time_ordered_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 300
    when = pd.date_range("2024-01-01", periods=n, freq="D")
    df = pd.DataFrame({"when": rng.permutation(when), "x": rng.normal(size=n)})
    df["y"] = 2 * df["x"] + rng.normal(scale=1.0, size=n)
    run = mlsmith.fit(df, "y", time_limit=20, out=tmp_path / "r", quiet=True, models=["linear"],
                      time_column="when", strategy="none", report=False)
    splits = np.load(Path(run.path) / "splits.npz")
    train_times = df.loc[splits["train_index"], "when"]
    test_times = df.loc[splits["test_index"], "when"]
    assert len(test_times) == 60 and test_times.min() > train_times.max()  # the latest rows
    audit = json.loads((Path(run.path) / "audit.json").read_text())
    assert any(f["check"] == "time_order" for f in audit["findings"])
    oof = np.load(Path(run.path) / "oof_predictions.npz")
    assert (oof["fold"] == -1).sum() > 0  # the earliest block is never validated on


def test_audit_and_report_commands(tmp_path: Path, imbalanced_run: mlsmith.Run) -> None:
    from helpers import run_cli

    data = tmp_path / "leak.csv"
    df = _imbalanced(300)
    df["y_copy"] = df["y"]
    df.to_csv(data, index=False)
    res = run_cli("audit", data, "--target", "y", "--out", tmp_path / "audit.json")
    assert res.rc == 2 and "target_leakage" in res.stdout and "y_copy" in res.stdout
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert json.loads((tmp_path / "audit.json").read_text())["findings"][0]["check"] == \
        "target_leakage"
    clean = run_cli("audit", data, "--target", "y", "--drop", "y_copy", "--json")
    assert clean.rc == 0 and json.loads(clean.stdout)["dropped_columns"] == []

    out = tmp_path / "again.html"
    rep = run_cli("report", imbalanced_run.path, "--out", out)
    assert rep.rc == 0 and out.stat().st_size > 10_000
    html = out.read_text()
    # imbalanced classes: the report leads with the metrics that mean something then
    after = html[html.index('class="lead"'):]
    first_row = after[after.index("<tr><td>"):][:200]
    assert "pr_auc" in first_row and "imbalanced" in after[:300]
    bad = run_cli("report", tmp_path / "nope")
    assert bad.rc == 2 and "does not exist" in bad.stderr


def test_skewed_target_brings_log_target_candidates(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 400
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    price = np.exp(1.5 * x + 0.5 * z + rng.normal(scale=0.3, size=n))  # log-normal: skewed
    df = pd.DataFrame({"x": x, "z": z, "price": price})
    run = mlsmith.fit(df, "price", time_limit=40, out=tmp_path / "r", quiet=True, seed=0,
                      models=["linear", "lightgbm", "hist_gradient_boosting"], strategy="none",
                      report=False)
    audit = json.loads((Path(run.path) / "audit.json").read_text())
    assert audit["recommendations"]["log_target"]
    board = run.leaderboard().set_index("model")
    for model_id in ("lightgbm_log_target", "hist_gradient_boosting_log_target"):
        assert board.loc[model_id, "status"] == "ok" and board.loc[model_id, "origin"] == "audit"
    pred = run.predict(df.drop(columns="price"))
    assert (pred > 0).all()  # a model trained on log1p(price) and one on price: both in range
