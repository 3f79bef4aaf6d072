"""The ``test`` section: every metric with a bootstrap interval, per-class figures, threshold."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsmith.errors import ConfigError, did_you_mean
from mlsmith.evaluate._bootstrap import bootstrap_metrics, percentile_interval
from mlsmith.evaluate._common import check_inputs, jsonable
from mlsmith.metrics import METRICS, get_metric

__all__ = ["evaluate_predictions", "best_threshold", "THRESHOLD_OBJECTIVES"]

THRESHOLD_OBJECTIVES = ("f1", "balanced_accuracy", "mcc", "accuracy")


def _objective(name: str, tp: np.ndarray, fp: np.ndarray, pos: float,
               neg: float) -> np.ndarray:
    fn = pos - tp
    tn = neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "f1":
            value = 2 * tp / (2 * tp + fp + fn)
        elif name == "balanced_accuracy":
            value = 0.5 * (tp / pos + tn / neg) if pos > 0 and neg > 0 else tp * np.nan
        elif name == "mcc":
            den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            value = np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)
        else:
            value = (tp + tn) / (pos + neg)
    return np.nan_to_num(value, nan=0.0)


def best_threshold(y: np.ndarray, p1: np.ndarray, objective: str = "f1") -> tuple[float, float]:
    """The cut on the positive-class probability that maximises ``objective`` on ``(y, p1)``.

    Rows with ``p1 >= threshold`` are predicted positive. Returns ``(threshold, score)``. Tune
    it on out-of-fold predictions: a threshold chosen on the test set flatters the test score.

    >>> best_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    (0.35, 0.8)
    """
    if objective not in THRESHOLD_OBJECTIVES:
        raise ConfigError(f"unknown threshold objective {objective!r}: use one of "
                          f"{', '.join(THRESHOLD_OBJECTIVES)}." + did_you_mean(objective,
                                                                              THRESHOLD_OBJECTIVES))
    y = np.asarray(y).astype(bool)
    p1 = np.asarray(p1, dtype=np.float64)
    order = np.argsort(-p1, kind="stable")
    s = p1[order]
    t = y[order]
    tp = np.cumsum(t).astype(np.float64)
    fp = np.cumsum(~t).astype(np.float64)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each distinct score
    values = _objective(objective, tp[last], fp[last], float(t.sum()), float((~t).sum()))
    best = int(np.argmax(values))
    return float(s[last][best]), float(values[best])


def _score_at(y: np.ndarray, predicted: np.ndarray, objective: str) -> float:
    y = y.astype(bool)
    tp = np.array([float(np.sum(predicted & y))])
    fp = np.array([float(np.sum(predicted & ~y))])
    return float(_objective(objective, tp, fp, float(y.sum()), float((~y).sum()))[0])


def _per_class(y: np.ndarray, proba: np.ndarray, names: list[str],
               boot: dict[str, np.ndarray], ci: float) -> tuple[list[dict[str, Any]], np.ndarray]:
    k = proba.shape[1]
    cm = np.bincount(y * k + np.argmax(proba, axis=1), minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    rows = []
    for c in range(k):
        row: dict[str, Any] = {
            "class": names[c],
            "precision": tp[c] / predicted[c] if predicted[c] else 0.0,
            "recall": tp[c] / support[c] if support[c] else float("nan"),
            "f1": 2 * tp[c] / (support[c] + predicted[c]) if support[c] + predicted[c] else 0.0,
            "support": int(support[c]),
            "predicted": int(predicted[c]),
        }
        for metric in ("recall", "f1"):
            key = f"__{metric}_{c}"
            if key in boot and support[c]:
                row[f"{metric}_low"], row[f"{metric}_high"] = percentile_interval(boot[key], ci)
        rows.append(row)
    return rows, cm


def evaluate_predictions(kind: str, y_true: Any, pred: Any, classes: Sequence[Any] | None = None,
                         *, metrics: Sequence[str] | None = None, n_boot: int = 1000,
                         ci: float = 0.95, seed: int = 0, time_budget: float | None = None,
                         threshold: float | None = None,
                         threshold_objective: str = "f1") -> dict[str, Any]:
    """Metrics of encoded predictions with percentile-bootstrap intervals: ``test`` in
    ``evaluation.json``.

    Parameters
    ----------
    kind : {"binary", "multiclass", "regression"}
    y_true : array of shape (n,)
        Encoded labels ``0..K-1``, or the regression target.
    pred : array of shape (n, K) or (n,)
        Class probabilities in the order of ``classes`` (for binary, a 1-d array is read as the
        probability of class 1), or predicted values.
    classes : sequence, optional
        The class names, in column order (default ``"0".."K-1"``).
    metrics : sequence of str, optional
        Registry names; default every metric that applies to ``kind``.
    n_boot : int
        Bootstrap resamples of the rows; 0 gives point values only.
    ci : float
        Coverage of the interval (percentile method).
    seed : int
        Seed of the resampling: equal inputs and seed give equal intervals.
    time_budget : float, optional
        Seconds for this call. After the point values, ``n_boot`` is lowered to what fits the
        rest, not below 200 (``n_boot_requested`` and ``notes`` then say so); with no time left
        at all the intervals are skipped.
    threshold : float, optional
        Binary only: a decision threshold on the probability of class 1 tuned elsewhere
        (on out-of-fold predictions); its test score is reported. Without one, the best
        threshold on the test set itself is reported, marked ``"source": "test"``.
    threshold_objective : str
        What the threshold maximises: f1, balanced_accuracy, mcc or accuracy.

    Returns
    -------
    dict
        ``n_rows``, ``n_boot``, ``ci``, ``seed``, ``metrics`` (name to ``value``, ``low``,
        ``high``, ``greater_is_better``), for classification ``per_class`` and
        ``confusion_matrix`` (rows true, columns predicted), for binary ``threshold``; ``notes``.
        Undefined values (a metric needing two classes on one class) are ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    >>> p = np.array([0.2, 0.9, 0.6, 0.4, 0.7, 0.1, 0.3, 0.8])
    >>> out = evaluate_predictions("binary", y, p, ["no", "yes"], n_boot=200)
    >>> out["metrics"]["accuracy"]["value"], out["confusion_matrix"]
    (0.875, [[3, 0], [1, 4]])
    """
    t0 = time.perf_counter()
    y, p, names = check_inputs(kind, y_true, pred, classes)
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"ci must be between 0 and 1 (e.g. 0.95): got {ci}.")
    if metrics is None:
        metrics = [m for m, spec in METRICS.items() if kind in spec.tasks]
    else:
        metrics = [get_metric(m, kind).name for m in metrics]
    notes: list[str] = []
    points: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in metrics:
            try:
                points[m] = float(get_metric(m).fn(y, p))
            except ValueError:
                points[m] = float("nan")
    n_boot = max(int(n_boot), 0)
    if time_budget is not None:  # the point values above count against the budget
        time_budget -= time.perf_counter() - t0
    if time_budget is not None and time_budget <= 0 and n_boot:
        notes.append("bootstrap intervals skipped: no time left")
        n_boot = 0
    boot_values: dict[str, np.ndarray] = {}
    done = 0
    if n_boot:
        defined = [m for m in metrics if np.isfinite(points[m])]
        res = bootstrap_metrics(kind, y, p, defined, n_boot=n_boot, seed=seed,
                                time_budget=time_budget, per_class=kind != "regression")
        boot_values, done = res.values, res.n_boot
        notes.extend(res.notes)
    section: dict[str, Any] = {"n_rows": len(y), "n_boot": done, "ci": ci, "seed": seed}
    if done < n_boot:
        section["n_boot_requested"] = n_boot
    out_metrics: dict[str, Any] = {}
    for m in metrics:
        entry: dict[str, Any] = {"value": points[m], "low": None, "high": None,
                                 "greater_is_better": get_metric(m).greater_is_better}
        if m in boot_values:
            vals = boot_values[m]
            entry["low"], entry["high"] = percentile_interval(vals, ci)
            undefined = int(np.sum(~np.isfinite(vals)))
            if undefined:
                entry["n_undefined"] = undefined
        out_metrics[m] = entry
    undefined_points = [m for m in metrics if not np.isfinite(points[m])]
    if undefined_points:
        notes.append(f"undefined on these rows: {', '.join(undefined_points)}")
    section["metrics"] = out_metrics
    if kind != "regression":
        per_class, cm = _per_class(y, p, names, boot_values, ci)
        section["per_class"] = per_class
        section["confusion_matrix"] = cm
        if kind == "binary":
            section["threshold"] = _threshold_section(y, p[:, 1], threshold, threshold_objective)
    section["notes"] = notes
    return jsonable(section)


def _threshold_section(y: np.ndarray, p1: np.ndarray, threshold: float | None,
                       objective: str) -> dict[str, Any]:
    default = _score_at(y, p1 > 0.5, objective)  # argmax: a tie goes to class 0
    if threshold is None:
        value, best = best_threshold(y, p1, objective)
        return {"objective": objective, "value": value, "score": best,
                "score_at_default": default, "source": "test",
                "note": "chosen on the test set itself: its score is optimistic"}
    return {"objective": objective, "value": float(threshold),
            "score": _score_at(y, p1 >= threshold, objective), "score_at_default": default,
            "source": "given"}
