"""One benchmark run: fit one system on a training part and predict the test part.

Run by ``run_suite.py`` in a fresh process (under ``/usr/bin/time``), with the python of the
environment that holds the system::

    python benchmarks/_system.py SYSTEM TRAIN TEST TARGET TASK BUDGET SEED OUTFILE
    python benchmarks/_system.py --versions

TRAIN is a parquet file with the features and the target column; TEST a parquet file with the
features only. OUTFILE (parquet) receives one column per class, named by the class label as
text, holding probabilities (classification), or one column ``prediction`` (regression).
``OUTFILE.json`` receives timings: load_s, fit_budget_s, fit_s, predict_s.

The budget covers the whole process. The systems with a time limit of their own (mlsmith,
FLAML) get ``BUDGET - (seconds since the driver spawned this process) - margin``, where the
driver passes its spawn time in ``MLSMITH_BENCH_T0`` and the margin in
``MLSMITH_BENCH_MARGIN`` (seconds, for predicting, writing and exiting).

Only the standard library, numpy and pandas are imported at module level, so that this file
runs in every environment; each system imports its own library.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Spawn time when run by hand; the driver passes its own in MLSMITH_BENCH_T0.
_STARTED = time.time()

CLASSIFICATION = ("binary", "multiclass")
VERSION_PACKAGES = (
    "mlsmith",
    "scikit-learn",
    "lightgbm",
    "flaml",
    "xgboost",
    "pandas",
    "numpy",
    "pyarrow",
)


@dataclass
class Job:
    system: str
    train: Path
    test: Path
    target: str
    task: str
    budget: float
    seed: int
    outfile: Path

    @property
    def is_classification(self) -> bool:
        return self.task in CLASSIFICATION

    def fit_budget(self) -> float:
        """Seconds left for fitting: the budget less what was spent so far and the margin."""
        spawned = float(os.environ.get("MLSMITH_BENCH_T0", _STARTED))
        margin = float(os.environ.get("MLSMITH_BENCH_MARGIN", 2.0 + 0.02 * self.budget))
        return max(1.0, self.budget - (time.time() - spawned) - margin)


@dataclass
class Prediction:
    frame: pd.DataFrame
    fit_budget_s: float | None


# --------------------------------------------------------------------------- helpers


def _split_columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [
        c
        for c in X.columns
        if pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
    ]
    other = [c for c in X.columns if c not in numeric]
    return numeric, other


def _as_object(X: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Non-numeric columns as object dtype with np.nan for missing values (sklearn-friendly)."""
    X = X.copy()
    for c in columns:
        col = X[c].astype(object)
        X[c] = col.where(X[c].notna(), np.nan)
    return X


def _proba_frame(proba: Any, classes: Any) -> pd.DataFrame:
    frame = pd.DataFrame(np.asarray(proba, dtype=float), columns=[str(c) for c in classes])
    return frame


def _regression_frame(values: Any) -> pd.DataFrame:
    return pd.DataFrame({"prediction": np.asarray(values, dtype=float).reshape(-1)})


# --------------------------------------------------------------------------- systems


