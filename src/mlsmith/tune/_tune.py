"""The search entry points: :func:`tune` (coordinator), :func:`run_worker` (a process joining a
shared study), and the trial table.

A search is one Optuna study. :func:`prepare_study` creates it (or loads it, to resume) and
stores a :class:`SearchSpec` in its user attributes: the data bundle, families, metric, folds,
seed, strategy and budget. Any number of processes then run trials against it, each trial in a
worker process of its own. The trial budget is shared: a process starts a trial only while the
study holds fewer than ``n_trials`` finished or running trials, and a trial created in a race
past that count is marked ``surplus`` and not run, so parallel, resumed and distributed searches
end with exactly ``n_trials`` trials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError, DataError
from mlsmith.tune._runner import SPEC_ATTR, NotEvaluated, SearchSpec, TrialRunner, trial_row
from mlsmith.tune._spaces import check_space, fixed_params, grid_configs
from mlsmith.tune._study import (
    EPOCH_STEPS,
    STRATEGIES,
    consumed_numbers,
    create_study,
    import_optuna,
    make_pruner,
    make_sampler,
    open_storage,
    recover_stale,
    trial_attrs,
)

__all__ = ["tune", "prepare_study", "run_worker", "trials_table", "to_results", "load_study",
           "search_spaces"]

log = logging.getLogger("mlsmith")

Event = Callable[[str, dict[str, Any]], None]
#: seconds between checks while waiting for other processes' trials to end
POLL_S = 0.5
#: where the trials run: an Optuna study (this machine, or shared storage) or Ray Tune
BACKENDS = ("optuna", "ray")


def search_spaces(families: list[str], task: str) -> dict[str, Any]:
    """The search space of each family for ``task``, by canonical family name."""
    from mlsmith.models import families_for

    out = {}
    for fam in families_for(task, list(families)):
        space = fam.search_space(task)
        check_space(space, where=f"{fam.name} search space")
        if not space:
            raise ConfigError(f"model {fam.name!r} declares no search space: nothing to tune.")
        out[fam.name] = space
    return out


def _direction(metric: str) -> str:
    from mlsmith.metrics import get_metric

    return "maximize" if get_metric(metric).greater_is_better else "minimize"


def _quiet_optuna() -> Callable[[], None]:
    """Silence Optuna's per-trial log lines (mlsmith reports trials itself); returns a restore."""
    optuna = import_optuna()
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return lambda: optuna.logging.set_verbosity(before)


