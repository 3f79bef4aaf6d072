"""Curves for the report: ROC, precision-recall, calibration, residuals; downsampled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsmith.evaluate._common import check_inputs, jsonable, rounded

__all__ = ["curves", "downsample_curve"]

#: scatter data (residuals) is cut to this many points
MAX_SCATTER = 2000


def downsample_curve(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread points, keeping the first and last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(max_points, 2)).round().astype(np.int64))


def _roc(t: np.ndarray, s: np.ndarray, max_points: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(t, s, drop_intermediate=True)
    keep = downsample_curve(len(fpr), max_points)
    return {"fpr": rounded(fpr[keep]), "tpr": rounded(tpr[keep]),
            "auc": float(roc_auc_score(t, s))}


def _pr(t: np.ndarray, s: np.ndarray, max_points: int) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(t, s)
    # scikit-learn orders by decreasing threshold from the end: walk from recall 0 upward
    precision, recall = precision[::-1], recall[::-1]
    keep = downsample_curve(len(recall), max_points)
    return {"recall": rounded(recall[keep]), "precision": rounded(precision[keep]),
            "ap": float(average_precision_score(t, s)), "prevalence": float(t.mean())}


def _calibration(t: np.ndarray, s: np.ndarray, n_bins: int) -> dict[str, Any]:
    """Reliability bins of equal width on [0, 1]; empty bins are left out."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    sum_p = np.bincount(which, weights=s, minlength=n_bins)
    sum_t = np.bincount(which, weights=t.astype(np.float64), minlength=n_bins)
    used = count > 0
    return {"mean_predicted": rounded(sum_p[used] / count[used]),
            "fraction_positive": rounded(sum_t[used] / count[used]),
            "count": count[used].tolist(), "bin_edges": rounded(edges)}


def curves(kind: str, y_true: Any, pred: Any, classes: Sequence[Any] | None = None, *,
           max_points: int = 200, n_bins: int = 10, max_scatter: int = MAX_SCATTER,
           seed: int = 0) -> dict[str, Any]:
    """The ``curves`` section of ``evaluation.json``.

    Classification: ``roc`` (``fpr``, ``tpr``, ``auc``), ``pr`` (``recall`` rising,
    ``precision``, ``ap``, ``prevalence``) and ``calibration`` (``mean_predicted``,
    ``fraction_positive``, ``count`` per non-empty bin of ``n_bins`` equal-width bins), one entry
    per class, one-vs-rest; for binary only the positive class (``classes[1]``). A class absent
    from ``y_true`` has no ROC or PR curve. Regression: ``residuals`` with ``predicted``,
    ``actual`` and ``residual`` (actual minus predicted) for at most ``max_scatter`` random rows.
    Curves keep at most ``max_points`` points, spread evenly along the curve with both ends kept.

    >>> import numpy as np
    >>> out = curves("binary", np.array([0, 1, 1, 0]), np.array([0.3, 0.8, 0.6, 0.4]), ["a", "b"])
    >>> out["roc"][0]["label"], out["roc"][0]["auc"]
    ('b', 1.0)
    """
    y, p, names = check_inputs(kind, y_true, pred, classes)
    if kind == "regression":
        rng = np.random.default_rng(seed)
        keep = np.arange(len(y)) if len(y) <= max_scatter else np.sort(
            rng.choice(len(y), size=max_scatter, replace=False))
        return jsonable({"residuals": {"predicted": rounded(p[keep], 6),
                                       "actual": rounded(y[keep], 6),
                                       "residual": rounded(y[keep] - p[keep], 6),
                                       "n_rows": len(y), "n_points": len(keep)}})
    out: dict[str, list[dict[str, Any]]] = {"roc": [], "pr": [], "calibration": []}
    for c in ([1] if kind == "binary" else range(p.shape[1])):
        t = y == c
        s = p[:, c]
        out["calibration"].append({"label": names[c], **_calibration(t, s, n_bins)})
        if t.all() or not t.any():
            continue
        out["roc"].append({"label": names[c], **_roc(t, s, max_points)})
        out["pr"].append({"label": names[c], **_pr(t, s, max_points)})
    return jsonable(out)
