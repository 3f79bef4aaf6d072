"""Evaluating trials: cross-validation in worker processes, fold by fold, with pruning.

A trial runs its folds in rounds of ``cores_per_trial`` folds (one fold per core) in a worker
process (:class:`mlsmith.select._pool.Worker`). After each round it reports the mean score of the
folds done so far (``trial.report(mean, step=folds done)``) and asks the pruner whether to go on,
so a poor configuration stops after its first folds. Scores are in the metric's natural units
(losses positive) and the study minimizes or maximizes accordingly.

Networks (a family whose estimator takes an ``epoch_callback``) also report every epoch, from the
worker, so a hopeless one stops inside its first fold. Their steps are laid out per fold
(``EPOCH_STEPS`` = 1000, see :class:`mlsmith.tune._study.EpochPruner`): fold ``f``'s epoch
``e`` at step ``(f + 1) * 1000 + e`` (its validation score, higher-is-better accuracy or minus
the RMSE, negated when the study minimizes), and the mean CV score of the first ``k`` folds at
``(k + 1) * 1000``, after every epoch step of those folds. So no step is reported twice, a
step means the same fold and epoch in every such trial, and none collides with the other
families' steps ``1..n_folds``. Those steps are judged by :func:`make_epoch_pruner` (in the
worker and here), not by the study's pruner, whose successive-halving rungs count steps from 1.
This needs a storage other processes can open (a journal file or a database); with an
in-memory study the networks report per fold like the other families.

Each trial records, as user attributes: ``owner`` (the process running it), ``family`` and
``origin`` (``search:<strategy>``, ``initial``) when it starts, and when it ends one attribute
``record`` (a single journal record; :func:`mlsmith.tune._study.trial_attrs` merges it into the
others) holding ``status`` (ok, pruned, failed, stopped, ...), ``fold_scores`` and
``train_scores`` (natural units, by fold), ``folds_done``, ``fit_time`` and ``predict_time``
(mean seconds per fold), ``duration`` (seconds), ``work_time`` (seconds inside the worker's
fit and score calls), ``note``, ``worker_pid`` and ``worker_max_rss_mb`` (the worker process
and its peak memory so far) and, for a completed trial, ``oof_path``: its out-of-fold
predictions, written atomically before the trial is told complete, so an ensemble can use them
and a resumed search does not lose them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlsmith.models import Space
from mlsmith.tune._spaces import config_from_params, suggest_config
from mlsmith.tune._study import (
    EPOCH_STEPS,
    RECORD_ATTR,
    consumed_numbers,
    import_optuna,
    make_epoch_pruner,
    owner_id,
    recover_stale,
    storage_spec,
    trial_attrs,
)

__all__ = ["SearchSpec", "TrialRunner", "NotEvaluated", "trial_row", "SPEC_ATTR"]

log = logging.getLogger("mlsmith")

#: the study user attribute holding the :class:`SearchSpec`
SPEC_ATTR = "mlsmith"
#: a trial is not started with less time than this before the deadline
MIN_TRIAL_S = 1.0
#: the hard limit of a task when the search has no deadline
NO_LIMIT_S = 7 * 24 * 3600.0
#: share of a trial's time its folds are asked to finish in; the rest is the kill margin
SOFT_SHARE = 0.92
#: most seconds to wait for a worker process to start (imports), outside a trial's time limit
WORKER_START_S = 120.0
#: with ``patience``, a gain smaller than this share of the best score's error does not count
PATIENCE_TOL = 1e-3

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class SearchSpec:
    """Everything a process needs to take part in a search; stored in the study's user
    attributes (``study.user_attrs["mlsmith"]``) so that ``mlsmith worker`` can join it."""

    bundle: str
    families: list[str]
    metric: str
    task: str
    n_folds: int
    strategy: str = "tpe"
    seed: int = 0
    pruner: str = "hyperband"
    grid_points: int = 3
    n_trials: int | None = None
    deadline: float | None = None
    trial_time_limit: float | None = None
    oof_dir: str | None = None
    source: str | None = None
    target: str | None = None
    task_override: str | None = None
    drop: list[str] = field(default_factory=list)
    version: int = 1

    def to_attr(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_attr(cls, d: dict[str, Any]) -> SearchSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class NotEvaluated(Exception):
    """A trial that ended without a score: surplus, out of time, failed or stopped. Optuna
    records it as FAIL; its ``status`` user attribute says which."""


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)  # no fsync, like the journal: safe against a killed process
    os.replace(tmp, path)


class TrialRunner:
    """The objective given to ``study.optimize``, and the callback that stops the search.

    One runner serves every thread of one process: it owns ``n_workers`` worker processes and
    lends one to each trial. It is thread-safe; ``on_event`` is called from the trial threads.

    Parameters
    ----------
    study : optuna.Study
    storage : optuna storage
        The study's store, for :func:`recover_stale`.
    spec : SearchSpec
    spaces : dict
        Family name to its search space, in the order the families were given.
    n_rows : int
        Rows of the bundle (the length of the out-of-fold predictions).
    n_workers : int
        Worker processes (parallel trials in this process).
    cores_per_trial : int
        Folds run side by side in one trial (one core each): the size of a pruning round.
    workdir : path
        Scratch folder for the workers' task files and logs.
    oof_dir : path, optional
        Where completed trials' out-of-fold predictions go (``trial_<number>.npy``).
    max_trials : int, optional
        Most trials this process runs (a distributed worker's share).
    on_event : callable, optional
        ``f(event, payload)`` with ``trial_start`` and ``trial_end`` events.
    workers : list of Worker, optional
        Worker processes lent by the caller (kept running when the search ends).
    patience : int, optional
        Stop once this many trials in a row (finished in this process) have not improved the
        best score by more than ``PATIENCE_TOL`` of its error (the loss, or one minus a score
        that is at most 1): the search has converged and its remaining time is better saved.
    """

    def __init__(self, study: Any, storage: Any, spec: SearchSpec, spaces: dict[str, Space], *,
                 n_rows: int, n_workers: int = 1, cores_per_trial: int = 1,
                 workdir: str | os.PathLike[str],
                 oof_dir: str | os.PathLike[str] | None = None, max_trials: int | None = None,
                 on_event: Event | None = None, workers: list[Any] | None = None,
                 patience: int | None = None) -> None:
        from mlsmith.metrics import get_metric
        from mlsmith.select._pool import Worker

        self.study = study
        self.storage = storage
        self.spec = spec
        self.spaces = spaces
        self.n_rows = int(n_rows)
        self.cores = max(1, int(cores_per_trial))
        self.oof_dir = Path(oof_dir) if oof_dir else None
        self.max_trials = max_trials
        self.on_event = on_event or (lambda e, d: None)
        self.owner = owner_id()
        self.sign = 1.0 if get_metric(spec.metric).greater_is_better else -1.0
        self.workdir = Path(workdir)
        # workers given by the caller (a fit's own worker, its data already loaded) stay theirs
        self._own = workers is None
        self._workers = (list(workers) if workers else
                         [Worker(self.workdir / f"worker-{i}") for i in range(max(1, n_workers))])
        self._free: queue.Queue[Any] = queue.Queue()
        for w in self._workers:
            w.start()  # the imports overlap with the study's set-up
            self._free.put(w)
        self._lock = threading.Lock()
        self.interrupted = threading.Event()
        self.started: list[int] = []  # numbers of the trials this process evaluated
        # trials that report epochs write from the worker process: the storage must be shared
        self.storage_spec = storage_spec(storage)
        self.epoch_pruner = make_epoch_pruner(spec.pruner)
        self.patience = patience
        self._best: float | None = None  # best value so far, natural units
        self._stale = 0  # trials since the best last improved by more than PATIENCE_TOL
        self.converged = False
        self._refresh_spec()

    # --- budget ---------------------------------------------------------------------------------
    def _refresh_spec(self) -> None:
        """Re-read the budget from the study: a resumed coordinator may have changed it."""
        attr = self.study.user_attrs.get(SPEC_ATTR)
        if attr:
            fresh = SearchSpec.from_attr(attr)
            self.spec.n_trials, self.spec.deadline = fresh.n_trials, fresh.deadline

    def time_left(self) -> float:
        return math.inf if self.spec.deadline is None else self.spec.deadline - time.time()

    def budget_done(self) -> bool:
        if self.spec.n_trials is None:
            return False
        return len(consumed_numbers(self.study.get_trials(deepcopy=False))) >= self.spec.n_trials

    def own_limit_reached(self) -> bool:
        return self.max_trials is not None and len(self.started) >= self.max_trials

    def should_stop(self) -> bool:
        return (self.budget_done() or self.own_limit_reached() or self.converged
                or self.time_left() < MIN_TRIAL_S)

    def _track_convergence(self, frozen: Any) -> None:
        state = frozen.state.name
        if self.patience is None or state not in ("COMPLETE", "PRUNED"):
            return
        with self._lock:
            value = frozen.value if state == "COMPLETE" else None
            if value is not None and math.isfinite(value):
                best = self._best
                if best is None:
                    self._best, self._stale = value, 0
                    return
                gain = self.sign * (value - best)
                # the error: the loss itself, or how far a score (at most 1) is from 1
                error = 1.0 - best if self.sign > 0 else abs(best)
                if gain > PATIENCE_TOL * error:
                    self._best, self._stale = value, 0
                    return
                if gain > 0:
                    self._best = value  # better, but not by enough to reset the count
            self._stale += 1
            if self._stale >= self.patience and not self.converged:
                self.converged = True
                log.info("search converged: no gain in the last %d trials", self._stale)

    def after_trial(self, study: Any, frozen: Any) -> None:
        """Optuna callback: report the trial, retry dead processes' trials, stop when done."""
        self._track_convergence(frozen)
        try:
            self.on_event("trial_end", {"trial": frozen.number,
                                        "row": trial_row(frozen, self.spec, self.spaces)})
        finally:
            recover_stale(study, self.storage)
            self._refresh_spec()
            if self.should_stop():
                study.stop()

    # --- one trial ------------------------------------------------------------------------------
    def _not_run(self, trial: Any, status: str, note: str) -> NotEvaluated:
        trial.set_user_attr("status", status)
        trial.set_user_attr("note", note)
        self.study.stop()
        return NotEvaluated(note)

    def __call__(self, trial: Any) -> float:
        optuna = import_optuna()
        t0 = time.time()
        trial.set_user_attr("owner", self.owner)
        if self.spec.n_trials is not None:
            before = [n for n in consumed_numbers(self.study.get_trials(deepcopy=False))
                      if n < trial.number]
            if len(before) >= self.spec.n_trials:
                raise self._not_run(trial, "surplus", f"the study already has "
                                    f"{self.spec.n_trials} trials: not run")
        with self._lock:
            if self.own_limit_reached():
                raise self._not_run(trial, "surplus", "this process ran its share: not run")
            if self.time_left() < MIN_TRIAL_S:
                raise self._not_run(trial, "skipped", "no time left: not run")
            self.started.append(trial.number)
        # sampling (TPE's cost grows with the trials) happens here, before a worker is free:
        # with one thread more than workers it overlaps with the previous trial's fitting
        family, params = suggest_config(trial, self.spaces)
        origin = trial.user_attrs.get("origin") or f"search:{self.spec.strategy}"
        trial.set_user_attr("family", family)
        trial.set_user_attr("origin", origin)
        record: dict[str, Any] = {"status": "running", "note": "", "fold_scores": [],
                                  "train_scores": [], "fit_time": float("nan"),
                                  "predict_time": float("nan"), "folds_done": 0}
        worker = self._free.get()
        try:
            if self.interrupted.is_set():
                raise KeyboardInterrupt
            if self.time_left() < MIN_TRIAL_S:  # the deadline came while waiting for a worker
                record.update(status="skipped", note="no time left: not run")
                self.study.stop()
                raise NotEvaluated(record["note"])
            self.on_event("trial_start", {"trial": trial.number, "family": family,
                                          "params": params, "origin": origin})
            # a fresh worker process imports its libraries first: not part of the trial's time
            if not worker.wait_ready(min(WORKER_START_S, max(self.time_left(), 0.5))):
                worker.kill()
                record.update(status="stopped", note="stopped: the worker process did not start")
                raise NotEvaluated(record["note"])
            t0 = time.time()
            return self._evaluate(trial, family, params, worker, t0, record)
        except optuna.TrialPruned:
            record["status"] = "pruned"
            raise
        except KeyboardInterrupt:
            self._interrupted(trial, record)
            raise
        except Exception as exc:
            if not self.interrupted.is_set():
                raise
            # Ctrl-C in the main thread killed the worker under this trial: queue it again
            self._interrupted(trial, record)
            raise NotEvaluated(record["note"]) from exc
        finally:
            self._free.put(worker)
            record["duration"] = time.time() - t0
            try:  # one journal record for the whole outcome
                trial.set_user_attr(RECORD_ATTR, record)
            except Exception:  # noqa: BLE001 - the store may be gone on interrupt
                log.debug("could not record the outcome of trial %d", trial.number)

    def _interrupted(self, trial: Any, record: dict[str, Any]) -> None:
        record["status"] = "interrupted"
        record["note"] = "interrupted; queued again"
        self._requeue(trial)

    def interrupt(self) -> None:
        """Ctrl-C while trials run in threads: kill the worker processes (also those lent by
        the caller), so every thread's trial ends now and is queued again."""
        self.interrupted.set()
        for w in self._workers:
            w.kill()

    def _requeue(self, trial: Any) -> None:
        """Queue an interrupted trial's parameters again before Optuna fails it."""
        optuna = import_optuna()
        try:
            history = [*trial.system_attrs.get("retry_history", []), trial.number]
            self.study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING, params=trial.params,
                distributions=trial.distributions,
                user_attrs={"origin": trial.user_attrs.get("origin", ""),
                            "retry_of": trial.number},
                system_attrs={"failed_trial": history[0], "retry_history": history}))
        except Exception:  # noqa: BLE001 - best effort while interrupted
            log.debug("could not queue trial %d again", trial.number)

    def _evaluate(self, trial: Any, family: str, params: dict[str, Any], worker: Any,
                  t0: float, record: dict[str, Any]) -> float:
        optuna = import_optuna()
        from mlsmith.select._pool import TaskFailed, TaskTimeout

        spec = self.spec
        end = math.inf if spec.deadline is None else spec.deadline
        if spec.trial_time_limit:
            end = min(end, t0 + spec.trial_time_limit)
        soft_end = t0 + SOFT_SHARE * (end - t0) if math.isfinite(end) else None
        folds = list(range(spec.n_folds))
        rounds = [folds[i:i + self.cores] for i in range(0, len(folds), self.cores)]
        epoch_report = None if self.storage_spec is None else {
            "storage": self.storage_spec, "study_name": self.study.study_name,
            "trial_id": trial._trial_id, "block": EPOCH_STEPS, "pruner": self.epoch_pruner}
        epochs = False  # whether the family reports epochs (the worker says so)
        fold_scores: list[float] = []
        train_scores: list[float] = []
        fit_times: list[float] = []
        predict_times: list[float] = []
        oof: np.ndarray | None = None
        for r, ids in enumerate(rounds):
            deadline = None if soft_end is None else t0 + (soft_end - t0) * (r + 1) / len(rounds)
            task = {"kind": "cv", "data_path": spec.bundle, "family": family, "params": params,
                    "metric": spec.metric, "seed": spec.seed, "n_jobs": 1,
                    "parallel": self.cores, "fold_ids": ids, "deadline": deadline,
                    "epoch_report": epoch_report}
            timeout = end - time.time() if math.isfinite(end) else NO_LIMIT_S
            try:
                out = worker.run(task, timeout=max(timeout, 0.5))
            except TaskTimeout as exc:
                record.update(status="stopped", note=f"stopped: ran past its time ({exc})")
                raise NotEvaluated(record["note"]) from None
            except TaskFailed as exc:
                record.update(status="failed", note=f"failed: {exc}")
                log.warning("trial %d (%s) failed: %s", trial.number, family, exc)
                raise NotEvaluated(record["note"]) from None
            epochs = epochs or bool(out.get("epoch_steps"))
            if out.get("pruned"):
                self._record_round(record, out, fold_scores, train_scores, fit_times,
                                   predict_times)
                where = "" if out.get("pruned_fold") is None else \
                    f" at epoch {out['pruned_epoch']} of fold {out['pruned_fold'] + 1}"
                record["note"] = (f"pruned{where} ({len(fold_scores)} of {spec.n_folds} "
                                  f"folds done)")
                raise optuna.TrialPruned(record["note"])
            if oof is None:
                oof = np.zeros((self.n_rows, *out["oof"].shape[1:]))
            oof[out["oof_index"]] = out["oof"]
            self._record_round(record, out, fold_scores, train_scores, fit_times, predict_times)
            mean = float(np.mean(fold_scores))
            if r < len(rounds) - 1:
                trial.report(mean, step=self._fold_step(len(fold_scores), epochs))
                if self._should_prune(trial, epochs):
                    record["note"] = f"pruned after {len(fold_scores)} of {spec.n_folds} folds"
                    raise optuna.TrialPruned(record["note"])
        value = float(np.mean(fold_scores))
        trial.report(value, step=self._fold_step(len(fold_scores), epochs))
        if not math.isfinite(value):
            record.update(status="failed", note="the score is not a finite number")
            raise NotEvaluated(record["note"])
        if self.oof_dir is not None and oof is not None:
            path = self.oof_dir / f"trial_{trial.number}.npy"
            _save_npy(path, oof)
            record["oof_path"] = str(path)
        record["status"] = "ok"
        return value

    def _record_round(self, record: dict[str, Any], out: dict[str, Any], fold_scores: list[float],
                      train_scores: list[float], fit_times: list[float],
                      predict_times: list[float]) -> None:
        """Add a round's folds (``out`` of the cv task) to the lists and the trial's record."""
        fold_scores += [self.sign * s for s in out["fold_scores"]]
        train_scores += [self.sign * s for s in out["train_scores"]]
        for times, key in ((fit_times, "fit_time"), (predict_times, "predict_time")):
            if math.isfinite(_f(out.get(key))):
                times.append(out[key])
        # wall time inside the worker's cross-validation call: fitting and scoring
        inside = _f(out.get("total_time"))
        record["work_time"] = record.get("work_time", 0.0) + (inside if inside > 0 else 0.0)
        record.update(fold_scores=fold_scores, train_scores=train_scores,
                      folds_done=len(fold_scores),
                      fit_time=float(np.mean(fit_times)) if fit_times else float("nan"),
                      predict_time=float(np.mean(predict_times)) if predict_times else
                      float("nan"),
                      worker_max_rss_mb=_f(out.get("worker_max_rss_mb")),
                      worker_pid=out.get("worker_pid"))

    @staticmethod
    def _fold_step(folds_done: int, epochs: bool) -> int:
        """The step of the mean score after ``folds_done`` folds: after every epoch step of
        those folds for a trial that reports epochs (see the module's notes)."""
        return (folds_done + 1) * EPOCH_STEPS if epochs else folds_done

    def _should_prune(self, trial: Any, epochs: bool) -> bool:
        if not epochs:
            return bool(trial.should_prune())
        # the worker's epoch reports are in the store, not in this trial object's cache
        frozen = self.storage.get_trial(trial._trial_id)
        return bool(self.epoch_pruner.prune(self.study, frozen))

    def close(self) -> None:
        if self._own:
            for w in self._workers:
                w.close()

    def kill(self) -> None:
        if self._own:
            for w in self._workers:
                w.kill()