def _sampler_seed(seed: int, n_existing: int, distributed: bool) -> int:
    """The sampler's seed: ``seed`` for a fresh study, so one process with a fixed seed asks the
    same configurations every time; a seed derived from the trials already there when resuming
    (else a resumed random search would repeat its first draws); a fresh one for a distributed
    worker (else two workers would draw the same points)."""
    parts = [int(seed), int(n_existing)]
    if distributed:
        parts += [os.getpid(), time.time_ns() % 2**32]
    elif n_existing == 0:
        return int(seed)
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def prepare_study(bundle: str, families: list[str], *, metric: str | None = None,
                  strategy: str = "tpe", n_trials: int | None = None,
                  deadline: float | None = None, seed: int = 0, storage: Any = None,
                  study_name: str = "mlsmith", pruner: str = "hyperband", grid_points: int = 3,
                  trial_time_limit: float | None = None, oof_dir: str | None = None,
                  initial: list[dict[str, Any]] | None = None,
                  source: dict[str, Any] | None = None) -> tuple[Any, Any, SearchSpec]:
    """Create the study (or load it to resume) and store what workers need.

    Returns ``(study, storage, spec)``. The grid points (strategy ``grid``) and the ``initial``
    configurations are queued once, when the study is created. A loaded study must search the
    same families, metric, folds and strategy; its budget (``n_trials``, ``deadline``) is
    replaced by this call's.
    """
    from mlsmith.tune._data import bundle_info

    strategy = (strategy or "").lower()
    if strategy not in STRATEGIES:
        make_sampler(strategy, seed)  # raises the error with the hint
    info = bundle_info(bundle)
    metric = metric or info["default_metric"]
    from mlsmith.metrics import get_metric

    metric = get_metric(metric, info["task"]).name
    spaces = search_spaces(families, info["task"])
    names = list(spaces)
    configs = grid_configs(spaces, grid_points) if strategy == "grid" else []
    if n_trials is not None and int(n_trials) < 1:
        raise ConfigError(f"--trials must be at least 1: got {n_trials}.")
    if strategy == "grid":
        n_trials = len(configs) if n_trials is None else min(int(n_trials), len(configs))
    if n_trials is None and deadline is None:
        raise ConfigError("give a number of trials (--trials) or a time limit (--time-limit): "
                          "the search needs to know when to stop.")
    spec = SearchSpec(bundle=str(Path(bundle).resolve()), families=names, metric=metric,
                      task=info["task"], n_folds=info["n_folds"], strategy=strategy, seed=seed,
                      pruner=pruner, grid_points=grid_points,
                      n_trials=None if n_trials is None else int(n_trials), deadline=deadline,
                      trial_time_limit=trial_time_limit,
                      oof_dir=None if oof_dir is None else str(Path(oof_dir).resolve()),
                      **(source or {}))
    make_pruner(pruner, info["n_folds"])  # validate the name before touching the store
    store = open_storage(storage)
    study = create_study(study_name, store, _direction(metric))
    old = study.user_attrs.get(SPEC_ATTR)
    if old:
        prev = SearchSpec.from_attr(old)
        for key in ("families", "metric", "n_folds", "strategy", "task"):
            if getattr(prev, key) != getattr(spec, key):
                raise ConfigError(
                    f"study {study_name!r} in {storage} was started with {key} "
                    f"{getattr(prev, key)!r}, not {getattr(spec, key)!r}: resume it with the "
                    f"same options or use another --study-name / --storage.")
        prev.n_trials, prev.deadline = spec.n_trials, spec.deadline
        prev.trial_time_limit = spec.trial_time_limit
        if Path(spec.bundle).exists():
            prev.bundle = spec.bundle
        prev.oof_dir = spec.oof_dir or prev.oof_dir
        spec = prev
        study.set_user_attr(SPEC_ATTR, spec.to_attr())
        return study, store, spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # enqueue_trial is experimental in some releases
        for cfg in initial or []:
            cfg = dict(cfg)
            family = cfg.pop("family", names[0])
            study.enqueue_trial(fixed_params(spaces, family, cfg),
                                user_attrs={"origin": "initial"}, skip_if_exists=True)
        for family, params in configs:
            study.enqueue_trial(fixed_params(spaces, family, params),
                                user_attrs={"origin": "search:grid"})
    study.set_user_attr(SPEC_ATTR, spec.to_attr())
    return study, store, spec


def _drive(study: Any, storage: Any, runner: TrialRunner, n_jobs: int,
           wait_for_others: bool) -> None:
    """Run trials until the budget, the deadline or this process's share is reached; then,
    with ``wait_for_others``, wait for other processes' running trials (retrying those whose
    process dies) so the returned table is complete."""
    optuna = import_optuna()
    running = optuna.trial.TrialState.RUNNING
    idle = 0
    # Against a deadline, one thread more than workers: the next trial is sampled while the
    # current one fits (TPE takes milliseconds per trial, more as the study grows, as long as
    # a small model's whole fit). Without a deadline (--trials N alone) trials run strictly one
    # after another per worker, so the same seed gives the same trials.
    threads = max(1, n_jobs) + (1 if runner.spec.deadline is not None else 0)
    while True:
        recover_stale(study, storage)
        runner._refresh_spec()
        if runner.own_limit_reached() or runner.converged or runner.time_left() < 1.0:
            return
        if not runner.budget_done():
            before = len(runner.started)
            left = runner.time_left()
            with _interruptible(runner, threads):
                study.optimize(runner, n_jobs=threads, catch=(NotEvaluated,),
                               callbacks=[runner.after_trial],
                               timeout=None if left == float("inf") else max(left, 0.0))
            if len(runner.started) == before:
                idle += 1
                time.sleep(min(POLL_S * idle, 5.0))
            else:
                idle = 0
            continue
        if not wait_for_others:
            return
        others = [t for t in study.get_trials(deepcopy=False, states=(running,))
                  if t.user_attrs.get("owner") != runner.owner]
        if not others:
            return
        time.sleep(POLL_S)


