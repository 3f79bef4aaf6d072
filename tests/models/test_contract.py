"""Every registered model family builds scikit-learn estimators that honour the contract.

Parametrized over ``mlsmith.models.REGISTRY`` (a family added there is checked automatically);
families whose package is not installed are skipped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor

from mlsmith.models import REGISTRY, BuildContext, ModelFamily
from mlsmith.preprocess import prepare_features
from mlsmith.schema import infer_schema
from mlsmith.select._ensemble import predict_encoded
from mlsmith.select._tasks import build_pipeline

TASKS = ("binary", "multiclass", "regression")
FAMILIES = sorted(REGISTRY)


@pytest.fixture(params=FAMILIES, ids=FAMILIES)
def family(request: pytest.FixtureRequest) -> ModelFamily:
    fam = REGISTRY[request.param]
    if not fam.available():
        pytest.skip(f"{fam.requires} is not installed")
    return fam


def _tiny(task: str, n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if task == "regression":
        return X, X[:, 0] * 2.0 + X[:, 1] + rng.normal(scale=0.1, size=n)
    labels = np.array(["no", "yes"]) if task == "binary" else np.array(["a", "b", "c"])
    return X, labels[np.arange(n) % len(labels)]


#: size parameters that keep the check fast (families not listed use their default)
SMALL = {"random_forest": {"n_estimators": 20}, "extra_trees": {"n_estimators": 20},
         "hist_gradient_boosting": {"max_iter": 30}, "lightgbm": {"n_estimators": 30},
         "xgboost": {"n_estimators": 30}, "catboost": {"n_estimators": 30}}


def _params(fam: ModelFamily, task: str) -> dict:
    # the first portfolio configuration, made small
    return {**fam.portfolio(task)[0], **SMALL.get(fam.name, {})}


def _build(fam: ModelFamily, task: str, n: int) -> object:
    ctx = BuildContext(task=task, n_rows=n, n_features=4, seed=0, n_jobs=1)
    return fam.build(_params(fam, task), ctx)


def test_declares_itself(family: ModelFamily) -> None:
    assert family.name in REGISTRY and REGISTRY[family.name] is family
    cap = family.capabilities
    assert cap.preprocessing in ("scaled", "tree", "native")
    assert cap.relative_cost > 0
    assert cap.tasks <= set(TASKS)
    for task in cap.tasks:
        assert family.portfolio(task), "a family needs at least one default configuration"
        assert isinstance(family.search_space(task), dict)


@pytest.mark.parametrize("task", TASKS)
def test_estimator_contract(family: ModelFamily, task: str) -> None:
    if not family.supports(task):
        pytest.skip(f"{family.name} does not support {task}")
    X, y = _tiny(task)
    est = _build(family, task, len(y))
    assert is_classifier(est) if task != "regression" else is_regressor(est)

    params = est.get_params()
    twin = clone(est)
    assert type(twin) is type(est)
    assert set(twin.get_params()) == set(params)
    assert est.set_params(**params) is est
    assert est.get_params().keys() == params.keys()

    fitted = est.fit(X, y)
    assert fitted is est
    pred = est.predict(X[:7])
    assert pred.shape == (7,)
    if task == "regression":
        assert np.issubdtype(np.asarray(pred).dtype, np.floating)
        assert np.corrcoef(est.predict(X), y)[0, 1] > 0.5  # it learned something
    else:
        classes = sorted(set(y))
        assert list(est.classes_) == classes
        assert set(pred) <= set(classes)
        proba = est.predict_proba(X[:7])
        assert proba.shape == (7, len(classes))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
        assert (proba >= 0).all()
    # clone of a fitted estimator is unfitted but equal in parameters
    assert clone(est).get_params().keys() == params.keys()


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_inside_the_preprocessing_pipeline(family: ModelFamily, task: str) -> None:
    """The family's recipe + estimator fits mixed, messy columns (categoricals, dates, gaps)."""
    rng = np.random.default_rng(0)
    n = 90
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "x": np.where(rng.uniform(size=n) < 0.1, np.nan, x),
        "cat": rng.choice(["p", "q", "r", None], size=n),
        "code": rng.integers(0, 3, size=n),
        "when": pd.date_range("2023-01-01", periods=n, freq="7h").astype(str),
    })
    df["y"] = (np.digitize(x, [-0.5, 0.5]) if task == "multiclass" else x * 3 + rng.normal(size=n))
    schema, _ = infer_schema(df, "y")
    assert schema.task.kind == task
    X = prepare_features(df, schema)
    y = df["y"].to_numpy()
    pipe = build_pipeline(schema, family.name, _params(family, task), n, seed=0, n_jobs=1,
                          deadline=None)
    assert list(pipe.named_steps) == ["prep", "model"]
    pipe.fit(X.iloc[:70], y[:70])
    unseen = X.iloc[70:].assign(cat="never seen")
    out = predict_encoded(pipe, unseen, task, 3)
    if task == "regression":
        assert out.shape == (20,) and np.isfinite(out).all()
    else:
        assert out.shape == (20, 3)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
