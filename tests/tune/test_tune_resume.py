"""Resuming searches: a SIGKILL mid-trial, budgets over reruns, the tune command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlsmith.errors import ConfigError
from mlsmith.tune import open_storage, tune
from mlsmith.tune._study import consumed_numbers

optuna = pytest.importorskip("optuna")

State = optuna.trial.TrialState


def _params(table) -> list[dict]:
    return [json.loads(p) for p in table["params"]]


def _load(storage: Path, name: str = "mlsmith") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def test_the_trial_budget_counts_trials_already_in_the_study(binary_bundle: str,
                                                             tmp_path: Path) -> None:
    storage = tmp_path / "journal.log"
    opts = dict(strategy="random", pruner="none", seed=0, storage=storage, cores_per_trial=2)
    first = tune(binary_bundle, ["linear"], n_trials=2, **opts)
    second = tune(binary_bundle, ["linear"], n_trials=4, **opts)
    assert len(first) == 2 and len(second) == 4
    assert second.iloc[:2]["cv_roc_auc"].tolist() == first["cv_roc_auc"].tolist()
    # the resumed search does not replay the first run's random draws
    assert len({p["C"] for p in _params(second)}) == 4
    assert len(tune(binary_bundle, ["linear"], n_trials=3, **opts)) == 4  # nothing left to run
    with pytest.raises(ConfigError, match="started with families"):
        tune(binary_bundle, ["knn"], n_trials=5, **opts)


def test_a_search_needs_a_budget(binary_bundle: str) -> None:
    with pytest.raises(ConfigError, match="give a number of trials"):
        tune(binary_bundle, ["linear"])


KILLED_SCRIPT = """
import sys
from mlsmith.tune import tune
configs = [{{"max_iter": 400, "learning_rate": 0.02, "max_leaf_nodes": leaves}}
           for leaves in (8, 12, 16, 20, 24)]
tune({bundle!r}, ["hist_gradient_boosting"], strategy="random", n_trials=5, initial=configs,
     pruner="none", seed=0, cores_per_trial=1, storage={storage!r}, oof_dir={oof!r},
     workdir={work!r})
"""


def _descendants(pid: int) -> list[int]:
    from mlsmith.tune._memory import _children_proc

    return _children_proc(pid)


def test_a_search_killed_mid_trial_resumes_without_rerunning_finished_trials(
        binary_bundle: str, tmp_path: Path) -> None:
    storage, oof = tmp_path / "study" / "journal.log", tmp_path / "oof"
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(KILLED_SCRIPT.format(
        bundle=binary_bundle, storage=str(storage), oof=str(oof), work=str(tmp_path / "work"))))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    running = None
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
            if not storage.exists():
                continue
            trials = _load(storage).get_trials()
            done = [t for t in trials if t.state == State.COMPLETE]
            active = [t for t in trials if t.state == State.RUNNING and t.intermediate_values]
            if len(done) >= 2 and active:
                running = active[0]
                break
    finally:
        children = _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert running is not None, "the search ended before it could be killed mid-trial"

    before = _load(storage).get_trials()
    finished = {t.number: t.value for t in before if t.state == State.COMPLETE}
    killed = [t for t in before if t.state == State.RUNNING]
    assert [t.number for t in killed] == [running.number]

    started: list[int] = []
    configs = [{"max_iter": 400, "learning_rate": 0.02, "max_leaf_nodes": leaves}
               for leaves in (8, 12, 16, 20, 24)]
    table = tune(binary_bundle, ["hist_gradient_boosting"], strategy="random", n_trials=5,
                 initial=configs, pruner="none", seed=0, cores_per_trial=1, storage=storage,
                 oof_dir=oof, on_event=lambda e, d: e == "trial_start" and started.append(d["trial"]))
    after = {t.number: t for t in _load(storage).get_trials()}
    # finished trials are kept as they were and not run again
    assert all(after[n].state == State.COMPLETE and after[n].value == v for n, v in finished.items())
    assert not set(started) & set(finished)
    # the killed trial is failed and retried with the same parameters
    assert after[running.number].state == State.FAIL
    assert after[running.number].user_attrs["status"] == "stale"
    (retry,) = [t for t in after.values() if t.system_attrs.get("failed_trial") == running.number]
    assert retry.state == State.COMPLETE and retry.params == running.params
    assert retry.number in started
    # exactly the budget: five evaluated trials, every one with its predictions saved
    ok = table[table["status"] == "ok"]
    assert len(ok) == 5 and len(consumed_numbers(list(after.values()))) == 5
    assert sorted(int(p.stem.split("_")[1]) for p in oof.glob("trial_*.npy")) == sorted(ok["trial"])
    assert table.loc[table["trial"] == running.number, "status"].item() == "stale"


def test_tune_command_writes_the_trial_table(tmp_path: Path, capsys) -> None:
    import argparse

    import numpy as np
    import pandas as pd

    from mlsmith.tune import add_tune_arguments, cmd_tune

    rng = np.random.default_rng(0)
    x, z = rng.normal(size=120), rng.normal(size=120)
    data = tmp_path / "train.csv"
    pd.DataFrame({"x": x, "z": z, "label": (x - z + rng.normal(size=120) > 0).astype(int)}
                 ).to_csv(data, index=False)
    parser = argparse.ArgumentParser()
    add_tune_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args([str(data), "--target", "label", "--model", "linear", "--trials",
                              "3", "--folds", "3", "--out", str(out), "--quiet"])
    assert cmd_tune(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    table = pd.read_csv(out / "trials.csv")
    # the default pruner (Hyperband) may stop a trial that is worse than the first ones
    assert list(table["trial"]) == [0, 1, 2] and set(table["status"]) <= {"ok", "pruned"}
    assert table["status"].iloc[0] == "ok" and table["folds_done"].iloc[0] == 3
    assert "cv_roc_auc" in table and (out / "study" / "journal.log").exists()
    assert len(list((out / "oof").glob("*.npy"))) == (table["status"] == "ok").sum()
    spec = _load(out / "study" / "journal.log").user_attrs["mlsmith"]
    assert spec["source"] == str(data.resolve()) and spec["target"] == "label"
