"""The Ray Tune backend of :func:`mlsmith.tune.tune` (``backend="ray"``, ``--backend ray``).

Each configuration is one Ray Tune trial: a function trainable that cross-validates it fold by
fold (:func:`mlsmith.select._tasks.run_cv` with ``fold_ids``, in-process: Ray's actors are
already separate processes) and reports the mean score of the folds done so far after each
round of folds. An ASHA scheduler (``time_attr`` = folds done) stops poor configurations after
their first folds. The search is Optuna's TPE inside Ray (``OptunaSearch``, seeded), Ray's own
random sampling, or Ray's ``grid_search`` over the points of :func:`mlsmith.tune.grid`.

The data bundle travels through Ray's object store (``tune.with_parameters``), so the machines
of a cluster need no shared copy of it; a completed trial's out-of-fold predictions travel back
as its checkpoint and are written to ``oof_dir/trial_<n>.npy`` (``n`` is the trial's number in
creation order), the convention of the Optuna backend, so the fit's ensemble can read them.
On a cluster of several machines the checkpoints need a folder every machine can write
(``workdir`` on a shared file system), as Ray requires.

When to use which backend:

* one machine: the default Optuna backend (nothing to start; ``--jobs`` trials side by side);
* several machines sharing a PostgreSQL database: the Optuna backend with
  ``--storage postgresql://...`` and ``mlsmith worker`` on each machine;
* a Ray cluster already running (or wanted): ``--backend ray --ray-address ADDR``; without an
  address a local Ray instance is started for the search and shut down after it.

``ray`` is imported on first use; without it the backend raises
:class:`mlsmith.errors.MissingDependencyError` naming the extra (``mlsmith[scale]``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError, MissingDependencyError
from mlsmith.models._space import Choice, Float, Int, Space
from mlsmith.tune._spaces import (
    FAMILY_PARAM,
    SEP,
    _labels,
    _plain,
    config_from_params,
    fixed_params,
    grid_configs,
    suggest_config,
)

__all__ = ["tune_ray", "to_results_ray", "import_ray", "RAY_EXTRA_HINT"]

log = logging.getLogger("mlsmith")

Event = Callable[[str, dict[str, Any]], None]

RAY_EXTRA_HINT = "pip install 'mlsmith[scale]'"
#: the metric every trial reports: mean score of its folds so far, natural units
SCORE = "score"
#: the resource ASHA schedules on: folds evaluated so far
FOLDS_DONE = "folds_done"
#: ASHA keeps the best 1/REDUCTION of the trials at each rung (folds 1, 3, 9, ...)
REDUCTION = 3
#: table attribute holding what :func:`to_results_ray` needs
ATTR = "mlsmith"
#: the config key of a grid point (an index into the list of points)
POINT = "mlsmith_point"
_STRATEGIES = ("grid", "random", "tpe")
_PRUNERS = ("hyperband", "sha", "asha", "median", "none")


def import_ray() -> Any:
    """``import ray`` (with Ray Tune), or a :class:`MissingDependencyError` naming the extra."""
    try:
        import ray
        import ray.tune  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "the Ray backend (--backend ray) needs the package 'ray[tune]': "
            f"{RAY_EXTRA_HINT}.") from None
    return ray


def _api() -> tuple[Any, Any, Any]:
    """``(report, Checkpoint, RunConfig)``: in ``ray.tune`` from Ray 2.41 on, in ``ray.train``
    (2.7 to 2.40) before."""
    from ray import tune

    if all(hasattr(tune, n) for n in ("report", "Checkpoint", "RunConfig")) \
            and hasattr(tune, "get_context"):
        return tune.report, tune.Checkpoint, tune.RunConfig
    from ray import train  # pragma: no cover - older Ray

    return train.report, train.Checkpoint, train.RunConfig  # pragma: no cover


# --- the trainable (runs in a Ray worker process) ------------------------------------------------
def _trainable(config: dict[str, Any], setup: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None) -> None:
    """Cross-validate one configuration fold by fold, reporting after each round of folds; the
    last report carries the out-of-fold predictions as a checkpoint."""
    from mlsmith.select._tasks import run_cv

    assert setup is not None and data is not None
    report, checkpoint_cls, _ = _api()
    spaces: dict[str, Space] = setup["spaces"]
    raw = setup["points"][config[POINT]] if POINT in config else config
    family, params = config_from_params(spaces, raw)
    n_folds, cores, sign = setup["n_folds"], setup["cores"], setup["sign"]
    t0 = time.time()
    end = math.inf if setup["deadline"] is None else setup["deadline"]
    if setup["trial_time_limit"]:
        end = min(end, t0 + setup["trial_time_limit"])
    folds = list(range(n_folds))
    rounds = [folds[i:i + cores] for i in range(0, n_folds, cores)]
    n_rows = len(data["y"])
    oof: np.ndarray | None = None
    fold_scores: list[float] = []
    train_scores: list[float] = []
    fit_times: list[float] = []
    predict_times: list[float] = []
    for r, ids in enumerate(rounds):
        soft = None if not math.isfinite(end) else t0 + 0.92 * (end - t0) * (r + 1) / len(rounds)
        task = {"kind": "cv", "family": family, "params": params, "metric": setup["metric"],
                "seed": setup["seed"], "n_jobs": 1, "parallel": cores, "fold_ids": ids,
                "deadline": soft}
        out = run_cv(task, data)
        if oof is None:
            oof = np.zeros((n_rows, *out["oof"].shape[1:]))
        oof[out["oof_index"]] = out["oof"]
        # run_cv's scores are signed higher-is-better; the table keeps natural units
        fold_scores += [sign * float(s) for s in out["fold_scores"]]
        train_scores += [sign * float(s) for s in out["train_scores"]]
        fit_times.append(out["fit_time"])
        predict_times.append(out["predict_time"])
        mean = float(np.mean(fold_scores))
        if not math.isfinite(mean):
            raise ValueError(f"the score after fold {len(fold_scores)} is not a finite number")
        metrics = {SCORE: mean, FOLDS_DONE: len(fold_scores), "family": family,
                   "fold_scores": json.dumps(fold_scores), "train_scores": json.dumps(train_scores),
                   "fit_time": float(np.mean(fit_times)),
                   "predict_time": float(np.mean(predict_times)),
                   "cv_seconds": time.time() - t0, "started_at": t0,
                   "reported_at": time.time()}
        if r < len(rounds) - 1:
            report(metrics)
            continue
        with tempfile.TemporaryDirectory(prefix="mlsmith-oof-") as tmp:
            np.save(Path(tmp) / "oof.npy", oof)
            report(metrics, checkpoint=checkpoint_cls.from_directory(tmp))


# --- search spaces -------------------------------------------------------------------------------
def _ray_domain(tune: Any, dim: Any) -> Any:
    """Ray's own sampling domain for one dimension (Choice values as Optuna stores them)."""
    if isinstance(dim, Choice):
        return tune.choice(list(dim.options) if _plain(dim.options) else _labels(dim))
    if dim.low == dim.high:
        return dim.low
    if isinstance(dim, Float):
        return (tune.loguniform if dim.log else tune.uniform)(float(dim.low), float(dim.high))
    if isinstance(dim, Int):  # Ray's integer ranges exclude the upper bound
        return (tune.lograndint if dim.log else tune.randint)(int(dim.low), int(dim.high) + 1)
    raise ConfigError(f"cannot sample {dim!r}")  # pragma: no cover - check_space ran before


