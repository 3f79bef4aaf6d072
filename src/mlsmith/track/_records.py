"""Trial records for :meth:`FitTracker.log_fit` from the candidates a fit cross-validated."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["trials_from_results"]


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def trials_from_results(results: Iterable[Any], greater_is_better: bool = True) -> list[dict[str, Any]]:
    """One trial dict per cross-validated candidate (``mlsmith.select`` results).

    Scores in results are stored higher-is-better; the records hold them in the metric's
    natural units (a loss is positive), as the leaderboard does.

    Parameters
    ----------
    results : iterable of Result
        Objects with ``candidate`` (``model_id``, ``family``, ``params``, ``origin``),
        ``status``, ``cv_scores``, ``train_scores``, ``fit_time``, ``predict_time``,
        ``total_time`` and ``note``.
    greater_is_better : bool
        Whether the selection metric is a score (True) or a loss (False).
    """
    sign = 1.0 if greater_is_better else -1.0
    trials = []
    for r in results:
        c = r.candidate
        folds = [sign * float(s) for s in (r.cv_scores or [])]
        trials.append({
            "model": c.model_id,
            "family": c.family,
            "origin": getattr(c, "origin", "portfolio"),
            "status": r.status,
            "params": dict(c.params),
            "fold_scores": folds,
            "train_scores": [sign * float(s) for s in (r.train_scores or [])],
            "value": sum(folds) / len(folds) if folds else None,
            "duration_s": _finite_or_none(getattr(r, "total_time", None)),
            "fit_time_s": _finite_or_none(getattr(r, "fit_time", None)),
            "predict_time_s": _finite_or_none(getattr(r, "predict_time", None)),
            "note": getattr(r, "note", "") or "",
        })
    return trials
