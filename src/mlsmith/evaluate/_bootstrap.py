"""Vectorised percentile bootstrap of the registry's metrics.

A chunk of ``b`` resamples is a ``(b, n)`` array of row numbers. Every metric is computed for the
whole chunk at once from sufficient statistics:

* label metrics (accuracy, precision / recall / F1, balanced accuracy, MCC) from one confusion
  matrix per resample, counted with a single ``bincount`` over ``resample * K**2 + cell``;
* log loss and the Brier score as means of per-row losses;
* ROC AUC and average precision per class from counts of positives at each distinct positive
  score and of negatives tied with or between those scores (one ``bincount``), then cumulative
  sums: the Mann-Whitney form of the AUC with ties counted one half, and average precision as
  the sum of precision times the recall increment at each distinct threshold (scikit-learn's
  definition);
* regression errors as means of per-row errors, R² from the resampled target's spread, the
  median absolute error with ``np.median`` along the rows.

A metric without a vectorised form (one added to the registry later) falls back to a loop over
the resamples. A resample where a metric is undefined (a class missing) gives NaN for it; the
interval uses the resamples where it is defined.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlsmith.metrics import get_metric

__all__ = ["BootstrapResult", "bootstrap_metrics", "percentile_interval", "MIN_BOOT"]

#: the fewest resamples a time budget may lower ``n_boot`` to
MIN_BOOT = 200
#: elements of one ``(b, n)`` chunk: small chunks stay in cache (measured fastest between
#: 50,000 and 250,000 elements) and let a time budget stop early
CHUNK_ELEMENTS = 100_000
EPS = 1e-15

Stats = Callable[[np.ndarray], dict[str, np.ndarray]]

LABEL_METRICS = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                 "precision_weighted", "recall_weighted", "f1_weighted", "f1", "mcc"}
RANK_METRICS = {"roc_auc", "roc_auc_weighted", "pr_auc"}
ROW_METRICS = {"log_loss", "brier"}
REG_METRICS = {"mse", "rmse", "mae", "r2", "mape", "median_ae"}


@dataclass
class BootstrapResult:
    """Per-resample values of each metric (NaN where undefined) and how many resamples ran."""

    values: dict[str, np.ndarray]
    n_boot: int
    requested: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def _safe_div(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _label_stats(cm: np.ndarray, names: set[str], per_class: bool) -> dict[str, np.ndarray]:
    """Label metrics from confusion matrices ``(b, K, K)`` (rows true, columns predicted)."""
    k = cm.shape[1]
    diag = np.arange(k)
    tp = cm[:, diag, diag]
    support = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    n = support.sum(axis=1)
    present = (support + predicted) > 0  # scikit-learn's labels: seen in y_true or y_pred
    n_present = present.sum(axis=1)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    out: dict[str, np.ndarray] = {}
    for name, per in (("precision", precision), ("recall", recall), ("f1", f1)):
        if f"{name}_macro" in names:
            out[f"{name}_macro"] = (per * present).sum(axis=1) / n_present
        if f"{name}_weighted" in names:
            out[f"{name}_weighted"] = (per * support).sum(axis=1) / n
    if "accuracy" in names:
        out["accuracy"] = tp.sum(axis=1) / n
    if "balanced_accuracy" in names:
        has = support > 0
        out["balanced_accuracy"] = (recall * has).sum(axis=1) / has.sum(axis=1)
    if "f1" in names and k == 2:
        out["f1"] = f1[:, 1]
    if "mcc" in names:
        t = support
        p = predicted
        cov_tp = tp.sum(axis=1) * n - (t * p).sum(axis=1)
        cov_pp = n**2 - (p * p).sum(axis=1)
        cov_tt = n**2 - (t * t).sum(axis=1)
        den = cov_pp * cov_tt
        out["mcc"] = _safe_div(cov_tp, np.sqrt(np.where(den > 0, den, 1.0)) * (den > 0))
    if per_class:
        for c in range(k):
            undefined = support[:, c] == 0
            out[f"__recall_{c}"] = np.where(undefined, np.nan, recall[:, c])
            out[f"__f1_{c}"] = np.where(undefined, np.nan, f1[:, c])
    return out


class _RankCounts:
    """Resampled counts of one class's rows around the distinct scores of its positives.

    Only thresholds at a positive's score matter to the AUC and to average precision, so the
    counts live on the ``m`` distinct positive scores ``u_0 < ... < u_{m-1}``: positives per
    level, and negatives either tied with a level or in the gap below it (``2m + 1`` cells,
    interleaved gap 0, tie 0, gap 1, ..., gap m). One ``bincount`` gives all cells of a chunk.
    """

    def __init__(self, score: np.ndarray, positive: np.ndarray) -> None:
        levels = np.unique(score[positive])
        m = len(levels)
        self.m = m
        code = np.empty(len(score), dtype=np.int64)
        neg = ~positive
        gap = np.searchsorted(levels, score[neg], side="left")
        tie = (gap < m) & (levels[np.minimum(gap, max(m - 1, 0))] == score[neg]) if m else \
            np.zeros(len(gap), dtype=bool)
        code[neg] = 2 * gap + tie
        code[positive] = 2 * m + 1 + np.searchsorted(levels, score[positive])
        self.code = code
        self.width = 3 * m + 1

    def auc_ap(self, idx: np.ndarray, auc: bool = True,
               ap: bool = True) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """ROC AUC, average precision and positive count per resample (integer sums: exact)."""
        b = idx.shape[0]
        flat = self.code[idx]
        flat += (np.arange(b, dtype=np.int64) * self.width)[:, None]
        counts = np.bincount(flat.ravel(), minlength=b * self.width).reshape(b, self.width)
        return self.from_counts(counts, auc, ap)

    def from_counts(self, counts: np.ndarray, auc: bool = True,
                    ap: bool = True) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """The same from a chunk's cell counts ``(b, width)``."""
        m = self.m
        negs = counts[:, :2 * m + 1]
        pos = counts[:, 2 * m + 1:]
        n_pos = pos.sum(axis=1)
        below_all = np.cumsum(negs, axis=1)
        n_neg = below_all[:, -1]
        # negatives strictly below level j: every cell before the tie cell 2j + 1
        below = below_all[:, 0:2 * m:2]
        ties = negs[:, 1:2 * m:2]
        auc_out = ap_out = None
        if auc:
            # twice the Mann-Whitney U: a tie with a negative counts one half
            twice_u = (pos * (2 * below + ties)).sum(axis=1)
            both = (n_pos > 0) & (n_neg > 0)
            auc_out = np.where(both, twice_u / np.where(both, 2.0 * n_pos * n_neg, 1.0), np.nan)
        if ap:
            # precision at the threshold u_j: rows scored u_j or higher
            tps = (n_pos[:, None] - np.cumsum(pos, axis=1)) + pos
            seen = tps + (n_neg[:, None] - below)
            precision = np.zeros(tps.shape)
            np.divide(tps, seen, out=precision, where=pos > 0)
            total = (pos * precision).sum(axis=1)
            ap_out = np.where(n_pos > 0, total / np.where(n_pos > 0, n_pos, 1), np.nan)
        return auc_out, ap_out, n_pos


