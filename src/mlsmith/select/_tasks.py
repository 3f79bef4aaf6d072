"""Units of work executed in the worker process: cross-validate one candidate, refit a model.

These functions are pure given their inputs (a task dict and the data bundle), so they can run
in-process in tests and in the worker process in fits.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from typing import Any

import numpy as np

from mlsmith.metrics import score
from mlsmith.models import BuildContext, get_family
from mlsmith.preprocess import build_preprocessor, make_model_pipeline
from mlsmith.schema import Schema
from mlsmith.select._ensemble import FittedModel, predict_encoded

__all__ = ["build_pipeline", "run_cv", "run_refit"]

log = logging.getLogger("mlsmith")


def build_pipeline(schema: Schema, family_name: str, params: dict[str, Any], n_rows: int,
                   seed: int, n_jobs: int, deadline: float | None) -> Any:
    family = get_family(family_name)
    params = dict(params)
    resample = params.pop("resample", None)
    target_transform = params.pop("target_transform", None)
    prep, cat_idx = build_preprocessor(schema, family.capabilities.preprocessing, seed=seed)
    ctx = BuildContext(task=schema.task.kind, n_rows=n_rows, n_features=len(schema.features),
                       categorical_features=cat_idx, seed=seed, n_jobs=n_jobs, deadline=deadline)
    estimator = family.build(params, ctx)
    if target_transform == "log1p" and schema.task.kind == "regression":
        # a skewed, non-negative target: the model learns log(1 + y), predictions come back
        # through exp(.) - 1 (the audit proposes this candidate when it finds the skew)
        import numpy as np
        from sklearn.compose import TransformedTargetRegressor

        estimator = TransformedTargetRegressor(regressor=estimator, func=np.log1p,
                                               inverse_func=np.expm1, check_inverse=False)
    if resample == "smote" and schema.task.kind != "regression":
        # oversampling happens inside the pipeline, so only the rows a fold trains on are
        # resampled: validation and test rows are never synthetic
        from imblearn.over_sampling import SMOTE
        from imblearn.pipeline import Pipeline as ImbPipeline

        return ImbPipeline([("prep", prep), ("smote", SMOTE(k_neighbors=SMOTE_NEIGHBOURS,
                                                            random_state=seed)),
                            ("model", estimator)])
    return make_model_pipeline(prep, estimator)


#: neighbours SMOTE interpolates between (its default, 5, fails on classes of 5 rows or fewer)
SMOTE_NEIGHBOURS = 3


#: fold models of this many best candidates stay in the worker's memory, ready to ship as bags
KEEP_BAGS = 4


def _map(fn: Any, items: Any, parallel: int) -> list[Any]:
    """``[fn(i) for i in items]``, on ``parallel`` threads. The libraries fitting the models
    release the GIL and run single-threaded (the worker sets OMP_NUM_THREADS=1), so the folds of
    one candidate (or the members of an ensemble) use one core each."""
    items = list(items)
    if parallel <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(fn, items))


class _EpochSteps:
    """The ``epoch_callback`` of one fold of a trial that reports epochs.

    Reports epoch ``e`` at step ``(fold + 1) * block + e`` through ``reporter`` (an
    :class:`mlsmith.train.OptunaEpochPruner` opened on the study's storage; each fold has its
    own, so folds fitted side by side in threads write through separate storage handles, as
    separate processes would) and stops the fit when the pruner says so. ``stop`` is shared by
    the folds of one task: once one fold is pruned the others stop at their next epoch, since
    the trial is pruned anyway. A storage error turns the reports off rather than failing the
    fold.
    """

    def __init__(self, reporter: Any, fold: int, block: int, stop: threading.Event) -> None:
        self.reporter = reporter
        self.fold = int(fold)
        self.block = int(block)
        self.stop = stop
        self.pruned_at: int | None = None  # the epoch the pruner stopped this fold at
        self.broken = False

    def __call__(self, epoch: int, val_loss: float, val_score: float | None) -> bool:
        if self.stop.is_set():
            return True
        if self.broken or not 0 < epoch < self.block:
            return False
        try:
            prune = bool(self.reporter(epoch, val_loss, val_score))
        except Exception as exc:  # noqa: BLE001 - reporting must not fail the fold
            log.warning("fold %d: epoch reports to the study stopped: %s", self.fold, exc)
            self.broken = True
            return False
        if prune:
            self.pruned_at = int(epoch)
            self.stop.set()
        return prune


def _epoch_callback(task: dict[str, Any], fold: int, stop: threading.Event) -> _EpochSteps | None:
    """The fold's epoch callback when the task asks for epoch reports (``task["epoch_report"]``:
    ``storage``, ``study_name``, ``trial_id``, ``block``, ``pruner``)."""
    spec = task.get("epoch_report")
    if not spec:
        return None
    from mlsmith.train import OptunaEpochPruner

    block = int(spec["block"])
    reporter = OptunaEpochPruner(spec["storage"], spec["study_name"], int(spec["trial_id"]),
                                 step_offset=(fold + 1) * block, pruner=spec.get("pruner"))
    return _EpochSteps(reporter, fold, block, stop)


def _final_estimator(pipe: Any) -> Any:
    steps = getattr(pipe, "steps", None)
    return steps[-1][1] if steps else pipe


def _takes_epoch_callback(estimator: Any) -> bool:
    try:
        return "epoch_callback" in estimator.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator
        return False


def _keep_bag(state: dict[str, Any], model_id: str, cv_score: float, pipes: list[Any]) -> list[str]:
    bags = state.setdefault("bags", {})
    bags[model_id] = (cv_score, pipes)
    for mid in sorted(bags, key=lambda k: bags[k][0], reverse=True)[KEEP_BAGS:]:
        del bags[mid]
    return sorted(bags)


def run_cv(task: dict[str, Any], data: dict[str, Any],
           state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cross-validate one configuration; returns out-of-fold predictions and timings.

    The fold models of the best few candidates are kept in ``state`` so that the final model
    can be their average (a bag) when there is no time to refit on every row.

    With ``task["fold_ids"]`` (a list of fold numbers) only those folds run, so a caller can
    score a configuration a few folds at a time and stop a poor one early (the search engine's
    pruning). The result then describes those folds only: ``fold_scores`` and ``train_scores``
    follow ``fold_ids``, ``oof`` holds the predictions of their validation rows in the order of
    ``oof_index``, and no fold models are kept. ``worker_max_rss_mb`` is the worker process's
    peak resident memory so far (a flat value over many tasks means no memory is leaking) and
    ``worker_pid`` its process id.

    With ``task["epoch_report"]`` (the search engine's study: ``storage``, ``study_name``,
    ``trial_id``, ``block``, ``pruner``) a family whose estimator takes an ``epoch_callback``
    (the neural networks) reports every epoch of fold ``f`` to the trial at step
    ``(f + 1) * block + epoch`` and stops when the pruner says so; the result then has
    ``epoch_steps=True``. When a fold was pruned the folds not started yet are skipped and the
    result is ``{"pruned": True, "pruned_fold", "pruned_epoch", "fold_ids", "fold_scores",
    "train_scores", ...}`` with the scores of the folds that finished unpruned and no
    predictions.
    """
    schema: Schema = data["schema"]
    X, y = data["X"], data["y"]
    kind = schema.task.kind
    n_classes = len(schema.task.classes)
    folds = data["folds"]
    start = time.time()
    hard = task.get("deadline")
    oof = np.zeros((len(y), n_classes)) if kind != "regression" else np.zeros(len(y))
    subset = task.get("fold_ids")
    fold_ids = list(range(len(folds))) if subset is None else [int(i) for i in subset]
    if not fold_ids or any(not 0 <= i < len(folds) for i in fold_ids):
        raise ValueError(f"fold_ids must name folds 0..{len(folds) - 1}: got {subset}")
    parallel = max(1, min(int(task.get("parallel", 1)), len(fold_ids)))
    rounds = -(-len(fold_ids) // parallel)
    # fully grown forests weigh hundreds of MB per fold on large tables: their fold models are
    # dropped as soon as they have predicted, and such a candidate is refit if chosen
    heavy = get_family(task["family"]).capabilities.preprocessing == "tree" and len(y) > 5000
    pruned = threading.Event()  # set when a fold's epoch reports got it pruned

    def one_fold(j: int) -> dict[str, Any]:
        if pruned.is_set():  # the trial is pruned: the folds not started are not needed
            return {"skipped": True}
        tr, va = folds[fold_ids[j]]
        # each round of folds gets its share of the time left, so a slow model still
        # finishes every fold
        fold_deadline = None
        if hard is not None:
            fold_deadline = start + (hard - start) * (j // parallel + 1) / rounds
        pipe = build_pipeline(schema, task["family"], task["params"], len(tr), task["seed"],
                              task["n_jobs"], fold_deadline)
        model = _final_estimator(pipe)
        callback = _epoch_callback(task, fold_ids[j], pruned) \
            if _takes_epoch_callback(model) else None
        if callback is not None:
            model.set_params(epoch_callback=callback)
        t0 = time.time()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pipe.fit(X.iloc[tr], y[tr])
        finally:
            if callback is not None:  # the fitted model keeps no handle on the study
                model.set_params(epoch_callback=None)
        t1 = time.time()
        if callback is not None and getattr(model, "pruned_", False):
            return {"pruned": True, "epoch": callback.pruned_at, "fit": t1 - t0,
                    "epochs": True}
        pred = predict_encoded(pipe, X.iloc[va], kind, n_classes)
        t2 = time.time()
        if task.get("train_score", True) and len(tr) <= 20000:
            train_score = score(task["metric"], y[tr], predict_encoded(pipe, X.iloc[tr], kind,
                                                                       n_classes))
        else:
            train_score = None
        return {"pipe": None if heavy else pipe, "pred": pred, "train": train_score,
                "score": score(task["metric"], y[va], pred), "fit": t1 - t0, "predict": t2 - t1,
                "epochs": callback is not None}

    outs = _map(one_fold, range(len(fold_ids)), parallel)
    if pruned.is_set():
        # the network fitted until the pruner stopped it: that time was spent fitting
        return {**_pruned_result(fold_ids, outs), "total_time": time.time() - start}
    pipes = [o["pipe"] for o in outs]
    fold_scores = [o["score"] for o in outs]
    train_scores = [o["train"] for o in outs if o["train"] is not None]
    # fold-parallel fits share the wall clock: report the time one fit costs on its own core
    fit_times = [o["fit"] for o in outs]
    predict_times = [o["predict"] for o in outs]
    kept: list[str] = sorted((state or {}).get("bags", {}))
    out: dict[str, Any] = {
        "kept_bags": kept,
        "epoch_steps": any(o["epochs"] for o in outs),
        "fold_scores": fold_scores,
        "train_scores": train_scores,
        "fit_time": float(np.mean(fit_times)),
        "predict_time": float(np.mean(predict_times)),
        "n_train_rows": int(np.mean([len(folds[i][0]) for i in fold_ids])),
        "worker_max_rss_mb": _max_rss_mb(),
        "worker_pid": os.getpid(),
    }
    if subset is not None:
        out["fold_ids"] = fold_ids
        out["oof_index"] = np.concatenate([folds[i][1] for i in fold_ids])
        out["oof"] = np.concatenate([o["pred"] for o in outs])
        out["total_time"] = time.time() - start
        return out
    for (_, va), o in zip(folds, outs, strict=True):
        oof[va] = o["pred"]
    if state is not None and task.get("model_id") and not heavy:
        out["kept_bags"] = _keep_bag(state, task["model_id"], score(task["metric"], y, oof), pipes)
    out["oof"] = oof
    out["total_time"] = time.time() - start
    return out


def _pruned_result(fold_ids: list[int], outs: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of a task whose trial was pruned inside a fold (see :func:`run_cv`)."""
    done = [(i, o) for i, o in zip(fold_ids, outs, strict=True) if "score" in o]
    # the fold the pruner stopped first: the earliest epoch, then the lowest fold
    first = min(((o["epoch"], i) for i, o in zip(fold_ids, outs, strict=True)
                 if o.get("pruned") and o.get("epoch") is not None), default=(None, None))
    fits = [o["fit"] for o in outs if "fit" in o]
    predicts = [o["predict"] for _, o in done]
    return {
        "pruned": True,
        "pruned_fold": first[1],
        "pruned_epoch": first[0],
        "epoch_steps": True,
        "fold_ids": [i for i, _ in done],
        "fold_scores": [o["score"] for _, o in done],
        "train_scores": [o["train"] for _, o in done if o["train"] is not None],
        "fit_time": float(np.mean(fits)) if fits else float("nan"),
        "predict_time": float(np.mean(predicts)) if predicts else float("nan"),
        "kept_bags": [],
        "worker_max_rss_mb": _max_rss_mb(),
        "worker_pid": os.getpid(),
    }


def _max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (NaN where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


class BaggedModel:
    """The fold models of one candidate, averaged: used instead of a refit when time is short."""

    def __init__(self, task: str, n_classes: int, members: list[Any]) -> None:
        self.task = task
        self.n_classes = n_classes
        self.members = members

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.mean([predict_encoded(m, X, self.task, self.n_classes) for m in self.members],
                       axis=0)

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "regression":
            return np.mean([predict_encoded(m, X, self.task, 0) for m in self.members], axis=0)
        return np.argmax(self.predict_proba(X), axis=1)


def run_refit(task: dict[str, Any], data: dict[str, Any],
              state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit each member on every training row (or take its bag of fold models), weight them,
    save the model and predict the test rows."""
    import joblib

    schema: Schema = data["schema"]
    X, y = data["X"], data["y"]
    start = time.time()
    members = []
    hard = task.get("deadline")
    bags = (state or {}).get("bags", {})
    modes = {}
    fitted: dict[str, Any] = {}
    to_refit = []
    for model_id, family_name, params, _weight, mode in task["members"]:
        if mode == "bag" and model_id in bags:
            fitted[model_id] = BaggedModel(schema.task.kind, len(schema.task.classes),
                                           bags[model_id][1])
            modes[model_id] = "bag"
        else:
            modes[model_id] = "refit"
            to_refit.append((model_id, family_name, params))
    parallel = max(1, min(int(task.get("parallel", 1)), len(to_refit) or 1))
    rounds = -(-len(to_refit) // parallel) if to_refit else 1

    def refit_one(j: int) -> Any:
        model_id, family_name, params = to_refit[j]
        member_deadline = None
        if hard is not None:
            member_deadline = start + (hard - start) * (j // parallel + 1) / rounds
        pipe = build_pipeline(schema, family_name, params, len(y), task["seed"], task["n_jobs"],
                              member_deadline)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(X, y)
        return pipe

    for (model_id, _, _), pipe in zip(to_refit, _map(refit_one, range(len(to_refit)), parallel),
                                      strict=True):
        fitted[model_id] = pipe
    members = [(mid, fitted[mid], weight) for mid, _, _, weight, _ in task["members"]]
    model = FittedModel(schema.task.kind, schema.task.classes, members)
    fit_time = time.time() - start
    out: dict[str, Any] = {"fit_time": fit_time, "modes": modes}
    if data.get("X_test") is not None and len(data["X_test"]):
        t0 = time.time()
        out["test_pred"] = model.predict_encoded(data["X_test"])
        out["predict_time"] = time.time() - t0
    joblib.dump(model, task["model_path"])
    return out


TASKS = {"cv": run_cv, "refit": run_refit}