@contextlib.contextmanager
def _interruptible(runner: TrialRunner, threads: int) -> Iterator[None]:
    """With trials in threads, Ctrl-C reaches the main thread only, and Optuna's thread pool
    waits for the running trials: kill their worker processes first, so they end at once and
    are queued again (:meth:`TrialRunner.interrupt`)."""
    if threads == 1 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        runner.interrupt()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(study: Any, storage: Any, spec: SearchSpec, *, n_jobs: int, cores_per_trial: int | None,
         workdir: str | None, oof_dir: str | None, max_trials: int | None, on_event: Event | None,
         wait_for_others: bool, distributed_seed: bool,
         workers: list[Any] | None = None, patience: int | None = None) -> TrialRunner | None:
    from mlsmith.tune._data import bundle_info

    info = bundle_info(spec.bundle)
    if info["n_folds"] != spec.n_folds:
        raise DataError(f"the data bundle {spec.bundle} has {info['n_folds']} folds but the "
                        f"study was started with {spec.n_folds}: use the study's bundle.")
    spaces = search_spaces(spec.families, spec.task)
    recover_stale(study, storage)
    trials = study.get_trials(deepcopy=False)
    n_existing = len(trials)
    optuna = import_optuna()
    running = any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    if spec.n_trials is not None and len(consumed_numbers(trials)) >= spec.n_trials \
            and not (wait_for_others and running):
        return None  # nothing left to run or wait for: start no worker process
    seed = _sampler_seed(spec.seed, n_existing, distributed_seed)
    # The grid strategy's points are queued trials (each taken exactly once, by whichever
    # process asks first); Optuna's GridSampler would instead let parallel processes pick the
    # same point. Its sampler only has to exist.
    strategy = "random" if spec.strategy == "grid" else spec.strategy
    study.sampler = make_sampler(strategy, seed, conditional=len(spaces) > 1)
    study.pruner = make_pruner(spec.pruner, spec.n_folds)
    n_jobs = max(1, int(n_jobs))
    from mlsmith.select._budget import available_cores

    cores = cores_per_trial or max(1, available_cores() // n_jobs)
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="mlsmith-tune-")) if own_tmp else Path(workdir)
    runner = TrialRunner(study, storage, spec, spaces, n_rows=info["n_rows"], n_workers=n_jobs,
                         cores_per_trial=cores, workdir=work, oof_dir=oof_dir or spec.oof_dir,
                         max_trials=max_trials, on_event=on_event, workers=workers,
                         patience=patience)
    try:
        _drive(study, storage, runner, n_jobs, wait_for_others)
        runner.close()
    except BaseException:
        runner.kill()
        raise
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    return runner


def _bundle_path(data: Any, workdir: str | None) -> tuple[str, str | None]:
    """A path to the bundle ``data`` (a path, or a dict written to a scratch file)."""
    if isinstance(data, dict):
        import joblib

        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlsmith-bundle-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "data.joblib"
        joblib.dump(data, path)
        return str(path), None if workdir else str(folder)
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), None
    raise DataError(f"tune takes a data bundle (a dict with schema, X, y, folds, or its joblib "
                    f"file): got {type(data).__name__}. Make one with mlsmith.tune.prepare_bundle.")