def classification_stats(y: np.ndarray, proba: np.ndarray, names: Sequence[str],
                         per_class: bool = False) -> tuple[Stats, list[str]]:
    """A function of a resample chunk giving the vectorised metrics, and the names it covers."""
    k = proba.shape[1]
    wanted = set(names)
    covered = [n for n in names if n in LABEL_METRICS | RANK_METRICS | ROW_METRICS]
    if k != 2:
        wanted.discard("f1")
        covered = [n for n in covered if n != "f1"]
    need_cm = per_class or bool(wanted & LABEL_METRICS)
    codes = y * k + np.argmax(proba, axis=1) if need_cm else None
    rows: dict[str, np.ndarray] = {}
    if "log_loss" in wanted:
        clipped = np.clip(proba, EPS, 1.0)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        rows["log_loss"] = -np.log(clipped[np.arange(len(y)), y])
    if "brier" in wanted:
        onehot = np.eye(k)[y]
        per_row = np.sum((proba - onehot) ** 2, axis=1)
        rows["brier"] = per_row / 2.0 if k == 2 else per_row
    rank_classes = ([1] if k == 2 else list(range(k))) if wanted & RANK_METRICS else []
    ranks = {c: _RankCounts(proba[:, c], y == c) for c in rank_classes}
    need_auc = bool(wanted & {"roc_auc", "roc_auc_weighted"})
    need_ap = "pr_auc" in wanted

    def stats(idx: np.ndarray) -> dict[str, np.ndarray]:
        b = idx.shape[0]
        out: dict[str, np.ndarray] = {}
        if codes is not None:
            flat = codes[idx]
            flat += (np.arange(b, dtype=np.int64) * k * k)[:, None]
            cm = np.bincount(flat.ravel(), minlength=b * k * k).reshape(b, k, k)
            out.update(_label_stats(cm.astype(np.float64), wanted, per_class))
        for name, per_row in rows.items():
            out[name] = per_row[idx].mean(axis=1)
        if ranks:
            aucs, aps, npos = [], [], []
            for c in rank_classes:
                a, p, m = ranks[c].auc_ap(idx, auc=need_auc, ap=need_ap)
                aucs.append(a)
                aps.append(p)
                npos.append(m)
            auc = np.column_stack(aucs) if need_auc else None
            ap = np.column_stack(aps) if need_ap else None
            weight = np.column_stack(npos)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
                if "roc_auc" in wanted:
                    out["roc_auc"] = auc[:, 0] if k == 2 else np.nanmean(auc, axis=1)
                if "pr_auc" in wanted:
                    out["pr_auc"] = ap[:, 0] if k == 2 else np.nanmean(ap, axis=1)
                if "roc_auc_weighted" in wanted:
                    w = np.where(np.isnan(auc), 0.0, weight)
                    out["roc_auc_weighted"] = _safe_div(np.nansum(auc * w, axis=1),
                                                        w.sum(axis=1), np.nan)
        return out

    return stats, covered


