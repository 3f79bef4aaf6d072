"""Samplers, pruners and the trial store: settings, journal repair, dead processes' trials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlsmith.errors import ConfigError
from mlsmith.tune import create_study, make_pruner, make_sampler, open_storage, recover_stale
from mlsmith.tune._study import (
    _redact,
    consumed_numbers,
    is_rdb_url,
    owner_alive,
    owner_id,
)

optuna = pytest.importorskip("optuna")

State = optuna.trial.TrialState


def test_tpe_sets_multivariate_and_constant_liar_explicitly() -> None:
    s = make_sampler("tpe", 3)
    assert isinstance(s, optuna.samplers.TPESampler)
    assert s._multivariate is True and s._constant_liar is True and s._group is False
    assert make_sampler("tpe", 3, conditional=True)._group is True
    assert isinstance(make_sampler("random", 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("grid", 0, grid={"x": [1, 2]}), optuna.samplers.GridSampler)


@pytest.mark.parametrize("strategy", ["tpe", "random"])
def test_seeded_samplers_repeat_their_draws(strategy: str) -> None:
    def draws(seed: int) -> list[float]:
        study = optuna.create_study(sampler=make_sampler(strategy, seed))
        study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2
                       + t.suggest_int("k", 1, 9), n_trials=14)
        return [t.params["x"] for t in study.trials]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_bad_names_raise_config_errors_with_hints() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'tpe'"):
        make_sampler("tpee", 0)
    with pytest.raises(ConfigError, match="needs a grid"):
        make_sampler("grid", 0)
    with pytest.raises(ConfigError, match="Did you mean 'median'"):
        make_pruner("medain")


def test_pruners() -> None:
    hb = make_pruner("hyperband", 5)
    assert isinstance(hb, optuna.pruners.HyperbandPruner) and hb._max_resource == 5
    assert isinstance(make_pruner("sha"), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)


def test_storage_specs(tmp_path: Path) -> None:
    from optuna.storages import JournalStorage, RDBStorage

    assert isinstance(open_storage(None), optuna.storages.InMemoryStorage)
    j = open_storage(tmp_path / "study" / "journal.log")
    assert isinstance(j, JournalStorage) and (tmp_path / "study" / "journal.log").exists()
    assert isinstance(open_storage(tmp_path / "study"), JournalStorage)  # a folder: journal.log
    rdb = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}", heartbeat_interval=3)
    assert isinstance(rdb, RDBStorage) and rdb.get_heartbeat_interval() == 3
    assert rdb.grace_period == 6 and rdb.heartbeat_stale_trial_callback is not None
    with pytest.raises(ConfigError, match="unsupported storage URL"):
        open_storage("redis://localhost:6379")
    assert is_rdb_url("postgresql+psycopg2://u@h/db") and not is_rdb_url("runs/x.log")
    assert _redact("postgresql://me:secret@h:5432/db") == "postgresql://me:***@h:5432/db"


def test_unreachable_database_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot open the study storage postgresql://u:\\*\\*\\*@"):
        open_storage("postgresql://u:pw@127.0.0.1:1/none")


def test_direction_of_a_loaded_study_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    create_study("s", path, "maximize")
    assert create_study("s", path, "maximize").direction == optuna.study.StudyDirection.MAXIMIZE
    with pytest.raises(ConfigError, match="created to maximize"):
        create_study("s", path, "minimize")


def test_half_written_journal_record_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    study = create_study("s", path, "minimize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    good = path.read_bytes()
    path.write_bytes(good + b'{"op_code": 5, "worker_id": "x", "tri')  # killed mid-write
    study = create_study("s", path, "minimize")
    repaired = path.read_bytes()
    assert repaired.startswith(good) and b"tri{" not in repaired and b'"tri\n' not in repaired
    assert all(json.loads(line) for line in repaired.splitlines())
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(path))
    assert [t.state for t in again.trials] == [State.COMPLETE] * 5


def _dead_owner() -> str:
    """The owner id of a process that has since ended."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = owner_id(proc.pid)
    proc.kill()
    proc.wait()
    return owner


def test_owner_liveness() -> None:
    assert owner_alive(owner_id())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = owner_id(proc.pid)
        assert owner_alive(owner)
    finally:
        proc.kill()
        proc.wait()
    assert not owner_alive(owner)
    assert owner_alive("another-host:1:1")  # cannot be checked: assumed alive


def test_trials_of_a_dead_process_are_failed_and_queued_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    storage = open_storage(path)
    study = create_study("s", storage, "minimize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    dead = study.ask()
    dead.suggest_float("x", 0, 1)
    dead.set_user_attr("owner", _dead_owner())
    dead.set_user_attr("origin", "search:tpe")
    alive = study.ask()
    alive.suggest_float("x", 0, 1)
    alive.set_user_attr("owner", owner_id())
    assert consumed_numbers(study.get_trials()) == [0, 1, 2, 3]

    # a second process looking at the same store at the same time
    other = optuna.load_study(study_name="s", storage=open_storage(path))
    assert recover_stale(study, storage) == [2]
    assert recover_stale(other, other._storage) == []
    trials = optuna.load_study(study_name="s", storage=open_storage(path)).get_trials()
    assert [t.state for t in trials] == [State.COMPLETE, State.COMPLETE, State.FAIL,
                                         State.RUNNING, State.WAITING]
    retry = trials[4]
    assert retry.params == trials[2].params
    assert retry.system_attrs["retry_history"] == [2] and retry.system_attrs["failed_trial"] == 2
    assert retry.user_attrs["origin"] == "search:tpe" and trials[2].user_attrs["status"] == "stale"
    # the dead trial no longer counts; its retry counts once it runs
    assert consumed_numbers(trials) == [0, 1, 3]
    popped = study.ask()
    assert popped.number == 4 and popped.suggest_float("x", 0, 1) == trials[2].params["x"]
    assert consumed_numbers(study.get_trials()) == [0, 1, 3, 4]


def test_retries_stop_after_max_retry(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "journal.log")
    study = create_study("s", storage, "minimize")
    owner = _dead_owner()
    for _ in range(3):
        t = study.ask()
        t.suggest_float("x", 0, 1)
        t.set_user_attr("owner", owner)
        recover_stale(study, storage, max_retry=2)
    states = [t.state for t in study.get_trials()]
    # trial 0 dies, retried as 1 (popped by the next ask), which dies, retried as 2, which dies
    assert states == [State.FAIL, State.FAIL, State.FAIL]
    assert study.get_trials()[2].system_attrs["retry_history"] == [0, 1]


def test_unowned_running_trial_is_recovered_after_the_grace(tmp_path: Path) -> None:
    storage = open_storage(tmp_path / "journal.log")
    study = create_study("s", storage, "minimize")
    t = study.ask()
    t.suggest_float("x", 0, 1)
    assert recover_stale(study, storage) == []  # just started: its owner may not be written yet
    assert recover_stale(study, storage, unowned_grace=0.0) == [0]
