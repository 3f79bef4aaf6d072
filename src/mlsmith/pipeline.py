"""``fit``: the stages in order, under one deadline.

load -> schema + task -> split -> cross-validated portfolio -> ensemble -> refit -> test -> save
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.errors import ConfigError, TargetError

__all__ = ["FitConfig", "fit"]

log = logging.getLogger("mlsmith")

#: seconds kept back for writing the run directory, on top of a share of the budget
SAVE_RESERVE_S = 1.0
SAVE_RESERVE_SHARE = 0.02
#: seconds to start a fresh worker process and load the data into it
WORKER_START_S = 3.0


@dataclass
class FitConfig:
    """Everything that decides a fit. Stored as ``config.json`` in the run directory."""

    target: str
    time_limit: float = 120.0
    out: str | None = None
    metric: str | None = None
    task: str | None = None
    test_size: float = 0.2
    seed: int = 0
    models: list[str] | None = None
    folds: int = 5
    drop: list[str] = field(default_factory=list)
    ensemble: bool = True
    n_jobs: int | None = None
    source: str = ""

    def validate(self) -> None:
        if not isinstance(self.time_limit, (int, float)) or not math.isfinite(self.time_limit) \
                or self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be a positive number of seconds: got {self.time_limit}.")
        if not 0.0 <= float(self.test_size) < 1.0:
            raise ConfigError(f"--test-size must be in [0, 1): got {self.test_size}.")
        if int(self.folds) < 2:
            raise ConfigError(f"--folds must be at least 2: got {self.folds}.")
        if self.task is not None:
            from mlsmith.schema import TASKS

            if self.task not in TASKS:
                from mlsmith.errors import did_you_mean

                raise ConfigError(f"unknown --task {self.task!r}: use one of {', '.join(TASKS)}."
                                  + did_you_mean(self.task, TASKS))
        if self.metric is not None:
            from mlsmith.metrics import get_metric

            get_metric(self.metric, self.task)
        if self.models:
            from mlsmith.models import get_family

            for m in self.models:
                get_family(m)


#: seconds per (row x feature x class) for one boosted-tree fit on one core, measured on the
#: public suite (HistGradientBoosting on `letter`: 4.4 s for 15,000 x 16 x 26)
FIT_SECONDS_PER_UNIT = 1e-6


def choose_folds(requested: int, n_rows: int, n_features: int, n_classes: int,
                 time_limit: float, parallel: int = 1) -> int:
    """Fewer folds when a boosted-tree fit is expensive against the budget.

    The portfolio should afford about five candidates with k folds each within 60% of the
    budget; k falls from the requested count to 3, then 2, until it does.
    """
    units = n_rows * max(n_features, 1) * (n_classes if n_classes > 2 else 1)
    fit_s = FIT_SECONDS_PER_UNIT * units
    for k in sorted({requested, 3, 2}, reverse=True):
        if k > requested:
            continue
        if 5 * k * fit_s / max(parallel, 1) <= 0.6 * time_limit:
            return k
    return min(requested, 2)


def _default_out(source: Any) -> Path:
    stem = "fit"
    if isinstance(source, (str, os.PathLike)):
        name = Path(source).name
        for suffix in (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".parquet", ".pq"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        stem = name or "fit"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _warn(sink: Any, notes: list[str], message: str) -> None:
    notes.append(message)
    log.warning(message)
    sink("warning", {"message": message})


def fit(data: Any, target: str, *, time_limit: float = 120.0, out: str | os.PathLike[str] | None = None,
        metric: str | None = None, task: str | None = None, test_size: float = 0.2, seed: int = 0,
        models: list[str] | str | None = None, folds: int = 5, drop: list[str] | None = None,
        ensemble: bool = True, n_jobs: int | None = None, quiet: bool = False,
        progress: Any = None) -> Any:
    """Fit the best model for ``target`` within ``time_limit`` seconds and save the run.

    Parameters
    ----------
    data : path or DataFrame
        A ``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet`` file, or a pandas / polars DataFrame or
        pyarrow Table.
    target : str
        The column to predict.
    time_limit : float
        Seconds for the whole fit, from loading to the saved run directory.
    out : path, optional
        The run directory (default ``runs/<data name>-<timestamp>``).
    metric, task, test_size, seed, models, folds, drop, ensemble, n_jobs
        See ``mlsmith fit --help``; ``test_size=0`` holds out no test set.
    quiet : bool
        No progress output.
    progress : callable, optional
        A sink ``f(event, data)`` receiving progress events instead of the console display.

    Returns
    -------
    Run

    Examples
    --------
    >>> import mlsmith  # doctest: +SKIP
    >>> run = mlsmith.fit("examples/penguins.csv", target="species", time_limit=30)  # doctest: +SKIP
    >>> run.leaderboard().head()  # doctest: +SKIP
    """
    from mlsmith.progress import console_sink

    t0 = time.time()
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    config = FitConfig(target=target, time_limit=time_limit, out=None if out is None else str(out),
                       metric=metric, task=task, test_size=test_size, seed=seed, models=models,
                       folds=folds, drop=list(drop or []), ensemble=ensemble, n_jobs=n_jobs,
                       source=str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__)
    config.validate()
    sink = progress if progress is not None else console_sink(quiet)
    try:
        return _fit(data, config, t0, sink)
    finally:
        if hasattr(sink, "close"):
            sink.close()


def _fit(data: Any, config: FitConfig, t0: float, sink: Any) -> Any:
    import joblib

    from mlsmith.data import load_table
    from mlsmith.metrics import compute_all, default_metric, get_metric, score
    from mlsmith.models import families_for
    from mlsmith.preprocess import prepare_features
    from mlsmith.run import RunWriter, check_destination
    from mlsmith.run._run import Run
    from mlsmith.schema import coerce_frame, infer_schema
    from mlsmith.select import (
        Budget,
        FittedModel,
        choose_final,
        leaderboard_rows,
        plan_candidates,
        run_portfolio,
    )
    from mlsmith.select._ensemble import blend
    from mlsmith.select._pool import TaskFailed, TaskTimeout, Worker
    from mlsmith.split import holdout_split, make_folds

    budget = Budget(config.time_limit, start=t0)
    out = Path(config.out) if config.out else _default_out(data)
    check_destination(out)
    notes: list[str] = []
    timings: dict[str, float] = {}
    sink("start", {"time_limit": config.time_limit, "t0": t0, "out": str(out)})

    writer = RunWriter(out)
    worker = Worker(writer.path("scratch"))
    try:
        worker.start()  # imports overlap with loading
        # --- load ------------------------------------------------------------------------------
        sink("stage", {"stage": "load"})
        df = load_table(data)
        if config.target not in df.columns:
            from mlsmith.errors import ColumnNotFoundError, did_you_mean

            raise ColumnNotFoundError(f"target column {config.target!r} not found."
                                      + did_you_mean(config.target, df.columns)
                                      + f" The table has {len(df.columns)} columns.")
        n_loaded = len(df)
        y_raw = df[config.target]
        if y_raw.isna().all():
            raise TargetError(f"the target column {config.target!r} has no values: every row is missing.")
        n_missing_target = int(y_raw.isna().sum())
        if n_missing_target:
            _warn(sink, notes, f"{n_missing_target} rows with a missing target were dropped")
            df = df.loc[y_raw.notna()]  # the index keeps the original row numbers for errors
            y_kept = df[config.target]
            if pd.api.types.is_float_dtype(y_kept.dtype) and np.all(np.isfinite(y_kept)) \
                    and bool((y_kept % 1 == 0).all()):
                # pandas stored whole-number labels as floats only because of the missing cells
                df[config.target] = y_kept.astype(np.int64)
        df, coerce_notes = coerce_frame(df, exclude=(config.target,))
        for n in coerce_notes:
            _warn(sink, notes, n)
        timings["load"] = time.time() - t0

        # --- schema + task -----------------------------------------------------------------------
        sink("stage", {"stage": "schema"})
        schema, schema_notes = infer_schema(df, config.target, task=config.task,
                                            drop=tuple(config.drop))
        for n in schema_notes:
            _warn(sink, notes, n)
        kind = schema.task.kind
        metric = config.metric or default_metric(kind)
        get_metric(metric, kind)
        X_all = prepare_features(df, schema, where="the training data", warn_extra=False)
        if kind == "regression":
            y_all = pd.to_numeric(df[config.target], errors="coerce").to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(y_all)):
                raise TargetError(f"the target {config.target!r} holds infinite or non-numeric "
                                  f"values: fix them or drop those rows.")
        else:
            lookup = {v: i for i, v in enumerate(schema.task.classes)}
            y_all = df[config.target].map(lookup).to_numpy(dtype=np.int64)
        schema.n_rows = len(df)
        log.info("task %s (%s), metric %s", kind, schema.task.reason, metric)
        sink("stage", {"stage": "split", "detail": f"{kind}, metric {metric}"})

        # --- split ------------------------------------------------------------------------------
        classification = kind != "regression"
        train_idx, test_idx = holdout_split(y_all, classification, config.test_size, config.seed)
        n_jobs = config.n_jobs or os.cpu_count() or 1
        n_folds = choose_folds(int(config.folds), len(train_idx), len(schema.features),
                               len(schema.task.classes), config.time_limit, n_jobs)
        if len(train_idx) < 2 * n_folds and len(train_idx) >= 4 and n_folds == config.folds == 5:
            n_folds = max(2, len(train_idx) // 2)
        folds = make_folds(y_all[train_idx], classification, n_folds, config.seed)
        X_train, y_train = X_all.iloc[train_idx].reset_index(drop=True), y_all[train_idx]
        X_test, y_test = X_all.iloc[test_idx].reset_index(drop=True), y_all[test_idx]
        n_classes = len(schema.task.classes)
        data_path = str(writer.path("scratch/data.joblib"))
        joblib.dump({"schema": schema, "X": X_train, "y": y_train, "folds": folds,
                     "X_test": X_test, "y_test": y_test}, data_path)
        timings["prepare"] = time.time() - t0 - timings["load"]

        # --- search -----------------------------------------------------------------------------
        sink("stage", {"stage": "search", "detail": f"{n_folds}-fold CV"})
        families = families_for(kind, config.models)
        fam_map = {f.name: f for f in families}
        candidates = plan_candidates(families, kind)
        save_reserve = SAVE_RESERVE_S + SAVE_RESERVE_SHARE * config.time_limit
        fold_share = len(train_idx) / max(np.mean([len(tr) for tr, _ in folds]), 1)

        def refit_one(r: Any) -> float:
            if r.candidate.family == "constant":
                return 0.0
            return r.fit_time * fold_share * 1.2 + r.predict_time * 0.5 + 0.2

        def has_bag(r: Any) -> bool:
            return r.bag_generation == worker.generation and worker.alive()

        def refit_seconds(results: list[Any], ids: list[str]) -> float:
            """The cheapest way to ship ``ids``: a bag of fold models where one is kept."""
            by_id = {r.candidate.model_id: r for r in results}
            return sum(0.3 if has_bag(by_id[i]) else refit_one(by_id[i]) for i in ids)

        def reserve(results: list[Any], full: bool = True) -> float:
            """Time kept back from the search for the final model and saving.

            ``full``: enough to refit the best model in a freshly started worker (the time a
            killed candidate must leave). Otherwise enough to refit it when that is
            affordable, else to ship its kept fold models as a bag.
            """
            ok = [r for r in results if r.status == "ok" and r.candidate.family != "constant"]
            if not ok:
                return save_reserve + (WORKER_START_S if full else 0.0)
            best = max(ok, key=lambda r: r.cv_mean)
            refit = refit_one(best) * 1.2
            if full:
                return save_reserve + 1.0 + WORKER_START_S + refit
            if has_bag(best) and n_folds >= 4:
                # a bag of 4+ fold models is nearly as good as a refit: keep less back
                refit = min(refit, 0.2 * config.time_limit)
            return save_reserve + 1.0 + refit

        def on_event(event: str, payload: dict[str, Any]) -> None:
            payload["metric"] = metric
            payload["sign"] = 1.0 if get_metric(metric).greater_is_better else -1.0
            sink(event, payload)

        results = run_portfolio(candidates, fam_map, worker, data_path, y_train, folds, kind,
                                n_classes, metric, config.seed, n_jobs, budget, reserve, on_event)
        timings["search"] = time.time() - t0 - sum(timings.values())

        # --- ensemble + refit ---------------------------------------------------------------------
        sink("stage", {"stage": "refit"})
        by_id = {r.candidate.model_id: r for r in results}
        available = budget.remaining() - save_reserve
        weights, cv_score, description = choose_final(
            results, y_train, metric, lambda ids: refit_seconds(results, ids), available,
            ensemble=config.ensemble)
        model_path = writer.path("model.joblib")
        test_pred = None
        model = None
        attempts: list[tuple[dict[str, float], float, str]] = [(weights, cv_score, description)]
        ok_sorted = sorted((r for r in results if r.status == "ok"
                            and r.candidate.family != "constant"), key=lambda r: -r.cv_mean)
        for r in ok_sorted[:1] + [r for r in ok_sorted if r.candidate.family == "linear"][:1]:
            w = {r.candidate.model_id: 1.0}
            if all(w != a[0] for a in attempts):
                attempts.append((w, r.cv_mean, f"best single model {r.candidate.model_id}"
                                 if r is ok_sorted[0] else f"fallback {r.candidate.model_id}"))
        refitted = False
        ship_modes: dict[str, str] = {}
        for i, (w, s_cv, desc) in enumerate(attempts):
            if any(by_id[m].candidate.family == "constant" for m in w):
                break
            available = budget.remaining() - save_reserve
            last = i == len(attempts) - 1
            if refit_seconds(results, list(w)) > available and not last:
                continue
            # refit members on every row while the time allows, heaviest weight first;
            # ship the rest as bags of their fold models
            members = []
            spent = 0.0
            for mid, wt in sorted(w.items(), key=lambda kv: -kv[1]):
                r = by_id[mid]
                mode = "refit"
                # members refit side by side, one per core
                if has_bag(r) and spent + refit_one(r) / n_jobs > 0.8 * available:
                    mode = "bag"
                else:
                    spent += refit_one(r) / n_jobs
                members.append((mid, r.candidate.family, r.candidate.params, wt, mode))
            try:
                res = worker.run({"kind": "refit", "data_path": data_path, "members": members,
                                  "seed": config.seed, "n_jobs": 1, "parallel": n_jobs,
                                  "model_path": str(model_path),
                                  "deadline": budget.clock() + max(available, 0.5) * 0.9},
                                 timeout=max(available, 1.0))
                test_pred = res.get("test_pred")
                weights, cv_score, description = w, s_cv, desc
                ship_modes = res.get("modes", {})
                refitted = True
                break
            except (TaskTimeout, TaskFailed) as exc:
                _warn(sink, notes, f"refit of {desc} did not finish ({exc})")
        if not refitted:
            weights, description = {"constant_baseline": 1.0}, "constant baseline (fallback)"
            cv_score = score(metric, y_train, by_id["constant_baseline"].oof)
        if "constant_baseline" in weights:
            from sklearn.dummy import DummyClassifier, DummyRegressor

            dummy = DummyRegressor() if kind == "regression" else DummyClassifier(strategy="prior")
            dummy.fit(np.zeros((len(y_train), 1)), y_train)
            model = FittedModel(kind, schema.task.classes, [("constant_baseline", dummy, 1.0)])
            joblib.dump(model, model_path)
            if len(test_idx):
                test_pred = model.predict_encoded(np.zeros((len(test_idx), 1)))
        worker.close()
        timings["refit"] = time.time() - t0 - sum(timings.values())

        # --- evaluate ---------------------------------------------------------------------------
        sink("stage", {"stage": "evaluate"})
        m = get_metric(metric)
        oof_blend = blend([by_id[k].oof for k in weights], list(weights.values()))
        cv_score = score(metric, y_train, oof_blend)
        cv_metrics = compute_all(kind, y_train, oof_blend)
        test_metrics = compute_all(kind, y_test, test_pred) if test_pred is not None and len(test_idx) else {}
        chosen = {"description": description,
                  "members": [{"model": k, "family": by_id[k].candidate.family,
                               "params": by_id[k].candidate.params, "weight": round(w, 6),
                               "fitted_on": ("every training row" if ship_modes.get(k, "refit") == "refit"
                                             else f"bag of {n_folds} fold models")}
                              for k, w in sorted(weights.items(), key=lambda kv: -kv[1])],
                  "cv_score": cv_score if m.greater_is_better else -cv_score}

        # --- save -------------------------------------------------------------------------------
        sink("stage", {"stage": "save"})
        board = pd.DataFrame(leaderboard_rows(results, metric, len(y_train)))
        if len(weights) > 1:
            sign = 1.0 if m.greater_is_better else -1.0
            fold_scores = [sign * score(metric, y_train[va], oof_blend[va]) for _, va in folds]
            ens_row = {c: np.nan for c in board.columns}
            ens_row.update(model="ensemble", family="ensemble", origin="ensemble", status="ok",
                           **{f"cv_{m.name}": float(np.mean(fold_scores)),
                              f"cv_{m.name}_std": float(np.std(fold_scores))},
                           params=str({k: round(v, 3) for k, v in weights.items()}),
                           note="greedy ensemble selection; its CV score is slightly optimistic")
            board = pd.concat([pd.DataFrame([ens_row]), board], ignore_index=True)
        buf = io.StringIO()
        board.to_csv(buf, index=False)
        writer.write_text("leaderboard.csv", buf.getvalue())
        fold_of_row = np.zeros(len(y_train), dtype=np.int64)
        for i, (_, va) in enumerate(folds):
            fold_of_row[va] = i
        oof = {"y": y_train, "fold": fold_of_row}
        for r in results:
            if r.oof is not None:
                oof[f"model__{r.candidate.model_id}"] = r.oof
        oof_buf = io.BytesIO()
        np.savez_compressed(oof_buf, **oof)
        writer.write_bytes("oof_predictions.npz", oof_buf.getvalue())
        split_buf = io.BytesIO()
        np.savez_compressed(split_buf, train_index=train_idx, test_index=test_idx)
        writer.write_bytes("splits.npz", split_buf.getvalue())
        writer.write_json("schema.json", schema.to_dict())
        cfg = asdict(config)
        cfg.update(metric=metric, task=kind, folds=n_folds, out=str(out))
        writer.write_json("config.json", cfg)
        elapsed = time.time() - t0
        timings["save"] = elapsed - sum(timings.values())
        metrics_doc = {
            "metric": metric,
            "greater_is_better": m.greater_is_better,
            "chosen": chosen,
            "cv": cv_metrics,
            "test": test_metrics,
            "rows": {"loaded": n_loaded, "missing_target_dropped": n_missing_target,
                     "train": int(len(train_idx)), "test": int(len(test_idx)), "folds": n_folds},
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "notes": notes,
        }
        writer.write_json("metrics.json", metrics_doc)
        path = writer.commit(cfg, extra={"elapsed_s": round(time.time() - t0, 3),
                                         "time_limit_s": config.time_limit})
        sink("done", {"elapsed": time.time() - t0, "chosen": description, "out": str(path)})
        from mlsmith.run import read_manifest

        run = Run(path, read_manifest(path))
        if model is not None:
            run._model = model
        return run
    except BaseException:
        worker.kill()
        writer.abort()
        raise
    finally:
        worker.kill()
