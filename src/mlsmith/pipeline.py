"""``fit``: the stages in order, under one deadline.

load -> schema + task -> split -> cross-validated portfolio -> ensemble -> refit -> test -> save
"""

from __future__ import annotations

import io
import json
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
#: the budget of a fit given only a number of trials: no deadline is ever reached
NO_TIME_LIMIT_S = 1e6
#: search strategies after the default portfolio ("none": the portfolio alone)
STRATEGIES = ("tpe", "random", "grid", "none")


@dataclass
class FitConfig:
    """Everything that decides a fit. Stored as ``config.json`` in the run directory."""

    target: str
    time_limit: float | None = 120.0
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
    strategy: str = "tpe"
    trials: int | None = None
    jobs: int = 1
    storage: str | None = None
    tracking_uri: str | None = None
    track: bool | None = None
    allow: list[str] = field(default_factory=list)
    time_column: str | None = None
    report: bool = True
    backend: str = "optuna"
    ray_address: str | None = None
    patience: int | None = None

    @property
    def budget_seconds(self) -> float:
        """The time budget; with a trial count and no time limit, practically none."""
        return NO_TIME_LIMIT_S if self.time_limit is None else float(self.time_limit)

    def validate(self) -> None:
        if self.time_limit is None and self.trials is None:
            raise ConfigError("give a --time-limit, a number of --trials, or both.")
        if self.time_limit is not None and (
                not isinstance(self.time_limit, (int, float)) or not math.isfinite(self.time_limit)
                or self.time_limit <= 0):
            raise ConfigError(f"--time-limit must be a positive number of seconds: got {self.time_limit}.")
        if self.strategy not in STRATEGIES:
            from mlsmith.errors import did_you_mean

            raise ConfigError(f"unknown --strategy {self.strategy!r}: use one of "
                              f"{', '.join(STRATEGIES)}." + did_you_mean(self.strategy, STRATEGIES))
        if self.trials is not None and (not isinstance(self.trials, int) or self.trials < 0):
            raise ConfigError(f"--trials must be a whole number of search trials, 0 or more: "
                              f"got {self.trials}.")
        if self.backend not in ("optuna", "ray"):
            raise ConfigError(f"unknown --backend {self.backend!r}: use optuna or ray.")
        if self.backend == "ray" and self.storage:
            raise ConfigError("--storage applies to the optuna backend; Ray keeps its own trial "
                              "state: drop --storage or use --backend optuna.")
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1: got {self.jobs}.")
        if self.patience is not None and (not isinstance(self.patience, int)
                                          or self.patience < 0):
            raise ConfigError(f"--patience must be a whole number of trials, 0 (never stop "
                              f"early) or more: got {self.patience}.")
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


_UNSET: Any = object()