def regression_stats(y: np.ndarray, pred: np.ndarray,
                     names: Sequence[str]) -> tuple[Stats, list[str]]:
    wanted = set(names)
    covered = [n for n in names if n in REG_METRICS]
    err = pred - y
    abs_err = np.abs(err)
    sq_err = err**2
    ape = abs_err / np.abs(y) if np.all(y != 0) else None

    def stats(idx: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if wanted & {"mse", "rmse", "r2"}:
            sse = sq_err[idx].sum(axis=1)
            mse = sse / idx.shape[1]
            if "mse" in wanted:
                out["mse"] = mse
            if "rmse" in wanted:
                out["rmse"] = np.sqrt(mse)
            if "r2" in wanted:
                yi = y[idx]
                sst = ((yi - yi.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
                out["r2"] = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)
        if "mae" in wanted:
            out["mae"] = abs_err[idx].mean(axis=1)
        if "mape" in wanted:
            out["mape"] = (ape[idx].mean(axis=1) if ape is not None
                           else np.full(idx.shape[0], np.nan))
        if "median_ae" in wanted:
            out["median_ae"] = np.median(abs_err[idx], axis=1)
        return out

    return stats, covered


def _generic_stats(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> Stats:
    """A loop over resamples for metrics without a vectorised form."""
    fns = {n: get_metric(n).fn for n in names}

    def stats(idx: np.ndarray) -> dict[str, np.ndarray]:
        out = {n: np.full(idx.shape[0], np.nan) for n in fns}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, rows in enumerate(idx):
                for n, fn in fns.items():
                    try:
                        out[n][i] = fn(y[rows], pred[rows])
                    except ValueError:
                        pass
        return out

    return stats


def chunk_size(n: int) -> int:
    return int(np.clip(CHUNK_ELEMENTS // max(n, 1), 2, 500))


def bootstrap_metrics(kind: str, y: np.ndarray, pred: np.ndarray, names: Sequence[str], *,
                      n_boot: int = 1000, seed: int = 0, time_budget: float | None = None,
                      min_boot: int = MIN_BOOT, per_class: bool = False) -> BootstrapResult:
    """Per-resample values of ``names`` over ``n_boot`` seeded resamples of the rows.

    The resamples are drawn in chunks from one ``numpy`` generator seeded with ``seed``; the
    ``i``-th resample does not depend on the chunking or on how many are drawn, so a run cut
    short by ``time_budget`` holds the first resamples of the full run. After each chunk the
    time per resample is measured; when ``n_boot`` would not fit ``time_budget`` (seconds) it is
    lowered to what fits, but not below ``min_boot``, and a note says so.
    """
    t0 = time.perf_counter()
    n = len(y)
    if kind == "regression":
        stats, covered = regression_stats(y, pred, names)
    else:
        stats, covered = classification_stats(y, pred, names, per_class=per_class)
    rest = [m for m in names if m not in covered]
    generic = _generic_stats(y, pred, rest) if rest else None
    rng = np.random.default_rng(seed)
    target = int(n_boot)
    parts: list[dict[str, np.ndarray]] = []
    done = 0
    notes: list[str] = []
    step = chunk_size(n) if generic is None else 10
    while done < target:
        b = min(step, target - done)
        idx = rng.integers(0, n, size=(b, n))
        chunk = stats(idx)
        if generic is not None:
            chunk.update(generic(idx))
        parts.append(chunk)
        done += b
        if time_budget is not None and done < target:
            elapsed = time.perf_counter() - t0
            affordable = done + int(max(time_budget - elapsed, 0.0) / (elapsed / done))
            if affordable < target:
                lowered = max(min(target, affordable), min(min_boot, target), done)
                if lowered < target:
                    target = lowered
    if target < n_boot:
        notes.append(f"n_boot lowered from {n_boot} to {target} to fit the time budget "
                     f"({time_budget:.1f} s)")
    values = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    return BootstrapResult(values, done, int(n_boot), time.perf_counter() - t0, notes)


def percentile_interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    """The percentile interval over the resamples where the value is defined (NaN if none)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)
