"""The neural family: scikit-learn estimators over mlsmith.train, input scaling, the family."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

from mlsmith.models import BuildContext, sample_space  # noqa: E402
from mlsmith.models._neural import (  # noqa: E402
    NeuralClassifier,
    NeuralFamily,
    NeuralRegressor,
    apply_input_scaling,
    fit_input_scaling,
)

#: small settings that keep each of the scikit-learn checks' fits well under a second
SMALL = {"depth": 2, "width": 32, "max_epochs": 60, "patience": 8, "device": "cpu"}



@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check_name(check) -> str:  # type: ignore[no-untyped-def]
    return getattr(check, "func", check).__name__


# The array-API checks only apply to estimators that declare array-API support, which these
# (numpy float64 in, torch inside) do not: scikit-learn would skip them, and CI treats a skip
# as a failure, so they are left out of the list instead.
_CHECKS = [(est, check)
           for est in (NeuralClassifier(**SMALL), NeuralRegressor(**SMALL))
           for est, check in estimator_checks_generator(est, legacy=True)
           if "array_api" not in _check_name(check)]


@pytest.mark.parametrize("estimator,check", _CHECKS,
                         ids=[f"{type(e).__name__}-{_check_name(c)}" for e, c in _CHECKS])
def test_sklearn_contract(estimator, check) -> None:  # type: ignore[no-untyped-def]
    """Every scikit-learn estimator check passes (none is listed as an expected failure)."""
    check(estimator)


def test_importing_the_family_does_not_import_torch() -> None:
    code = ("import sys, mlsmith, mlsmith.models, mlsmith.models._neural; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- input scaling ------------------------------------------------------------------------------
def test_input_scaling_is_robust_and_smoothly_clipped() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([
        rng.normal(5.0, 2.0, 1000),             # many-valued: median / IQR, then clipped
        rng.integers(0, 2, 1000),               # one-hot: standardised, not clipped
        np.full(1000, 7.0),                     # constant: 0
        np.r_[rng.normal(size=999), 1e6],       # an outlier
    ])
    center, scale, clipped = fit_input_scaling(X)
    assert clipped.tolist() == [True, False, False, True]
    assert center[0] == pytest.approx(5.0, abs=0.2) and scale[0] == pytest.approx(2.0, rel=0.1)
    Z = apply_input_scaling(X, center, scale, clipped)
    assert Z.dtype == np.float32
    assert np.abs(Z[:, [0, 3]]).max() <= 3.0                      # smooth clip: at most 3
    assert Z[-1, 3] == pytest.approx(3.0, rel=1e-3)                # the outlier lands near 3
    assert np.all(np.diff(Z[np.argsort(X[:, 0]), 0]) >= 0)         # order is kept
    z_small = (X[:, 0] - center[0]) / scale[0]
    near = np.abs(z_small) < 0.3
    np.testing.assert_allclose(Z[near, 0], z_small[near], atol=0.01)  # identity near the centre
    np.testing.assert_allclose(np.sort(np.unique(Z[:, 1])),
                               np.sort(np.unique((X[:, 1] - X[:, 1].mean()) / X[:, 1].std())),
                               rtol=1e-6)
    assert np.all(Z[:, 2] == 0)


# --- behaviour ----------------------------------------------------------------------------------
def blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    return X, y


def test_classifier_learns_with_a_stratified_validation_split() -> None:
    X, y = blobs()
    clf = NeuralClassifier(**SMALL).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert (clf.predict(X) == y).mean() > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert 1 <= clf.best_epoch_ <= clf.n_epochs_ <= 60
    train, val = clf._split(np.searchsorted(clf.classes_, y), 0)
    assert len(val) == 45  # 15% below 2,000 rows
    share = lambda idx: (y[idx] == "yes").mean()  # noqa: E731
    assert share(val) == pytest.approx(share(np.arange(300)), abs=0.02)


def test_tiny_data_trains_without_a_validation_split() -> None:
    X, y = blobs(40)
    clf = NeuralClassifier(**{**SMALL, "max_epochs": 5}).fit(X, y)
    assert clf.n_epochs_ == 5 and clf.best_epoch_ is None


@pytest.mark.parametrize("options", [{}, {"architecture": "resmlp"},
                                     {"architecture": "resmlp", "periodic_embeddings": True}],
                         ids=["mlp", "resmlp", "resmlp+periodic"])
def test_regressor_architectures_learn(options: dict) -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=300), rng.normal(size=300), rng.integers(0, 2, 300)])
    y = 100 + 10 * (np.sin(2 * X[:, 0]) + X[:, 1] + X[:, 2])
    reg = NeuralRegressor(**{**SMALL, **options}).fit(X, y)
    assert reg.score(X, y) > 0.8
    net = reg.model_
    has_embedding = getattr(net, "embedding", None) is not None
    assert has_embedding == bool(options.get("periodic_embeddings"))
    if has_embedding:
        assert net.embedding.n_embedded == 2  # the two many-valued columns, not the 0/1 one


def test_label_smoothing_softens_probabilities() -> None:
    X, y = blobs()
    sharp = NeuralClassifier(**SMALL).fit(X, y).predict_proba(X).max(axis=1).mean()
    smooth = NeuralClassifier(**SMALL, label_smoothing=0.3).fit(X, y).predict_proba(X).max(axis=1).mean()
    assert smooth < sharp - 0.03


def test_one_seed_one_model_and_the_callers_random_state_is_left_alone() -> None:
    X, y = blobs(120)
    np.random.seed(5)
    torch.manual_seed(5)
    before = (np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    a = NeuralClassifier(**SMALL, random_state=3).fit(X, y).predict_proba(X)
    b = NeuralClassifier(**SMALL, random_state=3).fit(X, y).predict_proba(X)
    c = NeuralClassifier(**SMALL, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert torch.equal(torch.get_rng_state(), before[1])


def test_the_deadline_stops_training() -> None:
    X, y = blobs(2000)
    t0 = time.time()
    clf = NeuralClassifier(**{**SMALL, "max_epochs": 10_000, "patience": None},
                           deadline=t0 + 1.0).fit(X, y)
    assert time.time() - t0 < 5.0
    assert clf.history_.stop_reason.startswith("deadline")
    assert (clf.predict(X) == y).mean() > 0.9
    late = NeuralClassifier(**SMALL, deadline=time.time() - 1).fit(X, y)
    assert late.n_epochs_ == 0 and late.predict_proba(X[:3]).shape == (3, 2)


def test_pickle_and_clone() -> None:
    X, y = blobs(120)
    clf = NeuralClassifier(**SMALL).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "model_")


def test_invalid_parameters_are_reported_at_fit() -> None:
    X, y = blobs(50)
    est = NeuralClassifier(architecture="transformer")
    with pytest.raises(ValueError, match="'architecture' parameter of NeuralClassifier must be"):
        est.fit(X, y)


# --- the family ---------------------------------------------------------------------------------
def test_the_family_declares_itself() -> None:
    fam = NeuralFamily()
    assert fam.name == "neural" and fam.requires == "torch" and fam.extra == "torch"
    cap = fam.capabilities
    assert cap.preprocessing == "scaled" and cap.stops_at_deadline and cap.relative_cost == 20
    assert cap.tasks == {"binary", "multiclass", "regression"}
    assert fam.available()
    ctx = BuildContext(task="regression", n_rows=100, n_features=3, seed=7, deadline=123.0)
    est = fam.build(fam.portfolio("regression")[0], ctx)
    assert isinstance(est, NeuralRegressor)
    assert est.random_state == 7 and est.deadline == 123.0
    assert isinstance(fam.build({}, BuildContext(task="binary", n_rows=1, n_features=1)),
                      NeuralClassifier)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_portfolio_and_search_space_give_valid_estimators(task: str) -> None:
    fam = NeuralFamily()
    ctx = BuildContext(task=task, n_rows=100, n_features=3)
    space = fam.search_space(task)
    assert {"depth", "width", "dropout", "lr", "weight_decay", "batch_size"} <= set(space)
    configs = fam.portfolio(task) + [sample_space(space, np.random.default_rng(s)) for s in range(20)]
    assert 1 <= len(fam.portfolio(task)) <= 2
    for params in configs:
        fam.build(params, ctx)._validate_params()  # raises on a value outside the constraints


def test_inside_the_scaled_preprocessing_pipeline() -> None:
    from mlsmith.preprocess._transformers import build_preprocessor, make_model_pipeline
    from mlsmith.schema import infer_schema

    rng = np.random.default_rng(0)
    n = 120
    x = rng.normal(size=n)
    df = pd.DataFrame({"x": np.where(rng.uniform(size=n) < 0.1, np.nan, x),
                       "cat": rng.choice(["p", "q", "r", None], size=n),
                       "y": np.digitize(x, [-0.5, 0.5])})
    schema, _ = infer_schema(df, "y")
    prep, _ = build_preprocessor(schema, NeuralFamily.capabilities.preprocessing)
    ctx = BuildContext(task=schema.task.kind, n_rows=n, n_features=2)
    pipe = make_model_pipeline(prep, NeuralFamily().build({**SMALL}, ctx))
    pipe.fit(df.drop(columns="y").iloc[:100], df["y"].iloc[:100])
    proba = pipe.predict_proba(df.drop(columns="y").iloc[100:].assign(cat="never seen"))
    assert proba.shape == (20, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
