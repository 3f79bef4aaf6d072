"""Decision threshold for a binary classifier, tuned on out-of-fold probabilities."""

from __future__ import annotations

import numpy as np

from mlsmith.errors import ConfigError, DataError

__all__ = ["tune_threshold", "THRESHOLD_OBJECTIVES"]

THRESHOLD_OBJECTIVES = ("f1", "balanced_accuracy")


def _scores(tp: np.ndarray, fp: np.ndarray, n_pos: int, n_neg: int,
            objective: str) -> np.ndarray:
    fn = n_pos - tp
    if objective == "f1":
        denom = 2 * tp + fp + fn
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    tnr = (n_neg - fp) / n_neg
    return (tp / n_pos + tnr) / 2


def tune_threshold(y_true: np.ndarray, proba_pos: np.ndarray,
                   objective: str = "f1") -> dict[str, float | str]:
    """The probability threshold that maximises ``objective`` on these predictions.

    A row is predicted positive when ``proba_pos >= value``. Every cut between two distinct
    predicted probabilities is tried; the threshold returned is the midpoint between the two
    probabilities around the best cut (ties in the score go to the cut closest to 0.5).

    Parameters
    ----------
    y_true : numpy.ndarray
        Labels 0/1 (1 is the positive class).
    proba_pos : numpy.ndarray
        Predicted probability of the positive class (out of fold, so the threshold is honest).
    objective : {"f1", "balanced_accuracy"}
        What to maximise.

    Returns
    -------
    dict
        ``objective``, ``value`` (the threshold), ``score`` (the objective there) and
        ``score_at_default`` (the objective at 0.5).

    Examples
    --------
    >>> r = tune_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
    >>> r["value"], r["score"], r["score_at_default"]
    (0.25, 1.0, 0.0)
    """
    if objective not in THRESHOLD_OBJECTIVES:
        raise ConfigError(f"unknown threshold objective {objective!r}: use one of "
                          f"{', '.join(THRESHOLD_OBJECTIVES)}.")
    y = np.asarray(y_true)
    p = np.asarray(proba_pos, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise DataError(f"y_true and proba_pos must be 1-d arrays of one length: got shapes "
                        f"{y.shape} and {p.shape}.")
    if not np.all(np.isin(y, (0, 1))):
        raise DataError("y_true must hold 0/1 labels (1 = the positive class).")
    if not np.all(np.isfinite(p)):
        raise DataError("proba_pos holds missing or infinite values.")
    y = y.astype(np.int64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("tuning a threshold needs both classes in y_true.")
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # cut after position i (predict the first i+1 rows positive), only between distinct values
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]
    tp = np.cumsum(ys)[last]
    fp = (last + 1) - tp
    scores = _scores(tp, fp, n_pos, n_neg, objective)
    below = np.r_[ps[last[:-1] + 1], 0.0]  # the next lower distinct probability
    thresholds = (ps[last] + below) / 2
    # also the cut that predicts nothing positive
    thresholds = np.r_[thresholds, np.nextafter(ps[0], np.inf)]
    scores = np.r_[scores, _scores(np.array([0]), np.array([0]), n_pos, n_neg, objective)]
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    pred = p >= 0.5
    tp0 = np.array([int(np.sum(pred & (y == 1)))])
    fp0 = np.array([int(np.sum(pred & (y == 0)))])
    default = float(_scores(tp0, fp0, n_pos, n_neg, objective)[0])
    return {"objective": objective, "value": float(thresholds[pick]),
            "score": float(scores[pick]), "score_at_default": default}
