"""A 2-D view of the rows: PCA, and t-SNE when the time allows."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlsmith.errors import ConfigError, DataError, did_you_mean
from mlsmith.evaluate._common import check_kind, jsonable, remaining, rounded, subsample

__all__ = ["project_2d", "numeric_matrix", "tsne_seconds"]

METHODS = ("auto", "pca", "tsne")
#: categorical columns are one-hot encoded on their most frequent levels
TOP_LEVELS = 10
#: seconds per ``n log2 n`` of one t-SNE run (500 iterations, Barnes-Hut, one thread), measured
#: on a loaded 2-core machine (1.7 s for 1,000 rows, 9.4 s for 2,000, 23 s for 5,000)
TSNE_SECONDS_PER_NLOGN = 3.0e-4
TSNE_MAX_ITER = 500


def numeric_matrix(X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """A robust numeric encoding of a raw frame, independent of any model's preprocessing.

    Numbers and booleans: median-imputed and standardised. Datetimes: seconds, then the same.
    Other columns: one-hot of the 10 most frequent levels (missing counts as a level of its
    own when frequent). Constant columns are dropped. Returns the matrix and its column names.
    """
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.Series(s.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9,
                          index=s.index).where(s.notna())
        if (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)) \
                and not isinstance(s.dtype, pd.CategoricalDtype):
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            v = np.where(np.isfinite(v), v, np.nan)
            if np.isnan(v).all():
                continue
            v = np.where(np.isnan(v), np.nanmedian(v), v)
            sd = v.std()
            if sd > 0:
                blocks.append(((v - v.mean()) / sd)[:, None])
                names.append(str(c))
            continue
        text = s.astype(object).where(s.notna(), "<missing>").astype(str)
        top = text.value_counts().index[:TOP_LEVELS]
        if len(top) < 2:
            continue
        for level in top:
            blocks.append((text.to_numpy() == level).astype(np.float64)[:, None])
            names.append(f"{c}={level}")
    if not blocks:
        return np.zeros((len(X), 0)), []
    return np.hstack(blocks), names


def tsne_seconds(n: int) -> float:
    """Estimated seconds of one t-SNE run on ``n`` rows."""
    return TSNE_SECONDS_PER_NLOGN * n * math.log2(max(n, 2))


def _pca(M: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores on the first ``k`` components and each component's share of the variance."""
    centred = M - M.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2
    total = var.sum()
    k = min(k, len(s))
    share = var[:k] / total if total > 0 else np.zeros(k)
    return centred @ vt[:k].T, share


def project_2d(X: pd.DataFrame, y: Any, kind: str, classes: Sequence[Any] | None = None, *,
               method: str = "auto", max_rows: int = 5000, max_points: int = 2000,
               seed: int = 0, deadline: float | None = None) -> dict[str, Any]:
    """Rows placed in two dimensions, coloured by the target: ``projection`` in
    ``evaluation.json``.

    The frame is encoded by :func:`numeric_matrix`. PCA is fitted on at most ``max_rows``
    seeded rows (stratified for classification) and shown on at most ``max_points`` of them.
    t-SNE (``method="tsne"``, or ``"auto"`` when the estimate fits the deadline) runs on the
    shown points only, after PCA to 50 dimensions: the rest would not be drawn. Its time is
    estimated first (:func:`tsne_seconds`); when it would overrun the deadline it is skipped,
    PCA is returned and ``tsne_skipped`` says why.

    Returns
    -------
    dict
        ``method`` ("pca" or "tsne"), ``x``, ``y``, ``label`` (the class name, or the target
        value for regression), ``explained_variance`` (PCA: the two components' shares),
        ``n_rows``, ``n_points``, ``n_features``; with t-SNE also ``pca`` holding the PCA view
        (``x``, ``y``, ``explained_variance``).
    """
    check_kind(kind)
    if method not in METHODS:
        raise ConfigError(f"unknown projection method {method!r}: use one of "
                          f"{', '.join(METHODS)}." + did_you_mean(method, METHODS))
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"X must be a pandas DataFrame: got {type(X).__name__}.")
    y = np.asarray(y)
    if len(y) != len(X):
        raise DataError(f"X has {len(X)} rows but y has {len(y)}: pass one target per row.")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    strat = None if kind == "regression" else y
    rows = subsample(len(X), max_rows, rng, strat)
    M, feature_names = numeric_matrix(X.iloc[rows])
    if M.shape[1] == 0 or len(rows) < 3:
        return {"skipped": "no usable columns to project" if M.shape[1] == 0
                else "fewer than 3 rows"}
    shown = subsample(len(rows), max_points, rng, None if strat is None else strat[rows])
    scores, share = _pca(M, 2)
    if scores.shape[1] == 1:
        scores = np.column_stack([scores[:, 0], np.zeros(len(scores))])
        share = np.r_[share, 0.0]
    ys = y[rows][shown]
    if kind == "regression":
        labels = rounded(ys.astype(np.float64), 6)
    else:
        names = [str(c) for c in classes] if classes is not None else None
        labels = [names[int(v)] if names is not None else str(int(v)) for v in ys]
    out: dict[str, Any] = {"method": "pca", "x": rounded(scores[shown, 0]),
                           "y": rounded(scores[shown, 1]), "label": labels,
                           "explained_variance": rounded(share), "n_rows": len(X),
                           "n_points": len(shown), "n_features": M.shape[1]}
    if method in ("auto", "tsne"):
        estimate = tsne_seconds(len(shown))
        left = remaining(deadline)
        if estimate > left:
            out["tsne_skipped"] = (f"t-SNE of {len(shown)} rows needs about {estimate:.0f} s, "
                                   f"{max(left, 0):.1f} s left")
        elif len(shown) < 10:
            out["tsne_skipped"] = "t-SNE needs 10 or more rows"
        else:
            from sklearn.manifold import TSNE
            from threadpoolctl import threadpool_limits

            reduced, _ = _pca(M[shown], 50)
            t1 = time.perf_counter()
            # one thread: on a busy machine OpenMP threads spin against each other (measured
            # 8x slower with 2 threads than with 1 on a loaded 2-core machine)
            with warnings.catch_warnings(), threadpool_limits(1):
                warnings.simplefilter("ignore")
                emb = TSNE(n_components=2, perplexity=min(30.0, (len(shown) - 1) / 3.0),
                           init="pca", max_iter=TSNE_MAX_ITER, random_state=seed,
                           learning_rate="auto").fit_transform(reduced)
            pca_view = {"x": out["x"], "y": out["y"],
                        "explained_variance": out["explained_variance"]}
            out.update(method="tsne", x=rounded(emb[:, 0]), y=rounded(emb[:, 1]), pca=pca_view,
                       tsne_seconds=round(time.perf_counter() - t1, 3))
            del out["explained_variance"]
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return jsonable(out)