def _random_space(tune: Any, spaces: dict[str, Space]) -> dict[str, Any]:
    """Every family's parameters under their Optuna names (``<family>__<name>`` with several
    families, plus ``family``): a trial reads only its family's, so unconditional sampling of
    the others is harmless."""
    names = list(spaces)
    if len(names) == 1:
        return {k: _ray_domain(tune, d) for k, d in spaces[names[0]].items()}
    out: dict[str, Any] = {FAMILY_PARAM: tune.choice(names)}
    for family, space in spaces.items():
        out.update({f"{family}{SEP}{k}": _ray_domain(tune, d) for k, d in space.items()})
    return out


def _scheduler(pruner: str, n_folds: int) -> tuple[Any, set[str]]:
    """The trial scheduler for ``pruner`` and the set it fills with the ids of the trials it
    stopped before their last fold."""
    from ray.tune.schedulers import (
        ASHAScheduler,
        FIFOScheduler,
        MedianStoppingRule,
        TrialScheduler,
    )

    key = (pruner or "none").lower()
    stopped: set[str] = set()
    if key in ("none", "nop", "off"):
        return FIFOScheduler(), stopped
    if key in ("hyperband", "sha", "asha", "successive_halving"):
        base: Any = ASHAScheduler
        kwargs: dict[str, Any] = {"time_attr": FOLDS_DONE, "max_t": n_folds, "grace_period": 1,
                                  "reduction_factor": REDUCTION}
    elif key == "median":
        base = MedianStoppingRule
        kwargs = {"time_attr": FOLDS_DONE, "grace_period": 1, "min_samples_required": 3}
    else:
        from mlsmith.errors import did_you_mean

        raise ConfigError(f"unknown pruner {pruner!r}: use one of {', '.join(_PRUNERS)}."
                          + did_you_mean(key, _PRUNERS))

    class Recording(base):  # type: ignore[misc, valid-type]
        """The scheduler, noting which trials it stops early (for their status)."""

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            action = super().on_trial_result(tune_controller, trial, result)
            if action == TrialScheduler.STOP and result.get(FOLDS_DONE, n_folds) < n_folds:
                stopped.add(trial.trial_id)
            return action

    return Recording(**kwargs), stopped