def trial_row(t: Any, spec: SearchSpec, spaces: dict[str, Space] | None = None) -> dict[str, Any]:
    """One row of the trial table for the finished or running trial ``t`` (a FrozenTrial).

    Columns follow ``leaderboard.csv`` (``model``, ``family``, ``origin``, ``status``,
    ``cv_<metric>``, ``cv_<metric>_std``, ``train_<metric>``, ``fit_time_s``,
    ``predict_time_s``, ``cv_time_s``, ``params``, ``note``), plus ``trial``, ``state``,
    ``folds_done``, ``fold_scores``, ``oof_path``, ``owner``, ``retry_of``, ``started`` and
    ``completed``. Scores are in the metric's natural units.
    """
    from mlsmith.metrics import get_metric

    m = get_metric(spec.metric)
    ua = trial_attrs(t)
    family = ua.get("family")
    params: dict[str, Any] = {}
    if spaces is not None and t.params:
        try:
            family, params = config_from_params(spaces, t.params)
        except (KeyError, ValueError):
            params = dict(t.params)
    else:
        params = dict(t.params)
    family = family or (spec.families[0] if len(spec.families) == 1 else "")
    scores = [_f(s) for s in ua.get("fold_scores", [])]
    train = [_f(s) for s in ua.get("train_scores", [])]
    state = t.state.name
    status = ua.get("status") or {"COMPLETE": "ok", "PRUNED": "pruned", "RUNNING": "running",
                                  "FAIL": "failed", "WAITING": "waiting"}.get(state, state.lower())
    if state == "RUNNING":
        status = "running"
    value = t.value if state == "COMPLETE" and t.value is not None else (
        float(np.mean(scores)) if scores else float("nan"))
    return {
        "trial": t.number,
        "model": f"{family}_trial{t.number}",
        "family": family,
        "origin": ua.get("origin", f"search:{spec.strategy}"),
        "status": status,
        "state": state,
        f"cv_{m.name}": _f(value),
        f"cv_{m.name}_std": float(np.std(scores)) if scores else float("nan"),
        f"train_{m.name}": float(np.mean(train)) if train else float("nan"),
        "folds_done": int(ua.get("folds_done", len(scores))),
        "fold_scores": json.dumps([round(s, 10) for s in scores]),
        "fit_time_s": _f(ua.get("fit_time")),
        "predict_time_s": _f(ua.get("predict_time")),
        "cv_time_s": _f(ua.get("duration")),
        "work_time_s": _f(ua.get("work_time")),
        "params": json.dumps(params, sort_keys=True, default=str),
        "oof_path": ua.get("oof_path"),
        "owner": ua.get("owner"),
        "retry_of": t.system_attrs.get("failed_trial"),
        "note": ua.get("note", ""),
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "completed": t.datetime_complete.isoformat() if t.datetime_complete else None,
    }