def fit(data: Any, target: str, *, time_limit: float | None = _UNSET,
        out: str | os.PathLike[str] | None = None,
        metric: str | None = None, task: str | None = None, test_size: float = 0.2, seed: int = 0,
        models: list[str] | str | None = None, folds: int = 5, drop: list[str] | None = None,
        ensemble: bool = True, n_jobs: int | None = None, strategy: str = "tpe",
        trials: int | None = None, jobs: int = 1, storage: str | None = None,
        tracking_uri: str | None = None, track: bool | None = None,
        allow: list[str] | None = None, time_column: str | None = None, report: bool = True,
        backend: str = "optuna", ray_address: str | None = None,
        patience: int | None = None, quiet: bool = False, progress: Any = None) -> Any:
    """Fit the best model for ``target`` within ``time_limit`` seconds and save the run.

    Parameters
    ----------
    data : path or DataFrame
        A ``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet`` file, or a pandas / polars DataFrame or
        pyarrow Table.
    target : str
        The column to predict.
    time_limit : float or None
        Seconds for the whole fit, from loading to the saved run directory (default 120, or no
        limit when ``trials`` is given: then the fit runs the whole portfolio and ``trials``
        search trials, and two fits with the same seed give identical predictions).
    out : path, optional
        The run directory (default ``runs/<data name>-<timestamp>``).
    metric, task, test_size, seed, models, folds, drop, ensemble, n_jobs
        See ``mlsmith fit --help``; ``test_size=0`` holds out no test set.
    strategy : {"tpe", "random", "grid", "none"}
        The search after the default portfolio ("none": the portfolio alone).
    trials, jobs, storage
        Number of search trials (default: as many as the time allows), trials run side by side
        in separate processes, and the study store (default: a journal file in the run
        directory; ``postgresql://...`` to share the study with ``mlsmith worker`` processes).
    tracking_uri, track
        MLflow tracking (default: a SQLite file in the run directory when MLflow is installed;
        ``track=False`` turns it off).
    patience
        Stop the search once this many trials in a row brought no gain above 0.1% of the best
        score's error (default 200 against a time limit, none with ``trials``; 0: never).
    backend, ray_address
        Where search trials run: ``"optuna"`` (default; this machine, or every machine sharing
        ``storage``) or ``"ray"`` (Ray Tune trials with ASHA on a local Ray instance, or the
        cluster at ``ray_address``; needs the ``scale`` extra).
    allow, time_column, report
        Audit checks whose errors only warn; a column ordering the rows in time (the split and
        the folds then follow time); whether to write report.html and model_card.md.
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
    if time_limit is _UNSET:
        time_limit = None if trials is not None else 120.0
    config = FitConfig(target=target, time_limit=time_limit, out=None if out is None else str(out),
                       metric=metric, task=task, test_size=test_size, seed=seed, models=models,
                       folds=folds, drop=list(drop or []), ensemble=ensemble, n_jobs=n_jobs,
                       source=str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__,
                       strategy=strategy, trials=trials, jobs=jobs, storage=storage,
                       tracking_uri=tracking_uri, track=track, allow=list(allow or []),
                       time_column=time_column, report=report, backend=backend,
                       ray_address=ray_address, patience=patience)
    config.validate()
    sink = progress if progress is not None else console_sink(quiet)
    try:
        return _fit(data, config, t0, sink)
    finally:
        if hasattr(sink, "close"):
            sink.close()


def _fault(point: str) -> None:
    """Fault injection for the crash tests: ``MLSMITH_FAULT=<point>`` kills the fit here."""
    if os.environ.get("MLSMITH_FAULT") == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _fingerprint(data: Any, config: FitConfig) -> dict[str, Any]:
    """What must match for a fit to resume an interrupted one: the configuration and the data."""
    cfg = asdict(config)
    for k in ("out", "n_jobs"):
        cfg.pop(k, None)
    if isinstance(data, (str, os.PathLike)):
        p = Path(data)
        try:
            st = p.stat()
            ident: Any = {"path": str(p.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        except OSError:
            ident = {"path": str(p)}
    else:
        try:
            frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
            ident = {"frame": int(pd.util.hash_pandas_object(frame, index=False).sum()),
                     "shape": list(frame.shape), "columns": [str(c) for c in frame.columns]}
        except Exception:  # noqa: BLE001 - an exotic frame: never resume from it
            ident = {"object": id(data)}
    return {"config": cfg, "data": ident, "format": 1}


@dataclass
class FitState:
    """What the stages of one fit share. Each stage reads what earlier ones recorded here."""

    config: FitConfig
    out: Path
    writer: Any
    worker: Any
    budget: Any
    sink: Any
    t0: float
    spent_before: float = 0.0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # load / schema
    df: Any = None
    n_loaded: int = 0
    n_missing_target: int = 0
    schema: Any = None
    kind: str = ""
    metric: str = ""
    X_all: Any = None
    y_all: Any = None
    audit: Any = None
    #: rows of the training part that have out-of-fold predictions (time folds leave the
    #: earliest block unvalidated); None when every row has one
    oof_mask: Any = None
    # split
    train_idx: Any = None
    test_idx: Any = None
    folds: Any = None
    n_folds: int = 0
    X_train: Any = None
    y_train: Any = None
    X_test: Any = None
    y_test: Any = None
    data_path: str = ""
    n_jobs: int = 1
    # search / final model
    results: list[Any] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    cv_score: float = float("nan")
    description: str = ""
    ship_modes: dict[str, str] = field(default_factory=dict)
    test_pred: Any = None
    model: Any = None
    # evaluate
    oof_blend: Any = None
    cv_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, Any] | None = None
    board: Any = None
    search: dict[str, Any] | None = None
    overhead: dict[str, float] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    tracker: Any = None

    def warn(self, message: str) -> None:
        _warn(self.sink, self.notes, message)

    def stage(self, name: str, detail: str | None = None) -> None:
        self.checkpoint()
        self.sink("stage", {"stage": name, **({"detail": detail} if detail else {})})

    def mark(self, name: str) -> None:
        """Close the timing of stage ``name``."""
        self.timings[name] = time.time() - self.t0 - sum(self.timings.values())

    def checkpoint(self) -> None:
        """Remember the time used so far, so a resumed fit counts it against the budget."""
        self.writer.record_spent(self.spent_before + time.time() - self.t0)

    @property
    def by_id(self) -> dict[str, Any]:
        return {r.candidate.model_id: r for r in self.results}


def _make_tracker(config: FitConfig, out: Path) -> Any:
    """The MLflow tracker: asked for explicitly (may fail at once), or by default when MLflow is
    installed (``MLSMITH_TRACKING=0`` or ``track=False`` turns it off)."""
    if config.track is False:
        return None
    from mlsmith.track import FitTracker, tracking_available

    if config.tracking_uri or config.track:
        tracker = FitTracker(out, tracking_uri=config.tracking_uri)
        tracker.check_connection()
        return tracker
    if os.environ.get("MLSMITH_TRACKING", "1") == "0" or not tracking_available():
        return None
    return FitTracker(out)


def _add_epoch_curves(state: FitState, path: Path, trials: list[dict[str, Any]]) -> None:
    """Give the search's network trials their per-epoch curves (from the study journal), so
    MLflow shows them by step."""
    journal = path / "study" / "journal.log"
    if not state.search or "neural" not in state.search["families"] or not journal.exists():
        return
    from mlsmith.tune import epoch_curves

    try:
        curves = epoch_curves(journal, state.search["study"])
    except Exception as exc:  # noqa: BLE001 - tracking never costs the user the fitted run
        log.debug("no epoch curves for tracking: %s", exc)
        return
    for trial in trials:
        if trial["model"] in curves:
            trial["curves"] = curves[trial["model"]]


def _log_tracking(state: FitState, path: Path, cfg: dict[str, Any]) -> None:
    """Log the fit to MLflow in a background process; wait for it while the budget allows."""
    from mlsmith.metrics import get_metric
    from mlsmith.track import trials_from_results

    tracker = state.tracker
    try:
        trials = trials_from_results(state.results, get_metric(state.metric).greater_is_better)
        _add_epoch_curves(state, path, trials)
        job = tracker.log_fit_async(
            cfg, trials,
            final=state.chosen, metrics={"cv": state.cv_metrics, "test": state.test_metrics},
            model=path / "model.joblib", schema=state.schema, task=state.kind,
            classes=state.schema.task.classes,
            input_example=state.df.drop(columns=[state.config.target]).head(5),
            start_time=state.t0 - state.spent_before, end_time=time.time())
    except Exception as exc:  # noqa: BLE001 - tracking never costs the user the fitted run
        state.warn(f"MLflow tracking failed: {exc}")
        return
    left = state.budget.remaining() - 0.5
    if job.wait(timeout=max(0.0, left)) is None:
        log.info("MLflow logging goes on in the background (process %s)", job.pid)


def _fit(data: Any, config: FitConfig, t0: float, sink: Any) -> Any:
    from mlsmith.errors import MlsmithError
    from mlsmith.run import RunWriter, check_destination
    from mlsmith.select import Budget
    from mlsmith.select._pool import Worker

    out = Path(config.out) if config.out else _default_out(data)
    check_destination(out)
    writer = RunWriter(out, fingerprint=_fingerprint(data, config))
    spent_before = writer.spent() if writer.resumed else 0.0
    budget = Budget(config.budget_seconds, start=t0 - spent_before)
    sink("start", {"time_limit": config.budget_seconds, "t0": t0 - spent_before, "out": str(out)})
    tracker = _make_tracker(config, out)
    worker = Worker(writer.path("scratch"))
    state = FitState(config=config, out=out, writer=writer, worker=worker, budget=budget,
                     sink=sink, t0=t0, spent_before=spent_before, tracker=tracker)
    if writer.resumed:
        state.warn(f"resuming an interrupted fit to {out}: {spent_before:.1f}s already spent")
    try:
        worker.start()  # imports overlap with loading
        stage_load(state, data)
        stage_schema(state)
        stage_audit(state)
        stage_split(state)
        stage_search(state)
        stage_tune(state)
        stage_final(state)
        stage_evaluate(state)
        return stage_save(state)
    except MlsmithError:
        # a user error: nothing is left behind
        worker.kill()
        writer.abort()
        raise
    except BaseException:
        # a crash or Ctrl-C: the staging folder stays, and the same command resumes from it
        worker.kill()
        try:
            state.checkpoint()
        except OSError:
            pass
        raise
    finally:
        worker.kill()


def stage_load(state: FitState, data: Any) -> None:
    """Read the table, check the target, drop rows without one, coerce column types."""
    from mlsmith.data import load_table
    from mlsmith.schema import coerce_frame

    config = state.config
    state.stage("load")
    _fault("load")
    df = load_table(data)
    if config.target not in df.columns:
        from mlsmith.errors import ColumnNotFoundError, did_you_mean

        raise ColumnNotFoundError(f"target column {config.target!r} not found."
                                  + did_you_mean(config.target, df.columns)
                                  + f" The table has {len(df.columns)} columns.")
    state.n_loaded = len(df)
    y_raw = df[config.target]
    if y_raw.isna().all():
        raise TargetError(f"the target column {config.target!r} has no values: every row is missing.")
    state.n_missing_target = int(y_raw.isna().sum())
    if state.n_missing_target:
        state.warn(f"{state.n_missing_target} rows with a missing target were dropped")
        df = df.loc[y_raw.notna()]  # the index keeps the original row numbers for errors
        y_kept = df[config.target]
        if pd.api.types.is_float_dtype(y_kept.dtype) and np.all(np.isfinite(y_kept)) \
                and bool((y_kept % 1 == 0).all()):
            # pandas stored whole-number labels as floats only because of the missing cells
            df[config.target] = y_kept.astype(np.int64)
    df, coerce_notes = coerce_frame(df, exclude=(config.target,))
    for n in coerce_notes:
        state.warn(n)
    state.df = df
    state.mark("load")


def stage_schema(state: FitState) -> None:
    """Column roles, the task and its metric."""
    from mlsmith.metrics import default_metric, get_metric
    from mlsmith.schema import infer_schema

    config, df = state.config, state.df
    state.stage("schema")
    schema, schema_notes = infer_schema(df, config.target, task=config.task,
                                        drop=tuple(config.drop))
    for n in schema_notes:
        state.warn(n)
    kind = schema.task.kind
    metric = config.metric or default_metric(kind)
    get_metric(metric, kind)
    log.info("task %s (%s), metric %s", kind, schema.task.reason, metric)
    state.schema, state.kind, state.metric = schema, kind, metric


#: share of the budget the audit may take (at most AUDIT_MAX_S seconds)
AUDIT_SHARE, AUDIT_MAX_S = 0.05, 5.0


def stage_audit(state: FitState) -> None:
    """Check the data for leakage and the classic anti-patterns; apply the safe fixes.

    An error finding (a leaking column, say) stops the fit with one line naming the column, the
    evidence and the fix, unless the user allowed that check; identifiers and duplicate rows are
    removed before the split. The findings are written to ``audit.json``.
    """
    from mlsmith.audit import audit
    from mlsmith.preprocess import prepare_features

    config = state.config
    state.stage("audit")
    report = audit(state.df, config.target, state.schema, allow=tuple(config.allow),
                   time_column=config.time_column, n_folds=int(config.folds), seed=config.seed,
                   time_budget=min(AUDIT_MAX_S, AUDIT_SHARE * config.budget_seconds))
    report.raise_for_errors()
    state.df, state.schema = report.apply(state.df, state.schema)
    state.writer.write_json("audit.json", report.to_dict())
    for line in report.summary_lines(max_lines=8):
        state.sink("audit", {"message": line})
    state.audit = report
    df, schema = state.df, state.schema
    X_all = prepare_features(df, schema, where="the training data", warn_extra=False)
    if state.kind == "regression":
        y_all = pd.to_numeric(df[config.target], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(y_all)):
            raise TargetError(f"the target {config.target!r} holds infinite or non-numeric "
                              f"values: fix them or drop those rows.")
    else:
        lookup = {v: i for i, v in enumerate(schema.task.classes)}
        y_all = df[config.target].map(lookup).to_numpy(dtype=np.int64)
    schema.n_rows = len(df)
    state.X_all, state.y_all = X_all, y_all
    state.mark("audit")


def stage_split(state: FitState) -> None:
    """Cut the test rows first, then the cross-validation folds of the rest."""
    import joblib

    from mlsmith.split import holdout_split, make_folds

    config, schema = state.config, state.schema
    state.stage("split", f"{state.kind}, metric {state.metric}"
                + (f", ordered by {config.time_column}" if config.time_column else ""))
    classification = state.kind != "regression"
    y_all = state.y_all
    order = None
    if config.time_column:
        from mlsmith.audit import time_order_key
        from mlsmith.split import make_time_folds, time_holdout_split

        order = time_order_key(state.df, config.time_column)
        train_idx, test_idx = time_holdout_split(order, config.test_size)
    else:
        train_idx, test_idx = holdout_split(y_all, classification, config.test_size, config.seed)
    from mlsmith.select._budget import available_cores

    state.n_jobs = n_jobs = config.n_jobs or available_cores()
    n_folds = choose_folds(int(config.folds), len(train_idx), len(schema.features),
                           len(schema.task.classes), config.budget_seconds, n_jobs)
    if len(train_idx) < 2 * n_folds and len(train_idx) >= 4 and n_folds == config.folds == 5:
        n_folds = max(2, len(train_idx) // 2)
    if order is not None:
        state.folds = make_time_folds(len(train_idx), n_folds, order=order[train_idx])
        covered = np.zeros(len(train_idx), dtype=bool)
        for _, va in state.folds:
            covered[va] = True
        state.oof_mask = None if covered.all() else covered
    else:
        state.folds = make_folds(y_all[train_idx], classification, n_folds, config.seed)
    state.n_folds = n_folds
    state.train_idx, state.test_idx = train_idx, test_idx
    state.X_train = state.X_all.iloc[train_idx].reset_index(drop=True)
    state.y_train = y_all[train_idx]
    state.X_test = state.X_all.iloc[test_idx].reset_index(drop=True)
    state.y_test = y_all[test_idx]
    state.data_path = str(state.writer.path("scratch/data.joblib"))
    joblib.dump({"schema": schema, "X": state.X_train, "y": state.y_train, "folds": state.folds,
                 "X_test": state.X_test, "y_test": state.y_test}, state.data_path)
    state.mark("prepare")


# --- search --------------------------------------------------------------------------------------
def _refit_one(state: FitState, r: Any) -> float:
    """Seconds to refit candidate result ``r`` on every training row."""
    if r.candidate.family == "constant":
        return 0.0
    fold_share = len(state.train_idx) / max(np.mean([len(tr) for tr, _ in state.folds]), 1)
    return r.fit_time * fold_share * 1.2 + r.predict_time * 0.5 + 0.2


def _has_bag(state: FitState, r: Any) -> bool:
    return r.bag_generation == state.worker.generation and state.worker.alive()


def _refit_seconds(state: FitState, ids: list[str]) -> float:
    """The cheapest way to ship ``ids``: a bag of fold models where one is kept."""
    by_id = state.by_id
    return sum(0.3 if _has_bag(state, by_id[i]) else _refit_one(state, by_id[i]) for i in ids)


def _save_reserve(config: FitConfig) -> float:
    return SAVE_RESERVE_S + SAVE_RESERVE_SHARE * min(config.budget_seconds, 3600.0)


#: share of the budget (at most EVAL_MAX_S seconds) the search leaves for the evaluation
EVAL_SHARE, EVAL_MAX_S = 0.06, 10.0


def _report_reserve(config: FitConfig) -> float:
    return min(REPORT_RESERVE_S, 0.1 * config.budget_seconds) if config.report else 0.0


def _eval_reserve(config: FitConfig) -> float:
    if not config.report:
        return 0.2
    return _report_reserve(config) + min(EVAL_SHARE * config.budget_seconds, EVAL_MAX_S)


def _reserve(state: FitState, results: list[Any], full: bool = True) -> float:
    """Time kept back from the search for the final model and saving.

    ``full``: enough to refit the best model in a freshly started worker (the time a killed
    candidate must leave). Otherwise enough to refit it when that is affordable, else to ship
    its kept fold models as a bag.
    """
    save_reserve = _save_reserve(state.config) + _eval_reserve(state.config)
    ok = [r for r in results if r.status == "ok" and r.candidate.family != "constant"]
    if not ok:
        return save_reserve + (WORKER_START_S if full else 0.0)
    best = max(ok, key=lambda r: r.cv_mean)
    refit = _refit_one(state, best) * 1.2
    if full:
        return save_reserve + 1.0 + WORKER_START_S + refit
    if _has_bag(state, best) and state.n_folds >= 4:
        # a bag of 4+ fold models is nearly as good as a refit: keep less back
        refit = min(refit, 0.2 * state.config.budget_seconds)
    return save_reserve + 1.0 + refit


def _load_done(state: FitState) -> dict[str, Any]:
    """Results of candidates an interrupted attempt of this fit finished (resume)."""
    import joblib

    done: dict[str, Any] = {}
    folder = state.writer.staging / "state" / "results"
    for p in sorted(folder.glob("*.joblib")) if folder.is_dir() else []:
        try:
            r = joblib.load(p)
        except Exception:  # noqa: BLE001 - a file cut short by the kill: run it again
            continue
        r.bag_generation = -1  # the fold models died with the old worker
        done[r.candidate.model_id] = r
    return done


def _store_result(state: FitState, r: Any) -> None:
    """Record a finished candidate at once, so a killed fit does not run it again."""
    import joblib

    if r.status not in ("ok", "failed") or r.candidate.family == "constant":
        return  # skipped or stopped candidates depend on the time left: decide again
    path = state.writer.path(f"state/results/{r.candidate.model_id}.joblib")
    tmp = path.with_name(f".{path.name}.tmp")
    joblib.dump(r, tmp)
    os.replace(tmp, path)


def _with_audit_candidates(state: FitState, plan: list[Any], fam_map: dict[str, Any]) -> list[Any]:
    """Candidates the audit asks for join the portfolio after its first three: with imbalanced
    classes, class-weighted and SMOTE ones (SMOTE runs inside the pipeline, on training folds
    only); with a skewed non-negative regression target, boosting on log(1 + y)."""
    from mlsmith.select import Candidate

    rec = state.audit.recommendations if state.audit is not None else {}
    extra = []
    if state.kind == "regression" and rec.get("log_target") and float(np.min(state.y_all)) >= 0:
        # a skewed non-negative target: the same models on log(1 + y)
        for fam in ("lightgbm", "hist_gradient_boosting"):
            if fam in fam_map:
                base = dict(fam_map[fam].portfolio(state.kind)[0])
                extra.append(Candidate(f"{fam}_log_target", fam,
                                       {**base, "target_transform": "log1p"}, origin="audit"))
        return plan[:3] + extra + plan[3:]
    if state.kind == "regression" or not (rec.get("class_weight") or rec.get("smote")):
        return plan
    if rec.get("class_weight") and "hist_gradient_boosting" in fam_map:
        extra.append(Candidate("hist_gradient_boosting_balanced", "hist_gradient_boosting",
                               {"class_weight": "balanced"}, origin="imbalance"))
    if rec.get("class_weight") and "linear" in fam_map:
        extra.append(Candidate("linear_balanced", "linear", {"C": 1.0, "class_weight": "balanced"},
                               origin="imbalance"))
    if rec.get("smote") and "lightgbm" in fam_map:
        base = dict(fam_map["lightgbm"].portfolio(state.kind)[0])
        extra.append(Candidate("lightgbm_smote", "lightgbm", {**base, "resample": "smote"},
                               origin="imbalance"))
    return plan[:3] + extra + plan[3:]


def stage_search(state: FitState) -> None:
    """Cross-validate the default portfolio within the budget (resuming finished candidates)."""
    from mlsmith.metrics import get_metric
    from mlsmith.models import families_for
    from mlsmith.select import plan_candidates, run_portfolio

    config = state.config
    state.stage("search", f"{state.n_folds}-fold CV")
    families = families_for(state.kind, config.models)
    fam_map = {f.name: f for f in families}
    candidates = _with_audit_candidates(state, plan_candidates(families, state.kind), fam_map)
    done = _load_done(state)
    n_trials = [0]

    def on_event(event: str, payload: dict[str, Any]) -> None:
        payload["metric"] = state.metric
        payload["sign"] = 1.0 if get_metric(state.metric).greater_is_better else -1.0
        if event == "model_end":
            r = payload["result"]
            if r.candidate.model_id not in done:
                _store_result(state, r)
            state.checkpoint()
            if r.status == "ok" and r.candidate.family != "constant":
                n_trials[0] += 1
                _fault(f"trial:{n_trials[0]}")
        state.sink(event, payload)

    t_start = time.time()
    state.results = run_portfolio(
        candidates, fam_map, state.worker, state.data_path, state.y_train, state.folds,
        state.kind, len(state.schema.task.classes), state.metric, config.seed, state.n_jobs,
        state.budget, lambda results, full=True: _reserve(state, results, full), on_event,
        done=done)
    # time of this stage not spent inside the worker's cross-validation calls (fitting and
    # scoring): planning, estimates, task hand-over, the baseline
    inside = sum(r.total_time for r in state.results
                 if r.candidate.model_id not in done and np.isfinite(r.total_time)
                 and r.status in ("ok", "failed", "stopped"))  # a killed fit is fitting too
    state.overhead["portfolio"] = round(max(time.time() - t_start - inside, 0.0), 3)
    state.overhead["version"] = 2  # 2: candidates killed at their limit count as fitting
    state.mark("search")


#: the search starts only with at least this many seconds (or this share of the budget) left
MIN_SEARCH_S, MIN_SEARCH_SHARE = 5.0, 0.05
#: the search tunes this many of the families that did best in the portfolio
SEARCH_FAMILIES = 2
#: a time-limited search stops once this many trials in a row brought no gain (``--patience``)
SEARCH_PATIENCE = 200


def _patience(config: FitConfig) -> int | None:
    """The search's patience: ``--patience`` (0: none), else ``SEARCH_PATIENCE`` when the
    search runs against the clock (a fit with ``--trials N`` runs its N trials)."""
    if config.patience is not None:
        return config.patience or None
    return SEARCH_PATIENCE if config.trials is None and config.time_limit is not None else None


#: during the search the time used is recorded (for a resumed fit) at most this often
CHECKPOINT_EVERY_S = 1.0


def search_families(results: list[Any], kind: str, n: int = SEARCH_FAMILIES) -> list[str]:
    """The allocation rule's first half: the ``n`` families whose best portfolio candidate
    scored highest in cross-validation (families without a search space are passed over)."""
    from mlsmith.models import get_family

    best: dict[str, float] = {}
    for r in results:
        fam = r.candidate.family
        if r.status != "ok" or fam == "constant" or not np.isfinite(r.cv_mean):
            continue
        try:
            if not get_family(fam).search_space(kind):
                continue
        except Exception:  # noqa: BLE001 - an unknown family cannot be searched
            continue
        best[fam] = max(best.get(fam, -np.inf), r.cv_mean)
    return sorted(best, key=lambda f: -best[f])[:n]


def _study_name(state: FitState) -> str:
    return "mlsmith" if state.config.storage is None else f"mlsmith-{state.out.name}"


def stage_tune(state: FitState) -> None:
    """Spend what the portfolio left on search (Optuna) over the families that did best.

    Allocation: the default portfolio runs first; the time then left, less the reserve for the
    final refit, the evaluation and saving, goes to the search (``--strategy``, TPE by default)
    over the two families whose best portfolio candidate scored highest, in one study with the
    family as its first parameter. With ``--trials N`` the search runs N trials. Each trial is
    recorded in the study store (``study/journal.log`` in the run directory) as soon as it ends,
    so a killed fit resumes without running it again.
    """
    from mlsmith.metrics import get_metric
    from mlsmith.select import Candidate, Result

    config, budget = state.config, state.budget
    if config.strategy == "none" or config.trials == 0:
        return
    families = search_families(state.results, state.kind)
    if not families:
        state.warn("no search: no family with a search space finished in the portfolio")
        return
    left = budget.remaining() - _reserve(state, state.results, False)
    if config.trials is None and left < max(MIN_SEARCH_S, MIN_SEARCH_SHARE * config.budget_seconds):
        state.notes.append(f"no search: {max(left, 0):.1f}s left after the portfolio")
        return
    from mlsmith.tune import to_results, tune

    state.stage("tune", f"{config.strategy} over {', '.join(families)}"
                + (f", {config.trials} trials" if config.trials else f", {left:.0f}s"))
    sign = 1.0 if get_metric(state.metric).greater_is_better else -1.0
    col = f"cv_{get_metric(state.metric).name}"
    n_done = [0]
    last_checkpoint = [0.0]

    def on_event(event: str, payload: dict[str, Any]) -> None:
        if event == "trial_start":
            cand = Candidate(f"{payload['family']}_trial{payload['trial']}", payload["family"],
                             payload["params"], origin=payload["origin"])
            state.sink("model_start", {"candidate": cand, "metric": state.metric, "sign": sign})
        elif event == "trial_end":
            row = payload["row"]
            cand = Candidate(row["model"], row["family"], {}, origin=row["origin"])
            scores = [sign * v for v in json.loads(row.get("fold_scores") or "[]")]
            res = Result(cand, row["status"], cv_scores=scores if row["status"] == "ok" else [],
                         total_time=row.get("cv_time_s", float("nan")),
                         note=row.get("note") or (f"pruned after {row.get('folds_done')} folds"
                                                  if row["status"] == "pruned" else ""))
            state.sink("model_end", {"result": res, "metric": state.metric, "sign": sign})
            if time.time() - last_checkpoint[0] >= CHECKPOINT_EVERY_S:  # trials take ms
                state.checkpoint()
                last_checkpoint[0] = time.time()
            if row["status"] == "ok":
                n_done[0] += 1
                _fault(f"search:{n_done[0]}")

    storage = config.storage or str(state.writer.path("study/journal.log"))
    study_name = _study_name(state)
    if config.storage:
        state.sink("warning", {"message": f"study {study_name!r} in {config.storage}: more "
                               f"processes may join with 'mlsmith worker {study_name} "
                               f"--storage {config.storage}'"})
    deadline = None if config.time_limit is None else budget.clock() + max(left, 0.0)
    ray = config.backend == "ray"
    t_start = time.time()
    table = tune(state.data_path, families, metric=state.metric, strategy=config.strategy,
                 n_trials=config.trials, deadline=deadline, seed=config.seed, n_jobs=config.jobs,
                 cores_per_trial=max(1, state.n_jobs // config.jobs),
                 storage=None if ray else storage,
                 study_name=study_name, oof_dir=str(state.writer.path("state/oof")),
                 workdir=str(state.writer.path("scratch/tune")), on_event=on_event,
                 workers=[state.worker] if config.jobs == 1 and not ray else None,
                 source=None,  # remote workers read the bundle from a shared folder
                 backend=config.backend, ray_address=config.ray_address,
                 patience=_patience(config))
    found = to_results(table) if ray else to_results(storage, study_name)
    kept = {r.candidate.model_id for r in found}
    for r in found:
        r.bag_generation = -1  # trials keep no fold models: a chosen trial is refit
    others = []
    for _, row in table.iterrows():
        if row["model"] in kept or row["status"] in ("ok", "running", "waiting"):
            continue
        cand = Candidate(row["model"], row["family"], json.loads(row["params"] or "{}"),
                         origin=row["origin"])
        note = row.get("note") or ""
        if row["status"] == "pruned":
            note = note or f"pruned after {row.get('folds_done')} folds ({col} {row[col]:.4g})"
        others.append(Result(cand, str(row["status"]), note=str(note),
                             total_time=float(row.get("cv_time_s") or float("nan"))))
    wall = time.time() - t_start
    if "work_time_s" in table.columns and config.jobs == 1 and not ray:
        # time not spent inside the worker's fit / score calls: sampling, the study store,
        # pruning decisions, task hand-over (trials of an earlier, killed attempt excluded)
        inside = float(np.nansum(table["work_time_s"].to_numpy(dtype=float)))
        state.overhead["search"] = round(max(wall - inside, 0.0), 3)
    state.results = state.results + found + others
    state.search = {"strategy": config.strategy, "families": families,
                    "storage": config.storage or "study/journal.log",
                    "study": study_name, "trials": int(len(table)), "completed": len(found),
                    "seconds": round(max(left, 0.0), 3) if config.time_limit else None,
                    "seconds_used": round(wall, 3), "patience": _patience(config)}
    state.mark("tune")


# --- final model ---------------------------------------------------------------------------------
def _validated(state: FitState) -> tuple[list[Any], np.ndarray]:
    """Results and training targets restricted to rows with out-of-fold predictions."""
    import dataclasses

    if state.oof_mask is None:
        return state.results, state.y_train
    mask = state.oof_mask
    view = [dataclasses.replace(r, oof=None if r.oof is None else r.oof[mask])
            for r in state.results]
    return view, state.y_train[mask]


def stage_final(state: FitState) -> None:
    """Choose the shipped model (ensemble or single) and refit it on every training row."""
    import joblib

    from mlsmith.metrics import score
    from mlsmith.select import FittedModel, choose_final
    from mlsmith.select._pool import TaskFailed, TaskTimeout

    config, budget, worker = state.config, state.budget, state.worker
    state.stage("refit")
    _fault("refit")
    results, by_id = state.results, state.by_id
    save_reserve = _save_reserve(config) + _report_reserve(config)
    available = budget.remaining() - save_reserve
    v_results, v_y = _validated(state)
    weights, cv_score, description = choose_final(
        v_results, v_y, state.metric, lambda ids: _refit_seconds(state, ids), available,
        ensemble=config.ensemble)
    model_path = state.writer.path("model.joblib")
    attempts: list[tuple[dict[str, float], float, str]] = [(weights, cv_score, description)]
    ok_sorted = sorted((r for r in results if r.status == "ok"
                        and r.candidate.family != "constant"), key=lambda r: -r.cv_mean)
    for r in ok_sorted[:1] + [r for r in ok_sorted if r.candidate.family == "linear"][:1]:
        w = {r.candidate.model_id: 1.0}
        if all(w != a[0] for a in attempts):
            attempts.append((w, r.cv_mean, f"best single model {r.candidate.model_id}"
                             if r is ok_sorted[0] else f"fallback {r.candidate.model_id}"))
    refitted = False
    n_jobs = state.n_jobs
    for i, (w, s_cv, desc) in enumerate(attempts):
        if any(by_id[m].candidate.family == "constant" for m in w):
            break
        available = budget.remaining() - save_reserve
        last = i == len(attempts) - 1
        if _refit_seconds(state, list(w)) > available and not last:
            continue
        # refit members on every row while the time allows, heaviest weight first;
        # ship the rest as bags of their fold models
        members = []
        spent = 0.0
        for mid, wt in sorted(w.items(), key=lambda kv: -kv[1]):
            r = by_id[mid]
            mode = "refit"
            # members refit side by side, one per core
            if _has_bag(state, r) and spent + _refit_one(state, r) / n_jobs > 0.8 * available:
                mode = "bag"
            else:
                spent += _refit_one(state, r) / n_jobs
            members.append((mid, r.candidate.family, r.candidate.params, wt, mode))
        try:
            res = worker.run({"kind": "refit", "data_path": state.data_path, "members": members,
                              "seed": config.seed, "n_jobs": 1, "parallel": n_jobs,
                              "model_path": str(model_path),
                              "deadline": budget.clock() + max(available, 0.5) * 0.9},
                             timeout=max(available, 1.0))
            state.test_pred = res.get("test_pred")
            weights, cv_score, description = w, s_cv, desc
            state.ship_modes = res.get("modes", {})
            refitted = True
            break
        except (TaskTimeout, TaskFailed) as exc:
            state.warn(f"refit of {desc} did not finish ({exc})")
    if not refitted:
        weights, description = {"constant_baseline": 1.0}, "constant baseline (fallback)"
        cv_score = score(state.metric, v_y, {r.candidate.model_id: r for r in v_results}[
            "constant_baseline"].oof)
    if "constant_baseline" in weights:
        from sklearn.dummy import DummyClassifier, DummyRegressor

        dummy = (DummyRegressor() if state.kind == "regression"
                 else DummyClassifier(strategy="prior"))
        dummy.fit(np.zeros((len(state.y_train), 1)), state.y_train)
        state.model = FittedModel(state.kind, state.schema.task.classes,
                                  [("constant_baseline", dummy, 1.0)])
        joblib.dump(state.model, model_path)
        if len(state.test_idx):
            state.test_pred = state.model.predict_encoded(np.zeros((len(state.test_idx), 1)))
    worker.close()
    state.weights, state.cv_score, state.description = weights, cv_score, description
    state.mark("refit")


# --- evaluate ------------------------------------------------------------------------------------
#: a tuned decision threshold is shipped only when it beats 0.5 out of fold by this share
MIN_THRESHOLD_GAIN = 0.01


def _tune_threshold(state: FitState, y: np.ndarray, oof: np.ndarray) -> dict[str, Any] | None:
    """With imbalanced binary classes, pick the decision threshold on out-of-fold predictions."""
    import joblib

    rec = state.audit.recommendations if state.audit is not None else {}
    if state.kind != "binary" or not rec.get("threshold_tuning") or "constant_baseline" in state.weights:
        return None
    from mlsmith.audit import tune_threshold

    objective = "balanced_accuracy" if state.metric == "balanced_accuracy" else "f1"
    res = dict(tune_threshold(y, oof[:, 1], objective))
    res["applied"] = bool(res["score"] >= res["score_at_default"] * (1 + MIN_THRESHOLD_GAIN))
    if res["applied"]:
        path = state.writer.path("model.joblib")
        model = state.model if state.model is not None else joblib.load(path)
        model.threshold = float(res["value"])
        joblib.dump(model, path)
        state.model = model
        state.warn(f"imbalanced classes: decision threshold {res['value']:.3f} instead of 0.5 "
                   f"(out-of-fold {objective} {res['score']:.4f} vs {res['score_at_default']:.4f})")
    return res


def stage_evaluate(state: FitState) -> None:
    """Score the out-of-fold blend and, once, the test rows."""
    from mlsmith.metrics import compute_all, get_metric, score
    from mlsmith.select._ensemble import blend

    state.stage("evaluate")
    by_id, weights, metric, y_train = state.by_id, state.weights, state.metric, state.y_train
    m = get_metric(metric)
    oof_blend = blend([by_id[k].oof for k in weights], list(weights.values()))
    state.oof_blend = oof_blend
    if state.oof_mask is not None:
        y_train, oof_blend = y_train[state.oof_mask], oof_blend[state.oof_mask]
    state.cv_score = score(metric, y_train, oof_blend)
    state.cv_metrics = compute_all(state.kind, y_train, oof_blend)
    state.threshold = _tune_threshold(state, y_train, oof_blend)
    state.board = _leaderboard(state)
    state.test_metrics = (compute_all(state.kind, state.y_test, state.test_pred)
                          if state.test_pred is not None and len(state.test_idx) else {})
    state.chosen = {
        "description": state.description,
        "members": [{"model": k, "family": by_id[k].candidate.family,
                     "params": by_id[k].candidate.params, "weight": round(w, 6),
                     "fitted_on": ("every training row"
                                   if state.ship_modes.get(k, "refit") == "refit"
                                   else f"bag of {state.n_folds} fold models")}
                    for k, w in sorted(weights.items(), key=lambda kv: -kv[1])],
        "cv_score": state.cv_score if m.greater_is_better else -state.cv_score}
    state.evaluation = _evaluation(state)
    thr_doc = (state.evaluation.get("test") or {}).get("threshold")
    if isinstance(thr_doc, dict):  # whether the shipped model uses it
        thr_doc["applied"] = bool(state.threshold and state.threshold.get("applied")
                                  and thr_doc.get("source") != "test")
    state.writer.write_json("evaluation.json", state.evaluation)
    state.mark("evaluate")


def _leaderboard(state: FitState) -> pd.DataFrame:
    """The leaderboard: one row per candidate, the shipped ensemble first when there is one."""
    from mlsmith.metrics import get_metric, score
    from mlsmith.select import leaderboard_rows

    m = get_metric(state.metric)
    weights, y_train, folds = state.weights, state.y_train, state.folds
    board = pd.DataFrame(leaderboard_rows(state.results, state.metric, len(y_train)))
    if len(weights) > 1:
        sign = 1.0 if m.greater_is_better else -1.0
        oof_blend = state.oof_blend
        fold_scores = [sign * score(state.metric, y_train[va], oof_blend[va]) for _, va in folds
                       if len(va)]
        ens_row = {c: np.nan for c in board.columns}
        ens_row.update(model="ensemble", family="ensemble", origin="ensemble", status="ok",
                       **{f"cv_{m.name}": float(np.mean(fold_scores)),
                          f"cv_{m.name}_std": float(np.std(fold_scores))},
                       params=str({k: round(v, 3) for k, v in weights.items()}),
                       note="greedy ensemble selection; its CV score is slightly optimistic")
        board = pd.concat([pd.DataFrame([ens_row]), board], ignore_index=True)
    return board


#: seconds kept back after the evaluation for the report, the model card and saving
REPORT_RESERVE_S = 2.5


def _evaluation(state: FitState) -> dict[str, Any]:
    """``evaluation.json``: test metrics with intervals, curves, diagnostics, importance."""
    import joblib

    from mlsmith.evaluate import evaluate_run
    from mlsmith.select._tasks import build_pipeline

    if state.test_pred is None or not len(state.test_idx):
        return {"version": 1, "task": state.kind, "metric": state.metric,
                "skipped": {"test": "no test set held out (--test-size 0)"}}
    by_id, weights, config = state.by_id, state.weights, state.config
    model = state.model
    if model is None:
        model = joblib.load(state.writer.path("model.joblib"))
    top = max(weights, key=weights.get)  # type: ignore[arg-type]
    r = by_id[top]
    make_estimator = None
    if r.candidate.family != "constant":
        fold_rows = len(state.folds[0][0])

        def make_estimator() -> Any:
            return build_pipeline(state.schema, r.candidate.family, r.candidate.params,
                                  fold_rows, config.seed, 1, None)

    y_oof, oof = state.y_train, state.oof_blend
    if state.oof_mask is not None:
        y_oof, oof = y_oof[state.oof_mask], oof[state.oof_mask]
    thr = state.threshold
    left = state.budget.remaining() - _save_reserve(config) - _report_reserve(config)
    return evaluate_run(
        state.kind, state.y_test, state.test_pred, state.schema.task.classes, state.metric,
        cv_metrics=state.cv_metrics, leaderboard=state.board,
        chosen="ensemble" if len(weights) > 1 else top,
        oof=(y_oof, oof) if state.kind == "binary" else None,
        threshold=thr["value"] if thr and thr.get("applied") else None,
        predict=model.predict_encoded, X_test=state.X_test, make_estimator=make_estimator,
        X_train=state.X_train, y_train=state.y_train, learning_split=state.folds[-1],
        X_projection=state.X_train, y_projection=state.y_train, seed=config.seed,
        time_budget=max(left, 0.0))


# --- save ----------------------------------------------------------------------------------------
def stage_save(state: FitState) -> Any:
    """Write the run directory's files and commit it in one rename."""
    from mlsmith.metrics import get_metric
    from mlsmith.run import read_manifest
    from mlsmith.run._run import Run

    config, writer, metric = state.config, state.writer, state.metric
    state.stage("save")
    _fault("save")
    m = get_metric(metric)
    results, y_train, folds = state.results, state.y_train, state.folds
    board = state.board
    buf = io.StringIO()
    board.to_csv(buf, index=False)
    writer.write_text("leaderboard.csv", buf.getvalue())
    fold_of_row = np.full(len(y_train), -1, dtype=np.int64)  # -1: never validated (time folds)
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
    rows = np.asarray(state.df.index)  # row numbers of the loaded table
    np.savez_compressed(split_buf, train_index=rows[state.train_idx],
                        test_index=rows[state.test_idx])
    writer.write_bytes("splits.npz", split_buf.getvalue())
    if state.test_pred is not None and len(state.test_idx):
        pred_buf = io.BytesIO()
        np.savez_compressed(pred_buf, y=state.y_test, pred=np.asarray(state.test_pred))
        writer.write_bytes("test_predictions.npz", pred_buf.getvalue())
    writer.write_json("schema.json", state.schema.to_dict())
    cfg = asdict(config)
    cfg.update(metric=metric, task=state.kind, folds=state.n_folds, out=str(state.out))
    writer.write_json("config.json", cfg)
    state.mark("save")
    elapsed = time.time() - state.t0 + state.spent_before
    metrics_doc = {
        "metric": metric,
        "greater_is_better": m.greater_is_better,
        "chosen": state.chosen,
        "cv": state.cv_metrics,
        "test": state.test_metrics,
        "rows": {"loaded": state.n_loaded, "missing_target_dropped": state.n_missing_target,
                 "removed_by_audit": int(sum(state.audit.removed_rows.values()))
                 if state.audit is not None else 0,
                 "train": int(len(state.train_idx)), "test": int(len(state.test_idx)),
                 "folds": state.n_folds},
        "threshold": state.threshold,
        "search": state.search,
        "overhead_s": state.overhead,
        "timings_s": {k: round(v, 3) for k, v in state.timings.items()},
        "resumed_after_s": round(state.spent_before, 3) if state.spent_before else None,
        "notes": state.notes,
    }
    writer.write_json("metrics.json", metrics_doc)
    if config.report:
        from mlsmith.report import write_model_card, write_report

        try:
            write_report(writer.staging)
            write_model_card(writer.staging)
        except Exception as exc:  # noqa: BLE001 - the model matters more than its report
            state.warn(f"report not written ({exc}); write it later with 'mlsmith report'")
    _fault("commit")
    path = writer.commit(cfg, extra={"elapsed_s": round(elapsed, 3),
                                     "time_limit_s": config.time_limit})
    if state.tracker is not None:
        _log_tracking(state, path, cfg)
        elapsed = time.time() - state.t0 + state.spent_before
    state.sink("done", {"elapsed": elapsed, "chosen": state.description, "out": str(path)})
    run = Run(path, read_manifest(path))
    if state.model is not None:
        run._model = state.model
    return run