class _DefineByRun:
    """OptunaSearch's define-by-run space: :func:`suggest_config` (picklable, as Ray saves the
    searcher's state)."""

    def __init__(self, spaces: dict[str, Space]) -> None:
        self.spaces = spaces

    def __call__(self, trial: Any) -> None:
        suggest_config(trial, self.spaces)


def _optuna_searcher(spaces: dict[str, Space], mode: str, seed: int, n_folds: int,
                     points: list[dict[str, Any]]) -> Any:
    """Optuna's TPE inside Ray (the sampler of the Optuna backend, seeded); a trial the
    scheduler stopped is told to Optuna as pruned, not as complete with a partial score."""
    from ray.tune.search.optuna import OptunaSearch

    from mlsmith.tune._study import make_sampler

    class Search(OptunaSearch):
        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            if result and not error and result.get(FOLDS_DONE, n_folds) < n_folds:
                result = None  # -> PRUNED, its per-fold values already reported
            super().on_trial_complete(trial_id, result=result, error=error)

    sampler = make_sampler("tpe", seed, conditional=len(spaces) > 1)
    return Search(space=_DefineByRun(spaces), metric=SCORE, mode=mode, sampler=sampler,
                  points_to_evaluate=points or None)


# --- the driver ----------------------------------------------------------------------------------
def _quiet_optuna() -> Callable[[], None]:
    """Silence Optuna's log lines (OptunaSearch creates a study); returns a restore."""
    try:
        import optuna
    except ImportError:  # the random and grid strategies do not need it
        return lambda: None
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return lambda: optuna.logging.set_verbosity(before)


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Start or join Ray; returns whether this call did (and so must shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                              "include_dashboard": False}
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def _iso(ts: float | None) -> str | None:
    if ts is None or not math.isfinite(ts):
        return None
    return _dt.datetime.fromtimestamp(ts).isoformat()


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _row(number: int, trial_id: str, config: dict[str, Any], metrics: dict[str, Any],
         error: Any, *, stopped_early: bool, ctx: dict[str, Any]) -> dict[str, Any] | None:
    """One trial-table row, the columns of the Optuna backend's table (plus ``ray_trial_id``
    and ``train_scores``); None for a trial that never reported and did not fail (not run)."""
    m = ctx["metric"]
    spaces: dict[str, Space] = ctx["spaces"]
    raw = ctx["points"][config[POINT]] if POINT in config else config
    try:
        family, params = config_from_params(spaces, raw)
    except (KeyError, ValueError, IndexError):
        family, params = metrics.get("family", ""), dict(raw)
    scores = [_num(s) for s in json.loads(metrics.get("fold_scores") or "[]")]
    train = [_num(s) for s in json.loads(metrics.get("train_scores") or "[]")]
    done = len(scores)
    if error is not None:
        status, state = "failed", "FAIL"
        text = str(error).strip().splitlines()
        note = "failed: " + (text[-1] if text else type(error).__name__)
    elif not done:
        if metrics.get("pid") is None:
            return None  # never started: not a trial of the search
        status, state = "stopped", "FAIL"
        note = "stopped before its first fold ended (out of time)"
    elif done >= ctx["n_folds"]:
        status, state, note = "ok", "COMPLETE", ""
    elif stopped_early:
        status, state = "pruned", "PRUNED"
        note = f"stopped by {ctx['scheduler']} after {done} of {ctx['n_folds']} folds"
    else:
        status, state = "stopped", "FAIL"
        note = f"stopped after {done} of {ctx['n_folds']} folds (out of time)"
    origin = ctx["origins"][number] if number < len(ctx["origins"]) else ctx["origin"]
    started, end = metrics.get("started_at"), metrics.get("reported_at")
    if started is None and metrics.get("timestamp") is not None:  # no fold reported
        end = _num(metrics["timestamp"])
        started = end - _num(metrics.get("time_total_s"))
    return {
        "trial": number,
        "model": f"{family}_trial{number}",
        "family": family,
        "origin": origin,
        "status": status,
        "state": state,
        f"cv_{m}": float(np.mean(scores)) if scores else float("nan"),
        f"cv_{m}_std": float(np.std(scores)) if scores else float("nan"),
        f"train_{m}": float(np.mean(train)) if train else float("nan"),
        "folds_done": done,
        "fold_scores": json.dumps([round(s, 10) for s in scores]),
        "fit_time_s": _num(metrics.get("fit_time")),
        "predict_time_s": _num(metrics.get("predict_time")),
        "cv_time_s": _num(metrics.get("cv_seconds")),
        "params": json.dumps(params, sort_keys=True, default=str),
        "oof_path": None,
        "owner": (f"{metrics.get('hostname')}:{metrics.get('pid')}"
                  if metrics.get("pid") is not None else None),
        "retry_of": None,
        "note": note,
        "started": _iso(None if started is None else _num(started)),
        "completed": _iso(None if end is None else _num(end)),
        "ray_trial_id": trial_id,
        "train_scores": json.dumps([round(s, 10) for s in train]),
    }


