"""Fixtures for the search-engine tests: tiny seeded bundles, a trial store, quiet Optuna."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def binary_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["u", "v", "w"], size=n)
    logit = 2.0 * x - 1.0 * z + np.where(c == "u", 1.0, 0.0)
    label = (logit + rng.normal(scale=0.8, size=n) > 0).astype(np.int64)
    return pd.DataFrame({"x": x, "z": z, "c": c, "label": label})


def regression_frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.uniform(0, 10, size=n)
    y = 3.0 * x + 0.5 * z + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"x": x, "z": z, "y": y})


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna = pytest.importorskip("optuna")
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(before)


@pytest.fixture
def binary_bundle(tmp_path: Path) -> str:
    from mlsmith.tune import prepare_bundle

    path = tmp_path / "binary.joblib"
    prepare_bundle(binary_frame(), "label", path, folds=4, seed=0)
    return str(path)


@pytest.fixture
def regression_bundle(tmp_path: Path) -> str:
    from mlsmith.tune import prepare_bundle

    path = tmp_path / "regression.joblib"
    prepare_bundle(regression_frame(), "y", path, folds=4, seed=0)
    return str(path)

