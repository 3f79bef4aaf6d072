"""CV against test, and the bias-variance verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlsmith.evaluate._common import jsonable
from mlsmith.metrics import get_metric

__all__ = ["compare_cv_test", "bias_variance", "models_from_leaderboard", "NATURAL_BASELINES",
           "OVERFIT_GAP", "OVERFIT_MIN_GAP", "UNDERFIT_VALIDATION", "UNDERFIT_TRAIN"]

#: scores a model earns without learning anything, where the metric alone fixes it
NATURAL_BASELINES = {"roc_auc": 0.5, "roc_auc_weighted": 0.5, "r2": 0.0, "mcc": 0.0}
#: overfitting: the train-validation gap exceeds this share of the validation error ...
OVERFIT_GAP = 0.5
#: ... and, for scores bounded by 1, is at least this large
OVERFIT_MIN_GAP = 0.02
#: underfitting: validation removes less than this share of the baseline's error ...
UNDERFIT_VALIDATION = 0.25
#: ... and training removes less than this share
UNDERFIT_TRAIN = 0.5


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def compare_cv_test(cv_metrics: Mapping[str, float | tuple[float, float] | Sequence[float]],
                    test_section: Mapping[str, Any], *,
                    first: str | None = None) -> list[dict[str, Any]]:
    """Cross-validated estimates beside the test values: ``cv_vs_test`` in ``evaluation.json``.

    ``cv_metrics`` maps a metric to its CV value, or to ``(mean, std)`` over the folds.
    ``test_section`` is :func:`evaluate_predictions`' output. For every metric in both, the
    entry says whether they ``agree``: the CV value lies inside the test value's bootstrap
    interval ``[low, high]``. ``agree`` is ``None`` without an interval. ``first`` (the selection
    metric) is listed first.

    >>> test = {"metrics": {"accuracy": {"value": 0.8, "low": 0.75, "high": 0.85}}}
    >>> compare_cv_test({"accuracy": (0.93, 0.01)}, test)[0]["agree"]
    False
    """
    tests = test_section.get("metrics", {})
    rows = []
    for name, entry in tests.items():
        if name not in cv_metrics:
            continue
        raw = cv_metrics[name]
        if isinstance(raw, (tuple, list, np.ndarray)):
            cv, std = float(raw[0]), (float(raw[1]) if len(raw) > 1 and _finite(raw[1]) else None)
        else:
            cv, std = float(raw), None
        low, high = entry.get("low"), entry.get("high")
        value = entry.get("value")
        agree = bool(low <= cv <= high) if _finite(low) and _finite(high) and _finite(cv) \
            else None
        rows.append({"metric": name, "cv": cv, "cv_std": std, "test": value, "low": low,
                     "high": high, "agree": agree,
                     "difference": (value - cv) if _finite(value) and _finite(cv) else None})
    if first is not None:
        rows.sort(key=lambda r: r["metric"] != first)
    return jsonable(rows)


def models_from_leaderboard(board: Any, metric: str) -> list[dict[str, Any]]:
    """``[{model, train, validation}]`` from a leaderboard with ``train_<m>`` and ``cv_<m>``
    columns (rows without a finite validation score are left out)."""
    name = get_metric(metric).name
    out = []
    for row in board.to_dict("records"):
        val = row.get(f"cv_{name}")
        if not _finite(val) or row.get("status", "ok") != "ok":
            continue
        train = row.get(f"train_{name}")
        out.append({"model": str(row.get("model")), "train": float(train) if _finite(train)
                    else None, "validation": float(val)})
    return out


def _error(value: float, greater_is_better: bool) -> float:
    """Distance from a perfect model: ``1 - score`` for scores (whose best is 1), else the loss."""
    return 1.0 - value if greater_is_better else value


def bias_variance(models: Sequence[Mapping[str, Any]], metric: str,
                  baseline: float | None = None, *, chosen: str | None = None) -> dict[str, Any]:
    """Train and validation scores per model, and a verdict on the chosen one.

    Scores are in the metric's natural units; each row's ``gap`` is the validation error minus
    the train error (positive: training fits better). Each is turned into an error: ``1 - score`` for
    greater-is-better metrics (all the registry's scores have their best at 1) and the loss
    itself otherwise. With ``e_train``, ``e_val``, ``gap = e_val - e_train`` and ``e_base``, the
    error of ``baseline`` (a model that learns nothing: the constant baseline's validation
    score; by default 0.5 for ROC AUC, 0 for R² and MCC, else unknown), the rule is:

    * **overfitting** when ``gap > 0.5 * e_val`` (training fits far better than it generalises)
      and, for scores bounded by 1, ``gap >= 0.02``;
    * **underfitting** when, otherwise, validation removes less than 25% of the baseline's error
      (``e_base - e_val < 0.25 * e_base``) and training less than 50% (``e_base - e_train <
      0.5 * e_base``): the model barely beats a constant even on its training rows (either it
      is too simple or the features carry little signal);
    * **fine** otherwise.

    The verdict is on ``chosen`` (default: the model with the best validation score). When
    ``chosen`` has no train score (an ensemble), the best model that has one stands in, and the
    reason says so. Without any train score the verdict is ``"unknown"``.

    >>> bias_variance([{"model": "tree", "train": 1.0, "validation": 0.55}], "roc_auc")["verdict"]
    'overfitting'
    """
    m = get_metric(metric)
    g = m.greater_is_better
    rows = []
    for entry in models:
        val = entry.get("validation")
        if not _finite(val):
            continue
        train = entry.get("train")
        train = float(train) if _finite(train) else None
        rows.append({"model": str(entry.get("model")), "train": train, "validation": float(val),
                     "gap": (_error(float(val), g) - _error(train, g)
                             if train is not None else None)})
    if baseline is None:
        baseline = NATURAL_BASELINES.get(m.name)
    out: dict[str, Any] = {"metric": m.name, "greater_is_better": g, "baseline": baseline,
                           "models": rows}
    if not rows:
        out.update(verdict="unknown", reason="no model has a validation score")
        return jsonable(out)

    def key(r: dict[str, Any]) -> float:
        return r["validation"] if g else -r["validation"]

    by_name = {r["model"]: r for r in rows}
    target = by_name.get(chosen) if chosen is not None else max(rows, key=key)
    stand_in = ""
    if target is None or target["train"] is None:
        with_train = [r for r in rows if r["train"] is not None]
        if not with_train:
            out.update(verdict="unknown", reason="no model has a train score")
            return jsonable(out)
        was = chosen if target is None else target["model"]
        target = max(with_train, key=key)
        stand_in = f" ({was} has no train score; judged on {target['model']})"
    out["chosen"] = target["model"]
    verdict, reason = _verdict(m.name, g, target["train"], target["validation"], baseline)
    out.update(verdict=verdict, reason=reason + stand_in)
    return jsonable(out)


def _verdict(name: str, g: bool, train: float, val: float,
             baseline: float | None) -> tuple[str, str]:
    e_tr, e_va = _error(train, g), _error(val, g)
    gap = e_va - e_tr
    nums = f"train {name} {train:.4g}, validation {val:.4g}"
    min_gap = OVERFIT_MIN_GAP if g else 0.0
    if gap > OVERFIT_GAP * e_va and gap >= min_gap and gap > 0:
        return "overfitting", (f"{nums}: the gap ({gap:.3g}) is {gap / e_va:.0%} of the "
                               f"validation error ({e_va:.3g}), over {OVERFIT_GAP:.0%}")
    if baseline is not None and _finite(baseline):
        e_base = _error(float(baseline), g)
        if e_base > 0:
            gain_va = (e_base - e_va) / e_base
            gain_tr = (e_base - e_tr) / e_base
            base = f"baseline {baseline:.4g}"
            if gain_va < UNDERFIT_VALIDATION and gain_tr < UNDERFIT_TRAIN:
                return "underfitting", (f"{nums}, {base}: validation removes {gain_va:.0%} of "
                                        f"the baseline's error and training {gain_tr:.0%} "
                                        f"(under {UNDERFIT_VALIDATION:.0%} and "
                                        f"{UNDERFIT_TRAIN:.0%})")
            return "fine", (f"{nums}, {base}: validation removes {gain_va:.0%} of the "
                            f"baseline's error; the train-validation gap ({gap:.3g}) is "
                            f"{max(gap, 0) / e_va if e_va > 0 else 0:.0%} of the validation "
                            f"error")
    return "fine", (f"{nums}: the train-validation gap ({gap:.3g}) is "
                    f"{max(gap, 0) / e_va if e_va > 0 else 0:.0%} of the validation error "
                    f"(no baseline to judge underfitting)")