def tune(data: Any, families: list[str] | str | None = None, *, metric: str | None = None,
         strategy: str = "tpe", n_trials: int | None = None, time_limit: float | None = None,
         deadline: float | None = None, seed: int = 0, n_jobs: int | None = None,
         cores_per_trial: int | None = None, storage: Any = None, study_name: str = "mlsmith",
         pruner: str = "hyperband", oof_dir: str | os.PathLike[str] | None = None,
         trial_time_limit: float | None = None, grid_points: int = 3,
         initial: list[dict[str, Any]] | None = None, workdir: str | os.PathLike[str] | None = None,
         wait_for_others: bool = True, source: dict[str, Any] | None = None,
         on_event: Event | None = None, workers: list[Any] | None = None,
         backend: str = "optuna", ray_address: str | None = None,
         patience: int | None = None) -> Any:
    """Search the families' spaces by cross-validation and return the trial table.

    Parameters
    ----------
    data : str, path or dict
        The data bundle: a dict with ``schema``, ``X``, ``y`` and ``folds`` (what ``fit``
        writes, or :func:`prepare_bundle`), or the path of its joblib file. The folds are the
        CV scheme.
    families : list of str or str, optional
        Model families to search (default: the family list of the default portfolio). With
        several, a categorical ``family`` parameter picks one per trial.
    metric : str, optional
        The score (default: the task's, ROC AUC / log loss / RMSE).
    strategy : {"tpe", "random", "grid"}
        TPE (multivariate, constant liar), random, or every point of the grid
        (:func:`grid` with ``grid_points`` per numeric parameter), each exactly once.
    n_trials : int, optional
        Trials for the whole study, over every process sharing it (finished or running; a
        resumed study counts the trials it has). The grid strategy defaults to the grid size.
    time_limit, deadline : float, optional
        Seconds from now, or a ``time.time()`` value, after which no trial starts and running
        ones are stopped. Give ``n_trials``, a time or both.
    seed : int
        Seeds the sampler and the models: with ``n_trials``, a fixed seed and ``n_jobs=1``, two
        runs try the same configurations and get the same scores.
    n_jobs : int, optional
        Trials run side by side in this process, each in its own worker process (default 1).
        With ``backend="ray"``: most trials at once (default: as many as the cluster's CPUs
        allow).
    cores_per_trial : int, optional
        Folds of one trial fitted side by side (default: cores / ``n_jobs``); also the number of
        folds between two pruning decisions.
    storage : str, path or None
        The trial store: a file path (journal, one machine; a rerun after a kill continues),
        ``postgresql://...`` or ``sqlite:///...`` (shared with ``mlsmith worker`` processes), or
        None (in memory).
    study_name : str
        The study in the store; an existing one is resumed.
    pruner : {"hyperband", "sha", "median", "none"}
        Stops poor configurations after their first folds.
    oof_dir : path, optional
        Folder for each completed trial's out-of-fold predictions (``trial_<n>.npy``).
    trial_time_limit : float, optional
        Seconds one trial may take; past it the trial is stopped (its worker killed).
    grid_points : int
        Values per numeric parameter in the grid strategy.
    initial : list of dict, optional
        Configurations to evaluate first (``{"family": name, **params}``; ``family`` may be
        left out with one family), queued once when the study is created.
    workdir : path, optional
        Scratch folder for the worker processes (default: a temporary folder, removed).
    wait_for_others : bool
        After its own trials, wait for the trials other processes are still running.
    source : dict, optional
        ``{"source": path, "target": col, "task_override": ..., "drop": [...]}``: how a worker on
        another machine can rebuild the bundle with :func:`prepare_bundle` when the bundle's
        path is not visible there.
    on_event : callable, optional
        ``f(event, payload)``: ``trial_start`` (trial, family, params, origin) and ``trial_end``
        (trial, row), called from the trial threads.
    backend : {"optuna", "ray"}
        ``optuna`` (default): an Optuna study, trials in worker processes of this machine (and
        of ``mlsmith worker`` processes sharing ``storage``). ``ray``: Ray Tune trials with ASHA
        scheduling on a Ray cluster (:func:`mlsmith.tune._ray.tune_ray`; needs
        ``mlsmith[scale]``); ``storage``, ``study_name``, ``wait_for_others``, ``source`` and
        ``workers`` do not apply, and ``pruner`` ``hyperband``/``sha`` mean ASHA. Its table
        goes to :func:`to_results` like a study.
    ray_address : str, optional
        With ``backend="ray"``: a running Ray cluster's address (``auto``, ``ray://host:10001``);
        default a local Ray instance, started for the search and shut down after it.
    patience : int, optional
        Stop early once this many trials in a row brought no gain of more than 0.1% of the best
        score's error (Optuna backend, this process's trials): the search has converged.

    Returns
    -------
    pandas.DataFrame
        One row per trial (see :func:`trials_table`), in trial order.

    Examples
    --------
    >>> from mlsmith.tune import prepare_bundle, tune
    >>> prepare_bundle("train.csv", "label", "bundle.joblib")  # doctest: +SKIP
    >>> table = tune("bundle.joblib", ["lightgbm"], n_trials=50,
    ...              storage="runs/x/study/journal.log")  # doctest: +SKIP
    >>> table.sort_values("cv_roc_auc", ascending=False).head()  # doctest: +SKIP
    """
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ConfigError(f"patience must be a whole number of trials, 1 or more: got "
                          f"{patience!r}.")
    if time_limit is not None:
        if not time_limit > 0:
            raise ConfigError(f"--time-limit must be a positive number of seconds: got {time_limit}.")
        end = time.time() + float(time_limit)
        deadline = end if deadline is None else min(deadline, end)
    backend = (backend or "optuna").lower()
    if backend not in BACKENDS:
        from mlsmith.errors import did_you_mean

        raise ConfigError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}."
                          + did_you_mean(backend, BACKENDS))
    if backend == "ray":
        return _tune_on_ray(data, families, metric=metric, strategy=strategy, n_trials=n_trials,
                            deadline=deadline, seed=seed, n_jobs=n_jobs,
                            cores_per_trial=cores_per_trial, storage=storage, pruner=pruner,
                            oof_dir=oof_dir, trial_time_limit=trial_time_limit,
                            grid_points=grid_points, initial=initial, workdir=workdir,
                            ray_address=ray_address, on_event=on_event)
    n_jobs = 1 if n_jobs is None else n_jobs
    if n_jobs < 1:
        raise ConfigError(f"--jobs must be at least 1: got {n_jobs}.")
    bundle, scratch = _bundle_path(data, None if workdir is None else os.fspath(workdir))
    restore = _quiet_optuna()
    try:
        if not families:
            from mlsmith.models import families_for
            from mlsmith.tune._data import bundle_info

            families = [f.name for f in families_for(bundle_info(bundle)["task"])]
        study, store, spec = prepare_study(
            bundle, list(families), metric=metric, strategy=strategy, n_trials=n_trials,
            deadline=deadline, seed=seed, storage=storage, study_name=study_name, pruner=pruner,
            grid_points=grid_points, trial_time_limit=trial_time_limit,
            oof_dir=None if oof_dir is None else os.fspath(oof_dir), initial=initial,
            source=source)
        _run(study, store, spec, n_jobs=n_jobs, cores_per_trial=cores_per_trial,
             workdir=None if workdir is None else os.fspath(workdir), oof_dir=None,
             max_trials=None, on_event=on_event, wait_for_others=wait_for_others,
             distributed_seed=False, workers=workers, patience=patience)
        return trials_table(study)
    finally:
        restore()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _tune_on_ray(data: Any, families: list[str] | None, *, storage: Any,
                 workdir: str | os.PathLike[str] | None, **kwargs: Any) -> Any:
    """:func:`tune` with ``backend="ray"``: the bundle path, default families, then
    :func:`mlsmith.tune._ray.tune_ray`."""
    from mlsmith.tune._ray import import_ray, tune_ray

    import_ray()  # the missing extra is the first thing to hear about
    if storage is not None:
        raise ConfigError("a trial store (--storage) is for the Optuna backend: Ray Tune keeps "
                          "its trials itself. Leave --storage out with --backend ray.")
    bundle, scratch = _bundle_path(data, None if workdir is None else os.fspath(workdir))
    try:
        if not families:
            from mlsmith.models import families_for
            from mlsmith.tune._data import bundle_info

            families = [f.name for f in families_for(bundle_info(bundle)["task"])]
        ray_work = None if workdir is None else os.path.join(os.fspath(workdir), "ray")
        return tune_ray(bundle, list(families), workdir=ray_work, **kwargs)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def run_worker(study_name: str, storage: Any, *, n_jobs: int = 1, max_trials: int | None = None,
               cores_per_trial: int | None = None, workdir: str | os.PathLike[str] | None = None,
               oof_dir: str | os.PathLike[str] | None = None,
               on_event: Event | None = None) -> Any:
    """Join the study ``study_name`` in ``storage`` and run its trials until the shared trial
    count or the deadline is reached (or this process ran ``max_trials``); then return.

    Everything else (data, families, metric, folds, seed, strategy, budget) comes from the study,
    where :func:`tune` stored it. The data bundle is read from the path the coordinator used; if
    that path does not exist here, the bundle is rebuilt from the source table the coordinator
    recorded (same options, so the same folds), into ``workdir``. Out-of-fold predictions go
    to the study's ``oof_dir`` (a folder every machine shares, for the ensemble) unless
    ``oof_dir`` is given.

    Returns the trial table of the trials this process ran.

    Examples
    --------
    >>> run_worker("mlsmith", "postgresql://user@db/studies")  # doctest: +SKIP
    """
    restore = _quiet_optuna()
    try:
        return _run_worker(study_name, storage, n_jobs=n_jobs, max_trials=max_trials,
                           cores_per_trial=cores_per_trial, workdir=workdir, oof_dir=oof_dir,
                           on_event=on_event)
    finally:
        restore()