def _sklearn_pipeline(job: Job, X: pd.DataFrame, model: Any, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, RobustScaler

    numeric, other = _split_columns(X)
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", RobustScaler()))
    other_steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if other:
        transformers.append(("other", Pipeline(other_steps), other))
    prep = ColumnTransformer(transformers, remainder="drop")
    return Pipeline([("prep", prep), ("model", model)])


def _run_sklearn(job: Job, train: pd.DataFrame, test_X: pd.DataFrame, kind: str) -> Prediction:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    X = train.drop(columns=[job.target])
    y = train[job.target]
    _, other = _split_columns(X)
    X = _as_object(X, other)
    test_X = _as_object(test_X, other)
    model: Any
    if kind == "hgb":
        model = (
            HistGradientBoostingClassifier()
            if job.is_classification
            else HistGradientBoostingRegressor()
        )
    else:
        forest = RandomForestClassifier if job.is_classification else RandomForestRegressor
        model = forest(n_estimators=100, max_depth=10, random_state=42)
    pipe = _sklearn_pipeline(job, X, model, scale=(kind == "rf"))
    pipe.fit(X, y)
    if job.is_classification:
        return Prediction(_proba_frame(pipe.predict_proba(test_X), pipe.classes_), None)
    return Prediction(_regression_frame(pipe.predict(test_X)), None)


def run_hgb(job: Job, train: pd.DataFrame, test_X: pd.DataFrame) -> Prediction:
    return _run_sklearn(job, train, test_X, "hgb")


def run_rf(job: Job, train: pd.DataFrame, test_X: pd.DataFrame) -> Prediction:
    return _run_sklearn(job, train, test_X, "rf")


def run_flaml(job: Job, train: pd.DataFrame, test_X: pd.DataFrame) -> Prediction:
    from flaml import AutoML

    X = train.drop(columns=[job.target])
    y = train[job.target]
    metric = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[job.task]
    task = "classification" if job.is_classification else "regression"
    budget = job.fit_budget()
    automl = AutoML()
    automl.fit(X, y, task=task, time_budget=budget, metric=metric, seed=job.seed, verbose=0)
    if job.is_classification:
        return Prediction(_proba_frame(automl.predict_proba(test_X), automl.classes_), budget)
    return Prediction(_regression_frame(automl.predict(test_X)), budget)


def run_mlsmith(job: Job, train: pd.DataFrame, test_X: pd.DataFrame) -> Prediction:
    import mlsmith

    budget = job.fit_budget()
    with tempfile.TemporaryDirectory(prefix="mlsmith-bench-") as out:
        run = mlsmith.fit(
            train,
            target=job.target,
            time_limit=budget,
            task=job.task,
            seed=job.seed,
            test_size=0.0,
            quiet=True,
            out=out,
            # e.g. MLSMITH_BENCH_MODELS=neural measures one family alone (the neural benchmark)
            models=os.environ.get("MLSMITH_BENCH_MODELS") or None,
            # MLSMITH_BENCH_STRATEGY=none: the default portfolio alone (the search benchmark)
            strategy=os.environ.get("MLSMITH_BENCH_STRATEGY") or "tpe",
        )
        keep = os.environ.get("MLSMITH_BENCH_KEEP")
        if keep:  # the run's own record (timings, search summary, leaderboard) for later study
            import shutil

            dest = Path(keep) / job.outfile.stem
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.json", "leaderboard.csv", "audit.json", "manifest.json"):
                if (Path(out) / name).exists():
                    shutil.copy2(Path(out) / name, dest / name)
        if job.is_classification:
            proba = run.predict_proba(test_X)
            if not isinstance(proba, pd.DataFrame):
                raise TypeError(f"predict_proba returned {type(proba).__name__}, not a DataFrame")
            frame = _proba_frame(proba.to_numpy(), proba.columns)
        else:
            frame = _regression_frame(run.predict(test_X))
    return Prediction(frame, budget)


SYSTEMS: dict[str, Callable[[Job, pd.DataFrame, pd.DataFrame], Prediction]] = {
    "hgb": run_hgb,
    "rf": run_rf,
    "flaml": run_flaml,
    "mlsmith": run_mlsmith,
}


# --------------------------------------------------------------------------- entry points


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in VERSION_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    if found["mlsmith"] is None:  # run from a source tree without installing
        try:
            import mlsmith

            found["mlsmith"] = str(getattr(mlsmith, "__version__", "source tree"))
        except Exception:
            pass
    found["python"] = sys.version.split()[0]
    return found


def run(job: Job) -> None:
    train = pd.read_parquet(job.train)
    test_X = pd.read_parquet(job.test)
    loaded = time.time()
    prediction = SYSTEMS[job.system](job, train, test_X)
    fitted = time.time()
    if len(prediction.frame) != len(test_X):
        raise ValueError(f"{len(prediction.frame)} predictions for {len(test_X)} test rows")
    prediction.frame.to_parquet(job.outfile, index=False)
    spawned = float(os.environ.get("MLSMITH_BENCH_T0", _STARTED))
    meta = {
        "load_s": round(loaded - spawned, 3),
        "fit_budget_s": None
        if prediction.fit_budget_s is None
        else round(prediction.fit_budget_s, 3),
        "fit_predict_s": round(fitted - loaded, 3),
        "total_s": round(time.time() - spawned, 3),
    }
    Path(f"{job.outfile}.json").write_text(json.dumps(meta))


def main(argv: list[str]) -> int:
    if argv == ["--versions"]:
        print(json.dumps(versions()))
        return 0
    if len(argv) != 8 or argv[0] not in SYSTEMS:
        print(__doc__, file=sys.stderr)
        print(f"systems: {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    system, train, test, target, task, budget, seed, outfile = argv
    if task not in (*CLASSIFICATION, "regression"):
        print(f"unknown task {task!r}", file=sys.stderr)
        return 2
    run(
        Job(
            system=system,
            train=Path(train),
            test=Path(test),
            target=target,
            task=task,
            budget=float(budget),
            seed=int(seed),
            outfile=Path(outfile),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
