"""The 2-D view: a robust numeric encoding, PCA equal to scikit-learn's, t-SNE only with time."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from mlsmith.errors import ConfigError, DataError
from mlsmith.evaluate import numeric_matrix, project_2d


@pytest.fixture
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    X = pd.DataFrame({
        "a": rng.normal(size=n) + 3 * y,                 # separates the classes
        "b": rng.normal(size=n),
        "with_gaps": np.where(rng.uniform(size=n) < 0.2, np.nan, rng.normal(size=n)),
        "flag": rng.uniform(size=n) < 0.5,
        "city": rng.choice(["x", "y", "z", None], n),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
        "constant": 1.0,
    })
    return X, y


def test_numeric_matrix_is_finite_standardised_and_named(frame) -> None:
    X, _ = frame
    M, names = numeric_matrix(X)
    assert np.all(np.isfinite(M))
    assert "constant" not in names
    assert {"a", "b", "with_gaps", "flag", "when"} <= set(names)
    assert {"city=x", "city=y", "city=z", "city=<missing>"} <= set(names)
    numeric = M[:, [names.index(c) for c in ("a", "with_gaps", "when")]]
    assert numeric.mean(axis=0) == pytest.approx(0, abs=1e-9)
    assert numeric.std(axis=0) == pytest.approx(1)


def test_pca_equals_sklearn(frame) -> None:
    from sklearn.decomposition import PCA

    X, y = frame
    out = project_2d(X, y, "multiclass", ["p", "q", "r"], method="pca")
    M, _ = numeric_matrix(X)
    ref = PCA(2).fit(M)
    assert out["method"] == "pca"
    assert out["explained_variance"] == pytest.approx(ref.explained_variance_ratio_, abs=1e-5)
    scores = ref.transform(M)
    # components are defined up to sign
    for j, key in enumerate(("x", "y")):
        assert np.abs(np.corrcoef(out[key], scores[:, j])[0, 1]) == pytest.approx(1, abs=1e-6)
    assert len(out["x"]) == len(out["label"]) == 600
    assert set(out["label"]) == {"p", "q", "r"}
    json.dumps(out, allow_nan=False)


def test_points_are_capped_and_seeded(frame) -> None:
    X, y = frame
    a = project_2d(X, y, "multiclass", method="pca", max_points=100, seed=1)
    assert a["n_points"] == len(a["x"]) == 100 and a["n_rows"] == 600
    b = project_2d(X, y, "multiclass", method="pca", max_points=100, seed=1)
    assert (a["x"], a["y"], a["label"]) == (b["x"], b["y"], b["label"])
    c = project_2d(X, y, "multiclass", method="pca", max_points=100, seed=2)
    assert c["x"] != a["x"]
    reg = project_2d(X, X["b"].to_numpy(), "regression", method="pca", max_points=50)
    assert all(isinstance(v, float) for v in reg["label"])


def test_tsne_runs_on_a_small_sample() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    centres = rng.normal(scale=3.0, size=(3, 6))
    X = pd.DataFrame(centres[y] + rng.normal(size=(400, 6)), columns=list("abcdef"))
    out = project_2d(X, y, "multiclass", method="tsne", max_points=150, seed=0)
    assert out["method"] == "tsne"
    assert len(out["x"]) == len(out["y"]) == 150
    assert "pca" in out and len(out["pca"]["explained_variance"]) == 2
    # t-SNE keeps the classes apart: a point's nearest neighbour mostly shares its class
    pts = np.column_stack([out["x"], out["y"]])
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    labels = np.array(out["label"])
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.8


def test_tsne_is_skipped_with_a_reason_when_time_is_short(frame) -> None:
    X, y = frame
    t0 = time.perf_counter()
    out = project_2d(X, y, "multiclass", method="auto", deadline=time.time() + 0.05)
    assert time.perf_counter() - t0 < 5
    assert out["method"] == "pca"
    assert "t-SNE of 600 rows needs about" in out["tsne_skipped"]


def test_bad_input(frame) -> None:
    X, y = frame
    with pytest.raises(ConfigError, match="unknown projection method 'umap'"):
        project_2d(X, y, "multiclass", method="umap")
    with pytest.raises(DataError, match="600 rows but y has 5"):
        project_2d(X, y[:5], "multiclass")
    empty = project_2d(pd.DataFrame({"c": [1.0] * 10}), np.zeros(10), "regression")
    assert empty == {"skipped": "no usable columns to project"}