def _run_worker(study_name: str, storage: Any, *, n_jobs: int, max_trials: int | None,
                cores_per_trial: int | None, workdir: str | os.PathLike[str] | None,
                oof_dir: str | os.PathLike[str] | None, on_event: Event | None) -> Any:
    optuna = import_optuna()
    store = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        from mlsmith.errors import did_you_mean

        raise ConfigError(f"no study {study_name!r} in the storage." + did_you_mean(study_name, names)
                          + " Start one with 'mlsmith tune ... --storage URL'.") from None
    attr = study.user_attrs.get(SPEC_ATTR)
    if not attr:
        raise ConfigError(f"study {study_name!r} was not created by mlsmith tune: it does not say "
                          f"what to fit. Start it with 'mlsmith tune ... --storage URL'.")
    spec = SearchSpec.from_attr(attr)
    scratch = None
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="mlsmith-worker-")
        work = Path(scratch)
    else:
        work = Path(workdir)
    try:
        if not Path(spec.bundle).exists():
            if not (spec.source and spec.target and Path(spec.source).exists()):
                raise DataError(
                    f"the study's data bundle {spec.bundle} is not on this machine"
                    + (f" and neither is its source table {spec.source}" if spec.source else "")
                    + ": put it on a shared folder at the same path.")
            from mlsmith.tune._data import prepare_bundle

            local = work / "data.joblib"
            prepare_bundle(spec.source, spec.target, local, folds=spec.n_folds, seed=spec.seed,
                           task=spec.task_override, drop=spec.drop)
            spec.bundle = str(local)
        runner = _run(study, store, spec, n_jobs=n_jobs, cores_per_trial=cores_per_trial,
                      workdir=str(work / "workers"),
                      oof_dir=None if oof_dir is None else os.fspath(oof_dir),
                      max_trials=max_trials, on_event=on_event, wait_for_others=False,
                      distributed_seed=True)
        table = trials_table(study)
        mine = runner.started if runner is not None else []
        return table[table["trial"].isin(mine)].reset_index(drop=True)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def trials_table(study: Any, *, include_waiting: bool = False) -> Any:
    """The trial table of ``study``: one row per trial, in trial order (see
    :func:`mlsmith.tune._runner.trial_row` for the columns). Queued trials that never started
    and trials created past the budget (``surplus``, ``skipped``) are left out unless
    ``include_waiting``."""
    import pandas as pd

    optuna = import_optuna()
    attr = study.user_attrs.get(SPEC_ATTR)
    if not attr:
        raise ConfigError(f"study {study.study_name!r} was not created by mlsmith tune.")
    spec = SearchSpec.from_attr(attr)
    try:
        spaces = search_spaces(spec.families, spec.task)
    except Exception:  # noqa: BLE001 - a family not installed here: raw Optuna parameters
        spaces = None
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not include_waiting and (t.state == optuna.trial.TrialState.WAITING
                                    or trial_attrs(t).get("status") in ("surplus", "skipped")):
            continue
        rows.append(trial_row(t, spec, spaces))
    if not rows:
        from mlsmith.metrics import get_metric

        m = get_metric(spec.metric).name
        return pd.DataFrame(columns=["trial", "model", "family", "origin", "status", "state",
                                     f"cv_{m}", f"cv_{m}_std", f"train_{m}", "folds_done",
                                     "fold_scores", "fit_time_s", "predict_time_s", "cv_time_s",
                                     "params", "oof_path", "owner", "retry_of", "note",
                                     "started", "completed"])
    return pd.DataFrame(rows)