def _progress_callback(on_event: Event, stopped: set[str], ctx: dict[str, Any]) -> Any:
    """A Ray Tune callback turning trial starts and ends into ``on_event`` calls (with the
    caller's standard output: Tune's own goes nowhere). Tune pickles its callbacks with the
    experiment's state; the pickled copy carries no hooks (``on_event`` may hold anything)."""
    import sys

    from ray.tune import Callback

    class Progress(Callback):
        def __init__(self, hooks: dict[str, Any]) -> None:
            self._hooks = hooks

        def __getstate__(self) -> dict[str, Any]:
            return {"_hooks": None}

        def _emit(self, event: str, payload: dict[str, Any]) -> None:
            with contextlib.redirect_stdout(self._hooks["stdout"]):
                self._hooks["on_event"](event, payload)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if not self._hooks:
                return
            number = trials.index(trial)
            c = self._hooks["ctx"]
            raw = c["points"][trial.config[POINT]] if POINT in trial.config else trial.config
            try:
                family, params = config_from_params(c["spaces"], raw)
            except (KeyError, ValueError, IndexError):
                family, params = "", dict(raw)
            origin = c["origins"][number] if number < len(c["origins"]) else c["origin"]
            self._emit("trial_start", {"trial": number, "family": family, "params": params,
                                       "origin": origin})

        def _end(self, trials: list, trial: Any, error: Any) -> None:
            if not self._hooks:
                return
            number = trials.index(trial)
            row = _row(number, trial.trial_id, trial.config, trial.last_result or {}, error,
                       stopped_early=trial.trial_id in self._hooks["stopped"],
                       ctx=self._hooks["ctx"])
            if row is not None:
                self._hooks["ctx"]["ended"].add(number)
                self._emit("trial_end", {"trial": number, "row": row})

        def on_trial_complete(self, iteration: int, trials: list, trial: Any,
                              **info: Any) -> None:
            self._end(trials, trial, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._end(trials, trial, trial.error_msg or "the trial failed")

    return Progress({"on_event": on_event, "stdout": sys.stdout, "stopped": stopped,
                     "ctx": ctx})


def _save_oof(result: Any, path: Path) -> str | None:
    """Copy the trial's out-of-fold predictions from its checkpoint to ``path``."""
    from mlsmith.tune._runner import _save_npy

    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as folder:
        src = Path(folder) / "oof.npy"
        if not src.exists():
            return None
        _save_npy(path, np.load(src))
    return str(path)


def _columns(metric: str) -> list[str]:
    return ["trial", "model", "family", "origin", "status", "state", f"cv_{metric}",
            f"cv_{metric}_std", f"train_{metric}", "folds_done", "fold_scores", "fit_time_s",
            "predict_time_s", "cv_time_s", "params", "oof_path", "owner", "retry_of", "note",
            "started", "completed", "ray_trial_id", "train_scores"]


def tune_ray(bundle: str, families: list[str], *, metric: str | None = None,
             strategy: str = "tpe", n_trials: int | None = None, deadline: float | None = None,
             seed: int = 0, n_jobs: int | None = None, cores_per_trial: int | None = None,
             pruner: str = "asha", grid_points: int = 3,
             oof_dir: str | os.PathLike[str] | None = None,
             trial_time_limit: float | None = None, initial: list[dict[str, Any]] | None = None,
             workdir: str | os.PathLike[str] | None = None, ray_address: str | None = None,
             num_cpus: int | None = None, on_event: Event | None = None) -> Any:
    """Search the families' spaces as Ray Tune trials with ASHA; return the trial table.

    Parameters
    ----------
    bundle : str
        Path of the data bundle (:func:`mlsmith.tune.prepare_bundle`); it is loaded here and
        sent to the trials through Ray's object store.
    families : list of str
        Model families to search (several: a ``family`` parameter picks one per trial).
    metric, strategy, n_trials, deadline, seed, grid_points, oof_dir, trial_time_limit, initial
        As in :func:`mlsmith.tune.tune`. ``deadline`` (a ``time.time()`` value) becomes Tune's
        ``time_budget_s``; ``trial_time_limit`` stops a trial at its next report past it.
    n_jobs : int, optional
        Most trials at once (default: as many as the cluster's CPUs allow).
    cores_per_trial : int, optional
        CPUs one trial asks Ray for (default 1); its folds run that many side by side, and it
        reports after each such round.
    pruner : {"asha", "hyperband", "sha", "median", "none"}
        ``asha`` (also for ``hyperband`` and ``sha``): Ray's ASHA on the folds done, keeping
        the best third at folds 1, 3, 9...; ``median``: Ray's median stopping rule; ``none``.
    workdir : path, optional
        Ray Tune's storage folder (trial results and checkpoints); default a temporary folder,
        removed. On a cluster of several machines, a folder all of them share.
    ray_address : str, optional
        Address of a running Ray cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
        default: a local Ray instance started for this search (``num_cpus`` CPUs, default
        ``n_jobs * cores_per_trial`` or all) and shut down after it. A Ray instance already
        initialized in this process is used as it is and left running.

    Returns
    -------
    pandas.DataFrame
        One row per trial that ran, in creation order: the columns of
        :func:`mlsmith.tune.trials_table` (``origin`` is ``search:<strategy>/ray`` or
        ``initial/ray``; ``status`` ok, pruned (stopped by the scheduler), stopped (out of
        time) or failed), plus ``ray_trial_id`` and ``train_scores``. ``table.attrs["mlsmith"]``
        holds the task, metric and families, for :func:`to_results_ray`.
    """
    ray = import_ray()
    restore = _quiet_optuna()
    try:
        return _tune_ray(ray, bundle, families, metric=metric, strategy=strategy,
                         n_trials=n_trials, deadline=deadline, seed=seed, n_jobs=n_jobs,
                         cores_per_trial=cores_per_trial, pruner=pruner, grid_points=grid_points,
                         oof_dir=oof_dir, trial_time_limit=trial_time_limit, initial=initial,
                         workdir=workdir, ray_address=ray_address, num_cpus=num_cpus,
                         on_event=on_event)
    finally:
        restore()


def _tune_ray(ray: Any, bundle: str, families: list[str], *, metric: str | None, strategy: str,
              n_trials: int | None, deadline: float | None, seed: int, n_jobs: int | None,
              cores_per_trial: int | None, pruner: str, grid_points: int,
              oof_dir: str | os.PathLike[str] | None, trial_time_limit: float | None,
              initial: list[dict[str, Any]] | None, workdir: str | os.PathLike[str] | None,
              ray_address: str | None, num_cpus: int | None, on_event: Event | None) -> Any:
    import joblib
    import pandas as pd
    from ray import tune as rtune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from mlsmith.metrics import get_metric
    from mlsmith.tune._data import bundle_info
    from mlsmith.tune._tune import search_spaces

    strategy = (strategy or "").lower()
    if strategy not in _STRATEGIES:
        from mlsmith.errors import did_you_mean

        raise ConfigError(f"unknown strategy {strategy!r}: use one of {', '.join(_STRATEGIES)}."
                          + did_you_mean(strategy, _STRATEGIES))
    info = bundle_info(bundle)
    m = get_metric(metric or info["default_metric"], info["task"])
    mode = "max" if m.greater_is_better else "min"
    spaces = search_spaces(list(families), info["task"])
    n_folds = int(info["n_folds"])
    if n_trials is not None and int(n_trials) < 1:
        raise ConfigError(f"--trials must be at least 1: got {n_trials}.")
    if n_jobs is not None and int(n_jobs) < 1:
        raise ConfigError(f"--jobs must be at least 1: got {n_jobs}.")
    cores = max(1, int(cores_per_trial or 1))
    init_points = []
    for cfg in initial or []:
        cfg = dict(cfg)
        family = cfg.pop("family", next(iter(spaces)))
        init_points.append(fixed_params(spaces, family, cfg))
    origin = f"search:{strategy}/ray"
    points: list[dict[str, Any]] = []
    if strategy == "grid":
        points = init_points + [fixed_params(spaces, f, p)
                                for f, p in grid_configs(spaces, grid_points)]
        if n_trials is not None:
            points = points[: int(n_trials)]
        n_trials = len(points)
    if n_trials is None and deadline is None:
        raise ConfigError("give a number of trials (--trials) or a time limit (--time-limit): "
                          "the search needs to know when to stop.")
    origins = ["initial/ray"] * len(init_points)
    scheduler, stopped = _scheduler(pruner, n_folds)
    ctx = {"metric": m.name, "spaces": spaces, "points": points, "n_folds": n_folds,
           "origins": origins, "origin": origin, "ended": set(),
           "scheduler": "the median stopping rule" if (pruner or "").lower() == "median" else "ASHA"}
    if strategy == "grid":
        param_space: dict[str, Any] = {POINT: rtune.grid_search(list(range(len(points))))}
        search_alg = BasicVariantGenerator()
        num_samples = 1
    elif strategy == "random":
        param_space = _random_space(rtune, spaces)
        search_alg = BasicVariantGenerator(points_to_evaluate=init_points or None,
                                           random_state=int(seed))
        num_samples = -1 if n_trials is None else int(n_trials)
    else:
        param_space = {}
        search_alg = _optuna_searcher(spaces, mode, int(seed), n_folds, init_points)
        num_samples = -1 if n_trials is None else int(n_trials)

    data = joblib.load(bundle)
    setup = {"spaces": spaces, "points": points, "n_folds": n_folds, "cores": cores,
             "metric": m.name, "sign": 1.0 if m.greater_is_better else -1.0,
             "seed": int(seed), "deadline": deadline,
             "trial_time_limit": trial_time_limit}
    own_work = workdir is None
    work = Path(tempfile.mkdtemp(prefix="mlsmith-ray-")) if own_work else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    if num_cpus is None and n_jobs is not None:
        num_cpus = int(n_jobs) * cores
    started = _connect(ray, ray_address, num_cpus)
    try:
        budget = None if deadline is None else deadline - time.time()
        if budget is not None and budget < 1.0:
            rows: list[dict[str, Any]] = []
        else:
            _, _, run_config_cls = _api()
            callbacks = [] if on_event is None else [_progress_callback(on_event, stopped, ctx)]
            stop = None
            if trial_time_limit:
                limit = float(trial_time_limit)

                def stop(trial_id: str, result: dict) -> bool:
                    return _num(result.get("cv_seconds")) > limit

            trainable = rtune.with_resources(
                rtune.with_parameters(_trainable, setup=setup, data=data), {"cpu": cores})
            tuner = rtune.Tuner(
                trainable, param_space=param_space,
                tune_config=rtune.TuneConfig(
                    metric=SCORE, mode=mode, search_alg=search_alg, scheduler=scheduler,
                    num_samples=num_samples, max_concurrent_trials=n_jobs,
                    time_budget_s=budget, reuse_actors=True),
                run_config=run_config_cls(
                    name="mlsmith", storage_path=str(work.resolve()), verbose=0,
                    callbacks=callbacks, stop=stop))
            # Tune prints its experiment header whatever the verbosity: progress is
            # mlsmith's (on_event), so Tune's output goes nowhere
            tune_log = logging.getLogger("ray.tune")
            level = tune_log.level
            tune_log.setLevel(max(level, logging.WARNING))
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    results = tuner.fit()
            finally:
                tune_log.setLevel(level)
            rows = _collect(results, stopped, ctx, oof_dir)
            if on_event is not None:  # trials Tune ended with the experiment (out of time)
                for row in rows:
                    if row["trial"] not in ctx["ended"]:
                        on_event("trial_end", {"trial": row["trial"], "row": row})
    finally:
        if started:
            ray.shutdown()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=_columns(m.name))
    table.attrs[ATTR] = {"backend": "ray", "task": info["task"], "metric": m.name,
                         "families": list(spaces), "n_folds": n_folds, "strategy": strategy}
    return table


