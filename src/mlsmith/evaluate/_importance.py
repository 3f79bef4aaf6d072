"""Feature importance on the raw input columns: permutation (any model) and SHAP (optional)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.errors import ColumnNotFoundError, ConfigError, DataError, did_you_mean
from mlsmith.evaluate._common import check_kind, jsonable, remaining, subsample
from mlsmith.metrics import get_metric

__all__ = ["permutation_importance", "shap_importance", "permutation_shapley"]

Predict = Callable[[pd.DataFrame], np.ndarray]

#: the fewest rows and repeats a time budget may lower permutation importance to
MIN_ROWS = 500
MIN_REPEATS = 2


def _check_frame(X: Any, y: Any | None, columns: Sequence[str] | None) -> list[str]:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"X must be a pandas DataFrame of the raw input columns: got "
                        f"{type(X).__name__}. Wrap an array with pd.DataFrame(X, columns=...).")
    if len(X) == 0:
        raise DataError("X is empty: pass the rows to compute the importance on.")
    if y is not None and len(y) != len(X):
        raise DataError(f"X has {len(X)} rows but y has {len(y)}: pass one target per row.")
    cols = list(X.columns) if columns is None else list(columns)
    for c in cols:
        if c not in X.columns:
            raise ColumnNotFoundError(f"column {c!r} is not in X." + did_you_mean(c, X.columns))
    return cols


def _signed(metric: Any, y: np.ndarray, pred: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = float(metric.fn(y, pred))
        except ValueError:
            return float("nan")
    return v if metric.greater_is_better else -v


def permutation_importance(predict: Predict, X: pd.DataFrame, y: Any, kind: str, metric: str,
                           *, n_repeats: int = 5, seed: int = 0, max_rows: int = 5000,
                           columns: Sequence[str] | None = None,
                           deadline: float | None = None) -> dict[str, Any]:
    """The drop in ``metric`` when one raw column is shuffled: ``importance`` in
    ``evaluation.json``.

    Parameters
    ----------
    predict : callable
        Takes a DataFrame with the columns of ``X`` and returns ``(n, K)`` probabilities or
        ``(n,)`` values.
    X : DataFrame
        Raw input columns of labelled rows (the test set).
    y : array
        Encoded targets of ``X``'s rows.
    kind : {"binary", "multiclass", "regression"}
    metric : str
        Registry name.
    n_repeats : int
        Shuffles per column; all of a column's shuffles are predicted in one call.
    max_rows : int
        At most this many rows are used (a seeded sample, stratified for classification).
    columns : sequence of str, optional
        Columns to score (default all).
    deadline : float, optional
        ``time.time()`` to finish by. The time of one prediction is measured first; when all
        columns would not fit, ``n_repeats`` is lowered (not below 2), then the rows (not below
        500); columns still left when the deadline passes are listed in ``not_evaluated``.

    Returns
    -------
    dict
        ``method`` ("permutation"), ``metric``, ``n_repeats``, ``n_rows``, ``baseline_score``
        and ``features`` sorted by ``mean`` (largest first): ``feature``, ``mean``, ``std``,
        where ``mean`` is how much worse the metric gets (a drop of a score, a rise of a loss),
        so larger is more important and values near 0 (or below) mean unused. ``notes`` say what
        was lowered.
    """
    check_kind(kind)
    m = get_metric(metric, kind)
    cols = _check_frame(X, y, columns)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    rows = subsample(len(X), max_rows, rng, None if kind == "regression" else y)
    Xs = X.iloc[rows].reset_index(drop=True)
    ys = y[rows]
    t0 = time.perf_counter()
    base_pred = np.asarray(predict(Xs))
    t_pred = max(time.perf_counter() - t0, 1e-4)
    base = _signed(m, ys, base_pred)
    repeats = max(int(n_repeats), 1)
    left = remaining(deadline)
    need = len(cols) * repeats * t_pred * 1.2
    if need > left:
        fit_repeats = int(left / (len(cols) * t_pred * 1.2))
        new_repeats = max(min(repeats, fit_repeats), min(MIN_REPEATS, repeats))
        if new_repeats < repeats:
            notes.append(f"n_repeats lowered from {repeats} to {new_repeats} to fit the time left")
            repeats = new_repeats
        need = len(cols) * repeats * t_pred * 1.2
        if need > left and len(Xs) > MIN_ROWS:
            share = max(left / need, MIN_ROWS / len(Xs))
            keep = subsample(len(Xs), max(int(len(Xs) * share), MIN_ROWS), rng,
                             None if kind == "regression" else ys)
            notes.append(f"rows lowered from {len(Xs)} to {len(keep)} to fit the time left")
            Xs, ys = Xs.iloc[keep].reset_index(drop=True), ys[keep]
            base_pred = base_pred[keep]
            base = _signed(m, ys, base_pred)
    n = len(Xs)
    stacked = pd.concat([Xs] * repeats, ignore_index=True)
    features = []
    not_evaluated: list[str] = []
    for i, col in enumerate(cols):
        if i > 0 and remaining(deadline) <= 0:
            not_evaluated = cols[i:]
            notes.append(f"{len(not_evaluated)} column(s) not evaluated: the time ran out")
            break
        original = stacked[col].copy()
        values = Xs[col].to_numpy()
        shuffled = np.concatenate([values[rng.permutation(n)] for _ in range(repeats)])
        stacked[col] = pd.Series(shuffled, dtype=Xs[col].dtype)
        pred = np.asarray(predict(stacked))
        stacked[col] = original
        drops = np.array([base - _signed(m, ys, pred[r * n:(r + 1) * n])
                          for r in range(repeats)])
        features.append({"feature": str(col), "mean": float(np.mean(drops)),
                         "std": float(np.std(drops))})
    features.sort(key=lambda f: -f["mean"] if np.isfinite(f["mean"]) else np.inf)
    out = {"method": "permutation", "metric": m.name, "greater_is_better": m.greater_is_better,
           "n_repeats": repeats, "n_rows": n,
           "baseline_score": base if m.greater_is_better else -base,
           "features": features, "seconds": round(time.perf_counter() - t0, 3), "notes": notes}
    if not_evaluated:
        out["not_evaluated"] = not_evaluated
    return jsonable(out)


class _Codec:
    """A raw frame as a float matrix (category codes, datetimes as nanoseconds) and back."""

    def __init__(self, X: pd.DataFrame) -> None:
        self.columns = list(X.columns)
        self.dtypes = X.dtypes
        self.levels: dict[str, np.ndarray] = {}
        self.kinds: dict[str, str] = {}
        for c in self.columns:
            s = X[c]
            if pd.api.types.is_bool_dtype(s.dtype) or (
                    pd.api.types.is_numeric_dtype(s.dtype)
                    and not isinstance(s.dtype, pd.CategoricalDtype)):
                self.kinds[c] = "number"
            elif pd.api.types.is_datetime64_any_dtype(s.dtype):
                self.kinds[c] = "datetime"
            else:
                self.kinds[c] = "category"
                codes, uniques = pd.factorize(s, use_na_sentinel=True)
                self.levels[c] = np.asarray(uniques, dtype=object)

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.columns)))
        for j, c in enumerate(self.columns):
            s = X[c]
            if self.kinds[c] == "number":
                out[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            elif self.kinds[c] == "datetime":
                v = s.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
                v[s.isna().to_numpy()] = np.nan
                out[:, j] = v
            else:
                lookup = {v: i for i, v in enumerate(self.levels[c])}
                out[:, j] = [lookup.get(v, np.nan) for v in s.tolist()]
        return out

    def decode(self, Z: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            z = Z[:, j]
            if self.kinds[c] == "number":
                s = pd.Series(z)
                if pd.api.types.is_bool_dtype(self.dtypes[c]):
                    s = s.astype(bool)
                elif pd.api.types.is_integer_dtype(self.dtypes[c]) and not np.isnan(z).any():
                    s = s.round().astype(self.dtypes[c])
            elif self.kinds[c] == "datetime":
                nat = np.isnan(z)
                s = pd.Series(pd.to_datetime(np.where(nat, 0, z).astype(np.int64)))
                s[nat] = pd.NaT
                tz = getattr(self.dtypes[c], "tz", None)
                if tz is not None:  # encoded as UTC nanoseconds
                    s = s.dt.tz_localize("UTC").dt.tz_convert(tz)
                s = s.astype(self.dtypes[c])
            else:
                levels = self.levels[c]
                ok = ~np.isnan(z)
                vals = np.full(len(z), np.nan, dtype=object)
                vals[ok] = levels[z[ok].astype(np.int64)]
                s = pd.Series(vals, dtype=object)
                if isinstance(self.dtypes[c], pd.CategoricalDtype):
                    s = s.astype(self.dtypes[c])
            data[c] = s.to_numpy() if not isinstance(s.dtype, pd.CategoricalDtype) else s
        return pd.DataFrame(data, columns=self.columns)


def permutation_shapley(f: Callable[[np.ndarray], np.ndarray], Z: np.ndarray,
                        background: np.ndarray, rng: np.random.Generator,
                        n_pairs: int = 1) -> np.ndarray:
    """Shapley values of ``f`` at the rows of ``Z`` by antithetic permutation sampling.

    For each row and each sampled feature order (and its reverse), the features are switched
    one by one from the background rows' values to the row's own; the change in ``f``, averaged
    over the background, is the switched feature's contribution. This is the interventional
    (independent-features) SHAP value estimated as SHAP's permutation explainer does: exact for
    additive models, and the values of each row add up to ``f(row) - mean f(background)``.

    Returns an array ``(n, F)``, or ``(n, F, K)`` for a ``K``-output ``f``.
    """
    r, n_feat = Z.shape
    n_bg = len(background)
    steps = np.arange(n_feat + 1)
    total = None
    for _ in range(n_pairs):
        forward = np.argsort(rng.uniform(size=(r, n_feat)), axis=1)
        for order in (forward, forward[:, ::-1]):
            rank = np.argsort(order, axis=1)  # position of each feature in the order
            on = rank[:, None, :] < steps[None, :, None]  # (r, F+1, F): switched to the row
            data = np.where(on[:, :, None, :], Z[:, None, None, :], background[None, None])
            out = np.asarray(f(data.reshape(-1, n_feat)), dtype=np.float64)
            value = out.reshape(r, n_feat + 1, n_bg, *out.shape[1:]).mean(axis=2)
            steps_gain = np.diff(value, axis=1)  # (r, F, ...) by position in the order
            phi = np.empty_like(steps_gain)
            phi[np.arange(r)[:, None], order] = steps_gain
            total = phi if total is None else total + phi
    return total / (2 * n_pairs)


def shap_importance(predict: Predict, X: pd.DataFrame, kind: str, *, max_rows: int = 200,
                    background_rows: int = 50, n_pairs: int = 1, seed: int = 0,
                    engine: str = "auto", deadline: float | None = None) -> dict[str, Any]:
    """Mean absolute SHAP value per raw column, model-agnostic over ``predict``.

    SHAP values are computed on a float encoding of the raw frame (category codes, datetimes
    as nanoseconds), decoded back to the original dtypes before each prediction, against
    ``background_rows`` seeded rows. They explain the probability of class 1 (binary), every
    class's probability with the mean over classes (multiclass), or the value (regression),
    for at most ``max_rows`` seeded rows, explained in batches while the deadline allows.

    ``engine="auto"`` or ``"mlsmith"`` uses :func:`permutation_shapley` (``n_pairs``
    antithetic pairs of feature orders): the estimator of SHAP's permutation explainer without
    its just-in-time compilation, which costs several seconds per process. ``"shap"`` calls
    the shap library's permutation explainer (skipped when shap is not installed).

    Returns
    -------
    dict
        ``features`` sorted by ``mean_abs`` (``feature``, ``mean_abs``), ``n_rows`` explained,
        ``n_background``, ``output``, ``engine``; or ``{"skipped": reason}`` when there is no
        time (or, for ``engine="shap"``, no shap).
    """
    check_kind(kind)
    if engine not in ("auto", "mlsmith", "shap"):
        raise ConfigError(f"unknown SHAP engine {engine!r}: use 'auto', 'mlsmith' or 'shap'.")
    cols = _check_frame(X, None, None)
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    codec = _Codec(X)
    background = codec.encode(X.iloc[subsample(len(X), background_rows, rng)])
    Z = codec.encode(X.iloc[subsample(len(X), max_rows, rng)])
    n_feat = len(cols)

    def f(Zb: np.ndarray) -> np.ndarray:
        pred = np.asarray(predict(codec.decode(np.asarray(Zb, dtype=np.float64))),
                          dtype=np.float64)
        if kind == "binary":
            return pred[:, 1] if pred.ndim == 2 else pred
        return pred

    # one explained row costs (F + 1) * background predictions per order, two orders a pair
    evals_per_row = (n_feat + 1) * len(background) * 2 * n_pairs
    probe = min(2000, evals_per_row * 2)
    t0 = time.perf_counter()
    f(np.repeat(background, -(-probe // len(background)), axis=0)[:probe])
    per_explained = (time.perf_counter() - t0) / probe * evals_per_row * 1.3
    left = remaining(deadline)
    affordable = int(left / per_explained) if np.isfinite(left) else len(Z)
    if affordable < min(10, len(Z)):
        return {"skipped": f"no time for SHAP (about {per_explained * min(10, len(Z)):.1f} s "
                           f"needed for 10 rows, {max(left, 0):.1f} s left)"}
    Z = Z[:affordable]
    if engine == "shap":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # shap's own deprecation warnings at import
                import shap
        except ImportError:
            return {"skipped": "shap is not installed (pip install shap)"}
        masker = shap.maskers.Independent(background, max_samples=len(background))
        explainer = shap.explainers.Permutation(f, masker, seed=seed)

        def explain(rows: np.ndarray) -> np.ndarray:
            return np.asarray(explainer(rows, max_evals=2 * n_feat * n_pairs + 1,
                                        silent=True).values)
    else:
        def explain(rows: np.ndarray) -> np.ndarray:
            return permutation_shapley(f, rows, background, rng, n_pairs)

    # batches of about 100,000 predicted rows
    batch = int(np.clip(100_000 // evals_per_row, 1, len(Z)))
    parts = []
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while done < len(Z):
            step = min(batch, len(Z) - done)
            if done and remaining(deadline) < per_explained * step:
                break
            parts.append(np.abs(explain(Z[done:done + step])))
            done += step
    values = np.concatenate(parts, axis=0)  # (n, F) or (n, F, K)
    per_feature = values.mean(axis=0)
    if per_feature.ndim == 2:
        per_feature = per_feature.mean(axis=1)
    output = {"binary": "probability of class 1", "multiclass":
              "probability of each class (mean over classes)",
              "regression": "predicted value"}[kind]
    features = sorted(({"feature": str(c), "mean_abs": float(v)}
                       for c, v in zip(cols, per_feature, strict=True)),
                      key=lambda d: -d["mean_abs"])
    return jsonable({"method": "permutation_shapley", "engine": "shap" if engine == "shap"
                     else "mlsmith", "features": features, "n_rows": done,
                     "n_background": len(background), "output": output,
                     "seconds": round(time.perf_counter() - t_start, 3)})