def load_study(storage: Any, study_name: str = "mlsmith") -> Any:
    """The study ``study_name`` in ``storage`` (anything :func:`open_storage` accepts)."""
    optuna = import_optuna()
    try:
        return optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        raise ConfigError(f"no study {study_name!r} in {storage}.") from None


def epoch_curves(storage: Any, study_name: str = "mlsmith") -> dict[str, dict[str, list]]:
    """Per-epoch validation curves of the study's network trials, for experiment tracking.

    Returns ``{model id: {"fold<k>_epoch_score": [(epoch, value), ...]}}`` (``k`` from 1) for
    every trial that reported epochs (see :mod:`mlsmith.tune._runner`): the value the epoch
    pruner judged, validation accuracy for classification and minus the RMSE for regression,
    negated when the study minimizes. Other trials are left out.
    """
    study = load_study(storage, study_name)
    out: dict[str, dict[str, list]] = {}
    for t in study.get_trials(deepcopy=False):
        curves: dict[str, list] = {}
        for step, value in sorted(t.intermediate_values.items()):
            if step > EPOCH_STEPS and step % EPOCH_STEPS:
                curves.setdefault(f"fold{step // EPOCH_STEPS}_epoch_score", []).append(
                    (step % EPOCH_STEPS, float(value)))
        if curves:
            family = trial_attrs(t).get("family", "neural")
            out[f"{family}_trial{t.number}"] = curves
    return out