def _collect(results: Any, stopped: set[str], ctx: dict[str, Any],
             oof_dir: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    rows = []
    for number in range(len(results)):
        res = results[number]
        metrics = dict(res.metrics or {})
        trial_id = metrics.get("trial_id") or Path(str(res.path)).name
        row = _row(number, trial_id, dict(res.config or {}), metrics, res.error,
                   stopped_early=trial_id in stopped, ctx=ctx)
        if row is None:
            continue
        if row["status"] == "ok" and oof_dir is not None:
            row["oof_path"] = _save_oof(res, Path(oof_dir) / f"trial_{number}.npy")
        rows.append(row)
    return rows


def _restore(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters read back from the table's JSON: Choice options that JSON changed (tuples
    became lists) are mapped back to the declared option."""
    out = dict(params)
    for name, dim in space.items():
        if name in out and isinstance(dim, Choice) and not _plain(dim.options):
            text = json.dumps(out[name], sort_keys=True)
            labels = _labels(dim)
            if out[name] not in dim.options and text in labels:
                out[name] = dim.options[labels.index(text)]
    return out


def to_results_ray(table: Any, *, task: str | None = None, metric: str | None = None) -> list[Any]:
    """The completed trials of a Ray trial table as :class:`mlsmith.select.Result` objects
    (scores signed so that higher is better, out-of-fold predictions loaded), for
    ``choose_final`` and the ensemble, like :func:`mlsmith.tune.to_results` for a study.
    Trials without saved predictions are left out.

    ``task`` and ``metric`` default to ``table.attrs["mlsmith"]`` (set by :func:`tune_ray`);
    a table read back from CSV needs them given (``metric`` otherwise from its ``cv_``
    column)."""
    from mlsmith.metrics import get_metric
    from mlsmith.models import get_family
    from mlsmith.select import Candidate, Result

    attrs = dict(getattr(table, "attrs", {}).get(ATTR) or {})
    metric = metric or attrs.get("metric")
    if metric is None:
        cols = [c for c in table.columns if c.startswith("cv_") and not c.endswith("_std")
                and c != "cv_time_s"]
        if len(cols) != 1:
            raise ConfigError("cannot tell the trial table's metric: pass metric=...")
        metric = cols[0][3:]
    task = task or attrs.get("task")
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
    out = []
    for _, row in table.iterrows():
        path = row.get("oof_path")
        if row["status"] != "ok" or not isinstance(path, str) or not Path(path).exists():
            continue
        params = json.loads(row["params"])
        if task is not None:
            params = _restore(get_family(row["family"]).search_space(task), params)
        cand = Candidate(row["model"], row["family"], params, origin=row["origin"])
        train = json.loads(row["train_scores"]) if isinstance(row.get("train_scores"), str) else []
        out.append(Result(cand, "ok",
                          cv_scores=[sign * s for s in json.loads(row["fold_scores"])],
                          train_scores=[sign * s for s in train], oof=np.load(path),
                          fit_time=_num(row["fit_time_s"]),
                          predict_time=_num(row["predict_time_s"]),
                          total_time=_num(row["cv_time_s"])))
    return out
