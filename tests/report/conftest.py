"""Run directories for the report tests.

Two real fits (penguins: multiclass, tips: regression) run once per session. ``audit.json`` and
``evaluation.json`` are then generated into copies of them in the format of docs/RUNDIR.md, from
the run's own test predictions, so every section of the report has something to draw. A third,
fully synthetic binary run of 50,000 rows with oversized curves checks the size guards and the
escaping of hostile column names and class labels.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: a column name and a class label that must come out escaped
HOSTILE = "<script>alert(1)</script>"
HOSTILE_CLASS = "<i>yes</i>"
FIT_KW = {"time_limit": 15, "models": ["linear", "hist_gradient_boosting"], "quiet": True,
          "seed": 0}


# --- the run's own test predictions ---------------------------------------------------------------
def run_test_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(y, pred)`` of the test rows: from test_predictions.npz, else predicted here."""
    p = run_dir / "test_predictions.npz"
    if p.is_file():
        with np.load(p) as d:
            return np.asarray(d["y"]), np.asarray(d["pred"])
    import mlsmith

    run = mlsmith.load(run_dir, check_versions=False)
    df = pd.read_csv(run.config["source"])
    df = df.loc[df[run.target].notna()].reset_index(drop=True)
    with np.load(run_dir / "splits.npz") as d:
        test_index = d["test_index"]
    test = df.iloc[test_index]
    pred, _ = run._predict_encoded(test.drop(columns=[run.target]))
    return run.encode_target(test[run.target]), np.asarray(pred)


# --- documented-format generators -----------------------------------------------------------------
def make_audit(run_dir: Path, extra_columns: list[str] | None = None) -> dict[str, Any]:
    """An audit.json with one finding of each severity, naming the run's own columns."""
    schema = json.loads((run_dir / "schema.json").read_text())
    cols = [c["name"] for c in schema["columns"]] + list(extra_columns or [])
    return {
        "version": 1, "target": schema["target"], "task": schema["task"]["kind"],
        "n_rows": schema["n_rows"], "n_columns": len(cols) + 1, "seconds": 0.42,
        "findings": [
            {"check": "target_leakage", "severity": "error",
             "title": f"Column '{cols[0]}' restates the target",
             "message": f"{cols[0]} predicts the target almost perfectly on its own",
             "columns": [cols[0]], "evidence": {"cv_r2": 0.9996, "rows_checked": 300},
             "fix": f"drop it with --drop {cols[0]}, or --allow target_leakage", "applied": False},
            {"check": "missing_values", "severity": "warning",
             "title": f"Column '{cols[-1]}' is 3.2% missing",
             "message": "missing values are imputed inside each fold",
             "columns": [cols[-1]], "evidence": {"missing_share": 0.032, "n_missing": 11},
             "fix": "nothing to do: imputation is part of the model", "applied": True},
            {"check": "duplicates", "severity": "info", "title": "12 duplicate rows",
             "message": "exact duplicate rows were removed before the split", "columns": [],
             "evidence": {"n_duplicates": 12}, "fix": "none needed", "applied": True},
        ],
        "dropped_columns": ["row_id"],
        "removed_rows": {"duplicates": 12},
        "recommendations": {"class_weight": False, "smote": False, "threshold_tuning": False,
                            "lead_metrics": ["pr_auc", "balanced_accuracy"], "log_target": False,
                            "scaling_needed": True},
        "allowed": [],
    }


def _bootstrap(kind: str, y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int
               ) -> dict[str, dict[str, Any]]:
    from mlsmith.metrics import compute_all, get_metric

    point = compute_all(kind, y, pred)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        for k, v in compute_all(kind, y[idx], pred[idx]).items():
            if k in draws and np.isfinite(v):
                draws[k].append(v)
    out = {}
    for k, v in point.items():
        d = np.asarray(draws[k]) if draws[k] else np.array([v])
        out[k] = {"value": float(v), "low": float(np.quantile(d, 0.025)),
                  "high": float(np.quantile(d, 0.975)),
                  "greater_is_better": get_metric(k).greater_is_better}
    return out