def to_results(study: Any, study_name: str = "mlsmith") -> list[Any]:
    """The study's completed trials as :class:`mlsmith.select.Result` objects (scores signed
    so that higher is better, out-of-fold predictions loaded), for ``choose_final`` and the
    ensemble. Trials without saved predictions are left out.

    ``study`` is an ``optuna.Study`` or a storage (then ``study_name`` is loaded from it), or
    the trial table of ``tune(..., backend="ray")`` (a DataFrame; see
    :func:`mlsmith.tune._ray.to_results_ray`).
    Model ids are ``<family>_trial<number>``; the origin is ``search:<strategy>`` or
    ``initial`` (with ``/ray`` for the Ray backend)."""
    import json

    if hasattr(study, "iterrows"):
        from mlsmith.tune._ray import to_results_ray

        return to_results_ray(study)

    from mlsmith.metrics import get_metric
    from mlsmith.select import Candidate, Result
    from mlsmith.tune._spaces import config_from_params

    optuna = import_optuna()
    if not isinstance(study, optuna.Study):
        study = load_study(study, study_name)
    spec = SearchSpec.from_attr(study.user_attrs[SPEC_ATTR])
    spaces = search_spaces(spec.families, spec.task)
    sign = 1.0 if get_metric(spec.metric).greater_is_better else -1.0
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        row = trial_row(t, spec, spaces)
        path = row["oof_path"]
        if not path or not Path(path).exists():
            continue
        family, params = config_from_params(spaces, t.params)
        cand = Candidate(row["model"], family, params, origin=row["origin"])
        out.append(Result(cand, "ok",
                          cv_scores=[sign * s for s in json.loads(row["fold_scores"])],
                          train_scores=[sign * s for s in trial_attrs(t).get("train_scores", [])],
                          oof=np.load(path), fit_time=row["fit_time_s"],
                          predict_time=row["predict_time_s"], total_time=row["cv_time_s"]))
    return out
