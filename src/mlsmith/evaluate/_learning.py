"""Learning curve: train and validation scores of one model against the training-set size."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError, DataError
from mlsmith.evaluate._bootstrap import bootstrap_metrics
from mlsmith.evaluate._common import jsonable, remaining, stratified_order
from mlsmith.metrics import get_metric

__all__ = ["learning_curve"]

#: a fit is assumed to grow this much faster than linearly in the rows when estimating the next
GROWTH_MARGIN = 1.3
#: resamples of the validation rows for ``validation_std``
STD_BOOT = 200


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]


def _predict(est: Any, X: Any, regression: bool, n_classes: int) -> np.ndarray:
    from mlsmith.select._ensemble import predict_encoded

    return predict_encoded(est, X, "regression" if regression else "classification", n_classes)


def learning_curve(make_estimator: Callable[[], Any], X: Any, y: Any, metric: str, *,
                   train_idx: Sequence[int] | np.ndarray, val_idx: Sequence[int] | np.ndarray,
                   sizes: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0),
                   n_classes: int | None = None, seed: int = 0,
                   deadline: float | None = None) -> dict[str, Any]:
    """Fit fresh estimators on growing subsets of ``train_idx`` and score them on ``val_idx``.

    Parameters
    ----------
    make_estimator : callable
        Returns an unfitted estimator with ``fit(X, y)`` and ``predict_proba`` (classification,
        ``classes_`` of encoded labels) or ``predict`` (regression).
    X, y
        Features (a DataFrame or array) and encoded targets for every row the indices refer to.
    metric : str
        Registry name; its tasks decide between classification and regression.
    train_idx, val_idx : arrays of int
        Rows to draw the training subsets from, and rows to validate on.
    sizes : sequence of float
        Shares of ``train_idx`` (or absolute row counts when above 1). The subsets are nested
        and, for classification, stratified: each holds every class when it has ``K`` rows.
    n_classes : int, optional
        ``K`` for classification (default ``max(y) + 1``).
    deadline : float, optional
        ``time.time()`` by which to stop. Before each fit its time is estimated from the last
        one (linear in the rows, times 1.3); a fit that would end past the deadline is not
        started, and ``stopped`` says why.

    Returns
    -------
    dict
        ``metric``, ``greater_is_better``, ``n_validation`` and ``points``: per size
        ``n_train``, ``train`` (score on the subset itself), ``validation``,
        ``validation_std`` (bootstrap standard error of the validation score: how much of the
        curve's wiggle is noise) and ``fit_seconds``. Scores in the metric's natural units.
    """
    m = get_metric(metric)
    regression = "regression" in m.tasks
    y = np.asarray(y)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    val_idx = np.asarray(val_idx, dtype=np.int64)
    if len(train_idx) < 2 or len(val_idx) < 2:
        raise DataError(f"a learning curve needs 2 or more training and validation rows: got "
                        f"{len(train_idx)} and {len(val_idx)}.")
    if not sizes:
        raise ConfigError("sizes is empty: pass shares of the training rows such as (0.25, 1.0).")
    k = 0 if regression else int(n_classes if n_classes is not None else y.max() + 1)
    kind = "regression" if regression else ("binary" if k == 2 else "multiclass")
    rng = np.random.default_rng(seed)
    order = (rng.permutation(train_idx) if regression
             else train_idx[stratified_order(y[train_idx], rng)])
    smallest = max(2, k)
    counts = sorted({int(np.clip(round(s * len(train_idx)) if s <= 1 else int(s), smallest,
                                 len(train_idx))) for s in sizes})
    X_val, y_val = _rows(X, val_idx), y[val_idx]
    points: list[dict[str, Any]] = []
    out: dict[str, Any] = {"metric": m.name, "greater_is_better": m.greater_is_better,
                           "n_validation": len(val_idx), "points": points}
    last: tuple[int, float] | None = None
    for n in counts:
        if last is not None:
            estimate = last[1] * n / last[0] * GROWTH_MARGIN
            left = remaining(deadline)
            if estimate > left:
                out["stopped"] = (f"no time for n_train={n} (about {estimate:.1f} s needed, "
                                  f"{max(left, 0):.1f} s left)")
                break
        elif remaining(deadline) <= 0:
            out["stopped"] = "no time left before the first fit"
            break
        rows = order[:n]
        t0 = time.perf_counter()
        est = make_estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.fit(_rows(X, rows), y[rows])
            except ValueError as exc:  # too few rows for this estimator
                out.setdefault("failed", []).append(f"n_train={n}: {exc}"[:200])
                continue
            fit_s = time.perf_counter() - t0
            pred_tr = _predict(est, _rows(X, rows), regression, k)
            pred_va = _predict(est, X_val, regression, k)
            train_score = m.fn(y[rows], pred_tr)
            val_score = m.fn(y_val, pred_va)
        boot = bootstrap_metrics(kind, y_val, pred_va, [m.name], n_boot=STD_BOOT, seed=seed)
        vals = boot.values[m.name]
        vals = vals[np.isfinite(vals)]
        points.append({"n_train": n, "train": train_score, "validation": val_score,
                       "validation_std": float(np.std(vals)) if len(vals) > 1 else None,
                       "fit_seconds": round(fit_s, 4)})
        last = (n, time.perf_counter() - t0)
    return jsonable(out)
