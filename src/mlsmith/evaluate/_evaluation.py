"""``evaluate_run``: every section of ``evaluation.json`` under one time budget."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlsmith.evaluate._common import check_inputs, jsonable, stratified_order
from mlsmith.evaluate._curves import curves
from mlsmith.evaluate._diagnose import bias_variance, compare_cv_test, models_from_leaderboard
from mlsmith.evaluate._importance import permutation_importance, shap_importance
from mlsmith.evaluate._learning import learning_curve
from mlsmith.evaluate._predictions import best_threshold, evaluate_predictions
from mlsmith.evaluate._projection import project_2d
from mlsmith.metrics import get_metric

__all__ = ["evaluate_run", "STAGE_SHARES"]

log = logging.getLogger("mlsmith")

#: share of the time left that each budgeted stage may use, in the order they run
STAGE_SHARES = {"test": 0.15, "importance": 0.35, "learning_curve": 0.45, "projection": 0.5,
                "shap": 0.9}
#: a stage is not started with less than this many seconds for it
MIN_STAGE_S = 0.2
BASELINE_MODEL = "constant_baseline"


def _holdout(y: np.ndarray, classification: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 80/20 split (stratified for classification) of ``len(y)`` rows."""
    rng = np.random.default_rng(seed)
    order = stratified_order(y, rng) if classification else rng.permutation(len(y))
    # every fifth row of the interleaved order validates: each class lands in both parts
    val = np.zeros(len(y), dtype=bool)
    val[order[4::5]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def evaluate_run(kind: str, y_test: Any, test_pred: Any, classes: Sequence[Any] | None,
                 metric: str, *,
                 cv_metrics: Mapping[str, Any] | None = None,
                 leaderboard: Any | None = None,
                 models: Sequence[Mapping[str, Any]] | None = None,
                 chosen: str | None = None,
                 baseline: float | None = None,
                 predict: Callable[[Any], np.ndarray] | None = None,
                 X_test: Any | None = None,
                 make_estimator: Callable[[], Any] | None = None,
                 X_train: Any | None = None,
                 y_train: Any | None = None,
                 learning_split: tuple[Any, Any] | None = None,
                 X_projection: Any | None = None,
                 y_projection: Any | None = None,
                 threshold: float | None = None,
                 oof: tuple[Any, Any] | None = None,
                 threshold_objective: str = "f1",
                 n_boot: int = 1000,
                 seed: int = 0,
                 time_budget: float | None = None) -> dict[str, Any]:
    """The whole ``evaluation.json`` document.

    Sections run in this order, each given a share of the time then left (``STAGE_SHARES``;
    unused time passes on): ``test`` (bootstrap), ``curves``, ``cv_vs_test``,
    ``bias_variance``, ``importance`` (permutation), ``learning_curve``, ``projection``,
    ``shap``. A section whose inputs are missing, that has no time, or that fails is left out
    and ``skipped`` says why (a failure is also logged): the evaluation never fails a fit, except
    for invalid ``y_test`` / ``test_pred``, which raise :class:`~mlsmith.errors.DataError`.

    Parameters
    ----------
    kind, y_test, test_pred, classes
        As for :func:`evaluate_predictions`.
    metric : str
        The fit's selection metric.
    cv_metrics : mapping, optional
        CV values by metric (``metrics.json``'s ``cv``), or ``(mean, std)`` pairs.
    leaderboard : DataFrame, optional
        With ``model``, ``status``, ``cv_<metric>``, ``train_<metric>`` (and
        ``cv_<metric>_std``); gives ``models`` and, from its ``constant_baseline`` row, the
        ``baseline`` when those are not passed.
    models, chosen, baseline
        As for :func:`bias_variance`.
    predict, X_test
        The model's prediction function on raw frames and the raw test columns: permutation
        importance and SHAP.
    make_estimator, X_train, y_train, learning_split
        A factory of the chosen model, the training rows (encoded targets) and
        ``(train_idx, val_idx)`` into them (default a seeded 80/20 split): the learning curve.
    X_projection, y_projection
        Rows for the 2-D view (default ``X_train``/``y_train``, else ``X_test``/``y_test``).
    threshold : float, optional
        Binary: a threshold tuned on out-of-fold predictions, reported on the test set.
    oof : (y, pred), optional
        Binary: out-of-fold labels and probabilities; without ``threshold``, the threshold
        that maximises ``threshold_objective`` on them is the one reported (``"source":
        "given"``). Without either, the test set's own best threshold is reported, marked
        ``"source": "test"`` (optimistic).
    time_budget : float, optional
        Seconds for everything (``None``: no limit).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    >>> doc = evaluate_run("regression", y, y + 0.5, None, "rmse", n_boot=200)
    >>> doc["test"]["metrics"]["rmse"]["value"], sorted(doc["skipped"])[:2]
    (0.5, ['bias_variance', 'cv_vs_test'])
    """
    start = time.time()
    deadline = None if time_budget is None else start + float(time_budget)
    y, p, names = check_inputs(kind, y_test, test_pred, classes)
    m = get_metric(metric, kind)
    doc: dict[str, Any] = {"version": 1, "task": kind, "classes": names or None,
                           "metric": m.name}
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}

    def left() -> float:
        return math.inf if deadline is None else deadline - time.time()

    def stage_deadline(stage: str) -> float | None:
        return None if deadline is None else time.time() + max(left(), 0) * STAGE_SHARES[stage]

    def run(stage: str, fn: Callable[[], Any], budgeted: bool = True) -> None:
        if budgeted and stage in STAGE_SHARES and left() * STAGE_SHARES[stage] < MIN_STAGE_S:
            skipped[stage] = f"no time left ({max(left(), 0):.1f} s)"
            return
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # an optional section must not fail the fit
            log.warning("evaluation: %s failed: %s", stage, exc, exc_info=log.isEnabledFor(10))
            skipped[stage] = f"failed: {type(exc).__name__}: {exc}"[:300]
            return
        finally:
            seconds[stage] = round(time.perf_counter() - t0, 3)
        if isinstance(result, dict) and set(result) == {"skipped"}:
            skipped[stage] = result["skipped"]
        elif result is not None:
            doc[stage] = result

    # test: the essential section; errors in its inputs raise
    t0 = time.perf_counter()
    if kind == "binary" and threshold is None and oof is not None:
        y_oof, p_oof, _ = check_inputs(kind, oof[0], oof[1], names)
        threshold, _ = best_threshold(y_oof, p_oof[:, 1], threshold_objective)
    budget = None if deadline is None else max(left(), 0) * STAGE_SHARES["test"]
    doc["test"] = evaluate_predictions(kind, y, p, names or None, n_boot=n_boot, seed=seed,
                                       time_budget=budget, threshold=threshold,
                                       threshold_objective=threshold_objective)
    seconds["test"] = round(time.perf_counter() - t0, 3)
    run("curves", lambda: curves(kind, y, p, names or None, seed=seed), budgeted=False)

    if leaderboard is not None:
        if models is None:
            models = models_from_leaderboard(leaderboard, m.name)
        if baseline is None:
            base = [r for r in models_from_leaderboard(leaderboard, m.name)
                    if r["model"] == BASELINE_MODEL]
            baseline = base[0]["validation"] if base else None
        if cv_metrics is not None and f"cv_{m.name}_std" in leaderboard.columns:
            cv_metrics = dict(cv_metrics)
            rows = leaderboard[leaderboard["model"] == chosen] if chosen is not None else []
            row = rows.iloc[0] if len(rows) else leaderboard.iloc[0]
            if m.name in cv_metrics and not isinstance(cv_metrics[m.name], (tuple, list)):
                std = row.get(f"cv_{m.name}_std")
                cv_metrics[m.name] = (cv_metrics[m.name], std)
    if cv_metrics:
        run("cv_vs_test", lambda: compare_cv_test(cv_metrics, doc["test"], first=m.name),
            budgeted=False)
    else:
        skipped["cv_vs_test"] = "no cross-validated metrics given"
    if models:
        run("bias_variance", lambda: bias_variance(models, m.name, baseline, chosen=chosen),
            budgeted=False)
    else:
        skipped["bias_variance"] = "no train and validation scores given"

    if predict is not None and X_test is not None:
        run("importance", lambda: permutation_importance(
            predict, X_test, y, kind, m.name, seed=seed, deadline=stage_deadline("importance")))
    else:
        skipped["importance"] = "no prediction function and test frame given"

    if make_estimator is not None and X_train is not None and y_train is not None:
        def learn() -> dict[str, Any]:
            yt = np.asarray(y_train)
            tr, va = (learning_split if learning_split is not None
                      else _holdout(yt, kind != "regression", seed))
            return learning_curve(make_estimator, X_train, yt, m.name, train_idx=tr,
                                  val_idx=va, n_classes=len(names) or None, seed=seed,
                                  deadline=stage_deadline("learning_curve"))
        run("learning_curve", learn)
    else:
        skipped["learning_curve"] = "no model factory and training rows given"

    Xp, yp = ((X_projection, y_projection) if X_projection is not None and y_projection is not None
              else (X_train, y_train) if X_train is not None and y_train is not None
              else (X_test, y) if X_test is not None else (None, None))
    if Xp is not None:
        run("projection", lambda: project_2d(Xp, yp, kind, names or None, seed=seed,
                                             deadline=stage_deadline("projection")))
        if "tsne_skipped" in doc.get("projection", {}):
            skipped["tsne"] = doc["projection"]["tsne_skipped"]
    else:
        skipped["projection"] = "no frame given"

    if predict is not None and X_test is not None:
        run("shap", lambda: shap_importance(predict, X_test, kind, seed=seed,
                                            deadline=stage_deadline("shap")))
    else:
        skipped["shap"] = "no prediction function and test frame given"
    doc["skipped"] = skipped
    doc["seconds"] = seconds
    return jsonable(doc)
