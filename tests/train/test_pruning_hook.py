"""Per-epoch reports that may stop training: EpochReporter, the estimators' epoch_callback, and
OptunaEpochPruner on real Optuna storages."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
optuna = pytest.importorskip("optuna")
from _train_helpers import blobs  # noqa: E402
from sklearn.base import clone  # noqa: E402

from mlsmith.models._neural import NeuralClassifier, NeuralRegressor  # noqa: E402
from mlsmith.train import MLP, Trainer  # noqa: E402
from mlsmith.train._pruning import EpochReporter, OptunaEpochPruner, open_storage  # noqa: E402

SMALL = {"depth": 2, "width": 16, "max_epochs": 20, "patience": None, "device": "cpu"}


class StopAt:
    """A picklable epoch callback that records its calls and says stop at ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.calls: list[tuple[int, float, float | None]] = []

    def __call__(self, epoch: int, val_loss: float, val_score: float | None) -> bool:
        self.calls.append((epoch, val_loss, val_score))
        return epoch >= self.epoch


def test_the_reporter_stops_the_trainer_cleanly(clf_data) -> None:
    X, y = clf_data
    fn = StopAt(2)
    trainer = Trainer(max_epochs=10, batch_size=32, lr=1e-2, seed=0, verbose=False,
                      device="cpu", callbacks=[EpochReporter(fn)])
    history = trainer.fit(MLP(6, [16], 2), (X[:300], y[:300]), val=(X[300:], y[300:]))
    assert len(history) == 2
    assert history.meta["stopped_by"] == "pruned"
    assert history.stop_reason.startswith("pruned after epoch 2")
    assert [c[0] for c in fn.calls] == [1, 2]
    assert [c[1] for c in fn.calls] == history["val_loss"]
    assert [c[2] for c in fn.calls] == history["val_metric"]  # accuracy: higher is better


def test_without_validation_the_training_loss_is_reported(reg_data) -> None:
    X, y = reg_data
    fn = StopAt(99)
    history = Trainer(max_epochs=3, batch_size=64, seed=0, verbose=False, device="cpu",
                      callbacks=[EpochReporter(fn)]).fit(MLP(5, [8], 1), (X, y))
    assert len(history) == 3 and "stopped_by" not in history.meta
    assert [c[1] for c in fn.calls] == history["train_loss"]
    assert [c[2] for c in fn.calls] == [None] * 3


def test_the_classifier_stops_at_epoch_two_and_stays_usable() -> None:
    X, y = blobs(300)
    fn = StopAt(2)
    clf = NeuralClassifier(**SMALL, epoch_callback=fn).fit(X, y)
    assert clf.n_epochs_ == 2 and len(clf.history_) == 2
    assert clf.pruned_ and clf.history_.meta["stopped_by"] == "pruned"
    assert clf.best_epoch_ in (1, 2)
    assert clf.predict_proba(X).shape == (300, 2) and (clf.predict(X) == y).mean() > 0.6
    assert 0.0 <= fn.calls[-1][2] <= 1.0
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    twin = clone(clf)
    assert isinstance(twin.epoch_callback, StopAt) and twin.epoch_callback.epoch == 2
    free = NeuralClassifier(**{**SMALL, "max_epochs": 3}).fit(X, y)
    assert not free.pruned_ and free.n_epochs_ == 3


def test_the_regressor_reports_minus_its_rmse() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    fn = StopAt(3)
    reg = NeuralRegressor(**SMALL, epoch_callback=fn).fit(X, X[:, 0])
    assert reg.pruned_ and reg.n_epochs_ == 3
    rmse = reg.history_["val_metric"]
    assert [c[2] for c in fn.calls] == pytest.approx([-v for v in rmse])
    assert all(c[2] < 0 for c in fn.calls)


def test_an_invalid_callback_is_reported_at_fit() -> None:
    X, y = blobs(60)
    with pytest.raises(ValueError, match="'epoch_callback' parameter of NeuralClassifier"):
        NeuralClassifier(epoch_callback="prune please").fit(X, y)


# --- Optuna -------------------------------------------------------------------------------------
def make_study(storage_spec: str, direction: str, good: float) -> optuna.Study:
    """A study with three finished trials whose every epoch scored ``good``."""
    study = optuna.create_study(study_name="nas", storage=open_storage(storage_spec),
                                direction=direction, pruner=pruner())
    for _ in range(3):
        trial = study.ask()
        for step in range(1, 21):
            trial.report(good, step)
        study.tell(trial, good)
    return study


def pruner() -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def test_optuna_pruner_prunes_a_bad_trial_in_a_journal_file(tmp_path) -> None:
    path = str(tmp_path / "study.journal")
    study = make_study(path, "maximize", good=0.97)
    bad = study.ask()
    cb = OptunaEpochPruner(path, "nas", bad._trial_id, pruner=pruner())
    cb = pickle.loads(pickle.dumps(cb))  # as it reaches a worker
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 2, 300)  # noise: accuracy near 0.5
    clf = NeuralClassifier(**SMALL, epoch_callback=cb).fit(X, y)
    assert clf.pruned_ and clf.n_epochs_ == 1
    pickle.dumps(clf)  # the used callback (with an open storage) still pickles
    frozen = load(path).trials[bad.number]
    assert list(frozen.intermediate_values) == [1]
    assert frozen.intermediate_values[1] == pytest.approx(clf.history_["val_metric"][0])
    # a trial as good as the finished ones goes on, at its own steps (MedianPruner judges a
    # trial by its best value so far: one bad epoch after a good one does not prune it)
    fine = study.ask()
    ok = OptunaEpochPruner(path, "nas", fine._trial_id, step_offset=5, pruner=pruner())
    assert ok(1, 0.1, 0.99) is False
    assert ok(2, 5.0, 0.10) is False
    assert load(path).trials[fine.number].intermediate_values == {6: 0.99, 7: 0.10}


def test_optuna_pruner_minimizes_in_a_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = make_study(url, "minimize", good=0.2)
    good, bad = study.ask(), study.ask()
    assert OptunaEpochPruner(url, "nas", good._trial_id, pruner=pruner())(1, 0.15, None) is False
    assert OptunaEpochPruner(url, "nas", bad._trial_id, pruner=pruner())(1, 0.1, -0.25) is True
    trials = load(url).trials
    assert trials[good.number].intermediate_values == {1: 0.15}  # no score: the loss itself
    assert trials[bad.number].intermediate_values == {1: 0.25}   # a score of -0.25: loss 0.25


def load(spec: str) -> optuna.Study:
    return optuna.load_study(study_name="nas", storage=open_storage(spec))
