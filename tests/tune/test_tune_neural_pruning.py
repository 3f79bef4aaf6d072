"""Per-epoch pruning of neural trials: epoch steps per fold, the epoch pruner, the cv task."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest

from mlsmith.select._tasks import run_cv
from mlsmith.tune import epoch_curves, open_storage, prepare_bundle, tune
from mlsmith.tune._study import (
    EPOCH_STEPS,
    EpochPruner,
    create_study,
    make_epoch_pruner,
    storage_spec,
)

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")

State = optuna.trial.TrialState
E = EPOCH_STEPS

#: a small network that learns the toy problem in a few epochs
GOOD = {"architecture": "mlp", "depth": 2, "width": 64, "shape": "constant", "norm": "none",
        "activation": "relu", "dropout": 0.0, "lr": 3e-3, "weight_decay": 1e-5,
        "batch_size": 64, "periodic_embeddings": False, "label_smoothing": 0.0}
GOOD2 = {**GOOD, "lr": 2e-3, "width": 96}
#: one that barely moves: the lowest learning rate and heavy dropout
BAD = {**GOOD, "depth": 1, "lr": 1e-4, "dropout": 0.5}


@pytest.fixture
def neural_bundle(tmp_path: Path) -> str:
    import pandas as pd

    rng = np.random.default_rng(0)
    x, z = rng.normal(size=300), rng.normal(size=300)
    label = (2.0 * x - z + rng.normal(scale=0.8, size=300) > 0).astype(np.int64)
    path = tmp_path / "neural.joblib"
    prepare_bundle(pd.DataFrame({"x": x, "z": z, "label": label}), "label", path, folds=3,
                   seed=0)
    return str(path)


def _load(storage: Path) -> optuna.Study:
    return optuna.load_study(study_name="mlsmith", storage=open_storage(storage))


def _blocks(values: dict[int, float]) -> dict[int, list[int]]:
    """Epochs reported per fold (0-based), from a trial's intermediate values."""
    out: dict[int, list[int]] = {}
    for step in sorted(values):
        if step % E:
            out.setdefault(step // E - 1, []).append(step % E)
    return out


def test_a_hopeless_network_is_pruned_inside_its_first_fold(neural_bundle: str,
                                                            tmp_path: Path) -> None:
    storage = tmp_path / "journal.log"
    table = tune(neural_bundle, ["neural"], strategy="random", n_trials=3,
                 initial=[GOOD, GOOD2, BAD], pruner="median", cores_per_trial=1, seed=0,
                 storage=storage)
    assert list(table["status"]) == ["ok", "ok", "pruned"]
    assert list(table["folds_done"]) == [3, 3, 0]
    assert table["note"].iloc[2].startswith("pruned at epoch ")
    # the epochs a pruned network trained are fitting time, not the search's overhead
    assert 0 < table["work_time_s"].iloc[2] <= table["cv_time_s"].iloc[2]
    trials = _load(storage).get_trials()
    assert [t.state for t in trials] == [State.COMPLETE, State.COMPLETE, State.PRUNED]

    # a finished network: every epoch of fold f at (f + 1) * E + epoch, from epoch 1 on, and
    # the running mean of the fold scores at (k + 1) * E after k folds, past those epochs
    good = trials[0].intermediate_values
    epochs = _blocks(good)
    assert sorted(epochs) == [0, 1, 2]
    for f, seen in epochs.items():
        assert seen == list(range(1, len(seen) + 1)) and 5 < len(seen) < E
        assert all(0.0 <= good[(f + 1) * E + e] <= 1.0 for e in seen)  # validation accuracy
    assert sorted(s for s in good if s % E == 0) == [2 * E, 3 * E, 4 * E]
    folds = json.loads(table["fold_scores"].iloc[0])
    assert good[2 * E] == pytest.approx(folds[0])
    assert good[3 * E] == pytest.approx(np.mean(folds[:2]))
    assert good[4 * E] == pytest.approx(table["cv_roc_auc"].iloc[0])
    assert trials[0].value == pytest.approx(good[4 * E])

    # the hopeless one: stopped in its first fold, just after the warm-up epochs, well before
    # the finished networks' first folds ended, with no fold score
    bad = trials[2].intermediate_values
    assert list(_blocks(bad)) == [0] and not any(s % E == 0 for s in bad)
    last = max(bad) - E
    assert 5 < last < min(len(_blocks(t.intermediate_values)[0]) for t in trials[:2])
    assert table["note"].iloc[2] == f"pruned at epoch {last} of fold 1 (0 of 3 folds done)"
    assert bad[E + last] < min(t.intermediate_values[E + last] for t in trials[:2])

    # the same epochs, by fold, as the curves experiment tracking logs by step
    curves = epoch_curves(storage)
    assert sorted(curves) == [f"neural_trial{t.number}" for t in trials]
    assert curves["neural_trial2"] == {"fold1_epoch_score": [(e, bad[E + e]) for e in
                                                             _blocks(bad)[0]]}
    assert sorted(curves["neural_trial0"]) == [f"fold{k}_epoch_score" for k in (1, 2, 3)]


def test_folds_side_by_side_and_other_families(neural_bundle: str, tmp_path: Path) -> None:
    """Two folds of a trial report epochs at once from threads of the worker; a linear trial
    of the same study keeps its steps 1..n_folds, judged by the study's pruner."""
    storage = tmp_path / "journal.log"
    initial = [{"family": "linear", "C": 1.0}, {"family": "neural", **GOOD},
               {"family": "neural", **GOOD2}, {"family": "neural", **BAD}]
    table = tune(neural_bundle, ["linear", "neural"], strategy="random", n_trials=4,
                 initial=initial, pruner="hyperband", cores_per_trial=2, seed=0,
                 storage=storage)
    assert list(table["family"]) == ["linear", "neural", "neural", "neural"]
    assert list(table["status"]) == ["ok", "ok", "ok", "pruned"]
    trials = _load(storage).get_trials()
    # the linear trial: rounds of two folds, the mean after 2 folds, then after all 3
    assert list(trials[0].intermediate_values) == [2, 3]
    for t in trials[1:3]:
        values = t.intermediate_values
        assert sorted(_blocks(values)) == [0, 1, 2]
        assert sorted(s for s in values if s % E == 0) == [3 * E, 4 * E]
        assert values[4 * E] == pytest.approx(t.value)
    # pruned while folds 1 and 2 trained side by side: no fold finished
    bad = trials[3].intermediate_values
    assert set(_blocks(bad)) <= {0, 1} and not any(s % E == 0 for s in bad)
    assert all(len(seen) < 20 for seen in _blocks(bad).values())
    assert table["folds_done"].iloc[3] == 0 and "pruned at epoch" in table["note"].iloc[3]


def _frozen(study: optuna.Study, values: dict[int, float], state=State.COMPLETE):
    trial = optuna.trial.create_trial(state=state, value=0.0 if state == State.COMPLETE else None,
                                      intermediate_values=values)
    study.add_trial(trial)
    return study.get_trials(deepcopy=False)[-1]


def test_epoch_pruner_compares_like_steps() -> None:
    study = optuna.create_study(direction="maximize")
    pruner = EpochPruner(0.5, n_min_trials=2, n_warmup_epochs=2)
    for top in (0.9, 0.8):
        _frozen(study, {E + e: top for e in range(1, 8)} | {2 * E: top, 3: 5.0})
    ask = lambda values: pruner.prune(study, _frozen(study, values, State.RUNNING))  # noqa: E731
    assert not ask({E + 1: 0.1, E + 2: 0.1})  # warm-up epochs of the fold
    assert ask({E + e: 0.1 for e in range(1, 4)})  # below the median at epoch 3
    assert not ask({E + 1: 0.95, E + 2: 0.1, E + 3: 0.1})  # its best epoch of the fold counts
    assert not ask({1: 0.0, 2: 0.0, 3: 0.0})  # other families' steps: not judged here
    assert ask({E + 1: 0.95, 2 * E: 0.5})  # the mean after one fold, against theirs
    assert not ask({E + 1: 0.95, 2 * E: 0.86})
    assert not ask({2 * E + e: 0.1 for e in range(1, 5)})  # no finished trial got there
    assert not EpochPruner(0.5, n_min_trials=3, n_warmup_epochs=2).prune(
        study, _frozen(study, {E + 3: 0.1}, State.RUNNING))  # too few finished trials

    low = optuna.create_study(direction="minimize")  # losses: the smaller the better
    for top in (0.2, 0.3):
        _frozen(low, {E + 4: top})
    assert pruner.prune(low, _frozen(low, {E + 4: 0.26}, State.RUNNING))
    assert not pruner.prune(low, _frozen(low, {E + 4: 0.24}, State.RUNNING))
    assert pruner.prune(low, _frozen(low, {E + 4: float("inf")}, State.RUNNING))


def test_epoch_pruner_settings_and_storage_specs(tmp_path: Path) -> None:
    assert make_epoch_pruner("median").worst_share == 0.5
    assert make_epoch_pruner("hyperband").worst_share == pytest.approx(1 / 3)
    assert make_epoch_pruner("sha").worst_share == pytest.approx(1 / 3)
    assert isinstance(make_epoch_pruner("none"), optuna.pruners.NopPruner)
    from mlsmith.errors import ConfigError

    with pytest.raises(ConfigError, match="Did you mean 'median'"):
        make_epoch_pruner("medain")
    copy = pickle.loads(pickle.dumps(EpochPruner(0.25, n_min_trials=4)))
    assert (copy.worst_share, copy.n_min_trials, copy.block) == (0.25, 4, E)
    journal = tmp_path / "j" / "journal.log"
    assert storage_spec(open_storage(journal)) == str(journal)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert storage_spec(open_storage(url)) == url
    study = create_study("s", url, "maximize")
    assert storage_spec(study._storage) == url  # behind Optuna's cache
    assert storage_spec(open_storage(None)) is None


def test_cv_task_stops_the_remaining_folds_when_a_fold_is_pruned(neural_bundle: str,
                                                                 tmp_path: Path) -> None:
    storage = str(tmp_path / "journal.log")
    study = create_study("s", storage, "maximize")
    for _ in range(2):  # two finished networks that were perfect at every epoch
        _frozen(study, {E + e: 1.0 for e in range(1, 50)})
    trial = study.ask()
    data = joblib.load(neural_bundle)
    report = {"storage": storage, "study_name": "s", "trial_id": trial._trial_id, "block": E,
              "pruner": EpochPruner(0.5, n_warmup_epochs=3)}
    task = {"kind": "cv", "family": "neural", "params": BAD, "metric": "roc_auc", "seed": 0,
            "n_jobs": 1, "fold_ids": [0, 1, 2], "epoch_report": report}
    out = run_cv(task, data)
    assert out["pruned"] and (out["pruned_fold"], out["pruned_epoch"]) == (0, 4)
    assert out["fold_ids"] == [] and out["fold_scores"] == []
    values = study.get_trials(deepcopy=False)[-1].intermediate_values
    assert sorted(values) == [E + 1, E + 2, E + 3, E + 4]  # folds 1 and 2 never started

    # a family without epochs ignores the request: same scores as without it
    linear = {**task, "family": "linear", "params": {"C": 1.0}}
    plain = run_cv({k: v for k, v in linear.items() if k != "epoch_report"}, data)
    out = run_cv(linear, data)
    assert not out["epoch_steps"] and "pruned" not in out
    assert out["fold_scores"] == pytest.approx(plain["fold_scores"])