def _curves(y: np.ndarray, pred: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    ks = [1] if len(classes) == 2 else list(range(len(classes)))
    roc, pr, cal = [], [], []
    for k in ks:
        yk, pk = (y == k).astype(int), pred[:, k]
        if yk.min() == yk.max():
            continue
        fpr, tpr, _ = roc_curve(yk, pk)
        prec, rec, _ = precision_recall_curve(yk, pk)
        from sklearn.metrics import auc

        roc.append({"label": classes[k], "fpr": fpr.tolist(), "tpr": tpr.tolist(),
                    "auc": float(auc(fpr, tpr))})
        pr.append({"label": classes[k], "recall": rec.tolist(), "precision": prec.tolist(),
                   "ap": float(average_precision_score(yk, pk)), "prevalence": float(yk.mean())})
        frac, mean = calibration_curve(yk, pk, n_bins=8, strategy="quantile")
        cal.append({"label": classes[k], "mean_predicted": mean.tolist(),
                    "fraction_positive": frac.tolist(), "count": [int(len(yk) / 8)] * len(mean)})
    return {"roc": roc, "pr": pr, "calibration": cal}


def make_evaluation(run_dir: Path, n_boot: int = 30, shap: bool = True) -> dict[str, Any]:
    """An evaluation.json computed from the run's test predictions (intervals by bootstrap)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    schema = json.loads((run_dir / "schema.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    kind, classes = schema["task"]["kind"], schema["task"]["classes"]
    metric = metrics["metric"]
    y, pred = run_test_predictions(run_dir)
    test: dict[str, Any] = {"n_rows": int(len(y)), "n_boot": n_boot, "ci": 0.95,
                            "metrics": _bootstrap(kind, y, pred, n_boot, seed=0)}
    curves: dict[str, Any]
    if kind == "regression":
        curves = {"residuals": {"predicted": pred.tolist(), "actual": y.tolist(),
                                "residual": (y - pred).tolist()}}
        proj_x, proj_y, labels = pred - pred.mean(), (y - pred), y.tolist()
    else:
        labels_idx = np.argmax(pred, axis=1)
        p, r, f1, s = precision_recall_fscore_support(y, labels_idx, labels=range(len(classes)),
                                                      zero_division=0)
        test["per_class"] = [{"class": c, "precision": float(p[i]), "recall": float(r[i]),
                              "f1": float(f1[i]), "support": int(s[i])}
                             for i, c in enumerate(classes)]
        test["confusion_matrix"] = confusion_matrix(y, labels_idx,
                                                    labels=range(len(classes))).tolist()
        curves = _curves(y, pred, classes)
        centred = pred - pred.mean(axis=0)
        u, sv, _ = np.linalg.svd(centred, full_matrices=False)
        rng = np.random.default_rng(0)
        proj_x = u[:, 0] * sv[0] + rng.normal(scale=0.02, size=len(y))
        proj_y = u[:, 1] * sv[1] + rng.normal(scale=0.02, size=len(y))
        labels = [classes[int(i)] for i in y]
    cv = metrics["cv"]
    cv_vs_test = []
    for name in list(cv)[:4]:
        t = test["metrics"][name]
        cv_vs_test.append({"metric": name, "cv": cv[name], "cv_std": 0.01, "test": t["value"],
                           "low": t["low"], "high": t["high"],
                           "agree": bool(t["low"] - 0.01 <= cv[name] <= t["high"] + 0.01)})
    board = pd.read_csv(run_dir / "leaderboard.csv")
    tcol, vcol = f"train_{metric}", f"cv_{metric}"
    bv_models = [{"model": r["model"], "train": float(r[tcol]), "validation": float(r[vcol])}
                 for _, r in board.iterrows() if pd.notna(r.get(tcol)) and pd.notna(r.get(vcol))]
    features = [c["name"] for c in schema["columns"] if c["role"] in ("numeric", "categorical")]
    evaluation: dict[str, Any] = {
        "version": 1, "task": kind, "classes": classes, "metric": metric,
        "test": test, "cv_vs_test": cv_vs_test, "curves": curves,
        "bias_variance": {"models": bv_models, "verdict": "overfitting",
                          "reason": "train 0.999 against validation 0.962: a gap of 0.037"},
        "learning_curve": {"metric": metric, "points": [
            {"n_train": n, "train": 0.99 - 0.01 * i, "validation": 0.80 + 0.04 * i,
             "validation_std": 0.03 - 0.004 * i} for i, n in enumerate([40, 80, 120, 160, 200])]},
        "importance": {"method": "permutation", "metric": metric, "n_repeats": 5,
                       "features": [{"feature": f, "mean": round(0.2 / (i + 1), 6), "std": 0.01}
                                    for i, f in enumerate(features)]},
        "projection": {"method": "pca", "x": list(map(float, proj_x)),
                       "y": list(map(float, proj_y)), "label": labels,
                       "explained_variance": [0.61, 0.27]},
        "skipped": {},
    }
    if shap:
        evaluation["shap"] = {"features": [{"feature": f, "mean_abs": round(0.5 / (i + 1), 6)}
                                           for i, f in enumerate(features)], "n_rows": len(y)}
    else:
        evaluation["skipped"]["shap"] = "shap is not installed"
    return evaluation


def add_search_trials(run_dir: Path, n: int = 12) -> list[dict[str, Any]]:
    """Append ``n`` search-trial rows to leaderboard.csv as mlsmith.tune writes them (origin
    ``search:tpe``, ``trial``, ISO ``started`` / ``completed``); trial 5 is pruned."""
    from datetime import datetime, timedelta

    board = pd.read_csv(run_dir / "leaderboard.csv")
    metric = json.loads((run_dir / "metrics.json").read_text())["metric"]
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    rows = []
    for i in range(n):
        score = float(0.30 * np.exp(-0.25 * i) + rng.uniform(0, 0.05))
        # named apart from the fit's own trials, which may be hist_gradient_boosting_trial{i}
        rows.append({"model": f"hgb_tpe_trial{i}",
                     "family": "hist_gradient_boosting", "origin": "search:tpe",
                     "status": "ok" if i != 5 else "pruned",
                     f"cv_{metric}": score if i != 5 else np.nan,
                     f"cv_{metric}_std": 0.01, "params": json.dumps({"learning_rate": 0.1 + i}),
                     "trial": i, "started": (t0 + timedelta(seconds=0.5 * i)).isoformat(),
                     "completed": (t0 + timedelta(seconds=0.5 * i + 0.4)).isoformat()})
    board = pd.concat([board, pd.DataFrame(rows)], ignore_index=True)
    board.to_csv(run_dir / "leaderboard.csv", index=False)
    return rows


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1))


# --- a synthetic 50,000-row binary run ------------------------------------------------------------
def make_big_binary_run(path: Path, n_rows: int = 50_000, curve_points: int = 50_000) -> Path:
    """Every file of a binary run, by hand: hostile names, oversized curves and scatters."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    classes = ["no", HOSTILE_CLASS]
    names = [HOSTILE, "cost $ per $ unit"] + [f"feature_{i:02d}" for i in range(38)]
    n_test = n_rows // 5
    write_json(path / "config.json", {
        "target": "label", "time_limit": 600, "out": str(path), "metric": "roc_auc",
        "task": "binary", "test_size": 0.2, "seed": 0, "models": None, "folds": 5, "drop": [],
        "ensemble": True, "n_jobs": None, "source": "big.csv"})
    write_json(path / "schema.json", {
        "target": "label", "target_dtype": "str",
        "task": {"kind": "binary", "classes": classes, "reason": "two values",
                 "default_metric": "roc_auc"},
        "n_rows": n_rows,
        "columns": [{"name": nm, "role": "numeric", "dtype": "float64", "n_missing": 0,
                     "n_unique": n_rows, "categories": None, "numeric_codes": False,
                     "reason": "numbers"} for nm in names]})
    write_json(path / "metrics.json", {
        "metric": "roc_auc", "greater_is_better": True,
        "chosen": {"description": "best single model lightgbm_1",
                   "members": [{"model": "lightgbm_1", "family": "lightgbm",
                                "params": {"num_leaves": 31, HOSTILE: 1}, "weight": 1.0,
                                "fitted_on": "every training row"}], "cv_score": 0.91},
        "cv": {"roc_auc": 0.91, "accuracy": 0.85}, "test": {"roc_auc": 0.905, "accuracy": 0.84},
        "rows": {"loaded": n_rows, "missing_target_dropped": 0, "train": n_rows - n_test,
                 "test": n_test, "folds": 5},
        "timings_s": {"load": 1.0, "search": 500.0, "refit": 20.0, "save": 2.0},
        "notes": [f"column {HOSTILE!r} was renamed"]})
    fields = ["model", "family", "origin", "status", "cv_roc_auc", "cv_roc_auc_std",
              "train_roc_auc", "fit_time_s", "predict_time_s", "cv_time_s", "params", "note",
              "trial", "finished_s"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerow({"model": "lightgbm_1", "family": "lightgbm", "origin": "portfolio",
                "status": "ok", "cv_roc_auc": 0.91, "cv_roc_auc_std": 0.01, "params": "{}",
                "note": HOSTILE})
    for i in range(3000):
        w.writerow({"model": f"lightgbm_t{i}", "family": "lightgbm", "origin": "search",
                    "status": "ok", "cv_roc_auc": 0.8 + 0.1 * rng.random(), "trial": i,
                    "finished_s": 10 + 0.15 * i, "params": json.dumps({"num_leaves": i})})
    (path / "leaderboard.csv").write_text(buf.getvalue())
    y = (rng.random(n_rows) < 0.3).astype(np.int64)
    np.savez_compressed(path / "oof_predictions.npz", y=y[n_test:], fold=np.zeros(n_rows - n_test))
    p1 = np.clip(0.3 + 0.4 * (y[:n_test] - 0.3) + rng.normal(scale=0.2, size=n_test), 0, 1)
    np.savez_compressed(path / "test_predictions.npz", y=y[:n_test],
                        pred=np.stack([1 - p1, p1], axis=1))
    grid = np.linspace(0, 1, curve_points)
    big = rng.normal(size=n_rows)
    write_json(path / "audit.json", {
        "version": 1, "target": "label", "task": "binary", "n_rows": n_rows,
        "n_columns": len(names) + 1, "seconds": 3.0,
        "findings": [{"check": "identifier", "severity": "warning", "title": f"{HOSTILE} is an id",
                      "message": HOSTILE, "columns": [HOSTILE], "evidence": {HOSTILE: 1.0},
                      "fix": f"--drop {HOSTILE}", "applied": False}],
        "dropped_columns": [HOSTILE], "removed_rows": {}, "recommendations": {},
        "allowed": []})
    write_json(path / "evaluation.json", {
        "version": 1, "task": "binary", "classes": classes, "metric": "roc_auc",
        "test": {"n_rows": n_test, "n_boot": 1000, "ci": 0.95,
                 "metrics": {"roc_auc": {"value": 0.905, "low": 0.9, "high": 0.91,
                                         "greater_is_better": True}},
                 "per_class": [{"class": c, "precision": 0.8, "recall": 0.7, "f1": 0.75,
                                "support": n_test // 2} for c in classes],
                 "confusion_matrix": [[6000, 1000], [900, 2100]],
                 "threshold": {"objective": "f1", "value": 0.37, "score": 0.81,
                               "score_at_default": 0.78}},
        "cv_vs_test": [{"metric": "roc_auc", "cv": 0.91, "cv_std": 0.01, "test": 0.905,
                        "low": 0.9, "high": 0.91, "agree": True}],
        "curves": {
            "roc": [{"label": HOSTILE_CLASS, "fpr": grid.tolist(), "tpr": np.sqrt(grid).tolist(),
                     "auc": 0.905}],
            "pr": [{"label": HOSTILE_CLASS, "recall": grid[::-1].tolist(),
                    "precision": (0.3 + 0.7 * grid).tolist(), "ap": 0.8, "prevalence": 0.3}],
            "calibration": [{"label": HOSTILE_CLASS, "mean_predicted": grid.tolist(),
                             "fraction_positive": grid.tolist(), "count": [1] * curve_points}]},
        "bias_variance": {"models": [{"model": "lightgbm_1", "train": 0.99, "validation": 0.91}],
                          "verdict": "fine", "reason": "a gap of 0.08"},
        "learning_curve": {"metric": "roc_auc", "points": [
            {"n_train": int(n), "train": 0.99, "validation": 0.9, "validation_std": 0.01}
            for n in np.linspace(100, 40000, 2000)]},
        "importance": {"method": "permutation", "metric": "roc_auc", "n_repeats": 5,
                       "features": [{"feature": nm, "mean": 0.1 / (i + 1), "std": 0.01}
                                    for i, nm in enumerate(names)]},
        "projection": {"method": "pca", "x": big.tolist(), "y": rng.normal(size=n_rows).tolist(),
                       "label": [classes[int(v)] for v in (rng.random(n_rows) < 0.3)],
                       "explained_variance": [0.2, 0.1]},
        "skipped": {"shap": "shap is not installed"}})
    return path


# --- a synthetic run with a long search --------------------------------------------------------
#: the long run's chosen members: the portfolio's best and a trial ranked far below the top 25
LONG_CHOSEN = ("lightgbm_1", "lightgbm_trial77")


def long_params(i: int) -> dict[str, Any]:
    """Ten hyperparameters with full-precision floats, like an optuna trial's."""
    rng = np.random.default_rng(i)
    return {"bagging_fraction": float(rng.uniform(0.5, 1)), "extra_trees": bool(i % 2),
            "feature_fraction": float(rng.uniform(0.5, 1)),
            "lambda_l1": float(10 ** rng.uniform(-8, 1)), "lambda_l2": float(10 ** rng.uniform(-8, 1)),
            "learning_rate": float(10 ** rng.uniform(-2.5, -0.5)), "max_bin": 255,
            "min_data_in_leaf": int(rng.integers(2, 60)), "num_leaves": int(rng.integers(4, 256)),
            "objective": "multiclass"}


def make_long_search_run(path: Path, n_trials: int = 144, n_pruned: int = 40,
                         n_failed: int = 3) -> Path:
    """A run of ``n_trials + 6`` leaderboard rows (an ensemble, four portfolio configurations, a
    baseline and a search), every trial with ten long hyperparameters; ``n_pruned`` trials were
    pruned and ``n_failed`` failed. Only config, metrics, leaderboard and evaluation files."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(1)
    write_json(path / "config.json", {"target": "species", "task": "multiclass",
                                      "metric": "log_loss", "source": "long.csv", "seed": 0,
                                      "folds": 5, "test_size": 0.2, "time_limit": 600})
    members = [{"model": m, "family": "lightgbm", "params": long_params(k), "weight": w,
                "fitted_on": "every training row"}
               for k, (m, w) in enumerate(zip(LONG_CHOSEN, (0.6, 0.4), strict=True))]
    write_json(path / "metrics.json", {
        "metric": "log_loss", "greater_is_better": False,
        "chosen": {"description": f"weighted ensemble of {LONG_CHOSEN[0]} (0.6), "
                                  f"{LONG_CHOSEN[1]} (0.4)", "members": members,
                   "cv_score": 0.05},
        "cv": {"log_loss": 0.05}, "rows": {"loaded": 1000, "train": 800, "test": 200,
                                           "folds": 5},
        "timings_s": {"search": 100.0, "refit": 2.0}})
    fields = ["model", "family", "origin", "status", "cv_log_loss", "cv_log_loss_std",
              "train_log_loss", "fit_time_s", "predict_time_s", "params", "note", "trial"]
    rows: list[dict[str, Any]] = [
        {"model": "ensemble", "family": "ensemble", "origin": "ensemble", "status": "ok",
         "cv_log_loss": 0.05, "cv_log_loss_std": 0.01,
         "params": repr({LONG_CHOSEN[0]: 0.6, LONG_CHOSEN[1]: 0.4}),
         "note": "greedy ensemble selection; its CV score is slightly optimistic"},
        {"model": "constant_baseline", "family": "constant", "origin": "baseline",
         "status": "ok", "cv_log_loss": 1.05, "params": "{}", "note": "class priors"}]
    for k in range(4):  # portfolio: the first is among the best, the rest far down
        rows.append({"model": f"lightgbm_{k + 1}", "family": "lightgbm", "origin": "portfolio",
                     "status": "ok", "cv_log_loss": 0.0601 if k == 0 else 0.3 + 0.01 * k,
                     "cv_log_loss_std": 0.02, "train_log_loss": 0.01, "fit_time_s": 0.5,
                     "predict_time_s": 0.01, "params": json.dumps(long_params(k)), "note": ""})
    for i in range(n_trials):
        status = ("pruned" if i < n_pruned else "failed" if i < n_pruned + n_failed else "ok")
        score = 0.07 + 0.002 * i if status == "ok" else None
        if f"lightgbm_trial{i}" == LONG_CHOSEN[1]:
            assert status == "ok"
        rows.append({"model": f"lightgbm_trial{i}", "family": "lightgbm",
                     "origin": "search:tpe", "status": status, "cv_log_loss": score,
                     "cv_log_loss_std": 0.02 + 0.0001 * i if score else None,
                     "train_log_loss": 0.01 if score else None,
                     "fit_time_s": float(rng.uniform(0.1, 2)), "predict_time_s": 0.01,
                     "params": json.dumps(long_params(100 + i), sort_keys=True),
                     "note": {"pruned": "pruned after 2 of 5 folds",
                              "failed": "failed: out of memory"}.get(status, ""),
                     "trial": i})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    (path / "leaderboard.csv").write_text(buf.getvalue())
    bv = [{"model": r["model"], "train": r.get("train_log_loss"),
           "validation": r["cv_log_loss"]} for r in rows if r["cv_log_loss"] is not None]
    write_json(path / "evaluation.json", {
        "version": 1, "task": "multiclass", "classes": ["a", "b", "c"], "metric": "log_loss",
        "bias_variance": {"models": bv, "verdict": "fine", "reason": "a small gap",
                          "chosen": LONG_CHOSEN[0], "greater_is_better": False},
        "skipped": {}})
    return path


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def report_fits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two real fits, untouched (read-only for tests)."""
    import mlsmith

    root = tmp_path_factory.mktemp("report-fits")
    out = {}
    for name, data, target in (("penguins", "penguins.csv", "species"),
                               ("tips", "tips.csv", "tip")):
        run = mlsmith.fit(EXAMPLES / data, target=target, out=root / name, **FIT_KW)
        out[name] = Path(run.path)
    return out


@pytest.fixture(scope="session")
def full_runs(report_fits: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:
    """Copies of the fits with audit.json and evaluation.json; penguins has search trials."""
    root = tmp_path_factory.mktemp("report-full")
    out = {}
    for name, src in report_fits.items():
        dst = root / name
        shutil.copytree(src, dst)
        for stale in ("report.html", "model_card.md"):
            (dst / stale).unlink(missing_ok=True)
        write_json(dst / "audit.json", make_audit(dst))
        write_json(dst / "evaluation.json", make_evaluation(dst, shap=name == "penguins"))
        if name == "penguins":
            add_search_trials(dst)
        out[name] = dst
    return out


@pytest.fixture(scope="session")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_big_binary_run(tmp_path_factory.mktemp("report-big") / "big")


@pytest.fixture(scope="session")
def hostile() -> tuple[str, str]:
    """The hostile column name and class label planted in ``big_run``."""
    return HOSTILE, HOSTILE_CLASS


@pytest.fixture
def copy_of(tmp_path: Path):
    """Copy a session run directory into ``tmp_path`` so a test may change it."""

    def copy(src: Path) -> Path:
        dst = tmp_path / f"copy-{src.name}"
        shutil.copytree(src, dst)
        return dst

    return copy


@pytest.fixture(scope="session")
def long_search_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 leaderboard rows: a long search with long hyperparameters (no fit)."""
    return make_long_search_run(tmp_path_factory.mktemp("report-long") / "long")
